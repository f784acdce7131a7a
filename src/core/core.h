// The memberlist protocol as a deterministic state machine (sans-IO, in the style of
// quinn-proto and foca). Inputs: packets, stream messages, stream completions, timeouts and
// commands, each with the current time. Outputs are queued and drained with poll_*():
// datagrams to send, streams to open, node events, ping results, and the next deadline.
// Same inputs + same seed => same outputs. Not thread-safe: the driver serializes calls.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/codec.h"
#include "core/config.h"
#include "core/metrics.h"

namespace memberlist::core {

// One datagram for the driver to send (unframed: the driver adds encryption/labels).
struct Transmit {
  Address to;
  Bytes payload;
};

// One outgoing stream: connect to `to`, write `payload` as one framed message, and if
// `expect_reply` read one framed message back; then call handle_stream_response(id, ...).
// Give up at `deadline`.
struct StreamRequest {
  uint64_t id = 0;
  Address to;
  Bytes payload;
  bool expect_reply = false;
  Instant deadline{};
};

enum class EventType : uint8_t { Join = 0, Leave = 1, Update = 2 };

struct Event {
  EventType type = EventType::Join;
  NodeInfo node;  // a copy, with metadata and state
};

// Outcome of a ping() command.
struct PingResult {
  uint64_t id = 0;
  bool ok = false;
  Duration rtt{};
};

// ---- notifications: asynchronous news for the application, drained with poll_notification().

// A user message (best-effort datagram, reliable stream, or a Delegate::get_broadcasts()
// message piggybacked by a peer). Empty messages are not reported, as in the reference.
struct UserMessage {
  Bytes payload;
  Address from;  // the datagram's or stream's source address
};

// An alive message for a known name with another address was ignored (the reference's
// ConflictDelegate): `existing` is what we have, `other` what the message claimed.
struct Conflict {
  NodeInfo existing;
  NodeInfo other;
};

// A probe got its direct UDP ack (the reference's PingDelegate.NotifyPingComplete): the
// round-trip time and the payload the target's Delegate::ack_payload() attached. Only
// emitted when Config::delegate is set (one per probe otherwise piles up in drivers that
// never poll notifications, like the simulator).
struct PingComplete {
  NodeInfo node;
  Duration rtt{};
  Bytes payload;
};

enum class BroadcastOutcome : uint8_t {
  Delivered = 0,  // fully retransmitted by this node (receivers keep spreading it)
  Replaced = 1,   // a newer broadcast with the same name was queued before that
  Dropped = 2,    // removed by prune_broadcasts() / reset_broadcasts()
  // Broadcast repair on (Config::max_repair_broadcasts): fully retransmitted, then offered to
  // push/pull repair for its whole horizon (two push/pull intervals). A fully retransmitted
  // broadcast whose repair was cut short (pushed out by newer ones, reset_broadcasts()) ends
  // Delivered instead.
  Settled = 3,
};

// The end of a broadcast queued here with queue_broadcast().
struct BroadcastDone {
  uint64_t id = 0;
  BroadcastOutcome outcome = BroadcastOutcome::Delivered;
};

// A broadcast queued on another node with queue_broadcast(); each is delivered once per
// node (never to its origin). `name` is empty for unique broadcasts.
struct BroadcastReceived {
  std::string origin;
  std::string name;
  Bytes payload;
};

using Notification = std::variant<UserMessage, Conflict, PingComplete, BroadcastDone, BroadcastReceived>;

struct Stats {
  size_t alive = 0, suspect = 0, dead = 0, left = 0;
  uint64_t probes = 0, probe_failures = 0, suspicions = 0, refutes = 0;
  uint64_t degraded_probes = 0, degraded_timeouts = 0;
  uint64_t bad_messages = 0;  // malformed or unexpected input dropped
  uint64_t conflicts = 0;     // alive messages ignored: same name, another address
  size_t broadcast_queue = 0;
  size_t broadcast_origins = 0;  // origins remembered for de-duplication of broadcasts
};

// What a pending timer of the core will do when it fires (Core::pending_timers()).
enum class TimerKind : uint8_t {
  ProbeTick = 0,        // the next probe round
  PushPullStagger = 1,  // the end of the start-up stagger; push/pull ticks follow
  PushPullTick = 2,     // the next periodic push/pull
  QueueCheck = 3,       // the next sample of the queue and member gauges
  GossipTick = 4,       // the next gossip round
  ProbeTimeout = 5,     // no direct ack for probe `seq` within probe_timeout: go indirect
  ProbeReap = 6,        // the end of probe `seq`'s wait for acks (its scaled interval)
  ProbeTcpWait = 7,     // the last wait for probe `seq`'s TCP fallback ping to report
  Suspicion = 8,        // the suspicion of `node` expires: it is declared dead
  IndirectPingTimeout = 9,  // as a helper of an indirect probe, no ack for our ping `seq`
  PingTimeout = 10,     // no ack for ping() `seq` to `node`
  JoinPushPull = 11,    // one push/pull of the post-join burst
  ReconnectTick = 12,   // the next attempt to reach a dead member or a seed
  ReconnectPingTimeout = 13,  // no ack for reconnect ping `seq`: that member stays dead
  BroadcastSettle = 14,  // broadcast news has settled: one extra push/pull to repair misses
};

struct TimerInfo {
  TimerKind kind = TimerKind::ProbeTick;
  Instant deadline{};
  uint32_t seq = 0;  // the ack sequence number of probe and ping timers, else 0
  std::string node;  // Suspicion and PingTimeout, else empty
};

class Core {
 public:
  // `config` must validate; the local node becomes Alive (incarnation 1) and a Join event for
  // ourselves is queued, as in the reference. If config.delegate provides node_meta(), it
  // replaces config.meta; see start_status().
  Core(Config config, std::shared_ptr<const Codec> codec, Instant now);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // ---- inputs -------------------------------------------------------------------------
  // A datagram payload (already unframed) from `from`. Malformed input is counted and dropped.
  void handle_packet(const Address& from, std::span<const uint8_t> data, Instant now);
  // An incoming stream message (push/pull, TCP ping, reliable user message).
  // Returns the reply to write back, if any (an ErrResp for bad requests).
  std::optional<Bytes> handle_stream(const Address& from, std::span<const uint8_t> data,
                                     Instant now);
  // Completion of a StreamRequest. `transport` is not ok if the connection failed or timed
  // out (then `reply` is empty). Returns the outcome of the exchange (e.g. of a join).
  Status handle_stream_response(uint64_t id, const Status& transport,
                                std::span<const uint8_t> reply, Instant now);
  // Fires every timer due at `now`.
  void handle_timeout(Instant now);

  // ---- commands -----------------------------------------------------------------------
  // Starts a join push/pull with `to`; its result is what handle_stream_response returns
  // for the returned stream id.
  uint64_t join(const Address& to, Instant now);
  // Marks ourselves Left and broadcasts it; leave_propagated() tells when it has been
  // fully retransmitted (or there is nobody to tell).
  Status leave(Instant now);
  bool leave_propagated() const;
  bool has_left() const;
  // For simulators and tests at scale: adds members known out of band, as in a cluster
  // that converged long ago -- each unknown name becomes Alive (with the given address,
  // metadata, incarnation >= 1 and version) without broadcasts, events or hooks; known
  // names and our own are left alone. Membership news still queued (our own bootstrap
  // alive) is dropped as long since sent. Returns how many were added.
  size_t seed_members(const std::vector<NodeInfo>& members, Instant now);
  // Pings a node once by UDP; the result comes out of poll_ping_result() with the id.
  uint64_t ping(const std::string& name, const Address& addr, Instant now);

  // ---- application data ---------------------------------------------------------------
  // Not ok if the constructor had to refuse the metadata (Delegate::node_meta() over
  // meta_max_size, or metadata too large to gossip in udp_buffer_size); the node then
  // started with config.meta. A driver should fail its creation with this status.
  const Status& start_status() const;

  // New metadata for the local node (the reference's UpdateNode): bumps our incarnation and
  // broadcasts an alive message; an Update event is queued for ourselves. Refused with
  // Errc::too_large over meta_max_size or if the alive message would not fit a datagram.
  // `token`, if given, receives an id for broadcast_finished().
  Status update_meta(Bytes meta, Instant now, uint64_t* token = nullptr);
  // The same with the metadata from Delegate::node_meta() (current metadata if none).
  Status update_node(Instant now, uint64_t* token = nullptr);
  // True once the alive broadcast of update_meta()/update_node() has been fully
  // retransmitted or superseded, or at once if no other live node was known then.
  bool broadcast_finished(uint64_t token) const;

  // One datagram holding `payload` as a user message, without piggybacked broadcasts.
  // Refused with Errc::too_large if the encoded message exceeds max_best_effort_size.
  Status send_best_effort(const Address& to, Bytes payload, Instant now);
  // A one-way stream carrying `payload` (a StreamRequest with expect_reply = false); its
  // transport outcome is what handle_stream_response() returns for the id. Returns 0 and
  // sets `status` (Errc::too_large over max_user_msg_size) if refused.
  uint64_t send_reliable(const Address& to, Bytes payload, Instant now, Status& status);
  // By member name (Alive or Suspect); Errc::not_found otherwise.
  Status send_best_effort(const std::string& node, Bytes payload, Instant now);
  uint64_t send_reliable(const std::string& node, Bytes payload, Instant now, Status& status);

  // An application broadcast to every node, spread epidemically and delivered once per node
  // as a BroadcastReceived notification. `name` empty = unique; otherwise it replaces a
  // pending broadcast with the same name from this node, here and on every node it reached
  // (nodes that already delivered the older one deliver the newer one too; nodes that get
  // the newer first never deliver the older). `id` receives the id of its BroadcastDone.
  // Refused with Errc::too_large if it does not fit one datagram with the piggyback budget
  // (use send_reliable for bulk data), Errc::invalid for a name over 255 bytes or with NUL.
  Status queue_broadcast(std::string name, Bytes payload, uint64_t& id, Instant now);
  // Application broadcasts waiting in this node's queue (ours and forwarded ones).
  size_t num_queued_broadcasts() const;
  // Drop queued broadcasts (BroadcastDone Dropped): the most transmitted first until at most
  // `max_retain` remain; or all of them (e.g. at shutdown). Forwarded broadcasts of other
  // nodes are dropped too (without notification).
  void prune_broadcasts(size_t max_retain);
  void reset_broadcasts();

  // The registry the core records into; the driver adds transport metrics here.
  Metrics& metrics();
  const Metrics& metrics() const;

  // ---- queries ------------------------------------------------------------------------
  std::vector<NodeInfo> members() const;  // Alive and Suspect, self included
  size_t num_members() const;
  std::vector<NodeInfo> all_nodes() const;  // every state, until reaped
  NodeInfo local_node() const;
  // The protocol maximum (Vsn::pmax) of the member at `to`, 0 if none is known there
  // (a driver decides from it whether the peer understands a datagram checksum).
  uint8_t protocol_max_at(const Address& to) const;
  int health_score() const;
  Stats stats() const;
  const Config& config() const;

  // ---- outputs ------------------------------------------------------------------------
  std::optional<Instant> poll_timeout() const;
  // The earliest deadline that times the protocol: every timer but the periodic probe,
  // push/pull and queue-check ticks. Their phase is random anyway and a late one delays
  // nothing else (the next probe tick is set from the last deadline, not from when it ran;
  // push/pull and queue checks are many seconds apart), so a runtime may run them a little
  // late to serve many nodes in one wake-up; the others (probe and suspicion timeouts,
  // gossip rounds) should fire on time. nullopt, or a deadline at or after poll_timeout().
  std::optional<Instant> poll_exact_timeout() const;
  std::optional<Transmit> poll_transmit();
  std::optional<StreamRequest> poll_stream();
  std::optional<Event> poll_event();
  std::optional<PingResult> poll_ping_result();
  std::optional<Notification> poll_notification();

  // ---- diagnostics --------------------------------------------------------------------
  // Every pending timer, earliest first (ties in the order they fire), for tests and
  // debugging.
  std::vector<TimerInfo> pending_timers() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memberlist::core
