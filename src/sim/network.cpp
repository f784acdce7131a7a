#include "sim/network.h"

#include <algorithm>

namespace memberlist::sim {

void TraceHash::add(uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h_ ^= (v >> (8 * i)) & 0xff;
    h_ *= 1099511628211ull;
  }
}

void TraceHash::add(std::span<const uint8_t> bytes) {
  add(bytes.size());
  for (uint8_t b : bytes) {
    h_ ^= b;
    h_ *= 1099511628211ull;
  }
}

uint64_t EventQueue::schedule(Instant at, Action action) {
  uint64_t seq = next_seq_++;
  heap_.push_back(Entry{std::max(at, now_), seq, std::move(action)});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return seq;
}

std::optional<Instant> EventQueue::next_time() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().at;
}

bool EventQueue::step() {
  if (heap_.empty()) return false;
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  Entry e = std::move(heap_.back());
  heap_.pop_back();
  now_ = e.at;
  ++executed_;
  e.action();
  return true;
}

void EventQueue::run_until(Instant t) {
  while (!heap_.empty() && heap_.front().at <= t) step();
  now_ = std::max(now_, t);
}

const LinkModel& NetworkModel::link(NodeId from, NodeId to) const {
  auto it = links_.find({from, to});
  return it == links_.end() ? default_link_ : it->second;
}

void NetworkModel::partition(const std::vector<std::vector<NodeId>>& groups) {
  heal();
  uint32_t g = 1;
  for (const auto& set : groups) {
    for (NodeId n : set) {
      if (n >= group_.size()) group_.resize(n + 1, 0);
      group_[n] = g;
    }
    ++g;
  }
}

void NetworkModel::heal() { group_.assign(group_.size(), 0); }

uint32_t NetworkModel::group(NodeId n) const { return n < group_.size() ? group_[n] : 0; }

void NetworkModel::set_crashed(NodeId n, bool crashed) {
  if (n >= crashed_.size()) crashed_.resize(n + 1, false);
  crashed_[n] = crashed;
}

void NetworkModel::set_inbound_blocked(NodeId n, bool blocked) {
  if (n >= deaf_.size()) deaf_.resize(n + 1, false);
  deaf_[n] = blocked;
}

void NetworkModel::set_slow(NodeId n, Duration delay) {
  if (n >= slow_.size()) slow_.resize(n + 1, Duration{0});
  slow_[n] = delay;
}

Fate NetworkModel::deliverable(NodeId from, NodeId to) const {
  if (crashed(from) || crashed(to)) return Fate::Crashed;
  if (!reachable(from, to) || inbound_blocked(to)) return Fate::Partitioned;
  return Fate::Delivered;
}

Duration NetworkModel::sample_delay(NodeId from, NodeId to) {
  const LinkModel& m = link(from, to);
  Duration d = m.latency;
  if (m.jitter.count() > 0) {
    std::uniform_int_distribution<int64_t> jitter(0, m.jitter.count());
    d += Duration{jitter(rng_)};
  }
  return d + slowness(to);
}

Fate NetworkModel::send_datagram(NodeId from, NodeId to, Duration& delay) {
  Fate f = deliverable(from, to);
  if (f != Fate::Delivered) return f;
  double loss = link(from, to).loss;
  if (loss > 0.0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < loss) {
    return Fate::Lost;
  }
  delay = sample_delay(from, to);
  return Fate::Delivered;
}

Fate NetworkModel::send_stream(NodeId from, NodeId to, Duration& delay) {
  Fate f = deliverable(from, to);
  if (f != Fate::Delivered) return f;
  // A connection needs the handshake's answer: none reaches an opener whose inbound is dropped.
  if (inbound_blocked(from)) return Fate::Partitioned;
  delay = sample_delay(from, to);
  return Fate::Delivered;
}

}  // namespace memberlist::sim
