// The application's own broadcasts (not in the reference): queue_broadcast(), delivery once
// per node (seen origins), and forwarding.
#include <algorithm>
#include <string>

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
// gossip_to_the_dead_time, the age after which the reference forgets dead nodes too.
// Before that, only the limit (Config::max_broadcast_origins) evicts, the least recently
// heard first, which takes more origins broadcasting within gossip_to_the_dead_time than
// the limit (4096 by default); memberlist.broadcast.origins_evicted counts both reasons.
void Core::Impl::expire_seen_origins(Instant now) {
  if (size_t n = seen.expire(now, cfg.gossip_to_the_dead_time))
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

void Core::Impl::handle_user_broadcast(const UserBroadcast& m, Instant now) {
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

Status Core::Impl::queue_broadcast(std::string name, Bytes payload, uint64_t& id) {
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
  id = ++next_broadcast_id;
  auto done = [this, bid = id](FinishReason r) { notifications.push_back(BroadcastDone{bid, outcome_of(r)}); };
  if (name.empty())
    user_queue.queue_unique(std::move(enc), std::move(done));
  else
    user_queue.queue_named(broadcast_key(cfg.name, name), std::move(enc), std::move(done));
  metrics.incr("memberlist.user.broadcasts.queued");
  bound_user_queue();
  return Status::success();
}

}  // namespace memberlist::core
