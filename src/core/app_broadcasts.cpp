// The application's own broadcasts (not in the reference): queue_broadcast(), delivery once
// per node (seen origins), and forwarding.
#include <algorithm>
#include <set>
#include <string>
#include <tuple>

#include "core/formulas.h"
#include "core/impl.h"

namespace memberlist::core {

namespace {

// Queue names of forwarded application broadcasts. Node names (the keys of membership
// news) never contain NUL, so these never collide with them.
std::string broadcast_key(const std::string& origin, const std::string& name) {
  return std::string("\0ub\0", 4) + origin + std::string(1, '\0') + name;
}

BroadcastOutcome outcome_of(FinishReason r) {
  switch (r) {
    case FinishReason::Transmitted: return BroadcastOutcome::Delivered;
    case FinishReason::Replaced: return BroadcastOutcome::Replaced;
    case FinishReason::Dropped: return BroadcastOutcome::Dropped;
  }
  return BroadcastOutcome::Dropped;
}

}  // namespace

// What an origin's record buys: a broadcast of it that reaches us again is not delivered
// again. Forgetting the record costs that, for copies still travelling: one would be
// delivered a second time (and an older named one after a newer). Copies travel only while
// some node still retransmits them, which every node does a few times right after it first
// gets a broadcast; so origins are forgotten once not heard from for
// gossip_to_the_dead_time, the age after which the reference forgets dead nodes too, or
// after the repair horizon when broadcast repair is on (origin_memory()).
// Before that, only the limit (Config::max_broadcast_origins) evicts, the least recently
// heard first, which takes more origins broadcasting within gossip_to_the_dead_time than
// the limit (4096 by default); memberlist.broadcast.origins_evicted counts both reasons.
void Core::Impl::expire_seen_origins(Instant now) {
  if (size_t n = seen.expire(now, origin_memory()))
    metrics.incr("memberlist.broadcast.origins_evicted", static_cast<double>(n), {{"reason", "idle"}});
}

SeenEpoch& Core::Impl::seen_epoch(const std::string& origin, uint32_t epoch, Instant now) {
  expire_seen_origins(now);
  const uint64_t evicted = seen.evicted_by_limit();
  SeenOrigins::Origin& o = seen.touch(origin, now);
  if (seen.evicted_by_limit() != evicted) metrics.incr("memberlist.broadcast.origins_evicted", 1, {{"reason", "limit"}});
  auto it = std::find_if(o.epochs.begin(), o.epochs.end(), [&](const SeenEpoch& e) { return e.epoch == epoch; });
  if (it == o.epochs.begin() && it != o.epochs.end()) return *it;
  SeenEpoch e;
  if (it != o.epochs.end()) {
    e = std::move(*it);
    o.epochs.erase(it);
  } else {
    e.epoch = epoch;
  }
  o.epochs.push_front(std::move(e));
  if (o.epochs.size() > SeenOrigins::Origin::kMaxEpochs) o.epochs.pop_back();
  return o.epochs.front();
}

void Core::Impl::handle_user_broadcast(const UserBroadcast& m, Instant now, bool repaired) {
  if (m.origin == cfg.name) return;  // our own, back from the cluster
  if (m.origin.empty() || m.seq == 0) {
    bad("bad_broadcast");
    return;
  }
  SeenEpoch& e = seen_epoch(m.origin, m.epoch, now);
  if (!e.first_time(m.seq)) return;
  if (!m.name.empty()) {
    auto [it, fresh] = e.latest_named.try_emplace(m.name, m.seq);
    if (!fresh) {
      if (it->second > m.seq) return;  // superseded by a newer one we already have
      it->second = m.seq;
    }
    if (e.latest_named.size() > SeenEpoch::kMaxNames) {
      auto victim = e.latest_named.begin();
      if (victim == it) ++victim;
      e.latest_named.erase(victim);
    }
  }
  notifications.push_back(BroadcastReceived{m.origin, m.name, m.payload});
  metrics.incr("memberlist.user.broadcasts.received");
  // A repaired copy is as old as the sender's, not fresh: dated back, it is offered to the
  // same members for the same time as anywhere else, never to members that joined after it.
  const Duration age = repaired ? std::min<Duration>(std::chrono::milliseconds(m.age_ms), repair_horizon()) : Duration{};
  remember_broadcast(m, now - age);
  if (repaired) {
    // Late: gossip has done its work elsewhere; only this node lacked it.
    metrics.incr("memberlist.user.broadcasts.repaired");
    return;
  }
  news_arrived(now);
  // Spread it further, like membership news.
  Bytes enc = codec->encode(m);
  if (enc.size() > max_broadcast_size()) {
    log(LogLevel::Debug, "Not forwarding a broadcast from " + m.origin + ": " + std::to_string(enc.size()) +
                             " bytes do not fit our datagrams");
    return;
  }
  if (m.name.empty())
    user_queue.queue_unique(std::move(enc));
  else
    user_queue.queue_named(broadcast_key(m.origin, m.name), std::move(enc));
  bound_user_queue();
}

void Core::Impl::bound_user_queue() {
  if (size_t n = user_queue.prune(cfg.max_queued_broadcasts, cfg.max_queued_broadcast_bytes)) {
    metrics.incr("memberlist.user.broadcasts.dropped", static_cast<double>(n));
  }
}

Status Core::Impl::queue_broadcast(std::string name, Bytes payload, uint64_t& id, Instant now) {
  if (name.size() > 255 || name.find('\0') != std::string::npos)
    return Status::error(Errc::invalid, "broadcast name must be at most 255 bytes without NUL");
  const size_t n = payload.size();
  UserBroadcast m{cfg.name, broadcast_epoch, broadcast_seq + 1, name, std::move(payload)};
  Bytes enc = codec->encode(m);
  if (enc.size() > max_broadcast_size())
    return Status::error(Errc::too_large, "broadcast of " + std::to_string(n) + " bytes encodes to " +
                                              std::to_string(enc.size()) + " bytes, more than one datagram carries (" +
                                              std::to_string(max_broadcast_size()) + " with udp_buffer_size " +
                                              std::to_string(cfg.udp_buffer_size) + "); use send_reliable for bulk data");
  broadcast_seq++;
  remember_broadcast(m, now);
  news_arrived(now);
  id = ++next_broadcast_id;
  auto done = [this, bid = id, seq = m.seq](FinishReason r) {
    // Fully sent and still repairable: the outcome waits for the end of its repair horizon.
    if (r == FinishReason::Transmitted) {
      for (auto& rb : recent_broadcasts) {
        if (rb.m.origin == cfg.name && rb.m.epoch == broadcast_epoch && rb.m.seq == seq) {
          rb.done_id = bid;
          return;
        }
      }
    }
    notifications.push_back(BroadcastDone{bid, outcome_of(r)});
  };
  if (name.empty())
    user_queue.queue_unique(std::move(enc), std::move(done));
  else
    user_queue.queue_named(broadcast_key(cfg.name, name), std::move(enc), std::move(done));
  metrics.incr("memberlist.user.broadcasts.queued");
  bound_user_queue();
  return Status::success();
}

// ---- broadcast repair (Config::max_repair_broadcasts) ----------------------------------------
// Gossip sends each broadcast a few times to random members (infect-and-die), which leaves a
// residue of members that never got it, more so under loss. The periodic push/pull repairs
// it both ways: each side lists what it received lately (its digest); the responder's reply
// carries what it has from the same time that is not on the initiator's list, and the
// initiator then sends the responder, by datagram, what the reply's list lacks. Receivers
// de-duplicate as for gossip, so a broadcast repaired twice is still delivered once.
// A broadcast is dated when it was queued or first came by gossip, and a repaired copy
// carries that age (UserBroadcast::age_ms): a member is only repaired broadcasts younger than
// its membership (PushPull::repair_window_ms).

void Core::Impl::remember_broadcast(const UserBroadcast& m, Instant at) {
  if (!repair_on()) return;
  recent_broadcasts.push_back({m, at});
  recent_broadcasts.back().m.repaired = false;
  recent_broadcasts.back().m.age_ms = 0;
  while (recent_broadcasts.size() > cfg.max_repair_broadcasts) {
    // Pushed out before its horizon: only retransmitted, as far as this node can tell.
    if (uint64_t id = recent_broadcasts.front().done_id)
      notifications.push_back(BroadcastDone{id, BroadcastOutcome::Delivered});
    recent_broadcasts.pop_front();
  }
}

// Not front-first: a repaired copy is dated back, so the list is not in date order.
void Core::Impl::expire_recent_broadcasts(Instant now) {
  std::erase_if(recent_broadcasts, [&](const RecentBroadcast& r) {
    if (now - r.at <= repair_horizon()) return false;
    if (r.done_id) notifications.push_back(BroadcastDone{r.done_id, BroadcastOutcome::Settled});
    return true;
  });
}

void Core::Impl::end_repairs() {
  for (auto& r : recent_broadcasts) {
    if (r.done_id) notifications.push_back(BroadcastDone{r.done_id, BroadcastOutcome::Delivered});
    r.done_id = 0;
  }
}

// How long a broadcast stays repairable: two push/pull intervals (scaled as the exchange
// itself), so that every member initiates at least one exchange in that time, and usually two
// (the first peer it picks may lack the broadcast too).
Duration Core::Impl::repair_horizon() const {
  return 2 * push_pull_scale(cfg.push_pull_interval, est_num_nodes());
}

// Origins are remembered past the repair horizon (with a push/pull interval of margin for
// the spread of receipt times), so that a repaired copy is never delivered a second time.
Duration Core::Impl::origin_memory() const {
  if (!repair_on()) return cfg.gossip_to_the_dead_time;
  return std::max(cfg.gossip_to_the_dead_time, repair_horizon() + push_pull_scale(cfg.push_pull_interval, est_num_nodes()));
}

namespace {
uint32_t to_ms(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(ms, 0, UINT32_MAX));
}
}  // namespace

void Core::Impl::ask_for_repairs(PushPull& pp, Instant now) {
  if (!repair_on()) return;
  expire_recent_broadcasts(now);
  // Only what was sent while we were a member: a new member does not get the cluster's past.
  pp.repair_window_ms = std::max<uint32_t>(1, to_ms(std::min(now - member_since, repair_horizon())));
  for (const auto& r : recent_broadcasts) pp.broadcast_digest.push_back({r.m.origin, r.m.epoch, r.m.seq});
}

// Our recent broadcasts from within the peer's window that its digest does not list.
std::vector<const Core::Impl::RecentBroadcast*> Core::Impl::lacked_by(const PushPull& peer, Instant now) const {
  std::vector<const RecentBroadcast*> out;
  if (!repair_on() || peer.repair_window_ms == 0) return out;
  const Duration window = std::min<Duration>(std::chrono::milliseconds(peer.repair_window_ms), repair_horizon());
  std::set<std::tuple<std::string_view, uint32_t, uint32_t>> has;
  for (const auto& id : peer.broadcast_digest) has.emplace(id.origin, id.epoch, id.seq);
  for (const auto& r : recent_broadcasts) {
    if (now - r.at < window && !has.count({r.m.origin, r.m.epoch, r.m.seq})) out.push_back(&r);
  }
  return out;
}

void Core::Impl::add_repairs(PushPull& reply, const PushPull& request, Instant now) {
  if (request.repair_window_ms == 0) return;  // an older node, or repair off: nothing to say
  for (const RecentBroadcast* r : lacked_by(request, now)) {
    reply.broadcast_repair.push_back(r->m);
    reply.broadcast_repair.back().age_ms = to_ms(now - r->at);
  }
  ask_for_repairs(reply, now);  // and what we have, for the initiator to send us what we lack
  if (!reply.broadcast_repair.empty())
    metrics.incr("memberlist.user.broadcasts.repairs_sent", static_cast<double>(reply.broadcast_repair.size()));
}

size_t Core::Impl::push_repairs(const Address& to, const PushPull& reply, Instant now) {
  auto lacked = lacked_by(reply, now);
  for (const RecentBroadcast* r : lacked) {
    UserBroadcast copy = r->m;
    copy.repaired = true;
    copy.age_ms = to_ms(now - r->at);
    send_with_piggyback(to, copy);
  }
  if (!lacked.empty()) metrics.incr("memberlist.user.broadcasts.repairs_sent", static_cast<double>(lacked.size()));
  return lacked.size();
}

// The settle exchange. A member that gossip missed is repaired at its next push/pull, or when
// another member picks it for theirs. Each member starts one exchange per interval, so one
// whose own exchange came while the news was still spreading (its partner lacked it too) and
// that nobody else picked waits a whole interval more. So once broadcast news stops coming
// (settle_time() after the last we queued or first got by gossip), each member that got some
// starts one extra exchange with a random member: the pair repairs each other both ways. An
// exchange we started that found either side lacking something counts as news too (the
// cluster is still catching up), so a second follows; pairwise repair then converges as
// anti-entropy does. Bounds: at most two settle exchanges in any push/pull interval (a later
// one waits), none while a periodic exchange after the news settled has done the job, and
// never put off by more than half an interval of continuous news.
Duration Core::Impl::settle_time() const {
  // Gossip sends a broadcast retransmit_limit times from each member that has it, gossip_nodes
  // at a time, one round per gossip interval; twice that covers the hops and some queueing.
  const int rounds = retransmit_limit(cfg.retransmit_mult, est_num_nodes());
  return cfg.gossip_interval * std::max(4, 2 * rounds);
}

void Core::Impl::news_arrived(Instant now) {
  if (!repair_on() || cfg.gossip_interval <= Duration::zero()) return;
  settle.news_last = now;
  if (settle.wanted) return;
  settle.wanted = true;
  settle.news_first = now;
  if (!settle.timer) settle.timer = schedule(now + settle_time(), TimerKind::BroadcastSettle);
}

void Core::Impl::settle_exchange(Instant now) {
  settle.timer = 0;
  if (!settle.wanted) return;  // a periodic exchange after the news settled did the job
  const Duration interval = push_pull_scale(cfg.push_pull_interval, est_num_nodes());
  Instant due = std::min(settle.news_last + settle_time(), settle.news_first + interval / 2);
  // At most two per interval: the second follows up on one that found a side lacking.
  if (settle.count >= settle.started.size()) due = std::max(due, settle.started[0] + interval);
  if (now < due) {
    settle.timer = schedule(due, TimerKind::BroadcastSettle);
    return;
  }
  settle.wanted = false;
  settle.started = {settle.started[1], now};
  settle.count = std::min(settle.count + 1, settle.started.size());
  if (push_pull_random(now)) metrics.incr("memberlist.user.broadcasts.settle_exchanges");
}

size_t Core::Impl::apply_repairs(const PushPull& reply, Instant now) {
  if (!repair_on()) return 0;
  // A peer allowed more repairs than we are may send more; we take our share, and the rest
  // comes again at a later exchange while it is fresh (the wire codec bounds the whole list).
  const size_t take = std::min(reply.broadcast_repair.size(), cfg.max_repair_broadcasts);
  for (size_t i = 0; i < take; ++i) handle_user_broadcast(reply.broadcast_repair[i], now, /*repaired=*/true);
  if (reply.broadcast_repair.size() > take)
    metrics.incr("memberlist.user.broadcasts.repairs_skipped",
                 static_cast<double>(reply.broadcast_repair.size() - take));
  return reply.broadcast_repair.size();
}

}  // namespace memberlist::core
