// The Boost.Asio runtime: a thread pool shared by many memberlists, and Node, which owns
// one core::Core, its UDP and TCP sockets on one port, and its timer, and drives the core
// exactly as the simulator does. Host callbacks are queued (bounded) and run on the
// runtime's callback threads, one at a time per node, never inside the core and never on a
// thread the protocol needs (src/runtime/state.h has the whole threading model).
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/core.h"
#include "runtime/delivery.h"
#include "runtime/transport.h"
#include "wire/wire.h"

namespace memberlist::runtime {

using core::Duration;
using core::Status;

// A fixed pool of threads running one io_context (streams), as many threads that read the
// nodes' UDP sockets and run their timers (Tickers), and as many that run the host's
// callbacks (so that a callback that blocks never holds up the protocol); share it between
// many nodes. Nodes fill the first ticker up to `nodes_per_ticker` (nodes that share a thread
// exchange probes in one wake-up), then go to the ticker with the fewest.
class Runtime {
 public:
  static constexpr size_t kNodesPerTicker = 256;
  explicit Runtime(unsigned threads, size_t nodes_per_ticker = kNodesPerTicker);
  ~Runtime();  // stops and joins the threads; every Node must be destroyed first
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  struct Impl;
  Impl& impl() { return *impl_; }
 private:
  std::unique_ptr<Impl> impl_;
};

struct Options {
  core::Config core = core::Config::lan();
  // IPv4 or IPv6 literal. "::" binds dual-stack (IPv4 peers reach it v4-mapped).
  std::string bind_addr = "0.0.0.0";
  uint16_t bind_port = 7946;           // 0: the kernel picks; advertise_address() reports it
  // Empty: derived from the bind address. A specific bind address is advertised as is; for
  // "0.0.0.0" / "::" the first private IPv4 address (10/8, 172.16/12, 192.168/16,
  // 100.64/10) of an interface that is up and not loopback, then (for "::") the first
  // unique-local IPv6 address (fc00::/7), else 127.0.0.1.
  std::string advertise_addr;
  uint16_t advertise_port = 0;         // 0: the bound port
  // The network (transport.h). Empty: UDP and TCP sockets bound as above. Otherwise the
  // node runs on the transport this makes (bind_addr and bind_port are then unused), and
  // advertises its local_address() unless advertise_addr says otherwise.
  TransportFactory transport;
  // Inbound datagrams received but not yet handed to the core (the reference's
  // HandoffQueueDepth, one queue here): the socket reader queues them, a second executor
  // feeds them to the core; beyond this depth they are dropped and counted
  // (RuntimeStats::handoff_dropped). At least 1.
  size_t handoff_queue_depth = 1024;
  // Label, CRC, compression, encryption, and the bounds on stream and decompressed sizes.
  // The core's udp_buffer_size budget is reduced by wire::packet_overhead, always counting
  // encryption (a key may be added at run time), so that sealed datagrams stay within
  // udp_buffer_size; max_best_effort_size is lowered so that a sealed best-effort message
  // fits one IPv4 datagram (65507 bytes).
  wire::FramingOptions framing;
  // The protocol on the wire: ours (native) or hashicorp/memberlist's, to be one cluster with
  // Go memberlist nodes (docs/hashicorp-wire.md says what differs in that mode). Every node
  // of a cluster must use the same one.
  wire::WireFormat wire_format = wire::WireFormat::native;
  // CIDR ranges ("10.0.0.0/8", "fd00::/8") from which packets, streams and node addresses
  // in alive messages are accepted; empty accepts everyone. Others are refused with a log
  // line and a counter (RuntimeStats::refused_sources for packets and streams; the core's
  // memberlist.node.rejected for alive messages). A bad entry fails create() naming it.
  std::vector<std::string> allowed_cidrs;
  // Inbound streams with a body over 1 KiB (push/pulls, reliable messages) read at once; more
  // are closed after their header (the reference's 128, which it applies to push/pulls).
  // TCP pings and other small messages are not counted: refusing a fallback ping because
  // bulk streams hold the slots would get a healthy node suspected.
  size_t max_concurrent_streams = 128;
  // Inbound connections open at once, whatever they carry; more are closed at once.
  size_t max_inbound_connections = 512;
  // Of those, from one IP address: one source cannot hold every slot and lock out the joins,
  // push/pulls and fallback pings of the others.
  size_t max_inbound_connections_per_source = 32;
  // Stream bodies over 1 KiB being read at once, in bytes, as their headers declare them (a
  // reservation: stalled senders cannot make the node hold more). A stream that would go
  // over it is closed after its header. At least max_stream_message would be sensible.
  size_t max_inbound_stream_bytes = 64u << 20;
  // Host callbacks (events, notifications, metric samples) queued for delivery; beyond it new
  // ones are dropped and counted (RuntimeStats::callbacks_dropped). Log lines have their own
  // bound, so that a log flood cannot crowd out membership events.
  size_t max_queued_callbacks = 65536;
  size_t max_queued_log_lines = 1024;
};

// Transport counters of one node: input the core never saw, output it never sent.
struct RuntimeStats {
  static constexpr size_t kFrameErrorKinds = static_cast<size_t>(wire::FrameError::crypto_error) + 1;
  // Datagrams and stream messages the framing refused (opening or sealing), by kind.
  std::array<uint64_t, kFrameErrorKinds> frame_errors{};
  uint64_t dropped_sends = 0;    // datagrams not sent (kernel buffer full, address family)
  // Inbound streams closed at once: max_inbound_connections(_per_source),
  // max_concurrent_streams or max_inbound_stream_bytes reached.
  uint64_t refused_streams = 0;
  uint64_t refused_sources = 0;  // datagrams and streams from outside allowed_cidrs
  uint64_t handoff_dropped = 0;  // datagrams dropped: handoff queue full
  uint64_t callbacks_dropped = 0;  // events, notifications, samples dropped: queue full
  uint64_t log_lines_dropped = 0;  // log lines dropped: queue full
  size_t callbacks_queued = 0;     // callbacks and log lines waiting for delivery now
  uint64_t frame_error(wire::FrameError e) const { return frame_errors[static_cast<size_t>(e)]; }
};

// Run one at a time per node, in order, on the runtime's callback threads (never inside the
// core). A callback that throws is reported as a log line. At shutdown the callbacks still
// queued are discarded, except membership events and broadcast outcomes.
struct Callbacks {
  std::function<void(const core::Event&)> on_event;
  std::function<void(core::LogLevel, const std::string&)> on_log;
  // User messages, broadcasts, conflicts, ping completions (core::Notification), in the same
  // queue as on_event, after the events drained with them.
  std::function<void(const core::Notification&)> on_notification;
  // Every metric sample as the core records it (core::Metrics listener), in the same queue,
  // after the events drained with it.
  std::function<void(const core::MetricSample&)> on_metric;
  // Least severe level handed to on_log; lines below it are not even formatted. A value
  // above Error (the C API's ML_LOG_OFF = 5) silences everything. Without on_log, lines of
  // Warn and above go to stderr.
  core::LogLevel log_level = core::LogLevel::Info;
  // The host pulls instead (Node::poll_events, Node::event_fd): events, notifications and log
  // lines go to the same bounded queue but no function above is called (they may be empty).
  bool pull = false;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  // Binds the sockets and starts the protocol. On error returns nullptr and sets `status`.
  static std::shared_ptr<Node> create(std::shared_ptr<Runtime> runtime, Options options,
                                      Callbacks callbacks, Status& status);
  ~Node();

  // Each entry: optional "name/" prefix, then host, host:port or [v6]:port; host may be a DNS
  // name. Blocks until every address was tried; returns how many were reached, and an error
  // only if none was. The default port is bind_port (or the bound port if bind_port is 0;
  // with Options::transport, the advertised port).
  // Errc::state from the node's own callback, after shutdown, or after leave().
  int join(const std::vector<std::string>& addresses, Status& status);
  std::vector<core::NodeInfo> members() const;
  size_t num_members() const;
  core::NodeInfo local_node() const;
  int health_score() const;
  // The core's counters; bad_messages also counts what the framing refused.
  core::Stats stats() const;
  RuntimeStats runtime_stats() const;
  // The core's metrics registry, with the transport metrics (memberlist.udp.sent/received
  // in bytes, memberlist.tcp.accept/connect counts, memberlist.tcp.sent/received bytes)
  // added.
  std::vector<core::MetricValue> metrics() const;
  std::string prometheus() const;
  core::Address advertise_address() const;
  // One UDP ping of a member (Errc::not_found if `name` is not in members()); RTT or a
  // timeout error.
  Status ping(const std::string& name, Duration& rtt);
  // Broadcasts our leave and waits until it has propagated and the datagrams carrying it
  // were handed to the kernel, or `timeout` passed (Errc::timeout; the leave still goes on).
  // A timeout <= 0 waits as long as it takes.
  Status leave(Duration timeout);
  // Stops sockets and timers without leaving; idempotent. Datagrams already queued for
  // sending (a leave's last retransmissions) are sent first (waits at most 2 s), and queued
  // broadcasts end with BroadcastDone Dropped. Of the callbacks still queued, membership
  // events and broadcast outcomes are delivered and the rest discarded; waits for the
  // running one: no callback starts after it returns. Queries (members(), ...) keep
  // answering from the last state; commands return Errc::state. Needs a free pool thread:
  // do not call it from a callback of another node on a one-thread runtime.
  Status shutdown();
  // True on the thread that is running one of this node's callbacks (blocking calls refuse).
  bool in_callback() const;
  // True on a thread inside this node's core: a Delegate hook (Options::core.delegate) is
  // running. Hooks run on whichever thread entered the core (a runtime thread, or the
  // caller's inside create, join, ping, leave, update_node, set_meta...), one at a time.
  // From there the queries and the non-blocking commands (send_best_effort,
  // queue_broadcast) work; the blocking calls return Errc::state.
  bool in_core() const;

  // ---- pull mode (Callbacks::pull) ---------------------------------------------------
  // Moves up to `max` of the oldest queued items to the end of `out`; any thread, also after
  // shutdown (what shutdown kept stays until taken). Returns how many (0 without pull mode).
  size_t poll_events(std::vector<Delivery::Item>& out, size_t max);
  // Readable exactly while items are queued; owned by the node. -1 without pull mode.
  int event_fd() const;

  // ---- application data -------------------------------------------------------------
  // Sets the local metadata and announces it; waits until the news has propagated (and its
  // datagrams were sent) or `timeout` passed (Errc::timeout; the update still goes on;
  // <= 0 waits as long as it takes). Errc::too_large over the limit. update_node() re-asks
  // the delegate's node_meta hook instead. Errc::state from the node's own callback.
  Status update_meta(core::Bytes meta, Duration timeout);
  Status update_node(Duration timeout);
  // One datagram to a member (Errc::not_found if unknown, Errc::too_large if it cannot fit).
  // Non-blocking: works from callbacks and delegate hooks too.
  Status send_best_effort(const std::string& node, core::Bytes msg);
  // Over a stream to a member; returns once written (or failed: Errc::io / timeout).
  // Errc::too_large over max_user_msg_size; Errc::state from the node's own callback.
  Status send_reliable(const std::string& node, core::Bytes msg);
  // One datagram to "host:port" (IPv6 as "[addr]:port"; a DNS name is resolved, which
  // blocks: use IP literals from callbacks).
  Status send_to_address(const std::string& address, core::Bytes msg);
  // Queues an epidemic broadcast (name empty = unique); `id` comes back in BroadcastDone.
  // Non-blocking. At shutdown the broadcasts still queued end with BroadcastDone Dropped.
  Status queue_broadcast(std::string name, core::Bytes payload, uint64_t& id);
  size_t num_queued_broadcasts() const;

  // ---- security at run time ---------------------------------------------------------
  // Keyring operations on the node's keyring (one is created on first add if the options
  // had none; a keyring given in the options is used, and changed, as is). Removing the
  // primary key is refused (Errc::rejected); using an absent key is Errc::not_found; bad
  // key sizes Errc::invalid. Each takes effect for the next packet and stream.
  // To switch a running plaintext cluster to encryption: set_gossip_verify(false, false)
  // and keyring_add() on every node, then set_gossip_verify(false, true) on every node,
  // then set_gossip_verify(true, true) on every node.
  Status keyring_add(std::span<const uint8_t> key);
  Status keyring_use(std::span<const uint8_t> key);
  Status keyring_remove(std::span<const uint8_t> key);
  std::vector<core::Bytes> keyring_keys() const;  // primary first
  // FramingOptions::verify_incoming / verify_outgoing, for subsequent packets and streams.
  Status set_gossip_verify(bool incoming, bool outgoing);

  struct Impl;
 private:
  Node();
  std::unique_ptr<Impl> impl_;
};

// Parses one join entry ("name/host:port", "[::1]:7946", "host") into name, host and port.
Status parse_join_address(const std::string& entry, uint16_t default_port, std::string& name,
                          std::string& host, uint16_t& port);

}  // namespace memberlist::runtime
