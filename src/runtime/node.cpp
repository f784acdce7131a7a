// Node: the public calls, each entering the core through CoreAccess (state.h), and the
// plumbing every entry shares: drain() inside the core, dispatch() after it.
#include <boost/asio/post.hpp>

#include "runtime/state.h"

namespace memberlist::runtime {

bool in_callback_of(const void* state);  // lifecycle.cpp

// ---- entering the core ------------------------------------------------------------------------

void State::drain(Outputs& out) {
  const size_t before = out.transmits.size();
  while (auto t = core->poll_transmit()) {
    if (hashicorp) out.crc.push_back(core->protocol_max_at(t->to) >= 5);
    out.transmits.push_back(std::move(*t));
  }
  if (out.transmits.size() > before && out.batch == 0) out.batch = sends.open();
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

void State::drain_news() {
  // Drained even without a consumer: the core's queues would grow with every probe.
  while (auto e = core->poll_event()) {
    if (cb.on_event || cb.pull) delivery.push(std::move(*e));
  }
  while (auto n = core->poll_notification()) {
    if (cb.on_notification || cb.pull) delivery.push(std::move(*n));
  }
  for (auto& m : samples) delivery.push(std::move(m));
  samples.clear();
}

// Datagrams are sent right here, on the calling thread (no hand-off, no wake-up of another
// thread); streams start on the io strand.
void State::dispatch(Outputs out) {
  cv.notify_all();
  if (!out.transmits.empty()) send_datagrams(out.transmits, out.crc, out.batch);
  if (out.streams.empty()) return;
  auto o = closing ? nullptr : op();
  if (!o) return;
  asio::post(io, [this, o, st = std::move(out.streams)]() mutable {
    if (closing) return;
    for (auto& s : st) start_stream(std::move(s));
  });
}

void State::flush_transport_metrics() {
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
  auto gained = [&](uint64_t v, uint64_t& flushed, const char* name) {
    if (v > flushed) core->metrics().incr(name, static_cast<double>(v - flushed));
    flushed = v;
  };
  gained(dropped_sends, flushed_drops[0], "memberlist.udp.send_dropped");
  gained(handoff_dropped, flushed_drops[1], "memberlist.udp.handoff_dropped");
  gained(refused_streams, flushed_drops[2], "memberlist.tcp.refused_streams");
  gained(refused_sources, flushed_drops[3], "memberlist.refused_sources");
  gained(delivery.dropped_items(), flushed_drops[4], "memberlist.callbacks.dropped");
  gained(delivery.dropped_log_lines(), flushed_drops[5], "memberlist.log.dropped");
  for (size_t i = 1; i < frame_errors.size(); ++i) {
    uint64_t v = frame_errors[i];
    if (v > flushed_frame_errors[i]) {
      core->metrics().incr("memberlist.frame_errors", static_cast<double>(v - flushed_frame_errors[i]),
                           {{"kind", wire::to_string(static_cast<wire::FrameError>(i))}});
    }
    flushed_frame_errors[i] = v;
  }
}

namespace {

// Waits inside the core (its lock released while waiting) until the result `id` in `slots`
// arrives, the node shuts down or `wait` passes; takes the result out.
enum class Waited { done, closed, timeout };
template <class T>
Waited await(State& s, std::map<uint64_t, std::optional<T>>& slots, uint64_t id, Duration wait, T& out) {
  CoreAccess access(&s, s.mu);
  auto limit = std::chrono::steady_clock::now() + wait;
  bool got = s.cv.wait_until(access.lock(), limit, [&] { return s.closed || slots[id].has_value(); });
  auto v = std::move(slots[id]);
  slots.erase(id);
  if (v) {
    out = std::move(*v);
    return Waited::done;
  }
  return got ? Waited::closed : Waited::timeout;
}

Status shut_down() { return Status::error(Errc::state, "node is shut down"); }

}  // namespace

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
  node->impl_->s = std::make_shared<State>(runtime->impl(), runtime->impl().pick_ticker(), std::move(options),
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

bool Node::in_callback() const { return in_callback_of(impl_->s.get()); }
bool Node::in_core() const { return impl_->s->inside_core(); }

size_t Node::poll_events(std::vector<Delivery::Item>& out, size_t max) {
  return impl_->s->cb.pull ? impl_->s->delivery.take(out, max) : 0;
}

int Node::event_fd() const { return impl_->s->delivery.event_fd(); }

namespace {
// From the node's own callback or delegate hook, a blocking call would wait for itself.
Status refuse_blocking(const Node& n, const char* what) {
  if (n.in_callback() || n.in_core()) {
    return Status::error(Errc::state, std::string(what) + " cannot be called from this node's own callback or delegate hook");
  }
  return Status::success();
}
}  // namespace

int Node::join(const std::vector<std::string>& addresses, Status& status) {
  auto& s = *impl_->s;
  if (status = refuse_blocking(*this, "join"); !status.ok()) return 0;
  uint16_t default_port = s.opt.bind_port != 0 && !s.opt.transport ? s.opt.bind_port : s.advertise.port;
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
      bool left = false;
      s.with_core([&](core::Core& c) {
        // As the reference documents: a node that left cannot rejoin (create a new one).
        if ((left = c.has_left())) return;
        id = c.join(to, s.now());
        s.joins[id];
      });
      if (id == 0) {
        status = left ? Status::error(Errc::state, "node has left the cluster") : shut_down();
        return joined;
      }
      Status r;
      switch (await(s, s.joins, id, s.opt.core.tcp_timeout + kWaitSlack, r)) {
        case Waited::done: break;
        case Waited::closed: r = shut_down(); break;
        case Waited::timeout: r = Status::error(Errc::timeout, "timed out"); break;
      }
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
  CoreAccess access(&s, s.mu);
  s.flush_transport_metrics();
  return s.core->metrics().snapshot();
}

std::string Node::prometheus() const {
  auto& s = *impl_->s;
  CoreAccess access(&s, s.mu);
  s.flush_transport_metrics();
  return s.core->metrics().prometheus();
}

RuntimeStats Node::runtime_stats() const {
  const auto& s = *impl_->s;
  RuntimeStats r;
  for (size_t i = 0; i < r.frame_errors.size(); ++i) r.frame_errors[i] = s.frame_errors[i];
  r.dropped_sends = s.dropped_sends;
  r.refused_streams = s.refused_streams;
  r.refused_sources = s.refused_sources;
  r.handoff_dropped = s.handoff_dropped;
  r.callbacks_dropped = s.delivery.dropped_items();
  r.log_lines_dropped = s.delivery.dropped_log_lines();
  r.callbacks_queued = s.delivery.queued();
  return r;
}

core::Address Node::advertise_address() const { return impl_->s->advertise; }

Status Node::ping(const std::string& name, Duration& rtt) {
  auto& s = *impl_->s;
  if (auto st = refuse_blocking(*this, "ping"); !st.ok()) return st;
  uint64_t id = 0;
  bool ran = false, known = false;
  s.with_core([&](core::Core& c) {
    ran = true;
    for (const auto& m : c.members()) {
      if (m.name != name) continue;
      known = true;
      id = c.ping(name, m.addr, s.now());
      s.pings[id];
      break;
    }
  });
  if (!ran) return shut_down();
  if (!known) return Status::error(Errc::not_found, "no member named '" + name + "'");
  core::PingResult result;
  switch (await(s, s.pings, id, s.opt.core.probe_timeout + kWaitSlack, result)) {
    case Waited::done: break;
    case Waited::closed: return shut_down();
    case Waited::timeout: return Status::error(Errc::timeout, "no response from node " + name);
  }
  if (!result.ok) return Status::error(Errc::timeout, "no response from node " + name);
  rtt = result.rtt;
  return Status::success();
}

Status Node::leave(Duration timeout) {
  auto& s = *impl_->s;
  if (auto st = refuse_blocking(*this, "leave"); !st.ok()) return st;
  Status st = s.command([&](core::Core& c) { return c.leave(s.now()); });
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
  Status st = s.command([&](core::Core& c) { return fn(c, token); });
  if (!st.ok()) return st;
  return s.wait_sent([&] { return s.core->broadcast_finished(token); }, timeout, what);
}
}  // namespace

Status Node::update_meta(core::Bytes meta, Duration timeout) {
  auto& s = *impl_->s;
  if (auto st = refuse_blocking(*this, "update_meta"); !st.ok()) return st;
  return update_and_wait(s, "the metadata update", timeout, [&](core::Core& c, uint64_t& token) {
    return c.update_meta(std::move(meta), s.now(), &token);
  });
}

Status Node::update_node(Duration timeout) {
  auto& s = *impl_->s;
  if (auto st = refuse_blocking(*this, "update_node"); !st.ok()) return st;
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
  uint16_t default_port = s.opt.bind_port != 0 && !s.opt.transport ? s.opt.bind_port : s.advertise.port;
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
  if (auto st = refuse_blocking(*this, "send_reliable"); !st.ok()) return st;
  uint64_t id = 0;
  Status st = s.command([&](core::Core& c) {
    Status refused;
    id = c.send_reliable(node, std::move(msg), s.now(), refused);
    if (id != 0) s.joins[id];
    return refused;
  });
  if (id == 0) return st.ok() ? Status::error(Errc::io, "message not sent") : st;
  Status r;
  switch (await(s, s.joins, id, s.opt.core.tcp_timeout + kWaitSlack, r)) {
    case Waited::done: return r;
    case Waited::closed: return shut_down();
    case Waited::timeout: return Status::error(Errc::timeout, "timed out sending to " + node);
  }
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
  if (s.closing) return shut_down();
  std::lock_guard<std::mutex> l(s.fr_mu);
  if (s.fr->keyring) return s.fr->keyring->install(key);
  auto keyring = std::make_shared<wire::Keyring>();
  if (auto st = keyring->install(key); !st.ok()) return st;
  s.change_framing([&](wire::FramingOptions& f) { f.keyring = std::move(keyring); });
  s.log->info("keyring created: encryption {}", wire::encrypts(*s.fr) ? "on" : "installed (verify_outgoing off)");
  return Status::success();
}

Status Node::keyring_use(std::span<const uint8_t> key) {
  if (impl_->s->closing) return shut_down();
  auto fr = impl_->s->framing();
  if (!fr->keyring) return Status::error(Errc::not_found, "no keyring: the key is not installed");
  return fr->keyring->use(key);
}

Status Node::keyring_remove(std::span<const uint8_t> key) {
  if (impl_->s->closing) return shut_down();
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
  if (s.closing) return shut_down();
  std::lock_guard<std::mutex> l(s.fr_mu);
  s.change_framing([&](wire::FramingOptions& f) {
    f.verify_incoming = incoming;
    f.verify_outgoing = outgoing;
  });
  s.log->info("gossip verify incoming={} outgoing={}", incoming, outgoing);
  return Status::success();
}

Status Node::shutdown() {
  if (auto st = refuse_blocking(*this, "shutdown"); !st.ok()) return st;
  impl_->s->shutdown(true);
  return Status::success();
}

}  // namespace memberlist::runtime
