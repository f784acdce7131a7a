// State: everything one running Node holds, shared by the runtime's files, each of which
// serves one concern:
//   core_access.h  the one way into the core (lock + "inside the core" marker)
//   datagrams.cpp  UDP: reading, the handoff queue, sealing and sending; the timer tick
//   streams.cpp    TCP: accepting, inbound and outbound streams
//   delivery.h     host callbacks, queued and run off the protocol's path
//   lifecycle.cpp  start (sockets, logger, core) and shutdown
//   node.cpp       the public Node calls
//
// Threading model
// - One of the runtime's Ticker threads (runtime_impl.h) reads this node's UDP socket and
//   wakes for its deadlines. It opens each datagram and hands it to the core at once if
//   nothing is queued before it, the lock is free and the node has no Delegate (whose hooks
//   may block), else to a bounded handoff queue (inbox) that a strand (`proc`) feeds to the
//   core; due timers are run the same way. So the ticker never waits for a node's lock.
// - Datagrams are sealed and sent by whichever thread drained them from the core, right
//   after it leaves the core.
// - The TCP acceptor and streams of a node live on one strand (`io`); stream completions
//   enter the core from there.
// - The core is entered only through CoreAccess. Every entry is followed by drain() (still
//   inside: collects datagrams, streams, ping results and the next deadline, and queues the
//   news for the host) and dispatch() (after leaving: wakes blocked calls, sends datagrams,
//   starts streams).
// - Host callbacks (events, notifications, metric samples, log lines) go through Delivery:
//   a bounded queue run on the runtime's callback threads, one at a time per node, never
//   inside the core and never on a thread the protocol needs.
// - Every handler owns a reference to the State and an entry in `pending` (an Op), so
//   shutdown() can wait until no handler of this node is queued or running.
#pragma once

#include <spdlog/logger.h>

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_set>

#include "runtime/address.h"
#include "runtime/core_access.h"
#include "runtime/delivery.h"
#include "runtime/node.h"
#include "runtime/runtime_impl.h"
#include "runtime/transport.h"
#include "wire/hashicorp/pipeline.h"

namespace memberlist::runtime {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using core::Errc;
using core::Instant;
using error_code = boost::system::error_code;

// Largest UDP payload that fits one IPv4 datagram (and so any datagram we send).
inline constexpr size_t kMaxDatagram = 65507;
// Stream bodies up to this size (TCP pings, small user messages) are not counted against
// max_concurrent_streams and max_inbound_stream_bytes: they cost little, and a TCP fallback
// ping refused because reliable messages or push/pulls hold every slot would get a healthy
// node suspected.
inline constexpr size_t kSmallStream = 1024;
// How long join()/ping()/send_reliable() wait beyond the core's own deadlines.
inline constexpr Duration kWaitSlack = std::chrono::seconds(5);

// The n-th line of a kind at `first` for the 1st, 2nd, 4th, 8th..., the others at debug: a
// flood of refusals cannot flood the log (core::keeps_level).
inline spdlog::level::level_enum thinned(uint64_t n, spdlog::level::level_enum first) {
  return core::keeps_level(n) ? first : spdlog::level::debug;
}

struct State;

// Keeps the State alive and counts as one pending handler until destroyed.
struct OpToken {
  std::shared_ptr<State> s;
  ~OpToken();
};
using Op = std::shared_ptr<OpToken>;

// A TCP connection in progress; shutdown() aborts every registered one.
struct Conn {
  virtual ~Conn() = default;
  virtual void abort() = 0;
};

// What one entry into the core asked for, collected inside it and acted on after it.
struct Outputs {
  std::vector<core::Transmit> transmits;
  std::vector<core::StreamRequest> streams;
  // Hashicorp mode: per transmit, whether its peer takes a CRC (protocol max >= 5).
  std::vector<bool> crc;
  uint64_t batch = 0;  // the send batch the transmits belong to (SendTracker)
};

// A datagram (opened: the codec's bytes) waiting in the handoff queue.
struct Inbound {
  core::Address from;
  core::Bytes data;
};

// Which batches of datagrams drained from the core are still being sent, so that a caller
// waits for the datagrams that carry its news, not for a count that others' sends also move.
class SendTracker {
 public:
  // Inside the core: a new batch (its number), or 0 for none.
  uint64_t open() {
    std::lock_guard<std::mutex> l(mu_);
    in_flight_.insert(++last_);
    return last_;
  }
  void done(uint64_t batch) {
    if (batch == 0) return;
    std::lock_guard<std::mutex> l(mu_);
    in_flight_.erase(batch);
    cv_.notify_all();
  }
  // The newest batch opened so far.
  uint64_t last() {
    std::lock_guard<std::mutex> l(mu_);
    return last_;
  }
  // Waits until every batch up to `batch` was sent (or `stop()`); false at `limit`.
  template <class Stop>
  bool wait(uint64_t batch, std::optional<std::chrono::steady_clock::time_point> limit, Stop stop) {
    std::unique_lock<std::mutex> l(mu_);
    auto sent = [&] { return stop() || in_flight_.empty() || *in_flight_.begin() > batch; };
    if (!limit) {
      cv_.wait(l, sent);
      return true;
    }
    return cv_.wait_until(l, *limit, sent);
  }
  void wake() {
    std::lock_guard<std::mutex> l(mu_);
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<uint64_t> in_flight_;
  uint64_t last_ = 0;
};

struct State : std::enable_shared_from_this<State> {
  State(Runtime::Impl& rt, Ticker& t, Options o, Callbacks c);

  // Set only when the Node dies inside its own callback; declared first, destroyed last.
  std::shared_ptr<Runtime> keep_runtime;
  // The runtime's shared timer (outlives every node); `tick` is our entry in it.
  Ticker& ticker;
  Ticker::Entry tick;
  Options opt;
  Callbacks cb;
  Strand io;    // sockets, timers
  Strand proc;  // handoff queue -> core
  Strand cbx;   // host callbacks, on the runtime's callback threads
  const std::chrono::steady_clock::time_point epoch;
  std::shared_ptr<spdlog::logger> log;
  core::Address advertise;
  // Datagrams and timer expiries enter the core on the thread that got them (not through
  // the proc strand) when the lock is free. Not with a Delegate: its hooks are the host's
  // code, run inside the core, and may be slow.
  bool run_inline = false;
  bool started = false;  // start() succeeded: the core's news may reach the host
  detail::AllowList allow;
  Delivery delivery;
  // Hashicorp mode (Options::wire_format): the codec (the stream reader needs its
  // stream_message_size) and the encryption version our protocol version implies.
  bool hashicorp = false;
  uint8_t enc_version = 1;
  std::shared_ptr<const wire::hashicorp::HashicorpCodec> hc_codec;

  // ---- framing: read per message by every path; replaced whole on change (fr_mu) -------
  mutable std::mutex fr_mu;
  std::shared_ptr<const wire::FramingOptions> fr;
  std::shared_ptr<const wire::FramingOptions> framing() const {
    std::lock_guard<std::mutex> l(fr_mu);
    return fr;
  }
  // Replaces the options with a modified copy. Caller holds fr_mu.
  template <class Fn>
  void change_framing(Fn&& fn) {
    auto next = std::make_shared<wire::FramingOptions>(*fr);
    fn(*next);
    fr = std::move(next);
  }

  // ---- handoff queue (inbox_mu) --------------------------------------------------------
  std::mutex inbox_mu;
  std::deque<Inbound> inbox;
  bool proc_scheduled = false;

  // ---- datagrams drained from the core and not yet sent --------------------------------
  SendTracker sends;

  // ---- the network (transport.h): datagrams sent from any thread and read on the ticker's
  // thread, streams on the io strand; closed on the io strand (close_all).
  std::unique_ptr<Transport> transport;

  // ---- io strand only -----------------------------------------------------------------
  asio::steady_timer backoff_timer;
  Duration accept_backoff{};
  std::unordered_set<Conn*> conns;
  size_t inbound_conns = 0;   // inbound connections open
  std::map<std::array<uint8_t, 16>, size_t> inbound_by_source;  // the same, by source IP
  size_t large_streams = 0;   // of which reading a body over kSmallStream
  size_t large_stream_bytes = 0;  // the bodies those declared (max_inbound_stream_bytes)

  // ---- inside the core (mu, through CoreAccess only) ------------------------------------
  mutable std::mutex mu;
  std::condition_variable cv;  // join/ping results, leave progress, shutdown
  std::unique_ptr<core::Core> core;
  std::map<uint64_t, std::optional<Status>> joins;  // joins and reliable sends, by stream id
  std::map<uint64_t, std::optional<core::PingResult>> pings;
  std::vector<core::MetricSample> samples;  // for Callbacks::on_metric
  bool closed = false;
  // The core's next deadlines (any, exact) as last registered with the ticker (nullopt
  // after it fired).
  std::optional<std::pair<std::optional<Instant>, std::optional<Instant>>> timer_target;
  std::array<uint64_t, 6> flushed_drops{};
  std::array<uint64_t, RuntimeStats::kFrameErrorKinds> flushed_frame_errors{};

  // ---- handler accounting (life_mu) ---------------------------------------------------
  std::mutex life_mu;
  std::condition_variable life_cv;
  size_t pending = 0;
  bool finished = false;  // shutdown completed: nothing may start any more

  std::atomic<bool> closing{false};
  std::array<std::atomic<uint64_t>, RuntimeStats::kFrameErrorKinds> frame_errors{};
  std::atomic<uint64_t> dropped_sends{0};
  std::atomic<uint64_t> refused_streams{0};
  std::atomic<uint64_t> refused_sources{0};
  std::atomic<uint64_t> handoff_dropped{0};
  // The reference's memberlist.udp.sent/received and memberlist.tcp.accept/connect/sent.
  // Counted with atomics on the I/O paths and moved into the core's registry inside it.
  std::atomic<uint64_t> m_udp_sent{0}, m_udp_received{0}, m_tcp_accept{0}, m_tcp_connect{0},
      m_tcp_sent{0}, m_tcp_received{0};

  // Counts a refused frame; returns how many of its kind so far.
  uint64_t count(wire::FrameError e) {
    auto i = static_cast<size_t>(e);
    return i < frame_errors.size() ? ++frame_errors[i] : 0;
  }
  // Counts and logs a frame refused on input, at the reference's level (thinned).
  void refused_frame(const char* what, const std::string& from, const wire::FrameStatus& st);
  uint64_t bad_frames() const {
    uint64_t n = 0;
    for (const auto& c : frame_errors) n += c;
    return n;
  }
  Instant now() const {
    return std::chrono::duration_cast<Instant>(std::chrono::steady_clock::now() - epoch);
  }
  std::chrono::steady_clock::time_point to_time(Instant t) const { return epoch + t; }

  // A pending-handler token, or nullptr once shutdown has completed.
  Op op();
  void op_done();

  // ---- entering the core (node.cpp) ---------------------------------------------------------
  bool inside_core() const { return CoreAccess::inside(this); }
  // Collects every output of the core. Inside the core.
  void drain(Outputs& out);
  // Queues events, notifications and metric samples for the host. Inside the core.
  void drain_news();
  // Acts on what drain() collected, after leaving the core.
  void dispatch(Outputs out);
  // Runs `fn(core)` inside the core, unless shut down, then drains and dispatches; nested in a
  // hook of this core, only runs it (the outer entry drains).
  template <class Fn>
  void with_core(Fn&& fn) {
    CoreAccess access(this, mu);
    enter(access, std::forward<Fn>(fn));
  }
  template <class Fn>
  void enter(CoreAccess& access, Fn&& fn) {
    if (closed) return;
    fn(*core);
    if (access.nested()) return;
    Outputs out;
    drain(out);
    access.release();
    dispatch(std::move(out));
  }
  // A const query, inside the core.
  template <class Fn>
  auto query(Fn&& fn) const {
    CoreAccess access(this, mu);
    return fn(static_cast<const core::Core&>(*core));
  }
  // A non-blocking command: Errc::state once shut down.
  template <class Fn>
  Status command(Fn&& fn) {
    Status st = Status::error(Errc::state, "node is shut down");
    with_core([&](core::Core& c) { st = fn(c); });
    return st;
  }
  // Waits until `news_out()` (inside the core) or `timeout` (<= 0: no limit), then until the
  // datagrams drained up to then were sent, so that the news is on the wire when this returns.
  template <class Pred>
  Status wait_sent(Pred news_out, Duration timeout, const std::string& what);
  void flush_transport_metrics();  // inside the core

  // ---- host callbacks (lifecycle.cpp) -------------------------------------------------------
  bool schedule_delivery();
  void deliver_log(core::LogLevel level, std::string line) { delivery.push(LogLine{level, std::move(line)}); }

  // ---- UDP (datagrams.cpp) ------------------------------------------------------------------
  void send_datagrams(const std::vector<core::Transmit>& tx, const std::vector<bool>& crc, uint64_t batch);
  void on_readable();
  void on_datagram(std::span<const uint8_t> data, const core::Address& from);
  void handle_payload(CoreAccess& access, const Inbound& d);
  void refused_source(const char* what, const core::Address& from);
  void process_inbox();
  void on_tick();

  // ---- TCP (streams.cpp) --------------------------------------------------------------------
  void start_stream(core::StreamRequest req);
  void accept();
  void stream_done(uint64_t id, const Status& transport, std::span<const uint8_t> reply);
  std::optional<core::Bytes> inbound_message(const core::Address& from, std::span<const uint8_t> payload);

  // ---- lifecycle (lifecycle.cpp) --------------------------------------------------------------
  Status start();
  void close_all();  // io strand
  // Closes everything; with `wait`, returns once no handler of this node is queued or
  // running (and so no callback can follow).
  void shutdown(bool wait);
};

template <class Pred>
Status State::wait_sent(Pred news_out, Duration timeout, const std::string& what) {
  std::optional<std::chrono::steady_clock::time_point> limit;
  if (timeout.count() > 0) limit = std::chrono::steady_clock::now() + timeout;
  uint64_t batch = 0;
  {
    CoreAccess access(this, mu);
    auto done = [&] { return closed || news_out(); };
    if (!limit) {
      cv.wait(access.lock(), done);
    } else if (!cv.wait_until(access.lock(), *limit, done)) {
      return Status::error(Errc::timeout, "timeout waiting for " + what);
    }
    if (!news_out()) return Status::error(Errc::state, "node shut down while waiting for " + what);
    // The news went out in a batch drained up to now.
    batch = sends.last();
  }
  if (!sends.wait(batch, limit, [&] { return closing.load(); })) {
    return Status::error(Errc::timeout, "timeout waiting for " + what + " to be sent");
  }
  return Status::success();
}

}  // namespace memberlist::runtime
