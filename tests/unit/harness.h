// A small in-memory network for core tests, in virtual time: several Cores, datagrams and
// streams delivered after `latency`, optional drop rules, nodes that can go down. A fuller
// simulator lives in src/sim; this one only has to be obvious.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/core.h"
#include "test_codec.h"

namespace memberlist::test {

using namespace std::chrono_literals;
using core::Address;
using core::Bytes;
using core::Core;
using core::Duration;
using core::Instant;

// Address of test node number i (1-based): 10.0.0.i:7946.
inline Address addr_of(int i) { return Address::v4(10, 0, 0, static_cast<uint8_t>(i), 7946); }

// A Local config for tests: name, address, seed.
core::Config test_config(const std::string& name, int index, uint64_t seed = 1);

struct SentPacket {
  Instant at;
  Address from, to;
  Bytes data;
  bool operator==(const SentPacket&) const = default;
};

class Cluster {
 public:
  explicit Cluster(std::shared_ptr<TestCodec> codec = std::make_shared<TestCodec>()) : codec_(std::move(codec)) {}

  // Adds a node; `cfg.advertise` is its address on this network.
  Core& add(core::Config cfg);
  Core& core(const std::string& name) { return *nodes_.at(name).core; }
  const TestCodec& codec() const { return *codec_; }

  Instant now() const { return now_; }
  Duration latency = 1ms;
  // Return true to drop. Datagrams and streams are asked separately.
  std::function<bool(const Address& from, const Address& to, const Bytes& data)> drop_packet;
  std::function<bool(const Address& from, const Address& to)> drop_stream;

  // A down node receives nothing, sends nothing and its timers do not run.
  void set_down(const std::string& name, bool down);

  // Joins `name` to `seed` (push/pull join) and returns the stream id.
  uint64_t join(const std::string& name, const std::string& seed);
  // Outcome of a StreamRequest, once handled (nullopt while in flight).
  std::optional<core::Status> stream_result(const std::string& name, uint64_t id) const;

  void run_until(Instant t);
  void run_for(Duration d) { run_until(now_ + d); }
  // Runs until pred() holds (checked after every step) or `limit` elapses; returns pred().
  bool run_until_pred(const std::function<bool()>& pred, Duration limit);

  std::vector<core::Event>& events(const std::string& name) { return nodes_.at(name).events; }
  // Notifications polled from `name` so far, in order.
  std::vector<core::Notification>& notifications(const std::string& name) { return nodes_.at(name).notifications; }
  // Those of one kind.
  template <class T>
  std::vector<T> notifications_of(const std::string& name) {
    std::vector<T> out;
    for (const auto& n : notifications(name))
      if (const T* x = std::get_if<T>(&n)) out.push_back(*x);
    return out;
  }
  const std::vector<SentPacket>& sent() const { return sent_; }
  std::vector<std::string> log_lines(const std::string& name) const { return nodes_.at(name).logs; }
  bool logged(const std::string& name, const std::string& needle) const;

  // Names of the members `name` sees as Alive.
  std::set<std::string> alive_view(const std::string& name);

 private:
  struct Node {
    std::unique_ptr<Core> core;
    Address addr;
    bool down = false;
    std::vector<core::Event> events;
    std::vector<core::Notification> notifications;
    std::vector<std::string> logs;
  };
  struct InFlight {
    bool stream;
    Address from, to;
    Bytes data;
    core::StreamRequest req;
    std::string from_name;
  };

  Node* at(const Address& a);
  void flush();
  bool step(Instant limit);
  void deliver(InFlight& f);

  std::shared_ptr<TestCodec> codec_;
  Instant now_{};
  std::map<std::string, Node> nodes_;
  std::multimap<Instant, InFlight> in_flight_;  // multimap keeps insertion order per instant
  std::map<std::pair<std::string, uint64_t>, core::Status> stream_results_;
  std::vector<SentPacket> sent_;
};

// Single-core helpers.
// Fires timers up to `t` (inclusive), one deadline at a time.
void advance(Core& c, Instant t);
// Drains and decodes every pending transmit.
struct Decoded {
  Address to;
  std::vector<core::Message> msgs;
};
std::vector<Decoded> drain(Core& c, const TestCodec& codec);

}  // namespace memberlist::test
