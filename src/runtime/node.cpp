// Node: one core::Core driven by Boost.Asio.
//
// Threading model
// - One of the runtime's Ticker threads (runtime_impl.h; one per pool thread, nodes dealt
//   round-robin) reads this node's UDP socket (epoll) and wakes for the earliest deadline of
//   its nodes (on a 10 ms grid). It opens each datagram
//   and hands it to the core at once if nothing is queued before it, the lock is free and
//   the node has no Delegate (whose hooks may block), else to a bounded handoff queue
//   (inbox, at most Options::handoff_queue_depth, overflow dropped and counted) that a
//   strand (`proc`) feeds to the core; due timers are run the same way. So the ticker never
//   waits for a node's lock.
// - Datagrams are sent by whichever thread drained them from the core, right after it
//   unlocks (send_mu keeps close() out): an idle cluster costs one wake-up per timer slot
//   or burst of datagrams, with no hand-offs between threads.
// - The TCP acceptor and streams of a node live on one strand (`io`); stream completions
//   (rare) enter the core from there.
// - The core sits behind `mu`. Every call into it is followed by drain() (still under the
//   lock: collects datagrams, streams, ping results and the next deadline, and queues
//   events for the callback strand in the core's order) and dispatch() (after unlocking:
//   wakes blocked join/ping/leave calls and starts the I/O on the io strand).
// - Host callbacks (events, log lines) run on a second strand (`cbx`): one at a time, in
//   order, never under `mu`.
// - Every handler owns a reference to the State (directly or through its connection
//   object) and an entry in `pending`, so shutdown() can wait until no handler of this
//   node is queued or running, and a destroyed Node is never touched.
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <unordered_set>

#include "runtime/address.h"
#include "runtime/runtime_impl.h"
#include "runtime/udp_socket.h"

namespace memberlist::runtime {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using core::Errc;
using core::Instant;
using error_code = boost::system::error_code;

namespace {

constexpr size_t kUdpBufferSize = 65536;
// Largest UDP payload that fits one IPv4 datagram (and so any datagram we send).
constexpr size_t kMaxDatagram = 65507;
// Datagrams handed to the core per turn of the proc strand.
constexpr int kInboxBatch = 64;
// Datagrams read from one socket per readiness report (a ticker serves many nodes).
constexpr int kReadBatch = 16;
// How long shutdown() waits for datagrams already queued (e.g. a leave) to be sent.
constexpr Duration kFlushLimit = std::chrono::seconds(2);
// How long join()/ping() wait beyond the core's own deadlines before giving up.
constexpr Duration kWaitSlack = std::chrono::seconds(5);

// The node whose callback the current thread is running (nullptr outside callbacks).
thread_local const void* tl_callback_owner = nullptr;
// The node whose core the current thread is inside, holding its lock: a Delegate hook runs
// there, and may query (members(), ...) without locking again, but not block.
thread_local const void* tl_core_owner = nullptr;

struct InCore {
  const void* prev;
  explicit InCore(const void* s) : prev(tl_core_owner) { tl_core_owner = s; }
  ~InCore() { tl_core_owner = prev; }
};

spdlog::level::level_enum to_spd(core::LogLevel l) {
  switch (l) {
    case core::LogLevel::Trace: return spdlog::level::trace;
    case core::LogLevel::Debug: return spdlog::level::debug;
    case core::LogLevel::Info: return spdlog::level::info;
    case core::LogLevel::Warn: return spdlog::level::warn;
    case core::LogLevel::Error: return spdlog::level::err;
  }
  return spdlog::level::off;  // anything above Error (the C API's ML_LOG_OFF) silences
}

core::LogLevel from_spd(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace: return core::LogLevel::Trace;
    case spdlog::level::debug: return core::LogLevel::Debug;
    case spdlog::level::info: return core::LogLevel::Info;
    case spdlog::level::warn: return core::LogLevel::Warn;
    default: return core::LogLevel::Error;
  }
}

using Strand = asio::strand<asio::io_context::executor_type>;

}  // namespace

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

// What one call into the core asked for, collected under the lock and acted on after it.
struct Outputs {
  std::vector<core::Transmit> transmits;
  std::vector<core::StreamRequest> streams;
};

// A datagram (opened: the codec's bytes) waiting in the handoff queue.
struct Inbound {
  udp::endpoint from;
  core::Bytes data;
};

struct State : std::enable_shared_from_this<State> {
  State(asio::io_context& ioc, Ticker& t, Options o, Callbacks c)
      : ticker(t),
        opt(std::move(o)),
        cb(std::move(c)),
        io(asio::make_strand(ioc)),
        proc(asio::make_strand(ioc)),
        cbx(asio::make_strand(ioc)),
        epoch(std::chrono::steady_clock::now()),
        fr(std::make_shared<const wire::FramingOptions>(opt.framing)),
        acceptor(io),
        backoff_timer(io) {}

  // Set only when the Node dies inside its own callback; declared first, destroyed last.
  std::shared_ptr<Runtime> keep_runtime;
  // The runtime's shared timer (outlives every node); `tick` is our entry in it.
  Ticker& ticker;
  Ticker::Entry tick;
  Options opt;
  Callbacks cb;
  Strand io;    // sockets, timers
  Strand proc;  // handoff queue -> core
  Strand cbx;   // host callbacks
  const std::chrono::steady_clock::time_point epoch;
  std::shared_ptr<spdlog::logger> log;
  core::Address advertise;
  bool v6 = false;  // the UDP socket's family
  // Datagrams and timer expiries enter the core on the thread that got them (not through
  // the proc strand) when the lock is free. Not with a Delegate: its hooks are the host's
  // code, run under the lock, and may block.
  bool run_inline = false;
  asio::ip::address bind_ip;
  detail::AllowList allow;

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

  // ---- datagrams handed to the io strand and not yet sent (tx_mu) ----------------------
  // queued grows under mu (in drain), so a waiter that saw the core's news under mu knows
  // which datagrams carry it; done grows once they were handed to the kernel (or dropped).
  std::mutex tx_mu;
  std::condition_variable tx_cv;
  uint64_t tx_queued = 0, tx_done = 0;
  void tx_finished(size_t n) {
    if (n == 0) return;
    std::lock_guard<std::mutex> l(tx_mu);
    tx_done += n;
    tx_cv.notify_all();
  }

  // ---- the UDP socket: read by the ticker's thread, written by any thread, under send_mu --
  // (non-blocking; the lock only keeps close() out). rx_from: the ticker's thread only.
  std::mutex send_mu;
  UdpSocket udp_sock;
  udp::endpoint rx_from;

  // ---- io strand only -----------------------------------------------------------------
  tcp::acceptor acceptor;
  asio::steady_timer backoff_timer;
  Duration accept_backoff{};
  std::unordered_set<Conn*> conns;
  size_t inbound_streams = 0;

  // ---- under mu -----------------------------------------------------------------------
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

  void count(wire::FrameError e) {
    auto i = static_cast<size_t>(e);
    if (i < frame_errors.size()) ++frame_errors[i];
  }
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
  Op op() {
    auto self = weak_from_this().lock();
    if (!self) return nullptr;
    {
      std::lock_guard<std::mutex> l(life_mu);
      if (finished) return nullptr;
      ++pending;
    }
    auto token = std::make_shared<OpToken>();
    token->s = std::move(self);
    return token;
  }
  void op_done() {
    std::lock_guard<std::mutex> l(life_mu);
    if (--pending == 0) life_cv.notify_all();
  }

  // ---- core plumbing -------------------------------------------------------------------
  // Collects every output of the core. Caller holds mu. Events are queued for the callback
  // strand right here, so that they keep the core's order whichever thread drains.
  void drain(Outputs& out) {
    size_t before = out.transmits.size();
    while (auto t = core->poll_transmit()) out.transmits.push_back(std::move(*t));
    if (size_t n = out.transmits.size() - before) {
      std::lock_guard<std::mutex> l(tx_mu);
      tx_queued += n;
    }
    while (auto s = core->poll_stream()) out.streams.push_back(std::move(*s));
    // The registry is read by metrics()/prometheus(), which flush first; only a metric
    // listener needs the samples as they come (a registry update per datagram otherwise).
    if (cb.on_metric) flush_transport_metrics();
    drain_news();
    while (auto p = core->poll_ping_result()) {
      if (auto it = pings.find(p->id); it != pings.end()) it->second = *p;
    }
    // The periodic ticks may run late, on the ticker's coarser grid; the exact deadlines not.
    auto next = std::make_pair(core->poll_timeout(), core->poll_exact_timeout());
    if (next != timer_target) {
      timer_target = next;
      auto at = [this](const std::optional<Instant>& t) { return t ? std::optional(to_time(*t)) : std::nullopt; };
      ticker.set(tick, at(next.second), at(next.first));
    }
  }

  // Queues events, notifications and metric samples for the callback strand. Caller holds mu.
  void drain_news() {
    std::vector<core::Event> events;
    while (auto e = core->poll_event()) events.push_back(std::move(*e));
    // Drained even without a consumer: the core's queue would grow with every probe.
    std::vector<core::Notification> notes;
    while (auto n = core->poll_notification()) notes.push_back(std::move(*n));
    deliver(std::move(events), std::move(notes), std::exchange(samples, {}));
  }

  // Acts on what drain() collected: datagrams are sent right here, on the calling thread
  // (no hand-off, no wake-up of another thread); streams start on the io strand. Caller
  // does not hold mu.
  void dispatch(Outputs out) {
    cv.notify_all();
    if (!out.transmits.empty()) send_datagrams(out.transmits);
    if (out.streams.empty()) return;
    auto o = closing ? nullptr : op();
    if (!o) return;
    asio::post(io, [this, o, st = std::move(out.streams)]() mutable {
      if (closing) return;
      for (auto& s : st) start_stream(std::move(s));
    });
  }

  // A const query: under the lock, or directly from a Delegate hook of this node's core
  // (which already holds it).
  template <class Fn>
  auto query(Fn&& fn) const {
    if (tl_core_owner == this) return fn(*core);
    std::lock_guard<std::mutex> l(mu);
    return fn(*core);
  }

  // Runs `fn(core)` under the lock, unless shut down, then drains and dispatches.
  template <class Fn>
  void with_core(Fn&& fn) {
    std::unique_lock<std::mutex> l(mu);
    with_core_locked(std::move(l), std::forward<Fn>(fn));
  }
  // The same with the lock already taken (`l` owns mu); unlocks before dispatching.
  template <class Fn>
  void with_core_locked(std::unique_lock<std::mutex> l, Fn&& fn) {
    Outputs out;
    if (closed) return;
    {
      InCore in(this);
      fn(*core);
    }
    drain(out);
    l.unlock();
    dispatch(std::move(out));
  }

  // ---- callbacks -----------------------------------------------------------------------
  // Posting only queues: the callbacks themselves run on cbx, never under mu.
  struct CallbackScope {
    const void* prev;
    explicit CallbackScope(const void* s) : prev(tl_callback_owner) { tl_callback_owner = s; }
    ~CallbackScope() { tl_callback_owner = prev; }
  };

  void deliver(std::vector<core::Event> events, std::vector<core::Notification> notes,
               std::vector<core::MetricSample> metric_samples) {
    if (!cb.on_event) events.clear();
    if (!cb.on_notification) notes.clear();
    if (!cb.on_metric) metric_samples.clear();
    if (events.empty() && notes.empty() && metric_samples.empty()) return;
    auto o = op();
    if (!o) return;
    asio::post(cbx, [this, o, events = std::move(events), notes = std::move(notes),
                     ms = std::move(metric_samples)] {
      CallbackScope scope(this);
      for (const auto& e : events) guarded("event", [&] { cb.on_event(e); });
      for (const auto& n : notes) guarded("notification", [&] { cb.on_notification(n); });
      for (const auto& m : ms) guarded("metric", [&] { cb.on_metric(m); });
    });
  }

  template <class Fn>
  void guarded(const char* what, Fn&& fn) {
    try {
      fn();
    } catch (const std::exception& ex) {
      log->warn("{} callback threw: {}", what, ex.what());
    } catch (...) {
      log->warn("{} callback threw", what);
    }
  }

  // ---- transport metrics ---------------------------------------------------------------
  // The reference's memberlist.udp.sent/received and memberlist.tcp.accept/connect/sent.
  // Counted with atomics on the I/O paths and moved into the core's (unsynchronized)
  // registry under mu.
  std::atomic<uint64_t> m_udp_sent{0}, m_udp_received{0}, m_tcp_accept{0}, m_tcp_connect{0},
      m_tcp_sent{0}, m_tcp_received{0};
  void flush_transport_metrics() {  // caller holds mu
    auto move = [&](std::atomic<uint64_t>& c, const char* name) {
      if (auto v = c.exchange(0)) core->metrics().incr(name, static_cast<double>(v));
    };
    move(m_udp_sent, "memberlist.udp.sent");
    move(m_udp_received, "memberlist.udp.received");
    move(m_tcp_accept, "memberlist.tcp.accept");
    move(m_tcp_connect, "memberlist.tcp.connect");
    move(m_tcp_sent, "memberlist.tcp.sent");
    move(m_tcp_received, "memberlist.tcp.received");
    // The runtime's own drop counters (cumulative, also in RuntimeStats): what they gained
    // since the last flush.
    auto gained = [&](const std::atomic<uint64_t>& c, uint64_t& flushed, const char* name) {
      const uint64_t v = c.load();
      if (v > flushed) core->metrics().incr(name, static_cast<double>(v - flushed));
      flushed = v;
    };
    gained(dropped_sends, flushed_drops[0], "memberlist.udp.send_dropped");
    gained(handoff_dropped, flushed_drops[1], "memberlist.udp.handoff_dropped");
    gained(refused_streams, flushed_drops[2], "memberlist.tcp.refused_streams");
    gained(refused_sources, flushed_drops[3], "memberlist.refused_sources");
  }
  std::array<uint64_t, 4> flushed_drops{};  // under mu

  void deliver_log(core::LogLevel level, std::string line) {
    auto o = op();
    if (!o) return;
    asio::post(cbx, [this, o, level, line = std::move(line)] {
      CallbackScope scope(this);
      try {
        cb.on_log(level, line);
      } catch (...) {
        // Nowhere left to report a failing log sink.
      }
    });
  }

  // ---- UDP ------------------------------------------------------------------------------
  // Seals and sends datagrams from the calling thread; once closing, they are dropped.
  void send_datagrams(const std::vector<core::Transmit>& tx) {
    auto fr_now = framing();
    core::Bytes sealed;
    {
      std::lock_guard<std::mutex> l(send_mu);
      if (!closing) {
        for (const auto& t : tx) send_datagram(*fr_now, t, sealed);
      }
    }
    tx_finished(tx.size());
  }

  void send_datagram(const wire::FramingOptions& f, const core::Transmit& t, core::Bytes& sealed) {
    udp::endpoint ep;
    if (!detail::to_endpoint(t.to, v6, ep)) {
      log->debug("cannot send to {} from an IPv4 socket", t.to.to_string());
      ++dropped_sends;
      return;
    }
    if (auto st = wire::seal_packet(f, t.payload, sealed); !st.ok()) {
      count(st.kind);
      log->warn("cannot seal a datagram to {}: {}", t.to.to_string(), st.message);
      return;
    }
    // The socket is non-blocking: a full send buffer drops the datagram (UDP may lose it
    // anyway) instead of stalling every node sharing this thread.
    std::error_code ec = udp_sock.send_to(sealed, ep);
    if (!ec) m_udp_sent += sealed.size();
    if (ec) {
      ++dropped_sends;
      log->debug("send to {} failed: {}", t.to.to_string(), ec.message());
    }
  }

  // Ticker thread: our socket is readable. Reads a bounded batch (epoll reports the rest
  // again); the socket is only read under send_mu, so that close() cannot race with it.
  void on_readable() {
    auto o = op();
    if (!o) return;
    // One receive buffer for every node: they are all read on this thread. Left
    // uninitialized, so that only the pages datagrams were written to become resident.
    thread_local std::unique_ptr<uint8_t[]> rx_buf(new uint8_t[kUdpBufferSize]);
    const std::span<uint8_t> rx(rx_buf.get(), kUdpBufferSize);
    for (int i = 0; i < kReadBatch; ++i) {
      ssize_t n;
      int err = 0;
      bool odd_source = false;  // an address that is neither IPv4 nor IPv6
      {
        std::lock_guard<std::mutex> l(send_mu);
        if (closing) return;
        auto len = static_cast<socklen_t>(rx_from.capacity());
        n = ::recvfrom(udp_sock.native_handle(), rx.data(), rx.size(), MSG_DONTWAIT, rx_from.data(), &len);
        if (n < 0) {
          err = errno;
        } else {
          odd_source = len > rx_from.capacity();
          if (!odd_source) rx_from.resize(len);
        }
      }
      if (odd_source) continue;
      if (n < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        // e.g. ICMP port unreachable reported on the socket: not fatal.
        log->debug("udp receive: {}", std::error_code(err, std::generic_category()).message());
        continue;
      }
      on_datagram(std::span<const uint8_t>(rx.data(), static_cast<size_t>(n)));
    }
  }

  // Ticker thread: the allow-list, opening the frame, then the core: right here when nothing
  // is queued before it and the core's lock is free (no hand-off to another thread), else
  // through the handoff queue, so that the ticker never waits for a node's lock (a slow
  // delegate hook must not stop the sockets from being read).
  void on_datagram(std::span<const uint8_t> data) {
    m_udp_received += data.size();
    if (!allow.allows(rx_from.address())) {
      refused_source("datagram", rx_from.address());
      return;
    }
    Inbound d{rx_from, {}};
    auto st = wire::open_packet(*framing(), data, d.data);
    if (!st.ok()) {
      count(st.kind);
      log->debug("dropped datagram from {}: {}", rx_from.address().to_string(), st.message);
      return;
    }
    std::unique_lock<std::mutex> q(inbox_mu);
    if (run_inline && inbox.empty() && !proc_scheduled) {
      std::unique_lock<std::mutex> l(mu, std::try_to_lock);
      if (l.owns_lock()) {
        q.unlock();
        return handle_payload(std::move(l), d);
      }
    }
    if (inbox.size() >= opt.handoff_queue_depth) {
      ++handoff_dropped;
      log->debug("handoff queue full ({}), dropping a datagram from {}", inbox.size(), rx_from.address().to_string());
      return;
    }
    inbox.push_back(std::move(d));
    if (proc_scheduled) return;
    auto o = op();
    if (!o) return;
    proc_scheduled = true;
    asio::post(proc, [this, o] { process_inbox(); });
  }

  // Hands one opened datagram to the core; `l` owns mu.
  void handle_payload(std::unique_lock<std::mutex> l, const Inbound& d) {
    auto from = detail::to_core(d.from.address(), d.from.port());
    with_core_locked(std::move(l), [&](core::Core& c) { c.handle_packet(from, d.data, now()); });
  }

  // Counted always; logged at warn for the 1st, 2nd, 4th, 8th... so a flood cannot flood
  // the log, at debug otherwise.
  void refused_source(const char* what, const asio::ip::address& from) {
    uint64_t n = ++refused_sources;
    auto level = (n & (n - 1)) == 0 ? spdlog::level::warn : spdlog::level::debug;
    log->log(level, "refused a {} from {}: not in the allowed CIDRs ({} refused so far)", what, from.to_string(), n);
  }

  // proc strand: hands the queued datagrams to the core, oldest first; a
  // batch at a time, so that timer expiries queued behind it are not starved by a flood.
  void process_inbox() {
    for (int batch = 0;; ++batch) {
      Inbound d;
      {
        std::lock_guard<std::mutex> l(inbox_mu);
        if (inbox.empty() || closing) {
          proc_scheduled = false;
          return;
        }
        if (batch == kInboxBatch) {
          if (auto o = op()) {
            asio::post(proc, [this, o] { process_inbox(); });
          } else {
            proc_scheduled = false;
          }
          return;
        }
        d = std::move(inbox.front());
        inbox.pop_front();
      }
      handle_payload(std::unique_lock<std::mutex>(mu), d);
    }
  }

  // ---- timer ----------------------------------------------------------------------------
  // Our slot of the runtime's Ticker came (a pool thread, running other nodes' slots too):
  // run the core's due timers right here if the lock is free, else on the proc strand, so
  // that one busy node does not hold up the others.
  void on_tick() {
    auto o = op();
    if (!o) return;
    auto expire = [this](core::Core& c) {
      // The ticker dropped our entry: forget it so that drain() registers the next one even
      // if it is the same deadline.
      timer_target.reset();
      c.handle_timeout(now());
    };
    if (run_inline) {
      std::unique_lock<std::mutex> l(mu, std::try_to_lock);
      if (l.owns_lock()) return with_core_locked(std::move(l), expire);
    }
    asio::post(proc, [this, o, expire] { with_core(expire); });
  }

  // ---- streams --------------------------------------------------------------------------
  void start_stream(core::StreamRequest req);
  void accept();
  void stream_done(uint64_t id, const Status& transport, std::span<const uint8_t> reply) {
    with_core([&](core::Core& c) {
      Status r = c.handle_stream_response(id, transport, reply, now());
      if (auto it = joins.find(id); it != joins.end()) it->second = std::move(r);
    });
  }
  std::optional<core::Bytes> inbound_message(const core::Address& from,
                                             std::span<const uint8_t> payload) {
    std::optional<core::Bytes> reply;
    with_core([&](core::Core& c) { reply = c.handle_stream(from, payload, now()); });
    return reply;
  }

  // A non-blocking command: from a Delegate hook of this core (the lock is held, and the
  // hook's caller drains), else under the lock followed by drain and dispatch.
  template <class Fn>
  Status command(Fn&& fn) {
    if (tl_core_owner == this) return fn(*core);
    Status st;
    Outputs out;
    {
      std::lock_guard<std::mutex> l(mu);
      if (closed) return Status::error(Errc::state, "node is shut down");
      InCore in(this);
      st = fn(*core);
      drain(out);
    }
    dispatch(std::move(out));
    return st;
  }

  // Waits until `news_out()` (under mu) or `timeout` (<= 0: no limit), then until the
  // datagrams queued up to then were handed to the kernel, so that news carried by them is
  // on the wire when this returns (a shutdown right after cannot drop it).
  template <class Pred>
  Status wait_sent(Pred news_out, Duration timeout, const std::string& what) {
    std::optional<std::chrono::steady_clock::time_point> limit;
    if (timeout.count() > 0) limit = std::chrono::steady_clock::now() + timeout;
    uint64_t target = 0;
    {
      std::unique_lock<std::mutex> l(mu);
      auto done = [&] { return closed || news_out(); };
      if (!limit) {
        cv.wait(l, done);
      } else if (!cv.wait_until(l, *limit, done)) {
        return Status::error(Errc::timeout, "timeout waiting for " + what);
      }
      if (!news_out()) return Status::error(Errc::state, "node shut down while waiting for " + what);
      std::lock_guard<std::mutex> t(tx_mu);
      target = tx_queued;
    }
    std::unique_lock<std::mutex> t(tx_mu);
    auto sent = [&] { return tx_done >= target || closing; };
    if (!limit) {
      tx_cv.wait(t, sent);
    } else if (!tx_cv.wait_until(t, *limit, sent)) {
      return Status::error(Errc::timeout, "timeout waiting for " + what + " to be sent");
    }
    return Status::success();
  }

  // ---- lifecycle ------------------------------------------------------------------------
  Status start();
  void close_all() {  // io strand
    error_code ec;
    ticker.unwatch(tick, udp_sock.native_handle());
    {
      std::lock_guard<std::mutex> l(send_mu);
      udp_sock.close();
    }
    acceptor.close(ec);
    backoff_timer.cancel();
    // abort() may unregister, so iterate over a copy.
    for (Conn* c : std::vector<Conn*>(conns.begin(), conns.end())) c->abort();
  }

  // Closes everything; with `wait`, returns once no handler of this node is queued or
  // running (and so no callback can follow).
  void shutdown(bool wait) {
    uint64_t queued = 0;
    {
      std::lock_guard<std::mutex> l(mu);
      if (!closed && core) {
        // Our pending broadcasts end here (BroadcastDone Dropped), reported before we stop.
        core->reset_broadcasts();
        drain_news();
      }
      closed = true;
      // Nothing registers again once closed (drain() runs only before).
      ticker.set(tick, std::nullopt);
      timer_target.reset();
    }
    cv.notify_all();
    {
      // Datagrams already handed to the io strand (a leave's last retransmissions) go out
      // first; bounded, since a one-thread pool busy here cannot send them.
      std::unique_lock<std::mutex> l(tx_mu);
      queued = tx_queued;
      if (wait) tx_cv.wait_for(l, kFlushLimit, [&] { return tx_done >= queued; });
    }
    if (!closing.exchange(true)) {
      {
        // Under tx_mu: a waiter between its check and its wait must not miss this.
        std::lock_guard<std::mutex> l(tx_mu);
        tx_cv.notify_all();
      }
      if (auto o = op()) asio::post(io, [this, o] { close_all(); });
    }
    if (!wait) return;
    std::unique_lock<std::mutex> l(life_mu);
    life_cv.wait(l, [&] { return pending == 0; });
    finished = true;
  }
};

OpToken::~OpToken() {
  // Release our State reference only after the count dropped, from a local.
  auto keep = std::move(s);
  if (keep) keep->op_done();
}

// ---- logging sink -------------------------------------------------------------------------

// Forwards each formatted line to Callbacks::on_log on the callback strand.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(State* s) : s_(s) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    s_->deliver_log(from_spd(msg.level), std::string(buf.data(), buf.size()));
  }
  void flush_() override {}

 private:
  State* s_;
};

// ---- outbound stream ----------------------------------------------------------------------

// connect -> write one sealed message -> [read one reply] -> core.handle_stream_response.
struct OutStream final : Conn, std::enable_shared_from_this<OutStream> {
  OutStream(std::shared_ptr<State> st, Op o, core::StreamRequest r)
      : s(std::move(st)), op(std::move(o)), req(std::move(r)), sock(s->io), deadline(s->io) {}
  ~OutStream() override { s->conns.erase(this); }

  std::shared_ptr<State> s;
  Op op;
  core::StreamRequest req;
  tcp::socket sock;
  asio::steady_timer deadline;
  core::Bytes out;
  std::array<uint8_t, wire::kStreamHeaderSize> header{};
  core::Bytes body;
  bool done = false;
  bool timed_out = false;

  void abort() override { fail(Status::error(Errc::state, "node shut down")); }

  void start() {
    s->conns.insert(this);
    auto self = shared_from_this();
    deadline.expires_at(s->to_time(req.deadline));
    deadline.async_wait([self](error_code ec) {
      if (ec) return;
      self->timed_out = true;
      error_code ignored;
      self->sock.close(ignored);  // completes the pending operation with an error
    });
    tcp::endpoint ep(detail::to_ip(req.to), req.to.port);
    if (auto st = wire::seal_stream_message(*s->framing(), req.payload, out); !st.ok()) {
      s->count(st.kind);
      return fail(st);
    }
    ++s->m_tcp_connect;
    // From the bound address, when it is a specific one: peers (and their allow-lists) see
    // the same source as for our datagrams.
    if (!s->bind_ip.is_unspecified() && s->bind_ip.is_v4() == ep.address().is_v4()) {
      error_code ec;
      sock.open(ep.protocol(), ec);
      if (!ec) sock.bind(tcp::endpoint(s->bind_ip, 0), ec);
      if (ec) return fail_io("bind", ec);
    }
    sock.async_connect(ep, [self](error_code ec) {
      if (ec) return self->fail_io("connect", ec);
      self->s->m_tcp_sent += self->out.size();
      asio::async_write(self->sock, asio::buffer(self->out), [self](error_code ec, size_t) {
        if (ec) return self->fail_io("write", ec);
        if (!self->req.expect_reply) return self->finish(Status::success());
        self->read_reply();
      });
    });
  }

  void read_reply() {
    auto self = shared_from_this();
    asio::async_read(sock, asio::buffer(header), [self](error_code ec, size_t n) {
      self->s->m_tcp_received += n;
      if (ec) return self->fail_io("read", ec);
      size_t len = 0;
      auto st = wire::parse_stream_header(*self->s->framing(), self->header, len);
      if (!st.ok()) {
        self->s->count(st.kind);
        return self->fail(st);
      }
      // Grows with what arrives, in steps of at most 64 KiB: a header alone costs nothing.
      asio::async_read(self->sock, asio::dynamic_buffer(self->body, len),
                       asio::transfer_exactly(len), [self](error_code ec, size_t n) {
                         self->s->m_tcp_received += n;
                         if (ec) return self->fail_io("read", ec);
                         self->finish(Status::success());
                       });
    });
  }

  void fail_io(const char* what, error_code ec) {
    if (timed_out) {
      return fail(Status::error(Errc::timeout, "stream to " + req.to.to_string() + " timed out"));
    }
    fail(Status::error(Errc::io, std::string(what) + " " + req.to.to_string() + ": " + ec.message()));
  }
  void fail(Status st) {
    if (done) return;
    s->log->debug("stream {} to {}: {}", req.id, req.to.to_string(), st.message);
    complete(std::move(st), {});
  }
  void finish(Status transport) {
    if (done) return;
    core::Bytes payload;
    if (req.expect_reply) {
      auto st = wire::open_stream_message(*s->framing(), body, payload);
      if (!st.ok()) {
        s->count(st.kind);
        return fail(Status::error(Errc::protocol, "bad reply from " + req.to.to_string() + ": " + st.message));
      }
    }
    complete(std::move(transport), payload);
  }
  void complete(Status transport, std::span<const uint8_t> reply) {
    done = true;
    s->conns.erase(this);
    deadline.cancel();
    error_code ignored;
    sock.close(ignored);
    s->stream_done(req.id, transport, reply);
  }
};

void State::start_stream(core::StreamRequest req) {
  auto o = op();
  if (!o) return;
  auto c = std::make_shared<OutStream>(shared_from_this(), std::move(o), std::move(req));
  c->start();
}

// ---- inbound stream -----------------------------------------------------------------------

// header -> body (deadline tcp_timeout) -> core.handle_stream -> [reply] -> close.
struct InStream final : Conn, std::enable_shared_from_this<InStream> {
  InStream(std::shared_ptr<State> st, Op o, tcp::socket so)
      : s(std::move(st)), op(std::move(o)), sock(std::move(so)), deadline(s->io) {}
  ~InStream() override {
    s->conns.erase(this);
    --s->inbound_streams;
  }

  std::shared_ptr<State> s;
  Op op;
  tcp::socket sock;
  asio::steady_timer deadline;
  core::Address from;
  std::array<uint8_t, wire::kStreamHeaderSize> header{};
  core::Bytes body;
  core::Bytes out;

  void abort() override { close(); }
  void close() {
    s->conns.erase(this);
    deadline.cancel();
    error_code ignored;
    sock.close(ignored);
  }

  void start() {
    s->conns.insert(this);
    ++s->inbound_streams;
    error_code ec;
    auto peer = sock.remote_endpoint(ec);
    if (ec) return close();
    from = detail::to_core(peer.address(), peer.port());
    auto self = shared_from_this();
    deadline.expires_after(s->opt.core.tcp_timeout);
    deadline.async_wait([self](error_code ec) {
      if (ec) return;
      self->s->log->debug("stream from {} timed out", self->from.to_string());
      error_code ignored;
      self->sock.close(ignored);
    });
    asio::async_read(sock, asio::buffer(header), [self](error_code ec, size_t n) {
      self->s->m_tcp_received += n;
      if (ec) return self->drop("read", ec);
      size_t len = 0;
      auto st = wire::parse_stream_header(*self->s->framing(), self->header, len);
      if (!st.ok()) {
        self->s->count(st.kind);
        self->s->log->warn("refused stream from {}: {}", self->from.to_string(), st.message);
        return self->close();
      }
      asio::async_read(self->sock, asio::dynamic_buffer(self->body, len),
                       asio::transfer_exactly(len), [self](error_code ec, size_t n) {
                         self->s->m_tcp_received += n;
                         if (ec) return self->drop("read", ec);
                         self->handle();
                       });
    });
  }

  void handle() {
    core::Bytes payload;
    auto st = wire::open_stream_message(*s->framing(), body, payload);
    if (!st.ok()) {
      s->count(st.kind);
      s->log->debug("bad stream message from {}: {}", from.to_string(), st.message);
      return close();
    }
    auto reply = s->inbound_message(from, payload);
    if (!reply || s->closing) return close();
    if (auto st = wire::seal_stream_message(*s->framing(), *reply, out); !st.ok()) {
      s->count(st.kind);
      s->log->warn("cannot seal the reply to {}: {}", from.to_string(), st.message);
      return close();
    }
    auto self = shared_from_this();
    s->m_tcp_sent += out.size();
    asio::async_write(sock, asio::buffer(out), [self](error_code ec, size_t) {
      if (ec) return self->drop("write", ec);
      error_code ignored;
      self->sock.shutdown(tcp::socket::shutdown_send, ignored);
      self->close();
    });
  }

  void drop(const char* what, error_code ec) {
    if (ec != asio::error::operation_aborted && ec != asio::error::eof) {
      s->log->debug("stream from {}: {} failed: {}", from.to_string(), what, ec.message());
    } else if (ec == asio::error::eof) {
      s->log->debug("stream from {}: closed early", from.to_string());
    }
    close();
  }
};

void State::accept() {
  auto o = op();
  if (!o) return;
  // The new socket gets the acceptor's executor: this node's io strand.
  acceptor.async_accept([this, o](error_code ec, tcp::socket sock) {
    if (closing || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Back off 5 ms doubling to 1 s, as the reference does (e.g. out of descriptors).
      accept_backoff = accept_backoff.count() == 0 ? std::chrono::milliseconds(5)
                                                   : std::min<Duration>(accept_backoff * 2, std::chrono::seconds(1));
      log->warn("accept failed: {} (retrying in {} ms)", ec.message(), accept_backoff.count() / 1000);
      auto o2 = op();
      if (!o2) return;
      backoff_timer.expires_after(accept_backoff);
      backoff_timer.async_wait([this, o2](error_code ec) {
        if (!ec && !closing) accept();
      });
      return;
    }
    accept_backoff = Duration{};
    ++m_tcp_accept;
    error_code pe;
    auto peer = sock.remote_endpoint(pe);
    if (!pe && !allow.allows(peer.address())) {
      refused_source("stream", peer.address());
      error_code ignored;
      sock.close(ignored);
    } else if (inbound_streams >= opt.max_concurrent_streams) {
      ++refused_streams;
      log->warn("too many inbound streams ({}), closing a new one", inbound_streams);
      error_code ignored;
      sock.close(ignored);
    } else if (auto o2 = op()) {
      std::make_shared<InStream>(shared_from_this(), std::move(o2), std::move(sock))->start();
    }
    accept();
  });
}

// ---- start --------------------------------------------------------------------------------

Status State::start() {
  auto cfg = opt.core;
  if (auto st = cfg.validate(); !st.ok()) return st;
  if (auto st = wire::validate(opt.framing); !st.ok()) return st;
  if (opt.max_concurrent_streams < 1) return Status::error(Errc::invalid, "invalid option max_concurrent_streams: must be at least 1");
  if (opt.handoff_queue_depth < 1) return Status::error(Errc::invalid, "invalid option handoff_queue_depth: must be at least 1");
  if (auto st = detail::AllowList::parse(opt.allowed_cidrs, allow); !st.ok()) return st;
  // What the framing adds must fit in udp_buffer_size: the core fills the rest. Encryption
  // is always counted, since keyring_add() may turn it on at run time.
  size_t overhead = wire::packet_overhead(opt.framing, true);
  if (cfg.udp_buffer_size < overhead + 64) {
    return Status::error(Errc::invalid, "invalid config udp_buffer_size: too small for the framing");
  }
  cfg.udp_buffer_size -= overhead;
  // A best-effort message plus the framing must fit one datagram.
  cfg.max_best_effort_size = std::min(cfg.max_best_effort_size, kMaxDatagram - overhead);
  if (!allow.empty()) {
    cfg.address_allowed = [this](const core::Address& a) { return allow.allows(a); };
  }

  // Logger first, so that everything below can log.
  spdlog::sink_ptr sink;
  if (cb.on_log) {
    sink = std::make_shared<CallbackSink>(this);
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%v", spdlog::pattern_time_type::local, std::string()));
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %T.%e] [%l] memberlist %n: %v"));
  }
  log = std::make_shared<spdlog::logger>(cfg.name, std::move(sink));
  auto level = to_spd(cb.log_level);
  if (!cb.on_log) level = std::max(level, spdlog::level::warn);
  log->set_level(level);

  error_code ec;
  bind_ip = asio::ip::make_address(opt.bind_addr, ec);
  if (ec) return Status::error(Errc::invalid, "bind_addr '" + opt.bind_addr + "' is not an IP address");
  v6 = bind_ip.is_v6();

  // TCP first, then UDP on the same port; with port 0 the kernel's TCP port may be taken
  // for UDP, so try again a few times.
  for (int attempt = 0;; ++attempt) {
    error_code e;
    acceptor.open(bind_ip.is_v6() ? tcp::v6() : tcp::v4(), e);
    if (!e && v6) acceptor.set_option(asio::ip::v6_only(false), e);
    if (!e) acceptor.set_option(tcp::acceptor::reuse_address(true), e);
    if (!e) acceptor.bind(tcp::endpoint(bind_ip, opt.bind_port), e);
    if (!e) acceptor.listen(asio::socket_base::max_listen_connections, e);
    if (e) {
      return Status::error(Errc::io, fmt::format("bind tcp {}:{}: {}", opt.bind_addr, opt.bind_port, e.message()));
    }
    uint16_t port = acceptor.local_endpoint().port();
    std::error_code ue = udp_sock.open_and_bind(udp::endpoint(bind_ip, port));
    if (!ue) break;
    error_code ignored;
    acceptor.close(ignored);
    if (opt.bind_port != 0 || attempt >= 10) {
      return Status::error(Errc::io, fmt::format("bind udp {}:{}: {}", opt.bind_addr, port, ue.message()));
    }
  }
  // As the reference: ask for a 2 MiB receive buffer (the kernel caps it silently).
  udp_sock.set_receive_buffer(2 << 20);
  uint16_t port = acceptor.local_endpoint().port();

  asio::ip::address adv_ip;
  if (!opt.advertise_addr.empty()) {
    adv_ip = asio::ip::make_address(opt.advertise_addr, ec);
    if (ec) {
      return Status::error(Errc::invalid, "advertise_addr '" + opt.advertise_addr + "' is not an IP address");
    }
  } else if (bind_ip.is_unspecified()) {
    adv_ip = detail::pick_advertise_ip(v6);
  } else {
    adv_ip = bind_ip;
  }
  advertise = detail::to_core(adv_ip, opt.advertise_port != 0 ? opt.advertise_port : port);
  cfg.advertise = advertise;
  // Bound to one address and advertising it: every datagram's source is `advertise`.
  cfg.advertise_is_source = !bind_ip.is_unspecified() && advertise == detail::to_core(bind_ip, port);
  // Core log lines go through the same logger (and so the same level filter and sink).
  cfg.log = [this](core::LogLevel l, std::string_view msg) { log->log(to_spd(l), "{}", msg); };

  try {
    core = std::make_unique<core::Core>(std::move(cfg), wire::make_flatbuffers_codec(), now());
  } catch (const std::exception& e) {
    return Status::error(Errc::invalid, std::string("cannot start the protocol: ") + e.what());
  }
  if (!core->start_status().ok()) return core->start_status();  // e.g. metadata too large
  if (cb.on_metric) {
    // Runs inside the core (under mu): only collect; drain() hands them to the callback strand.
    core->metrics().set_listener([this](const core::MetricSample& m) { samples.push_back(m); });
  }
  log->info("listening on {} (udp+tcp), advertising {}", udp_sock.local_endpoint().address().to_string() + ":" + std::to_string(port),
            advertise.to_string());

  run_inline = !opt.core.delegate;
  tick.owner = weak_from_this();
  tick.fire = [this] { on_tick(); };
  tick.readable = [this] { on_readable(); };
  if (!ticker.watch(tick, udp_sock.native_handle())) {
    return Status::error(Errc::io, "cannot watch the UDP socket (epoll)");
  }
  // Loops start on the strand; the first drain arms the timer and emits our own Join.
  if (auto o = op()) {
    asio::post(io, [this, o] {
      if (closing) return;
      accept();
    });
  }
  with_core([](core::Core&) {});
  return Status::success();
}

// ---- Node ---------------------------------------------------------------------------------

struct Node::Impl {
  std::shared_ptr<Runtime> runtime;
  std::shared_ptr<State> s;
};

Node::Node() : impl_(std::make_unique<Impl>()) {}

std::shared_ptr<Node> Node::create(std::shared_ptr<Runtime> runtime, Options options,
                                   Callbacks callbacks, Status& status) {
  if (!runtime) {
    status = Status::error(Errc::invalid, "no runtime");
    return nullptr;
  }
  std::shared_ptr<Node> node(new Node());
  node->impl_->runtime = runtime;
  node->impl_->s = std::make_shared<State>(*runtime->impl().ioc, runtime->impl().pick_ticker(), std::move(options),
                                          std::move(callbacks));
  status = node->impl_->s->start();
  if (!status.ok()) {
    node->impl_->s->shutdown(true);
    return nullptr;
  }
  return node;
}

Node::~Node() {
  if (!impl_->s) return;
  if (in_callback()) {
    // Cannot wait for our own callback to finish: close, and let the last handler free the
    // state (which then also keeps the runtime alive).
    impl_->s->keep_runtime = impl_->runtime;
    impl_->s->shutdown(false);
    return;
  }
  impl_->s->shutdown(true);
}

bool Node::in_callback() const { return tl_callback_owner == impl_->s.get(); }

namespace {
Status refused_in_callback(const char* what) {
  return Status::error(Errc::state, std::string(what) + " cannot be called from this node's own callback or delegate hook");
}
// Inside a Delegate hook of this node's core (the lock is held): blocking calls refuse.
bool in_core_hook(const std::shared_ptr<State>& s) { return tl_core_owner == s.get(); }
}  // namespace

int Node::join(const std::vector<std::string>& addresses, Status& status) {
  auto& s = *impl_->s;
  if (in_callback() || in_core_hook(impl_->s)) {
    status = refused_in_callback("join");
    return 0;
  }
  uint16_t default_port = s.opt.bind_port != 0 ? s.opt.bind_port : s.advertise.port;
  int joined = 0;
  std::vector<std::string> failures;
  // The status of a failed join is the failures' common kind (e.g. every peer vetoed: rejected),
  // else io.
  std::optional<Errc> failure_kind;
  auto note_failure = [&](const Status& st, std::string what) {
    failure_kind = !failure_kind || *failure_kind == st.code ? st.code : Errc::io;
    failures.push_back(std::move(what));
  };
  for (const auto& entry : addresses) {
    std::string name, host;
    uint16_t port = 0;
    auto st = parse_join_address(entry, default_port, name, host, port);
    std::vector<asio::ip::address> ips;
    if (st.ok()) st = detail::resolve_host(host, ips);
    if (!st.ok()) {
      note_failure(st, st.message);
      continue;
    }
    for (const auto& ip : ips) {
      auto to = detail::to_core(ip, port);
      uint64_t id = 0;
      Outputs out;
      {
        std::lock_guard<std::mutex> l(s.mu);
        if (s.closed || s.core->has_left()) {
          // As the reference documents: a node that left cannot rejoin (create a new one).
          status = Status::error(Errc::state, s.closed ? "node is shut down" : "node has left the cluster");
          return joined;
        }
        id = s.core->join(to, s.now());
        s.joins[id];
        s.drain(out);
      }
      s.dispatch(std::move(out));
      std::unique_lock<std::mutex> l(s.mu);
      auto limit = std::chrono::steady_clock::now() + s.opt.core.tcp_timeout + kWaitSlack;
      bool got = s.cv.wait_until(l, limit, [&] { return s.closed || s.joins[id].has_value(); });
      Status r = !got                ? Status::error(Errc::timeout, "timed out")
                 : s.joins[id]       ? *s.joins[id]
                                     : Status::error(Errc::state, "node is shut down");
      s.joins.erase(id);
      if (r.ok()) {
        ++joined;
        s.log->debug("joined through {}", to.to_string());
      } else {
        note_failure(r, to.to_string() + ": " + r.message);
      }
    }
  }
  if (joined == 0) {
    std::string msg = "join failed";
    for (size_t i = 0; i < failures.size(); ++i) msg += (i == 0 ? ": " : "; ") + failures[i];
    if (failures.empty()) msg += ": no address given";
    status = Status::error(addresses.empty() ? Errc::invalid : failure_kind.value_or(Errc::io), msg);
  } else {
    status = Status::success();
  }
  return joined;
}

std::vector<core::NodeInfo> Node::members() const {
  return impl_->s->query([](const core::Core& c) { return c.members(); });
}

size_t Node::num_members() const {
  return impl_->s->query([](const core::Core& c) { return c.num_members(); });
}

core::NodeInfo Node::local_node() const {
  return impl_->s->query([](const core::Core& c) { return c.local_node(); });
}

int Node::health_score() const {
  return impl_->s->query([](const core::Core& c) { return c.health_score(); });
}

core::Stats Node::stats() const {
  core::Stats st = impl_->s->query([](const core::Core& c) { return c.stats(); });
  // Input the framing refused never reached the core: count it here too.
  st.bad_messages += impl_->s->bad_frames();
  return st;
}

std::vector<core::MetricValue> Node::metrics() const {
  auto& s = *impl_->s;
  return s.query([&](const core::Core& c) {
    if (!in_core_hook(impl_->s)) s.flush_transport_metrics();
    return c.metrics().snapshot();
  });
}

std::string Node::prometheus() const {
  auto& s = *impl_->s;
  return s.query([&](const core::Core& c) {
    if (!in_core_hook(impl_->s)) s.flush_transport_metrics();
    return c.metrics().prometheus();
  });
}

RuntimeStats Node::runtime_stats() const {
  RuntimeStats r;
  for (size_t i = 0; i < r.frame_errors.size(); ++i) r.frame_errors[i] = impl_->s->frame_errors[i];
  r.dropped_sends = impl_->s->dropped_sends;
  r.refused_streams = impl_->s->refused_streams;
  r.refused_sources = impl_->s->refused_sources;
  r.handoff_dropped = impl_->s->handoff_dropped;
  return r;
}

core::Address Node::advertise_address() const { return impl_->s->advertise; }

Status Node::ping(const std::string& name, Duration& rtt) {
  auto& s = *impl_->s;
  if (in_callback() || in_core_hook(impl_->s)) return refused_in_callback("ping");
  uint64_t id = 0;
  Outputs out;
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.closed) return Status::error(Errc::state, "node is shut down");
    std::optional<core::Address> addr;
    for (const auto& m : s.core->members()) {
      if (m.name == name) addr = m.addr;
    }
    if (!addr) return Status::error(Errc::not_found, "no member named '" + name + "'");
    id = s.core->ping(name, *addr, s.now());
    s.pings[id];
    s.drain(out);
  }
  s.dispatch(std::move(out));
  std::unique_lock<std::mutex> l(s.mu);
  auto limit = std::chrono::steady_clock::now() + s.opt.core.probe_timeout + kWaitSlack;
  s.cv.wait_until(l, limit, [&] { return s.closed || s.pings[id].has_value(); });
  auto result = s.pings[id];
  s.pings.erase(id);
  if (!result) {
    if (s.closed) return Status::error(Errc::state, "node is shut down");
    return Status::error(Errc::timeout, "no response from node " + name);
  }
  if (!result->ok) return Status::error(Errc::timeout, "no response from node " + name);
  rtt = result->rtt;
  return Status::success();
}

Status Node::leave(Duration timeout) {
  auto& s = *impl_->s;
  if (in_callback() || in_core_hook(impl_->s)) return refused_in_callback("leave");
  Status st;
  Outputs out;
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.closed) return Status::error(Errc::state, "node is shut down");
    st = s.core->leave(s.now());
    s.drain(out);
  }
  s.dispatch(std::move(out));
  if (!st.ok()) return st;
  // As the reference, no timeout waits as long as it takes. Returns only once the
  // datagrams carrying the leave were sent, so that a shutdown right after drops none.
  return s.wait_sent([&] { return s.core->leave_propagated(); }, timeout, "leave broadcast");
}

// ---- application data ----------------------------------------------------------------------

namespace {
// update_meta / update_node: `fn(core, token)` starts the update; then wait for it to spread.
template <class Fn>
Status update_and_wait(State& s, const char* what, Duration timeout, Fn&& fn) {
  uint64_t token = 0;
  Status st;
  Outputs out;
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.closed) return Status::error(Errc::state, "node is shut down");
    InCore in(&s);
    st = fn(*s.core, token);
    s.drain(out);
  }
  s.dispatch(std::move(out));
  if (!st.ok()) return st;
  return s.wait_sent([&] { return s.core->broadcast_finished(token); }, timeout, what);
}
}  // namespace

Status Node::update_meta(core::Bytes meta, Duration timeout) {
  auto& s = *impl_->s;
  if (in_callback() || in_core_hook(impl_->s)) return refused_in_callback("update_meta");
  return update_and_wait(s, "the metadata update", timeout, [&](core::Core& c, uint64_t& token) {
    return c.update_meta(std::move(meta), s.now(), &token);
  });
}

Status Node::update_node(Duration timeout) {
  auto& s = *impl_->s;
  if (in_callback() || in_core_hook(impl_->s)) return refused_in_callback("update_node");
  return update_and_wait(s, "the node update", timeout,
                         [&](core::Core& c, uint64_t& token) { return c.update_node(s.now(), &token); });
}

Status Node::send_best_effort(const std::string& node, core::Bytes msg) {
  auto& s = *impl_->s;
  return s.command([&](core::Core& c) { return c.send_best_effort(node, std::move(msg), s.now()); });
}

Status Node::send_to_address(const std::string& address, core::Bytes msg) {
  auto& s = *impl_->s;
  std::string name, host;
  uint16_t port = 0;
  uint16_t default_port = s.opt.bind_port != 0 ? s.opt.bind_port : s.advertise.port;
  if (auto st = parse_join_address(address, default_port, name, host, port); !st.ok()) return st;
  if (!name.empty()) return Status::error(Errc::invalid, "bad address '" + address + "': a name prefix is not allowed here");
  std::vector<asio::ip::address> ips;
  if (auto st = detail::resolve_host(host, ips); !st.ok()) return st;
  if (ips.empty()) return Status::error(Errc::io, "no address for '" + host + "'");
  auto to = detail::to_core(ips.front(), port);
  return s.command([&](core::Core& c) { return c.send_best_effort(to, std::move(msg), s.now()); });
}

Status Node::send_reliable(const std::string& node, core::Bytes msg) {
  auto& s = *impl_->s;
  if (in_callback() || in_core_hook(impl_->s)) return refused_in_callback("send_reliable");
  uint64_t id = 0;
  Status st;
  Outputs out;
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.closed) return Status::error(Errc::state, "node is shut down");
    InCore in(&s);
    id = s.core->send_reliable(node, std::move(msg), s.now(), st);
    if (id != 0) s.joins[id];
    s.drain(out);
  }
  s.dispatch(std::move(out));
  if (id == 0) return st.ok() ? Status::error(Errc::io, "message not sent") : st;
  std::unique_lock<std::mutex> l(s.mu);
  auto limit = std::chrono::steady_clock::now() + s.opt.core.tcp_timeout + kWaitSlack;
  bool got = s.cv.wait_until(l, limit, [&] { return s.closed || s.joins[id].has_value(); });
  Status r = !got              ? Status::error(Errc::timeout, "timed out sending to " + node)
             : s.joins[id]     ? *s.joins[id]
                               : Status::error(Errc::state, "node is shut down");
  s.joins.erase(id);
  return r;
}

Status Node::queue_broadcast(std::string name, core::Bytes payload, uint64_t& id) {
  auto& s = *impl_->s;
  return s.command([&](core::Core& c) { return c.queue_broadcast(std::move(name), std::move(payload), id, s.now()); });
}

size_t Node::num_queued_broadcasts() const {
  return impl_->s->query([](const core::Core& c) { return c.num_queued_broadcasts(); });
}

// ---- security at run time ------------------------------------------------------------------

Status Node::keyring_add(std::span<const uint8_t> key) {
  auto& s = *impl_->s;
  std::lock_guard<std::mutex> l(s.fr_mu);
  if (s.fr->keyring) return s.fr->keyring->install(key);
  auto keyring = std::make_shared<wire::Keyring>();
  if (auto st = keyring->install(key); !st.ok()) return st;
  s.change_framing([&](wire::FramingOptions& f) { f.keyring = std::move(keyring); });
  s.log->info("keyring created: encryption {}", wire::encrypts(*s.fr) ? "on" : "installed (verify_outgoing off)");
  return Status::success();
}

Status Node::keyring_use(std::span<const uint8_t> key) {
  auto fr = impl_->s->framing();
  if (!fr->keyring) return Status::error(Errc::not_found, "no keyring: the key is not installed");
  return fr->keyring->use(key);
}

Status Node::keyring_remove(std::span<const uint8_t> key) {
  auto fr = impl_->s->framing();
  if (!fr->keyring) return Status::success();  // an absent key: nothing to remove
  return fr->keyring->remove(key);
}

std::vector<core::Bytes> Node::keyring_keys() const {
  auto fr = impl_->s->framing();
  return fr->keyring ? fr->keyring->keys() : std::vector<core::Bytes>{};
}

Status Node::set_gossip_verify(bool incoming, bool outgoing) {
  auto& s = *impl_->s;
  std::lock_guard<std::mutex> l(s.fr_mu);
  s.change_framing([&](wire::FramingOptions& f) {
    f.verify_incoming = incoming;
    f.verify_outgoing = outgoing;
  });
  s.log->info("gossip verify incoming={} outgoing={}", incoming, outgoing);
  return Status::success();
}

Status Node::shutdown() {
  if (in_callback() || in_core_hook(impl_->s)) return refused_in_callback("shutdown");
  impl_->s->shutdown(true);
  return Status::success();
}

}  // namespace memberlist::runtime
