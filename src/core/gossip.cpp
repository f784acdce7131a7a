// Gossip and sending (reference §3.6, the reference's broadcast.go and net.go send paths):
// the gossip ticker, datagram packing (compound messages), and piggybacking queued
// broadcasts on other messages.
#include <algorithm>
#include <iterator>

#include "core/impl.h"

namespace memberlist::core {

// One datagram per pack_max_parts() parts; a single part goes out as is.
void Core::Impl::send_parts(const Address& to, std::vector<Bytes> parts) {
  if (parts.empty()) return;
  if (parts.size() == 1) {
    transmits.push_back({to, std::move(parts[0])});
    return;
  }
  const size_t max_parts = std::max<size_t>(1, codec->pack_max_parts());
  for (size_t i = 0; i < parts.size(); i += max_parts) {
    size_t end = std::min(parts.size(), i + max_parts);
    std::vector<Bytes> chunk(std::make_move_iterator(parts.begin() + static_cast<long>(i)),
                             std::make_move_iterator(parts.begin() + static_cast<long>(end)));
    transmits.push_back({to, chunk.size() == 1 ? std::move(chunk[0]) : codec->pack(chunk)});
  }
}

// Membership news first, then application broadcasts, then the delegate's pull-style
// messages (each wrapped as a UserMsg), as long as they fit `limit`.
std::vector<Bytes> Core::Impl::get_broadcasts(size_t overhead, size_t limit) {
  std::vector<Bytes> out;
  size_t used = 0;
  auto take = [&](TransmitLimitedQueue& q, size_t room) {
    for (Bytes& b : q.get_broadcasts(overhead, room, est_num_nodes())) {
      used += overhead + b.size();
      out.push_back(std::move(b));
    }
  };
  // The reference fills the datagram with membership news first, so application broadcasts
  // wait behind a join's alive messages (seconds at 128 nodes). While both queues hold
  // something, the application's may take up to half the room first; membership news keeps
  // at least half. Each queue is asked once per datagram, so nothing is sent twice.
  if (user_queue.size() > 0 && queue.size() > 0) {
    take(user_queue, limit / 2);
    take(queue, limit - used);
  } else {
    take(queue, limit);
    if (used < limit) take(user_queue, limit - used);
  }
  if (delegate && used < limit && limit - used > overhead + user_msg_overhead) {
    const size_t room = limit - used;
    std::vector<Bytes> msgs = hook([&](Delegate& d) { return d.get_broadcasts(overhead + user_msg_overhead, room); });
    for (Bytes& m : msgs) {
      if (m.empty()) continue;
      Bytes enc = codec->encode(UserMsg{std::move(m)});
      if (used + overhead + enc.size() > limit) {
        bad("delegate_broadcast_too_large");
        continue;
      }
      used += overhead + enc.size();
      out.push_back(std::move(enc));
    }
  }
  return out;
}

// A message plus as many queued broadcasts as fit in udp_buffer_size.
void Core::Impl::send_with_piggyback(const Address& to, const Message& m) {
  std::vector<Bytes> parts;
  parts.push_back(codec->encode(m));
  const size_t part = codec->pack_part_overhead();
  const size_t used = parts[0].size() + codec->pack_header_overhead() + part;
  if (used < cfg.udp_buffer_size) {
    for (auto& b : get_broadcasts(part, cfg.udp_buffer_size - used)) parts.push_back(std::move(b));
  }
  send_parts(to, std::move(parts));
}

void Core::Impl::gossip_tick(Instant deadline, Instant now) {
  gossip(now);
  gossip_grid = deadline;
  if (nothing_to_gossip()) {
    // Idle: no timer until news is queued (resume_gossip), so an idle node is not woken
    // every gossip interval for nothing.
    gossip_idle = true;
    return;
  }
  schedule_gossip(now);
}

// The next tick on the original grid (gossip_grid + k * interval, the first after now), so
// news waits for a tick exactly as it would have with the timer running.
void Core::Impl::schedule_gossip(Instant now) {
  Instant next = gossip_grid + cfg.gossip_interval;
  if (next <= now) next += ((now - next) / cfg.gossip_interval + 1) * cfg.gossip_interval;
  schedule(next, TimerKind::GossipTick);
}

void Core::Impl::gossip(Instant now) {
  // Rounds take no virtual time; the timer still counts them, as the reference's (idle
  // rounds, skipped, are not counted).
  metrics.observe_ms(gossip_timer, 0);
  // With every listed node Alive or Suspect only our own position is excluded, so the
  // targets are picked without touching any record (cold in a large simulation); the
  // draws are the same either way, so runs stay identical.
  const bool all_live = by_state[static_cast<size_t>(NodeState::Dead)] == 0 &&
                        by_state[static_cast<size_t>(NodeState::Left)] == 0;
  auto targets = k_random_positions(cfg.gossip_nodes, [&](size_t pos) {
    if (all_live || pos == self_pos) return pos == self_pos;
    const NodeRec& r = *nodes[pos];
    switch (r.info.state) {
      case NodeState::Alive:
      case NodeState::Suspect: return false;
      case NodeState::Dead: return now - r.state_change > cfg.gossip_to_the_dead_time;
      case NodeState::Left: return true;
    }
    return true;
  });
  // Nothing to piggyback (no queued news, no delegate to ask): nothing would be sent.
  if (queue.size() == 0 && user_queue.size() == 0 && !delegate) return;
  const size_t header = codec->pack_header_overhead();
  if (cfg.udp_buffer_size <= header) return;
  std::vector<Address> to;  // copied: get_broadcasts may run delegate hooks
  for (size_t pos : targets) to.push_back(nodes[pos]->info.addr);
  for (const Address& a : to) {
    auto msgs = get_broadcasts(codec->pack_part_overhead(), cfg.udp_buffer_size - header);
    if (msgs.empty()) return;
    send_parts(a, std::move(msgs));
  }
}

}  // namespace memberlist::core
