// Automatic reconnection (not in the reference; Serf's reconnect loop, done inside): dead
// members are remembered beyond reaping and retried one per reconnect_interval, and the
// join addresses (seeds) are re-joined while no other member is alive. See
// Config::reconnect_interval for the rules.
//
// A dead member is first pinged by name at its old address; only a node that answers to
// that name gets the push/pull (a join), so neither another node now at that address nor an
// address whose name moved elsewhere is merged with. The push/pull then tells each side
// what the other believes (you are dead), and the accused refute, as after a manual join.
#include <algorithm>
#include <string>

#include "core/impl.h"

namespace memberlist::core {

namespace {
const MetricLabels kToMember{{"target", "member"}};
const MetricLabels kToSeed{{"target", "seed"}};
}  // namespace

void Core::Impl::remember_dead(const NodeRec& r, Instant now) {
  if (is_self(r) || cfg.reconnect_interval <= Duration::zero()) return;
  forget_dead(r.info.name);
  reconnect_members.push_back(DeadMember{r.info.name, r.info.addr, now});
  if (reconnect_members.size() > cfg.max_reconnect_members) {
    reconnect_members.pop_front();
    metrics.incr("memberlist.reconnect.forgotten");
  }
}

void Core::Impl::forget_dead(const std::string& name) {
  std::erase_if(reconnect_members, [&](const DeadMember& d) { return d.name == name; });
}

void Core::Impl::remember_seed(const Address& a, Instant now) {
  if (cfg.reconnect_interval <= Duration::zero() || a == cfg.advertise) return;
  if (std::find(seeds.begin(), seeds.end(), a) == seeds.end()) {
    seeds.push_back(a);
    if (seeds.size() > kMaxReconnectSeeds) seeds.erase(seeds.begin());
  }
  if (reconnect_wanted()) arm_reconnect(now);
}

bool Core::Impl::reconnect_wanted() const {
  if (left || cfg.reconnect_interval <= Duration::zero()) return false;
  return !reconnect_members.empty() || (cfg.reconnect_seeds && !seeds.empty() && !any_alive_other());
}

// The timer runs only while there is something to try: a healthy cluster (and a simulator
// of one) sees no extra wake-ups. The first tick comes at a random point of the interval,
// so that nodes that saw the same deaths do not all try at once.
void Core::Impl::arm_reconnect(Instant now) {
  if (reconnect_timer != 0) return;
  const Duration stagger(static_cast<int64_t>(reconnect_random() % static_cast<uint64_t>(cfg.reconnect_interval.count())));
  reconnect_timer = schedule(now + stagger, TimerKind::ReconnectTick);
}

void Core::Impl::reconnect_tick(Instant now) {
  reconnect_timer = 0;
  if (left || cfg.reconnect_interval <= Duration::zero()) return;
  // Forget who is past reconnect_timeout, back (alive or suspect), gone (left), or whose
  // name now lives at another address (replaced: the old address is not that node).
  std::erase_if(reconnect_members, [&](const DeadMember& d) {
    if (now - d.since > cfg.reconnect_timeout) return true;
    const NodeRec* r = find(d.name);
    return r != nullptr && (r->info.state != NodeState::Dead || r->info.addr != d.addr);
  });
  if (!reconnect_members.empty()) {
    const DeadMember& d = reconnect_members[reconnect_random() % reconnect_members.size()];
    const uint32_t seq = ++seq_no;
    AckHandler h{ReconnectAck{d.name, d.addr}, 0};
    h.timer = schedule(now + std::max(cfg.probe_timeout, cfg.probe_interval), TimerKind::ReconnectPingTimeout, seq);
    ack_handlers[seq] = std::move(h);
    transmits.push_back(Transmit{d.addr, codec->encode(make_ping(seq, d.name))});
    metrics.incr("memberlist.reconnect.attempts", 1, kToMember);
    if (cfg.log) log(LogLevel::Debug, "Trying to reconnect to dead member " + d.name + " " + d.addr.to_string());
  }
  if (cfg.reconnect_seeds && !seeds.empty() && !any_alive_other()) {
    const Address to = seeds[next_seed++ % seeds.size()];
    log(LogLevel::Info, "No other member is alive: re-joining seed " + to.to_string());
    const uint64_t id = start_push_pull(to, true, now);
    streams[id].reconnect = PendingStream::ToSeed;
    metrics.incr("memberlist.reconnect.attempts", 1, kToSeed);
  }
  if (reconnect_wanted()) reconnect_timer = schedule(now + cfg.reconnect_interval, TimerKind::ReconnectTick);
}

// The dead member answered to its name at its old address: join it.
void Core::Impl::reconnect_acked(const ReconnectAck& a, Instant now) {
  if (left) return;
  const NodeRec* r = find(a.node);
  if (r != nullptr && (r->info.state != NodeState::Dead || r->info.addr != a.addr)) return;  // news came first
  log(LogLevel::Info, "Dead member " + a.node + " " + a.addr.to_string() + " answered: reconnecting");
  const uint64_t id = start_push_pull(a.addr, true, now);
  streams[id].reconnect = PendingStream::ToMember;
}

void Core::Impl::reconnect_ping_timeout(uint32_t seq) {
  auto it = ack_handlers.find(seq);
  if (it == ack_handlers.end()) return;
  const ReconnectAck a = std::get<ReconnectAck>(it->second.kind);
  ack_handlers.erase(it);
  if (cfg.log) log(LogLevel::Debug, "Dead member " + a.node + " " + a.addr.to_string() + " did not answer");
}

}  // namespace memberlist::core
