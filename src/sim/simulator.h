// The deterministic simulator: many core::Core instances on a virtual network in virtual
// time. Datagrams and streams go through the real codec and wire framing, are delayed, lost
// or blocked by the NetworkModel, and are handed to the target core when their event comes
// up. Each core's timer is one event at its poll_timeout(). Same seed => same trace
// (trace_hash()), so any failure can be replayed exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/core.h"
#include "sim/network.h"

namespace memberlist::sim {

struct Options {
  uint64_t seed = 1;
  LinkModel link;               // default model of every link
  bool record_events = true;    // keep the membership event log (memory grows with N^2)
  // Codec for every core; null = the native FlatBuffers codec from src/wire.
  std::shared_ptr<const core::Codec> codec;
};

// Traffic of one node, as seen on its own interface (framed bytes).
struct NodeCounters {
  uint64_t packets_sent = 0, bytes_sent = 0;
  uint64_t packets_received = 0, bytes_received = 0;
  uint64_t packets_lost = 0;         // sent by this node, dropped by loss
  uint64_t packets_blocked = 0;      // sent by this node, dropped by partition/crash/unknown
  uint64_t streams_opened = 0, stream_bytes_sent = 0, stream_bytes_received = 0;
  uint64_t streams_failed = 0;       // streams this node opened that ended in an error
  uint64_t bad_frames = 0;           // framing errors on input
};

// One membership event emitted by one core: `observer` saw `node` change at `at`.
struct MembershipEvent {
  Instant at{};
  NodeId observer = 0;
  core::EventType type = core::EventType::Join;
  std::string node;
  core::NodeState state = core::NodeState::Alive;
  uint32_t incarnation = 0;
};

class Simulator {
 public:
  explicit Simulator(Options opts = {});
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // 10.x.y.z:7946 for node id (x.y.z = id + 1).
  static core::Address address_of(NodeId id);

  // Creates and starts a node now. The simulator fills in name ("node-<id>" if empty),
  // advertise address and seed (derived from Options::seed and the id).
  NodeId add_node(core::Config config);
  size_t size() const { return nodes_.size(); }

  // Makes every running node know `view` other running nodes as Alive (all of them if
  // `view` >= size()-1; otherwise a random sample per node), as a cluster that converged
  // long ago: no messages, no broadcasts, no events. For runs at scale that measure
  // detection or dissemination without the join phase.
  void seed_membership(size_t view = SIZE_MAX);

  // ---- commands (take effect now) -------------------------------------------------------
  void join(NodeId node, NodeId seed);
  // Outcome of the last join() of `node`, once its push/pull finished.
  std::optional<core::Status> join_result(NodeId node) const;
  core::Status leave(NodeId node);
  // New metadata for `node` (core::Core::update_meta): an alive message spreads by gossip.
  core::Status update_meta(NodeId node, core::Bytes meta);
  // An application broadcast from `node` (core::Core::queue_broadcast).
  core::Status queue_broadcast(NodeId node, std::string name, core::Bytes payload);
  // The node stops sending and receiving; its core is no longer driven.
  void crash(NodeId node);
  bool crashed(NodeId node) const;
  // A fresh process with the same name and address (incarnation starts again at 1).
  void restart(NodeId node);
  // Every message `node` receives is handled `delay` late (0 = normal).
  void set_slow(NodeId node, Duration delay);
  // A paused process (SIGSTOP, a long GC or VM pause): its timers do not fire and what
  // reaches it is not handled, but nothing is lost (the kernel buffers it). resume() then
  // runs all of it at once, in the order it came due, as the woken process finds it; a
  // stream whose deadline passed meanwhile fails for its opener. Commands (join(), leave(),
  // queue_broadcast()...) still act on a paused node at once.
  void pause(NodeId node);
  void resume(NodeId node);
  bool paused(NodeId node) const;
  void partition(const std::vector<std::vector<NodeId>>& groups) { net_.partition(groups); }
  void heal() { net_.heal(); }
  // Drops everything sent to `node` (see NetworkModel::set_inbound_blocked) until unblocked.
  void block_inbound(NodeId node, bool blocked) { net_.set_inbound_blocked(node, blocked); }
  void set_default_link(const LinkModel& m) { net_.set_default_link(m); }
  void set_link(NodeId from, NodeId to, const LinkModel& m) { net_.set_link(from, to, m); }
  // Runs `fn` at virtual time `at` (for scripted scenarios).
  void at(Instant at, std::function<void()> fn);

  // ---- running ----------------------------------------------------------------------------
  Instant now() const { return queue_.now(); }
  void run_until(Instant t);
  void run_for(Duration d) { run_until(now() + d); }
  // Runs until `pred` holds (checked every `check_every` of virtual time) or `deadline`.
  // Returns the time it first held.
  std::optional<Instant> run_until(const std::function<bool()>& pred, Instant deadline,
                                   Duration check_every = Duration{100'000});

  // ---- views ------------------------------------------------------------------------------
  const core::Core& core(NodeId node) const;
  const std::string& name(NodeId node) const;
  std::optional<NodeId> id_of(const std::string& name) const;
  const NodeCounters& counters(NodeId node) const;
  // State of `subject` in `observer`'s list (nullopt: unknown or reaped).
  std::optional<core::NodeState> state_seen(NodeId observer, NodeId subject) const;
  // True if every node of `observers` lists every node of `subjects` in `state`.
  bool all_see(const std::vector<NodeId>& observers, const std::vector<NodeId>& subjects,
               core::NodeState state) const;
  const std::vector<MembershipEvent>& events() const { return events_; }
  // (observer, member) pairs in which the observer lists the member as Alive or Suspect,
  // over every running node, self included; kept up to date from the Join and Leave events
  // (O(1) per event, so it is cheap to sample at any scale). n*n when fully converged.
  uint64_t known_pairs() const;
  // Called with every membership event a core emits (whether or not events are recorded).
  using EventTap = std::function<void(NodeId observer, const core::Event& e)>;
  void set_event_tap(EventTap tap) { event_tap_ = std::move(tap); }
  // Called with every notification a core emits (user messages, broadcasts...); without a
  // tap they are drained and dropped.
  using NotificationTap = std::function<void(NodeId node, const core::Notification& n)>;
  void set_notification_tap(NotificationTap tap) { notification_tap_ = std::move(tap); }
  uint64_t trace_hash() const { return trace_.value(); }
  uint64_t events_executed() const { return queue_.executed(); }
  NetworkModel& network() { return net_; }
  const std::shared_ptr<const core::Codec>& codec() const { return codec_; }
  // Called with every datagram a core sends (unframed payload), before the network decides
  // its fate: lets tests inspect protocol traffic.
  using PacketTap = std::function<void(NodeId from, NodeId to, std::span<const uint8_t> payload)>;
  void set_packet_tap(PacketTap tap) { tap_ = std::move(tap); }

 private:
  struct Node;
  enum class Kind : uint8_t { Packet = 1, Timer, StreamRequest, StreamResponse, Script };

  Node& node(NodeId id);
  const Node& node(NodeId id) const;
  std::optional<NodeId> lookup(const core::Address& a) const;
  // Drains every output of `id`'s core: transmits, streams, events, timer.
  void flush(NodeId id);
  void send_packet(NodeId from, core::Transmit t);
  void open_stream(NodeId from, core::StreamRequest r);
  void deliver_packet(NodeId from, NodeId to, const core::Bytes& frame);
  void deliver_stream(NodeId from, uint32_t from_epoch, NodeId to, uint64_t id,
                      const core::Bytes& frame, bool expect_reply, Instant deadline);
  void finish_stream(NodeId node, uint32_t epoch, uint64_t id, core::Status status,
                     const core::Bytes& frame);
  // Schedules a failed completion of stream `id` of `node` at `at`.
  void fail_stream(NodeId node, uint64_t id, Instant at, core::Errc code, const char* why);
  void arm_timer(NodeId id);
  void fire_timer(NodeId id, uint32_t gen);
  // Keeps `fn` for resume() of the paused node `id`.
  void defer(NodeId id, std::function<void()> fn);
  void trace(Kind kind, NodeId a, NodeId b, std::span<const uint8_t> data = {});
  // (Re)creates the core of `id` from its config, with a seed derived from its epoch.
  void start_core(NodeId id);

  Options opts_;
  std::shared_ptr<const core::Codec> codec_;
  EventQueue queue_;
  NetworkModel net_;
  TraceHash trace_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<MembershipEvent> events_;
  core::Bytes rx_;  // receive buffer of deliver_packet
  PacketTap tap_;
  EventTap event_tap_;
  NotificationTap notification_tap_;
};

}  // namespace memberlist::sim
