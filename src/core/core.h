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
#include <vector>

#include "core/codec.h"
#include "core/config.h"

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

struct Stats {
  size_t alive = 0, suspect = 0, dead = 0, left = 0;
  uint64_t probes = 0, probe_failures = 0, suspicions = 0, refutes = 0;
  uint64_t degraded_probes = 0, degraded_timeouts = 0;
  uint64_t bad_messages = 0;  // malformed or unexpected input dropped
  uint64_t conflicts = 0;     // alive messages ignored: same name, another address
  size_t broadcast_queue = 0;
};

class Core {
 public:
  // `config` must validate; the local node becomes Alive (incarnation 1) and a Join event for
  // ourselves is queued, as in the reference.
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
  // Pings a node once by UDP; the result comes out of poll_ping_result() with the id.
  uint64_t ping(const std::string& name, const Address& addr, Instant now);

  // ---- queries ------------------------------------------------------------------------
  std::vector<NodeInfo> members() const;  // Alive and Suspect, self included
  size_t num_members() const;
  std::vector<NodeInfo> all_nodes() const;  // every state, until reaped
  NodeInfo local_node() const;
  int health_score() const;
  Stats stats() const;
  const Config& config() const;

  // ---- outputs ------------------------------------------------------------------------
  std::optional<Instant> poll_timeout() const;
  std::optional<Transmit> poll_transmit();
  std::optional<StreamRequest> poll_stream();
  std::optional<Event> poll_event();
  std::optional<PingResult> poll_ping_result();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memberlist::core
