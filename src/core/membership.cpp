// Membership (reference §3.8, the reference's state.go and suspicion.go): the alive, suspect
// and dead rules with refutation, suspicion timeouts shortened by confirmations, reaping of
// dead and left nodes, and updates of our own metadata.
#include <algorithm>
#include <string>

#include "core/formulas.h"
#include "core/impl.h"

namespace memberlist::core {

namespace {

std::string vsn_string(const Vsn& v) {
  return "[" + std::to_string(v.pmin) + " " + std::to_string(v.pmax) + " " + std::to_string(v.pcur) +
         " " + std::to_string(v.dmin) + " " + std::to_string(v.dmax) + " " + std::to_string(v.dcur) +
         "]";
}

}  // namespace

// Metadata must respect meta_max_size, and our alive message must fit a gossip datagram.
Status Core::Impl::check_meta(const Bytes& meta) const {
  if (meta.size() > cfg.meta_max_size)
    return Status::error(Errc::too_large, "node metadata is " + std::to_string(meta.size()) +
                                              " bytes, the limit (meta_max_size) is " +
                                              std::to_string(cfg.meta_max_size));
  const size_t enc = codec->encode(Alive{incarnation + 1, cfg.name, cfg.advertise, meta, cfg.vsn()}).size();
  if (enc > max_broadcast_size())
    return Status::error(Errc::too_large, "node metadata of " + std::to_string(meta.size()) +
                                              " bytes makes an alive message of " + std::to_string(enc) +
                                              " bytes, more than a datagram of udp_buffer_size (" +
                                              std::to_string(cfg.udp_buffer_size) + ") can carry");
  return Status::success();
}

void Core::Impl::insert_node(std::unique_ptr<NodeRec> rec) {
  // Append, then swap with a random position: new nodes are probed at a random point.
  size_t n = nodes.size();
  size_t offset = random_index(n);
  node_map.insert(rec.get());
  if (rec->info.name == cfg.name) me = rec.get();
  by_state[static_cast<size_t>(rec->info.state)]++;
  const bool mine = rec.get() == me;
  nodes.push_back(std::move(rec));
  std::swap(nodes[offset], nodes[n]);
  if (mine)
    self_pos = offset;
  else if (self_pos == offset)
    self_pos = n;
}

void Core::Impl::refute(NodeRec& me, uint32_t accused) {
  uint32_t inc = ++incarnation;
  if (accused >= inc) inc = incarnation = accused + 1;
  me.info.incarnation = inc;
  apply_awareness(1);
  st.refutes++;
  broadcast(cfg.name, self_alive());
}

// `done` (local bootstrap/updates only) follows the alive broadcast we queue.
void Core::Impl::alive_node(const Alive& a, bool bootstrap, Instant now, TransmitLimitedQueue::Done done) {
  if (left && a.node == cfg.name) return;
  if (a.vsn.pmin == 0 || a.vsn.pmax == 0 || a.vsn.pmin > a.vsn.pmax) {
    bad("bad_vsn", LogLevel::Warn,
        "Ignoring an alive message for '" + a.node + "' (" + a.addr.to_string() +
            ") because protocol version(s) are wrong: " + std::to_string(a.vsn.pmin) + " <= " +
            std::to_string(a.vsn.pcur) + " <= " + std::to_string(a.vsn.pmax) + " should be >0");
    return;
  }
  if (incarnation_refused(a.incarnation, a.node, "alive")) return;
  if (a.node != cfg.name) {
    if (Status v = speaks_with_us(a.vsn); !v.ok()) {
      bad("incompatible_vsn", LogLevel::Warn,
          "Ignoring an alive message for '" + a.node + "' (" + a.addr.to_string() + "): " + v.message);
      return;
    }
  }
  if (a.node.empty() && !bootstrap) {
    bad("empty_name");
    return;
  }
  NodeRec* r = find(a.node);
  const bool local = a.node == cfg.name;
  // The alive hook sees every message about another node that would change something.
  if (!local && delegate &&
      (r == nullptr || a.incarnation > r->info.incarnation || r->info.addr != a.addr)) {
    Status verdict = hook([&](Delegate& d) { return d.notify_alive(info_of(a)); });
    if (!verdict.ok()) {
      log(LogLevel::Debug, "Ignoring an alive message for '" + a.node + "' (" + a.addr.to_string() +
                               "): rejected by the delegate: " + verdict.message);
      metrics.incr("memberlist.alive.rejected");
      return;
    }
    r = find(a.node);
  }
  // The allow-list, for a new node or a new address of a known one (as the reference).
  if (!local && (r == nullptr || r->info.addr != a.addr) && cfg.address_allowed && !cfg.address_allowed(a.addr)) {
    metrics.incr("memberlist.node.rejected");
    auto n = static_cast<uint64_t>(metrics.counter("memberlist.node.rejected"));
    log(keeps_level(n) ? LogLevel::Warn : LogLevel::Debug,
        "Rejected node " + a.node + " (" + a.addr.to_string() + "): address not allowed (" + std::to_string(n) +
            " so far)");
    return;
  }
  bool updates_addr = false;
  if (r == nullptr) {
    auto rec = std::make_unique<NodeRec>();
    rec->info.name = a.node;
    rec->info.addr = a.addr;
    rec->info.meta = a.meta;
    rec->info.state = NodeState::Dead;
    rec->info.incarnation = 0;
    rec->info.vsn = a.vsn;
    rec->state_change = now;
    r = rec.get();
    insert_node(std::move(rec));
  } else if (r->info.addr != a.addr) {
    bool can_reclaim = cfg.dead_node_reclaim_time > Duration::zero() &&
                       now - r->state_change > cfg.dead_node_reclaim_time;
    if (r->info.state == NodeState::Left || (r->info.state == NodeState::Dead && can_reclaim)) {
      log(LogLevel::Info, "Updating address for left or failed node " + a.node + " from " +
                              r->info.addr.to_string() + " to " + a.addr.to_string());
      updates_addr = true;
    } else {
      conflicts++;
      log(keeps_level(conflicts) ? LogLevel::Error : LogLevel::Debug,
          "Conflicting address for " + a.node + ". Mine: " + r->info.addr.to_string() + " Theirs: " +
              a.addr.to_string() + " Old state: " + to_string(r->info.state));
      notifications.push_back(Conflict{r->info, info_of(a)});
      return;
    }
  }

  if (a.incarnation <= r->info.incarnation && !local && !updates_addr) return;
  if (a.incarnation < r->info.incarnation && local) return;

  clear_suspicion(*r);
  const NodeState old_state = r->info.state;
  const Bytes old_meta = r->info.meta;

  if (!bootstrap && local) {
    // Same incarnation and same content: our own news coming back.
    if (a.incarnation == r->info.incarnation && a.meta == r->info.meta && a.vsn == r->info.vsn) return;
    refute(*r, a.incarnation);
    log(LogLevel::Warn, "Refuting an alive message for '" + a.node + "' (" + a.addr.to_string() +
                            ") vsn:(" + vsn_string(a.vsn) + " VS " + vsn_string(r->info.vsn) + ")");
  } else {
    broadcast(a.node, a, std::move(done));
    r->info.vsn = a.vsn;
    r->info.incarnation = a.incarnation;
    r->info.meta = a.meta;
    r->info.addr = a.addr;
    if (r->info.state != NodeState::Alive) {
      set_state(*r, NodeState::Alive);
      r->state_change = now;
    }
  }
  metrics.incr("memberlist.msg.alive");

  if (dead_or_left(old_state))
    emit(EventType::Join, r->info);
  else if (old_meta != r->info.meta)
    emit(EventType::Update, r->info);
}

void Core::Impl::suspect_node(const Suspect& s, Instant now) {
  if (incarnation_refused(s.incarnation, s.node, "suspect")) return;
  NodeRec* r = find(s.node);
  if (r == nullptr) return;
  if (s.incarnation < r->info.incarnation) return;

  // Already suspected: a new accuser is an independent confirmation, worth re-gossiping.
  if (r->suspicion) {
    if (confirm(*r, s.from, now)) broadcast(s.node, s);
    return;
  }
  if (r->info.state != NodeState::Alive) return;

  if (s.node == cfg.name) {
    refute(*r, s.incarnation);
    log(LogLevel::Warn, "Refuting a suspect message (from: " + s.from + ")");
    return;
  }
  broadcast(s.node, s);
  st.suspicions++;
  metrics.incr("memberlist.msg.suspect");
  r->info.incarnation = s.incarnation;
  set_state(*r, NodeState::Suspect);
  r->state_change = now;

  // k confirmations expected; none if the cluster is too small to give them (minus us
  // and the suspect).
  const size_t n = est_num_nodes();
  int k = cfg.suspicion_mult - 2;
  if (static_cast<int64_t>(n) - 2 < k) k = 0;
  Suspicion sus;
  sus.k = k;
  sus.min = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval);
  sus.max = sus.min * cfg.suspicion_max_timeout_mult;
  sus.start = now;
  sus.confirmed.insert(s.from);
  Duration timeout = k < 1 ? sus.min : sus.max;
  sus.timer = schedule(now + timeout, TimerKind::Suspicion, 0, s.node);
  r->suspicion = std::make_unique<Suspicion>(std::move(sus));
}

// Returns true if `from` is a new confirmation (the timer has been shortened).
bool Core::Impl::confirm(NodeRec& r, const std::string& from, Instant now) {
  Suspicion& s = *r.suspicion;
  if (s.confirmations >= s.k) return false;
  if (!s.confirmed.insert(from).second) return false;
  s.confirmations++;
  Duration remaining = remaining_suspicion_time(s.confirmations, s.k, now - s.start, s.min, s.max);
  cancel(s.timer);
  // Overdue timers fire at `now`, on the next handle_timeout.
  s.timer = schedule(remaining > Duration::zero() ? now + remaining : now, TimerKind::Suspicion, 0, r.info.name);
  return true;
}

void Core::Impl::suspicion_expired(const std::string& name, Instant now) {
  NodeRec* r = find(name);
  if (r == nullptr || !r->suspicion) return;
  r->suspicion->timer = 0;  // fired
  if (r->info.state != NodeState::Suspect) return;
  const int k = r->suspicion->k;
  const int n = r->suspicion->confirmations;
  if (k > 0 && n < k) {
    st.degraded_timeouts++;
    metrics.incr("memberlist.degraded.timeout");
  }
  log(LogLevel::Info, "Marking " + name + " as failed, suspect timeout reached (" + std::to_string(n) +
                          " peer confirmations)");
  dead_node(Dead{r->info.incarnation, name, cfg.name}, now);
}

void Core::Impl::dead_node(const Dead& d, Instant now) {
  if (incarnation_refused(d.incarnation, d.node, "dead")) return;
  NodeRec* r = find(d.node);
  const bool leaves = d.node == d.from;
  if (r == nullptr) {
    if (leaves) forget_dead(d.node);  // it left after we forgot it: never try it again
    return;
  }
  if (d.incarnation < r->info.incarnation) return;
  if (leaves) forget_dead(d.node);
  clear_suspicion(*r);
  if (dead_or_left(r->info.state)) return;

  if (d.node == cfg.name) {
    if (!left) {
      refute(*r, d.incarnation);
      log(LogLevel::Warn, "Refuting a dead message (from: " + d.from + ")");
      return;
    }
    broadcast(d.node, d, [this](FinishReason) { leave_done = true; });
  } else {
    broadcast(d.node, d);
  }
  r->info.incarnation = d.incarnation;
  set_state(*r, leaves ? NodeState::Left : NodeState::Dead);
  r->state_change = now;
  metrics.incr("memberlist.msg.dead");
  emit(EventType::Leave, r->info);
  if (!leaves) remember_dead(*r, now);
  if (reconnect_wanted()) arm_reconnect(now);
}

// Reaps Dead and Left nodes older than gossip_to_the_dead_time, then reshuffles.
void Core::Impl::reset_nodes(Instant now) {
  std::vector<std::unique_ptr<NodeRec>> keep;
  for (auto& n : nodes) {
    bool reap = !is_self(*n) && dead_or_left(n->info.state) &&
                now - n->state_change > cfg.gossip_to_the_dead_time;
    if (reap) {
      clear_suspicion(*n);
      node_map.erase(n->info.name);
      by_state[static_cast<size_t>(n->info.state)]--;
    } else {
      keep.push_back(std::move(n));
    }
  }
  nodes = std::move(keep);
  shuffle(nodes);
  self_pos = static_cast<size_t>(std::find_if(nodes.begin(), nodes.end(), [&](const auto& p) { return is_self(*p); }) -
                                 nodes.begin());
  expire_seen_origins(now);
}

Status Core::Impl::update_meta(Bytes meta, Instant now, uint64_t* token) {
  if (hook_depth > 0) return Status::error(Errc::state, "update_meta cannot be called from a delegate hook");
  if (left) return Status::error(Errc::state, "the local node has left");
  if (Status s = check_meta(meta); !s.ok()) return s;
  const uint64_t tok = ++next_token;
  if (token) *token = tok;
  // Nobody to tell: finished at once, as the reference's UpdateNode.
  if (any_alive_other()) pending_tokens.insert(tok);
  Alive a{++incarnation, cfg.name, cfg.advertise, std::move(meta), cfg.vsn()};
  alive_node(a, true, now, [this, tok](FinishReason) { pending_tokens.erase(tok); });
  return Status::success();
}

}  // namespace memberlist::core
