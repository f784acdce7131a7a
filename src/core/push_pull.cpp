// Push/pull (reference §3.7, the reference's state.go pushPull and net.go stream handling):
// the periodic exchange, joins and the post-join burst, our local state, merging a peer's,
// and incoming streams.
#include <algorithm>
#include <string>

#include "core/formulas.h"
#include "core/impl.h"

namespace memberlist::core {

// As the reference's pushPullTrigger: after the start-up stagger the loop first waits a
// full (scaled) interval, then exchanges once per interval.
void Core::Impl::push_pull_tick(Instant now, bool exchange) {
  if (exchange) {
    // After the broadcast news settled, this exchange is the settle exchange.
    if (settle.wanted && now >= settle.news_last + settle_time()) settle.wanted = false;
    push_pull_random(now);
  }
  Instant next = now + push_pull_scale(cfg.push_pull_interval, est_num_nodes());
  schedule(next, TimerKind::PushPullTick);
}

// One periodic-style exchange with a random Alive member other than us, if any.
bool Core::Impl::push_pull_random(Instant now) {
  auto peers = k_random_nodes(1, [&](const NodeRec& r) {
    return is_self(r) || r.info.state != NodeState::Alive;
  });
  if (peers.empty()) return false;
  const Address to = peers[0]->info.addr;
  if (cfg.log) log(LogLevel::Debug, "Initiating push/pull sync with: " + peers[0]->info.name + " " + to.to_string());
  start_push_pull(to, false, now);
  return true;
}

// Post-join burst (Config::post_join_push_pulls): simultaneous joiners only learn the
// members that reached the seed before them, and gossip (sent retransmit_limit times,
// infect-and-die) leaves a residue of pairs that only anti-entropy repairs. A few early
// exchanges with random members square the missing fraction each time. Restarted by
// every successful join.
void Core::Impl::start_join_burst(Instant now) {
  for (uint64_t& id : burst_timers) cancel(id);
  burst_timers.clear();
  const Duration g = cfg.gossip_interval;
  if (cfg.post_join_push_pulls <= 0 || g <= Duration::zero() || cfg.push_pull_interval <= Duration::zero()) return;
  Duration at = 2 * g;
  for (int i = 0; i < cfg.post_join_push_pulls; ++i, at *= 2) {
    // Jitter of +-G/2 keeps simultaneous joiners from all pulling at the same instant.
    const Duration jitter = random_stagger(g) - g / 2;
    burst_timers.push_back(schedule(now + at + jitter, TimerKind::JoinPushPull));
  }
}

PushPull Core::Impl::local_state(bool join) {
  PushPull pp;
  pp.join = join;
  for (const auto& n : nodes)
    pp.nodes.push_back(PushNodeState{n->info.name, n->info.addr, n->info.meta, n->info.incarnation,
                                     n->info.state, n->info.vsn});
  if (delegate) pp.user_state = hook([join](Delegate& d) { return d.local_state(join); });
  sample_node_instances();
  return pp;
}

uint64_t Core::Impl::start_push_pull(const Address& to, bool join, Instant now) {
  StreamRequest req;
  req.id = ++next_stream_id;
  req.to = to;
  PushPull pp = local_state(join);
  if (!join) ask_for_repairs(pp, now);
  req.payload = codec->encode_stream(pp);
  req.expect_reply = true;
  req.deadline = now + cfg.tcp_timeout;
  const uint64_t id = req.id;
  streams[id] = PendingStream{PendingStream::PushPullReq, join, 0, to, now};
  stream_requests.push_back(std::move(req));
  return id;
}

Status Core::Impl::speaks_with_us(const Vsn& v) const {
  const Vsn me = cfg.vsn();
  auto within = [](uint8_t x, uint8_t lo, uint8_t hi) { return lo <= x && x <= hi; };
  if (!within(v.pcur, v.pmin, v.pmax) || !within(v.dcur, v.dmin, v.dmax)) {
    return Status::error(Errc::rejected, "its current versions are outside its own ranges");
  }
  if (!within(v.pcur, me.pmin, me.pmax) || !within(me.pcur, v.pmin, v.pmax)) {
    return Status::error(Errc::rejected, "protocol version " + std::to_string(v.pcur) + " (range [" +
                                             std::to_string(v.pmin) + ", " + std::to_string(v.pmax) +
                                             "]) is incompatible with ours (" + std::to_string(me.pcur) + ")");
  }
  if (!within(v.dcur, me.dmin, me.dmax) || !within(me.dcur, v.dmin, v.dmax)) {
    return Status::error(Errc::rejected, "delegate protocol version " + std::to_string(v.dcur) + " (range [" +
                                             std::to_string(v.dmin) + ", " + std::to_string(v.dmax) +
                                             "]) is incompatible with ours (" + std::to_string(me.dcur) + ")");
  }
  return Status::success();
}

Status Core::Impl::verify_protocol(const std::vector<PushNodeState>& remote) const {
  uint8_t maxpmin = 0, minpmax = 255, maxdmin = 0, mindmax = 255;
  auto widen = [&](const Vsn& v) {
    maxpmin = std::max(maxpmin, v.pmin);
    minpmax = std::min(minpmax, v.pmax);
    maxdmin = std::max(maxdmin, v.dmin);
    mindmax = std::min(mindmax, v.dmax);
  };
  for (const auto& r : remote)
    if (r.state == NodeState::Alive) widen(r.vsn);
  for (const auto& n : nodes)
    if (n->info.state == NodeState::Alive) widen(n->info.vsn);
  auto check = [&](const std::string& name, const Vsn& v) -> Status {
    if (v.pcur < maxpmin || v.pcur > minpmax)
      return Status::error(Errc::rejected, "Node '" + name + "' protocol version (" + std::to_string(v.pcur) +
                                               ") is incompatible: [" + std::to_string(maxpmin) + ", " +
                                               std::to_string(minpmax) + "]");
    if (v.dcur < maxdmin || v.dcur > mindmax)
      return Status::error(Errc::rejected, "Node '" + name + "' delegate protocol version (" +
                                               std::to_string(v.dcur) + ") is incompatible: [" +
                                               std::to_string(maxdmin) + ", " + std::to_string(mindmax) + "]");
    return Status::success();
  };
  for (const auto& r : remote)
    if (Status s = check(r.name, r.vsn); !s.ok()) return s;
  for (const auto& n : nodes)
    if (Status s = check(n->info.name, n->info.vsn); !s.ok()) return s;
  return Status::success();
}

void Core::Impl::merge_state(const std::vector<PushNodeState>& remote, Instant now) {
  for (const auto& r : remote) {
    switch (r.state) {
      case NodeState::Alive: alive_node(Alive{r.incarnation, r.name, r.addr, r.meta, r.vsn}, false, now); break;
      case NodeState::Left: dead_node(Dead{r.incarnation, r.name, r.name}, now); break;
      // A remote "dead" only makes us suspect: we may still reach the node.
      case NodeState::Dead:
      case NodeState::Suspect: suspect_node(Suspect{r.incarnation, r.name, cfg.name}, now); break;
    }
  }
}

// What must agree before a push/pull is merged: protocol versions, and for joins the
// merge hook. Nothing has changed yet when this fails.
Status Core::Impl::check_merge(const PushPull& pp, bool join) {
  if (pp.nodes.size() > cfg.max_push_nodes) {
    bad("push_pull_too_many_nodes");
    return Status::error(Errc::too_large, "push/pull carries " + std::to_string(pp.nodes.size()) +
                                              " nodes, over max_push_nodes (" + std::to_string(cfg.max_push_nodes) + ")");
  }
  if (Status s = verify_protocol(pp.nodes); !s.ok()) return s;
  if (join && delegate) {
    std::vector<NodeInfo> peers;
    peers.reserve(pp.nodes.size());
    for (const auto& n : pp.nodes) peers.push_back(info_of(n));
    Status verdict = hook([&](Delegate& d) { return d.notify_merge(peers); });
    if (!verdict.ok()) return Status::error(Errc::rejected, "merge rejected by the delegate: " + verdict.message);
  }
  return Status::success();
}

void Core::Impl::apply_merge(const PushPull& pp, bool join, Instant now) {
  merge_state(pp.nodes, now);
  if (delegate && !pp.user_state.empty())
    hook([&](Delegate& d) { d.merge_remote_state(pp.user_state, join); });
}

std::optional<Bytes> Core::Impl::handle_stream(const Address& from, std::span<const uint8_t> data, Instant now) {
  std::vector<Message> msgs;
  Status decoded = codec->decode_stream(data, msgs);  // not `st`: that is the member with our stats
  if (!decoded.ok() || msgs.size() != 1) {
    std::string why = decoded.ok() ? "expected exactly one message" : decoded.message;
    bad("stream_decode", LogLevel::Error, "Failed to receive stream: " + why + " from=" + from.to_string());
    return codec->encode_stream(ErrResp{why});
  }
  const Message& m = msgs[0];
  if (const auto* ping = std::get_if<Ping>(&m)) {
    if (!ping->node.empty() && ping->node != cfg.name) {
      bad("wrong_node", LogLevel::Warn, "Got ping for unexpected node " + ping->node + " from=" + from.to_string());
      return std::nullopt;
    }
    return codec->encode_stream(Ack{ping->seq, {}});
  }
  if (const auto* pp = std::get_if<PushPull>(&m)) {
    // A refused merge is answered with the reason instead of our state, so that the other
    // side merges nothing either.
    if (Status ms = check_merge(*pp, pp->join); !ms.ok()) {
      log(LogLevel::Error, "Failed push/pull merge: " + ms.message + " from=" + from.to_string());
      return codec->encode_stream(ErrResp{ms.message});
    }
    // Reply with our state as it was (as the reference does), then merge theirs.
    PushPull ours = local_state(pp->join);
    add_repairs(ours, *pp, now);
    Bytes reply = codec->encode_stream(ours);
    apply_merge(*pp, pp->join, now);
    return reply;
  }
  if (const auto* um = std::get_if<UserMsg>(&m)) {
    if (um->payload.size() > cfg.max_user_msg_size) {
      bad("user_msg_too_large", LogLevel::Error,
          "User message of " + std::to_string(um->payload.size()) + " bytes is over max_user_msg_size (" +
              std::to_string(cfg.max_user_msg_size) + ") from=" + from.to_string());
      return std::nullopt;
    }
    handle_user_msg(from, *um);
    return std::nullopt;
  }
  bad("unexpected_type", LogLevel::Error, "Received invalid msg type on a stream from=" + from.to_string());
  return codec->encode_stream(ErrResp{"unexpected message type on a stream"});
}

Status Core::Impl::push_pull_done(const PendingStream& ps, const Status& transport, std::span<const uint8_t> reply,
                                   Instant now) {
  metrics.observe_ms("memberlist.pushPullNode", ms(now - ps.started));
  if (!transport.ok()) {
    // A reconnect attempt to a node still down is what it is for: no error.
    log(ps.reconnect != PendingStream::NoReconnect ? LogLevel::Debug : LogLevel::Error,
        "Push/Pull with " + ps.to.to_string() + " failed: " + transport.message);
    return transport;
  }
  std::vector<Message> msgs;
  Status d = codec->decode_stream(reply, msgs);
  if (!d.ok() || msgs.size() != 1) {
    bad("bad_push_pull_reply");
    Status e = Status::error(Errc::protocol, "bad push/pull reply: " + (d.ok() ? std::string("message count") : d.message));
    log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + e.message);
    return e;
  }
  if (const auto* err = std::get_if<ErrResp>(&msgs[0])) {
    Status e = Status::error(Errc::rejected, "remote error: " + err->error);
    log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + e.message);
    return e;
  }
  const auto* pp = std::get_if<PushPull>(&msgs[0]);
  if (pp == nullptr) {
    bad("bad_push_pull_reply");
    Status e = Status::error(Errc::protocol, "push/pull reply is not a push/pull message");
    log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + e.message);
    return e;
  }
  Status ms = check_merge(*pp, ps.join);
  if (!ms.ok()) {
    log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + ms.message);
    return ms;
  }
  apply_merge(*pp, ps.join, now);
  size_t lacked = apply_repairs(*pp, now);
  if (!ps.join) lacked += push_repairs(ps.to, *pp, now);
  // One side lacked broadcasts: the cluster is still catching up, as after news.
  if (lacked > 0) news_arrived(now);
  if (ps.join && !joined_once) {
    joined_once = true;
    member_since = now;
  }
  if (ps.join) start_join_burst(now);
  if (ps.reconnect != PendingStream::NoReconnect) {
    const bool seed = ps.reconnect == PendingStream::ToSeed;
    metrics.incr("memberlist.reconnect.successes", 1, {{"target", seed ? "seed" : "member"}});
    log(LogLevel::Info, std::string("Reconnected through ") + (seed ? "seed " : "dead member ") + ps.to.to_string());
  }
  return ms;
}

}  // namespace memberlist::core
