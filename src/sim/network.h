// The simulator's virtual network and clock, independent of the protocol core:
// a discrete-event queue ordered by (time, insertion sequence), and a network model that
// decides, with a seeded RNG, whether and when a message from one node reaches another
// (loss, latency + jitter, partitions, crashed nodes, slow nodes).
// Everything here is deterministic: same seed and same calls => same decisions.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "core/types.h"

namespace memberlist::sim {

using core::Duration;
using core::Instant;
using NodeId = uint32_t;

// A 64-bit FNV-1a accumulator: the trace hash folds every processed event into it.
class TraceHash {
 public:
  void add(uint64_t v);
  void add(std::span<const uint8_t> bytes);
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 14695981039346656037ull;
};

// Virtual time and a queue of actions. Actions due at the same instant run in the order
// they were scheduled (the sequence number breaks ties), so a run is fully deterministic.
class EventQueue {
 public:
  using Action = std::function<void()>;

  Instant now() const { return now_; }
  // Schedules `action` at `at` (clamped to now: time never goes backwards).
  uint64_t schedule(Instant at, Action action);
  bool empty() const { return heap_.empty(); }
  std::optional<Instant> next_time() const;
  // Runs the earliest action; false if there is none.
  bool step();
  // Runs every action due at or before `t`, then sets the clock to `t`.
  void run_until(Instant t);
  uint64_t executed() const { return executed_; }

 private:
  struct Entry {
    Instant at;
    uint64_t seq;
    Action action;
  };
  // Heap order for std::push_heap/pop_heap (a max-heap): the earliest (at, seq) on top.
  // A function object, not a function pointer, so that the heap code inlines it.
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  Instant now_{0};
  uint64_t next_seq_ = 0;
  uint64_t executed_ = 0;
  std::vector<Entry> heap_;
};

// Properties of a one-way link.
struct LinkModel {
  double loss = 0.0;             // probability that a datagram is dropped
  Duration latency{1000};        // base one-way delay (1 ms)
  Duration jitter{0};            // extra delay, uniform in [0, jitter]
};

// Why a message did not get through (or Delivered).
enum class Fate : uint8_t { Delivered, Lost, Partitioned, Crashed };

class NetworkModel {
 public:
  explicit NetworkModel(uint64_t seed) : rng_(seed) {}

  void set_default_link(const LinkModel& m) { default_link_ = m; }
  const LinkModel& default_link() const { return default_link_; }
  // Overrides the model of the one-way link from -> to.
  void set_link(NodeId from, NodeId to, const LinkModel& m) { links_[{from, to}] = m; }
  void clear_link(NodeId from, NodeId to) { links_.erase({from, to}); }
  const LinkModel& link(NodeId from, NodeId to) const;

  // Partitions: every node is in a group (0 by default); only nodes of the same group can
  // reach each other. partition() puts each listed set in a group of its own; the nodes not
  // listed stay together in group 0. heal() puts everybody back in group 0.
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void heal();
  bool reachable(NodeId a, NodeId b) const { return group(a) == group(b); }
  uint32_t group(NodeId n) const;

  // A node whose inbound traffic is dropped (a one-way fault: a firewall or a full receive
  // queue): nothing reaches it, datagrams nor streams (nor the replies to its own streams);
  // its datagrams still go out, but its streams do not connect (see send_stream).
  void set_inbound_blocked(NodeId n, bool blocked);
  bool inbound_blocked(NodeId n) const { return n < deaf_.size() && deaf_[n]; }

  void set_crashed(NodeId n, bool crashed);
  bool crashed(NodeId n) const { return n < crashed_.size() && crashed_[n]; }

  // A slow node handles every incoming message `delay` late (CPU starvation).
  void set_slow(NodeId n, Duration delay);
  Duration slowness(NodeId n) const { return n < slow_.size() ? slow_[n] : Duration{0}; }

  // Fate of a datagram sent now; `delay` gets latency + jitter + the receiver's slowness.
  // Draws from the RNG (loss, then jitter) only when the link is up.
  Fate send_datagram(NodeId from, NodeId to, Duration& delay);
  // Streams are reliable (TCP): no loss, same latency model. A node whose inbound traffic is
  // dropped cannot open one (the handshake's SYN-ACK does not reach it), unlike a datagram.
  Fate send_stream(NodeId from, NodeId to, Duration& delay);
  // Whether a message already in flight can be handed to `to` now.
  Fate deliverable(NodeId from, NodeId to) const;

  std::mt19937_64& rng() { return rng_; }

 private:
  Duration sample_delay(NodeId from, NodeId to);

  std::mt19937_64 rng_;
  LinkModel default_link_;
  std::map<std::pair<NodeId, NodeId>, LinkModel> links_;
  std::vector<uint32_t> group_;
  std::vector<bool> crashed_;
  std::vector<bool> deaf_;  // inbound blocked
  std::vector<Duration> slow_;
};

}  // namespace memberlist::sim
