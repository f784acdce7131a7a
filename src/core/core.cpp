// The protocol state machine (reference §3): membership, probing, suspicion, gossip,
// push/pull, leave. Every input carries the time; every output is queued for the driver.
// This file holds the public Core methods, the dispatch of inputs and timers, and the
// outputs; the protocol's parts live in one file each (see impl.h).
#include "core/core.h"

#include <algorithm>
#include <string>

#include "core/impl.h"

namespace memberlist::core {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void Core::Impl::sample_node_instances() {
  for (NodeState st_ : {NodeState::Alive, NodeState::Suspect, NodeState::Dead, NodeState::Left})
    metrics.set_gauge("memberlist.node.instances", static_cast<double>(by_state[static_cast<size_t>(st_)]),
                      {{"node_state", to_string(st_)}});
}

void Core::Impl::queue_check_tick(Instant now) {
  metrics.set_gauge("memberlist.queue.broadcasts", static_cast<double>(queue.size()));
  metrics.set_gauge("memberlist.queue.user_broadcasts", static_cast<double>(user_queue.size()));
  sample_node_instances();
  schedule(now + cfg.queue_check_interval, TimerKind::QueueCheck);
}

// Every timer runs from here; the kinds and their payloads are listed in core.h.
void Core::Impl::fire(const TimerHeap::Fired& t, Instant now) {
  switch (t.kind) {
    case TimerKind::ProbeTick: probe_tick(t.at, now); return;
    case TimerKind::PushPullStagger: push_pull_tick(now, false); return;
    case TimerKind::PushPullTick: push_pull_tick(now, true); return;
    case TimerKind::QueueCheck: queue_check_tick(now); return;
    case TimerKind::GossipTick: gossip_tick(t.at, now); return;
    case TimerKind::ProbeTimeout: probe_direct_timeout(now); return;
    case TimerKind::ProbeReap: probe_reaped(now); return;
    case TimerKind::ProbeTcpWait: probe_tcp_wait_over(now); return;
    case TimerKind::Suspicion: suspicion_expired(t.node, now); return;
    case TimerKind::IndirectPingTimeout: indirect_ping_timeout(t.seq); return;
    case TimerKind::PingTimeout: ping_timeout(t.seq, t.node); return;
    case TimerKind::JoinPushPull: push_pull_random(now); return;
    case TimerKind::ReconnectTick: reconnect_tick(now); return;
    case TimerKind::ReconnectPingTimeout: reconnect_ping_timeout(t.seq); return;
    case TimerKind::BroadcastSettle: settle_exchange(now); return;
  }
}

void Core::Impl::handle_message(const Address& from, const Message& m, Instant now) {
  std::visit(
      [&](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, Ping>) handle_ping(from, msg);
        else if constexpr (std::is_same_v<T, IndirectPing>) handle_indirect_ping(from, msg, now);
        else if constexpr (std::is_same_v<T, Ack>) handle_ack(msg, now);
        else if constexpr (std::is_same_v<T, Nack>) handle_nack(msg);
        else if constexpr (std::is_same_v<T, Alive>) alive_node(msg, false, now);
        else if constexpr (std::is_same_v<T, Suspect>) suspect_node(msg, now);
        else if constexpr (std::is_same_v<T, Dead>) dead_node(msg, now);
        else if constexpr (std::is_same_v<T, UserMsg>) handle_user_msg(from, msg);
        else if constexpr (std::is_same_v<T, UserBroadcast>) handle_user_broadcast(msg, now, msg.repaired);
        else {
          bad("unexpected_type", LogLevel::Warn, "Unexpected message in a packet from=" + from.to_string());
        }
      },
      m);
}

// ---- Core -------------------------------------------------------------------------------

Core::Core(Config config, std::shared_ptr<const Codec> codec, Instant now)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(codec))) {
  Impl& s = *impl_;
  // Metadata: the delegate's if it has some, else the config's; refused ones are reported
  // by start_status() and replaced by the config's (or nothing).
  Bytes meta = s.cfg.meta;
  if (s.delegate) {
    std::optional<Bytes> m = s.hook([&](Delegate& d) { return d.node_meta(s.cfg.meta_max_size); });
    if (m) meta = std::move(*m);
  }
  if (Status ms = s.check_meta(meta); !ms.ok()) {
    s.start_status = ms;
    s.log(LogLevel::Error, "Refusing the local node metadata: " + ms.message);
    meta = s.check_meta(s.cfg.meta).ok() ? s.cfg.meta : Bytes{};
  }
  // Broadcast ids of another run of the same node must not look like ours: the epoch mixes
  // the seed (random in production) with the start time.
  s.broadcast_epoch = static_cast<uint32_t>(splitmix64(s.cfg.seed ^ splitmix64(static_cast<uint64_t>(now.count()))));
  s.metrics.set_gauge("memberlist.health.score", 0);
  s.member_since = now;
  // Bootstrap: ourselves, Alive at incarnation 1, with a Join event and an alive broadcast.
  s.alive_node(Alive{++s.incarnation, s.cfg.name, s.cfg.advertise, std::move(meta), s.cfg.vsn()}, true, now);
  // Stagger the periodic tasks by a random fraction of their interval.
  if (s.cfg.probe_interval > Duration::zero()) {
    Instant first = now + s.random_stagger(s.cfg.probe_interval);
    s.schedule(first, TimerKind::ProbeTick);
  }
  if (s.cfg.push_pull_interval > Duration::zero()) {
    Instant first = now + s.random_stagger(s.cfg.push_pull_interval);
    s.schedule(first, TimerKind::PushPullStagger);
  }
  if (s.cfg.gossip_interval > Duration::zero() && s.cfg.gossip_nodes > 0) {
    Instant first = now + s.random_stagger(s.cfg.gossip_interval);
    s.schedule(first, TimerKind::GossipTick);
  }
  if (s.cfg.queue_check_interval > Duration::zero())
    s.schedule(now + s.cfg.queue_check_interval, TimerKind::QueueCheck);
}

Core::~Core() = default;

void Core::handle_packet(const Address& from, std::span<const uint8_t> data, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  std::vector<Message> msgs;
  Status s = impl_->codec->decode(data, msgs);
  if (!s.ok()) {
    impl_->bad("decode", LogLevel::Error, "Failed to decode packet: " + s.message + " from=" + from.to_string());
  }
  impl_->replies_left = impl_->cfg.max_replies_per_packet;
  for (const Message& m : msgs) impl_->handle_message(from, m, now);
  impl_->replies_left = UINT32_MAX;
}

std::optional<Bytes> Core::handle_stream(const Address& from, std::span<const uint8_t> data, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  return impl_->handle_stream(from, data, now);
}

Status Core::handle_stream_response(uint64_t id, const Status& transport, std::span<const uint8_t> reply,
                                    Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  auto it = s.streams.find(id);
  if (it == s.streams.end()) {
    s.bad("unknown_stream");
    return Status::error(Errc::not_found, "unknown stream id " + std::to_string(id));
  }
  Impl::PendingStream ps = it->second;
  s.streams.erase(it);

  switch (ps.kind) {
    case Impl::PendingStream::TcpPing: return s.tcp_ping_done(id, ps, transport, reply, now);
    case Impl::PendingStream::UserMsgReq:
      if (!transport.ok()) s.log(LogLevel::Error, "Failed to send a user message to " + ps.to.to_string() + ": " + transport.message);
      return transport;
    case Impl::PendingStream::PushPullReq: break;
  }
  return s.push_pull_done(ps, transport, reply, now);
}

void Core::handle_timeout(Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  TimerHeap::Fired t;  // reused: see pop_due
  while (s.timers.pop_due(now, t)) s.fire(t, now);
}

uint64_t Core::join(const Address& to, Instant now) {
  impl_->remember_seed(to, now);
  return impl_->start_push_pull(to, true, now);
}

Status Core::leave(Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  if (s.hook_depth > 0) return Status::error(Errc::state, "leave cannot be called from a delegate hook");
  if (s.left) return Status::success();
  s.left = true;
  s.cancel(s.reconnect_timer);  // a node that left does not come back by itself
  // Node == From marks a graceful leave for everyone else.
  const Dead leave{s.self().info.incarnation, s.cfg.name, s.cfg.name};
  s.dead_node(leave, now);
  // Beyond the reference: the leave also goes once, directly, to every live member. Gossip
  // alone sends it retransmit_mult * log10(n) times in all (2 in a small Local cluster), and
  // a node that epidemic misses would take the leaver for failed (it waits for a probe to
  // fail and a suspicion to expire) or learn it at the next push/pull.
  const Bytes msg = s.codec->encode(leave);
  for (const auto& n : s.nodes)
    if (!s.is_self(*n) && !dead_or_left(n->info.state)) s.transmits.push_back({n->info.addr, msg});
  return Status::success();
}

bool Core::leave_propagated() const { return impl_->left && (impl_->leave_done || !impl_->any_alive_other()); }

bool Core::has_left() const { return impl_->left; }

size_t Core::seed_members(const std::vector<NodeInfo>& members, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  size_t added = 0;
  s.nodes.reserve(s.nodes.size() + members.size());
  s.node_map.reserve(s.nodes.size() + members.size());
  for (const NodeInfo& m : members) {
    if (m.name.empty() || m.incarnation == 0 || s.find(m.name) != nullptr) continue;
    auto rec = std::make_unique<Impl::NodeRec>();
    rec->info = m;
    rec->info.state = NodeState::Alive;
    rec->state_change = now;
    s.insert_node(std::move(rec));
    added++;
  }
  s.queue.reset();
  return added;
}

uint64_t Core::ping(const std::string& name, const Address& addr, Instant now) { return impl_->ping(name, addr, now); }

const Status& Core::start_status() const { return impl_->start_status; }

Status Core::update_meta(Bytes meta, Instant now, uint64_t* token) {
  Impl::ResumeGossip resume{*impl_, now};
  return impl_->update_meta(std::move(meta), now, token);
}

Status Core::update_node(Instant now, uint64_t* token) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  if (s.hook_depth > 0) return Status::error(Errc::state, "update_node cannot be called from a delegate hook");
  std::optional<Bytes> meta;
  if (s.delegate) meta = s.hook([&](Delegate& d) { return d.node_meta(s.cfg.meta_max_size); });
  return s.update_meta(meta ? std::move(*meta) : s.self().info.meta, now, token);
}

bool Core::broadcast_finished(uint64_t token) const {
  return token != 0 && token <= impl_->next_token && impl_->pending_tokens.count(token) == 0;
}

Status Core::send_best_effort(const Address& to, Bytes payload, Instant now) {
  Impl& s = *impl_;
  (void)now;
  const size_t n = payload.size();
  Bytes enc = s.codec->encode(UserMsg{std::move(payload)});
  if (enc.size() > s.cfg.max_best_effort_size)
    return Status::error(Errc::too_large, "user message of " + std::to_string(n) + " bytes encodes to " +
                                              std::to_string(enc.size()) + " bytes, more than a best-effort datagram carries (" +
                                              std::to_string(s.cfg.max_best_effort_size) + "); use send_reliable");
  s.metrics.incr("memberlist.user.messages.sent");
  s.transmits.push_back({to, std::move(enc)});
  return Status::success();
}

uint64_t Core::send_reliable(const Address& to, Bytes payload, Instant now, Status& status) {
  Impl& s = *impl_;
  if (payload.size() > s.cfg.max_user_msg_size) {
    status = Status::error(Errc::too_large, "user message of " + std::to_string(payload.size()) +
                                                " bytes is over max_user_msg_size (" +
                                                std::to_string(s.cfg.max_user_msg_size) + ")");
    return 0;
  }
  StreamRequest req;
  req.id = ++s.next_stream_id;
  req.to = to;
  req.payload = s.codec->encode_stream(UserMsg{std::move(payload)});
  req.expect_reply = false;
  req.deadline = now + s.cfg.tcp_timeout;
  s.streams[req.id] = Impl::PendingStream{Impl::PendingStream::UserMsgReq, false, 0, to, now};
  s.metrics.incr("memberlist.user.messages.sent");
  const uint64_t id = req.id;
  s.stream_requests.push_back(std::move(req));
  status = Status::success();
  return id;
}

namespace {
Status no_member(const std::string& node) {
  return Status::error(Errc::not_found, "no live member named '" + node + "'");
}
}  // namespace

Status Core::send_best_effort(const std::string& node, Bytes payload, Instant now) {
  const auto* r = impl_->find(node);
  if (r == nullptr || dead_or_left(r->info.state)) return no_member(node);
  return send_best_effort(r->info.addr, std::move(payload), now);
}

uint64_t Core::send_reliable(const std::string& node, Bytes payload, Instant now, Status& status) {
  const auto* r = impl_->find(node);
  if (r == nullptr || dead_or_left(r->info.state)) {
    status = no_member(node);
    return 0;
  }
  return send_reliable(r->info.addr, std::move(payload), now, status);
}

Status Core::queue_broadcast(std::string name, Bytes payload, uint64_t& id, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  return impl_->queue_broadcast(std::move(name), std::move(payload), id, now);
}

size_t Core::num_queued_broadcasts() const { return impl_->user_queue.size(); }
void Core::prune_broadcasts(size_t max_retain) { impl_->user_queue.prune(max_retain); }
void Core::reset_broadcasts() {
  impl_->user_queue.reset();
  impl_->end_repairs();
}

Metrics& Core::metrics() { return impl_->metrics; }
const Metrics& Core::metrics() const { return impl_->metrics; }

std::vector<NodeInfo> Core::members() const {
  std::vector<NodeInfo> out;
  for (const auto& n : impl_->nodes)
    if (!dead_or_left(n->info.state)) out.push_back(n->info);
  std::sort(out.begin(), out.end(), [](const NodeInfo& a, const NodeInfo& b) { return a.name < b.name; });
  return out;
}

size_t Core::num_members() const {
  size_t n = 0;
  for (const auto& r : impl_->nodes)
    if (!dead_or_left(r->info.state)) n++;
  return n;
}

std::vector<NodeInfo> Core::all_nodes() const {
  std::vector<NodeInfo> out;
  for (const auto& n : impl_->nodes) out.push_back(n->info);
  std::sort(out.begin(), out.end(), [](const NodeInfo& a, const NodeInfo& b) { return a.name < b.name; });
  return out;
}

NodeInfo Core::local_node() const { return impl_->self().info; }

// A scan: called per datagram only by drivers that need it (hashicorp mode), where
// clusters are small enough for it not to matter next to the encoding.
uint8_t Core::protocol_max_at(const Address& to) const {
  for (const auto& n : impl_->nodes)
    if (n->info.addr == to) return n->info.vsn.pmax;
  return 0;
}

int Core::health_score() const { return impl_->awareness.score(); }

Stats Core::stats() const {
  Stats out = impl_->st;
  out.alive = impl_->by_state[static_cast<size_t>(NodeState::Alive)];
  out.suspect = impl_->by_state[static_cast<size_t>(NodeState::Suspect)];
  out.dead = impl_->by_state[static_cast<size_t>(NodeState::Dead)];
  out.left = impl_->by_state[static_cast<size_t>(NodeState::Left)];
  out.broadcast_queue = impl_->queue.size();
  out.broadcast_origins = impl_->seen.size();
  out.conflicts = impl_->conflicts;
  return out;
}

const Config& Core::config() const { return impl_->cfg; }

std::optional<Instant> Core::poll_exact_timeout() const {
  return impl_->timers.next_exact();
}

std::vector<TimerInfo> Core::pending_timers() const { return impl_->timers.pending(); }

std::optional<Instant> Core::poll_timeout() const {
  return impl_->timers.next();
}

namespace {
template <class T>
std::optional<T> pop(std::deque<T>& q) {
  if (q.empty()) return std::nullopt;
  T v = std::move(q.front());
  q.pop_front();
  return v;
}
}  // namespace

std::optional<Transmit> Core::poll_transmit() { return pop(impl_->transmits); }
std::optional<StreamRequest> Core::poll_stream() { return pop(impl_->stream_requests); }
std::optional<Event> Core::poll_event() { return pop(impl_->events); }
std::optional<PingResult> Core::poll_ping_result() { return pop(impl_->ping_results); }
std::optional<Notification> Core::poll_notification() { return pop(impl_->notifications); }

}  // namespace memberlist::core
