// A node's lifecycle: set-up (validation, logger, sockets, advertise address, core) and
// shutdown; the pending-handler accounting both rely on; and the host-callback plumbing.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <boost/asio/post.hpp>

#include "runtime/state.h"

namespace memberlist::runtime {

namespace {

// How long shutdown() waits for datagrams already drained (e.g. a leave) to be sent.
constexpr Duration kFlushLimit = std::chrono::seconds(2);

// The node whose callback the current thread is running (nullptr outside callbacks).
thread_local const void* tl_callback_owner = nullptr;

struct CallbackScope {
  const void* prev;
  explicit CallbackScope(const void* s) : prev(tl_callback_owner) { tl_callback_owner = s; }
  ~CallbackScope() { tl_callback_owner = prev; }
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

// Forwards each formatted line to the node's callback queue.
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

}  // namespace

bool in_callback_of(const void* state) { return state != nullptr && tl_callback_owner == state; }

State::State(Runtime::Impl& rt, Ticker& t, Options o, Callbacks c)
    : ticker(t),
      opt(std::move(o)),
      cb(std::move(c)),
      io(asio::make_strand(*rt.ioc)),
      proc(asio::make_strand(*rt.ioc)),
      cbx(asio::make_strand(*rt.cb_ioc)),
      epoch(std::chrono::steady_clock::now()),
      delivery(cb, opt.max_queued_callbacks, opt.max_queued_log_lines,
               cb.pull ? Delivery::Schedule() : [this] { return schedule_delivery(); }),
      fr(std::make_shared<const wire::FramingOptions>(opt.framing)),
      backoff_timer(io) {}

OpToken::~OpToken() {
  // Release our State reference only after the count dropped, from a local.
  auto keep = std::move(s);
  if (keep) keep->op_done();
}

Op State::op() {
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

void State::op_done() {
  std::lock_guard<std::mutex> l(life_mu);
  if (--pending == 0) life_cv.notify_all();
}

// A turn of the callback strand for this node: a batch of its queued callbacks, marked as
// its own (blocking calls refuse), then another turn if more are waiting.
bool State::schedule_delivery() {
  auto o = op();
  if (!o) return false;
  asio::post(cbx, [this, o] {
    bool more;
    {
      CallbackScope scope(this);
      more = delivery.drain();
    }
    if (more && !schedule_delivery()) {
      // Gone meanwhile: nothing will run the rest.
    }
  });
  return true;
}

Status State::start() {
  auto cfg = opt.core;
  if (auto st = cfg.validate(); !st.ok()) return st;
  if (auto st = wire::validate(opt.framing); !st.ok()) return st;
  if (opt.max_concurrent_streams < 1) return Status::error(Errc::invalid, "invalid option max_concurrent_streams: must be at least 1");
  if (opt.handoff_queue_depth < 1) return Status::error(Errc::invalid, "invalid option handoff_queue_depth: must be at least 1");
  if (opt.max_inbound_connections < 1) return Status::error(Errc::invalid, "invalid option max_inbound_connections: must be at least 1");
  if (opt.max_inbound_connections_per_source < 1)
    return Status::error(Errc::invalid, "invalid option max_inbound_connections_per_source: must be at least 1");
  if (opt.max_inbound_stream_bytes < kSmallStream)
    return Status::error(Errc::invalid, "invalid option max_inbound_stream_bytes: must be at least " +
                                            std::to_string(kSmallStream));
  if (opt.max_queued_callbacks < 1) return Status::error(Errc::invalid, "invalid option max_queued_callbacks: must be at least 1");
  if (auto st = detail::AllowList::parse(opt.allowed_cidrs, allow); !st.ok()) return st;
  // What the framing adds must fit in udp_buffer_size: the core fills the rest. Encryption
  // is always counted, since keyring_add() may turn it on at run time.
  hashicorp = opt.wire_format == wire::WireFormat::hashicorp;
  if (!hashicorp && opt.wire_format != wire::WireFormat::native)
    return Status::error(Errc::invalid, "invalid option wire_format: unknown format");
  // Go peers carry no broadcast digest, so nothing would be repaired: off, so that the done
  // outcome never claims a repair (SETTLED) that cannot happen.
  if (hashicorp) cfg.max_repair_broadcasts = 0;
  enc_version = wire::hashicorp::encryption_version(cfg.protocol_version);
  size_t overhead = hashicorp ? wire::hashicorp::packet_overhead(opt.framing, true) : wire::packet_overhead(opt.framing, true);
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
  if (cb.on_log || cb.pull) {
    sink = std::make_shared<CallbackSink>(this);
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%v", spdlog::pattern_time_type::local, std::string()));
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %T.%e] [%l] memberlist %n: %v"));
  }
  log = std::make_shared<spdlog::logger>(cfg.name, std::move(sink));
  auto level = to_spd(cb.log_level);
  if (!cb.on_log && !cb.pull) level = std::max(level, spdlog::level::warn);
  log->set_level(level);

  // The network: the node's own UDP+TCP sockets unless the options bring a transport.
  TransportContext tctx{io};
  Status tst;
  transport = opt.transport ? opt.transport(tctx, tst) : make_socket_transport(tctx, opt.bind_addr, opt.bind_port, tst);
  if (!transport) return tst.ok() ? Status::error(Errc::io, "the transport did not start") : tst;
  const core::Address local = transport->local_address();
  const asio::ip::address bind_ip = detail::to_ip(local);
  const uint16_t port = local.port;

  error_code ec;
  asio::ip::address adv_ip;
  if (!opt.advertise_addr.empty()) {
    adv_ip = asio::ip::make_address(opt.advertise_addr, ec);
    if (ec) {
      return Status::error(Errc::invalid, "advertise_addr '" + opt.advertise_addr + "' is not an IP address");
    }
  } else if (bind_ip.is_unspecified()) {
    auto choice = detail::choose_advertise_ip(detail::interface_addresses(), bind_ip.is_v6());
    adv_ip = choice.addr;
    if (!choice.warning.empty()) log->warn("{}", choice.warning);
  } else {
    adv_ip = bind_ip;
  }
  advertise = detail::to_core(adv_ip, opt.advertise_port != 0 ? opt.advertise_port : port);
  cfg.advertise = advertise;
  // Bound to one address and advertising it: every datagram's source is `advertise`.
  cfg.advertise_is_source = !bind_ip.is_unspecified() && advertise == local;
  // Core log lines go through the same logger (and so the same level filter and sink).
  cfg.log = [this](core::LogLevel l, std::string_view msg) { log->log(to_spd(l), "{}", msg); };

  try {
    std::shared_ptr<const core::Codec> codec = wire::make_flatbuffers_codec();
    if (hashicorp) {
      hc_codec = wire::hashicorp::make_runtime_codec(opt.framing, cfg.max_push_nodes, cfg.max_user_msg_size);
      codec = hc_codec;
    }
    core = std::make_unique<core::Core>(std::move(cfg), std::move(codec), now());
  } catch (const std::exception& e) {
    return Status::error(Errc::invalid, std::string("cannot start the protocol: ") + e.what());
  }
  if (!core->start_status().ok()) return core->start_status();  // e.g. metadata too large
  if (cb.on_metric) {
    // Runs inside the core: only collect; drain() queues them for the host.
    core->metrics().set_listener([this](const core::MetricSample& m) { samples.push_back(m); });
  }
  log->info("listening on {}, advertising {}", transport->describe(), advertise.to_string());

  run_inline = !opt.core.delegate;
  tick.owner = weak_from_this();
  tick.fire = [this] { on_tick(); };
  tick.readable = [this] { on_readable(); };
  if (!ticker.watch(tick, transport->packet_fd())) {
    return Status::error(Errc::io, "cannot watch the transport's datagrams (epoll)");
  }
  // Loops start on the strand; the first drain arms the timer and emits our own Join (the
  // core's news reaches the host only from here on: a failed start reports nothing).
  started = true;
  if (auto o = op()) {
    asio::post(io, [this, o] {
      if (closing) return;
      accept();
    });
  }
  with_core([](core::Core&) {});
  return Status::success();
}


void State::close_all() {  // io strand
  if (transport) {
    ticker.unwatch(tick, transport->packet_fd());
    transport->close();
  }
  backoff_timer.cancel();
  // abort() may unregister, so iterate over a copy.
  for (Conn* c : std::vector<Conn*>(conns.begin(), conns.end())) c->abort();
}

void State::shutdown(bool wait) {
  {
    CoreAccess access(this, mu);
    if (!closed && core && started) {
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
  // From now on the host hears only membership events and broadcast outcomes already queued.
  delivery.close();
  // Datagrams already drained (a leave's last retransmissions) go out first; bounded, since
  // a one-thread pool busy here cannot send them.
  if (wait) sends.wait(sends.last(), std::chrono::steady_clock::now() + kFlushLimit, [] { return false; });
  if (!closing.exchange(true)) {
    sends.wake();
    if (auto o = op()) asio::post(io, [this, o] { close_all(); });
  }
  if (!wait) return;
  std::unique_lock<std::mutex> l(life_mu);
  life_cv.wait(l, [&] { return pending == 0; });
  finished = true;
}

}  // namespace memberlist::runtime
