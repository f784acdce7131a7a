// The core's timer heap. Timers are data (a kind and a small payload), not closures:
// Core::Impl::fire() dispatches them in one switch, and pending() lists them.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"

namespace memberlist::core {

// A periodic tick whose phase is arbitrary (probe, push/pull, queue check): a runtime may
// run it a little late (see Core::poll_exact_timeout).
constexpr bool is_lax(TimerKind k) {
  return k == TimerKind::ProbeTick || k == TimerKind::PushPullStagger || k == TimerKind::PushPullTick ||
         k == TimerKind::QueueCheck || k == TimerKind::ReconnectTick;
}
constexpr bool has_node(TimerKind k) { return k == TimerKind::Suspicion || k == TimerKind::PingTimeout; }

// The core's timers: a binary heap ordered by (deadline, creation order), so equal
// deadlines fire in creation order. Cancelling frees the timer's slot; its heap entry stays
// behind as a tombstone and is dropped when it reaches the top (the top is always live, so
// next() is exact). One vector instead of two tree maps, and entries of 32 trivially copied
// bytes: no allocation per timer once warm, and few cache lines touched per tick (a
// simulator drives 10^4 cores, each cold). A node name (suspicion and ping timers) lives
// beside the slot, in a string whose buffer the slot keeps for its next timer.
class TimerHeap {
 public:
  // A timer that fired: its deadline, kind and payload.
  struct Fired {
    Instant at{};
    TimerKind kind = TimerKind::ProbeTick;
    uint32_t seq = 0;
    std::string node;  // only for has_node(kind)
  };

  // A handle: slot << 40 | sequence number (never 0). A lax timer (is_lax) is kept in a heap
  // of its own, so that the earliest exact deadline is at hand too. Timers fire in
  // (deadline, creation) order across both heaps.
  uint64_t add(Instant at, TimerKind kind, uint32_t seq = 0, std::string_view node = {}) {
    uint32_t slot;
    if (free_ != kNone) {
      slot = free_;
      free_ = static_cast<uint32_t>(slots_[slot] & ~kFree);
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(0);
      nodes_.emplace_back();
    }
    const uint64_t serial = ++serial_;
    slots_[slot] = serial;
    if (has_node(kind)) nodes_[slot].assign(node);
    auto& heap = heaps_[is_lax(kind) ? 1 : 0];
    heap.push_back(Entry{at, serial, slot, kind, seq});
    std::push_heap(heap.begin(), heap.end(), Later{});
    return (static_cast<uint64_t>(slot) << 40) | serial;
  }
  // No-op for a handle that already fired or was cancelled.
  void cancel(uint64_t handle) {
    const uint64_t slot = handle >> 40, serial = handle & ((uint64_t{1} << 40) - 1);
    if (slot >= slots_.size() || slots_[slot] != serial) return;
    release(static_cast<uint32_t>(slot));
    for (auto& heap : heaps_) purge(heap);
  }
  std::optional<Instant> next() const {
    int h = earliest();
    if (h < 0) return std::nullopt;
    return heaps_[h].front().at;
  }
  std::optional<Instant> next_exact() const {
    if (heaps_[0].empty()) return std::nullopt;
    return heaps_[0].front().at;
  }
  // Takes the earliest timer if it is due at `now`. Reuse `out` across calls: its node
  // string trades buffers with the slot's, so nothing is allocated.
  bool pop_due(Instant now, Fired& out) {
    int h = earliest();
    if (h < 0 || heaps_[h].front().at > now) return false;
    auto& heap = heaps_[h];
    std::pop_heap(heap.begin(), heap.end(), Later{});
    const Entry& e = heap.back();
    out.at = e.at;
    out.kind = e.kind;
    out.seq = e.seq;
    if (has_node(e.kind))
      out.node.swap(nodes_[e.slot]);
    else
      out.node.clear();
    release(e.slot);
    heap.pop_back();
    purge(heap);  // the other heap's front is untouched, and live
    return true;
  }
  // Every live timer, in firing order.
  std::vector<TimerInfo> pending() const {
    std::vector<const Entry*> live_entries;
    for (const auto& heap : heaps_)
      for (const Entry& e : heap)
        if (live(e)) live_entries.push_back(&e);
    std::sort(live_entries.begin(), live_entries.end(), [](const Entry* a, const Entry* b) { return Later{}(*b, *a); });
    std::vector<TimerInfo> out;
    for (const Entry* e : live_entries)
      out.push_back(TimerInfo{e->kind, e->at, e->seq, has_node(e->kind) ? nodes_[e->slot] : std::string()});
    return out;
  }

 private:
  struct Entry {
    Instant at;
    uint64_t serial;  // creation order
    uint32_t slot;
    TimerKind kind;
    uint32_t seq;  // payload
  };
  // std heaps are max-heaps: the earliest (at, serial) must compare greatest. A function
  // object, so that the heap code inlines it.
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.at != b.at ? a.at > b.at : a.serial > b.serial;
    }
  };
  // The heap whose front is the earliest timer, or -1 if both are empty.
  int earliest() const {
    int best = -1;
    for (int h = 0; h < 2; ++h)
      if (!heaps_[h].empty() && (best < 0 || Later{}(heaps_[best].front(), heaps_[h].front()))) best = h;
    return best;
  }
  bool live(const Entry& e) const { return slots_[e.slot] == e.serial; }
  void release(uint32_t slot) {
    slots_[slot] = kFree | free_;
    free_ = slot;
  }
  void purge(std::vector<Entry>& heap) {
    while (!heap.empty() && !live(heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), Later{});
      heap.pop_back();
    }
  }

  // A free slot holds kFree | the next free slot (a free list threaded through slots_,
  // so a tick touches one array less); serial numbers stay below 2^40.
  static constexpr uint64_t kFree = uint64_t{1} << 63;
  static constexpr uint32_t kNone = UINT32_MAX;

  std::array<std::vector<Entry>, 2> heaps_;  // exact, lax
  std::vector<uint64_t> slots_;    // serial number of the live timer in each slot
  std::vector<std::string> nodes_;  // node name of a has_node() timer, by slot
  uint32_t free_ = kNone;          // first free slot
  uint64_t serial_ = 0;
};

}  // namespace memberlist::core
