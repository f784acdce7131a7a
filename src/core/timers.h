// The core's timer heap.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/types.h"

namespace memberlist::core {

// The core's timers: a binary heap ordered by (deadline, creation order), so equal
// deadlines fire in creation order. Cancelling frees the timer's slot; its heap entry stays
// behind as a tombstone and is dropped when it reaches the top (the top is always live, so
// next() is exact). One vector instead of two tree maps: no allocation per timer once warm,
// and few cache lines touched per tick (a simulator drives 10^4 cores, each cold).
class TimerHeap {
 public:
  using Fn = std::function<void(Instant)>;

  // A handle: slot << 40 | sequence number (never 0). A lax timer is a periodic tick whose
  // phase is arbitrary (see Core::poll_exact_timeout); it is kept in a heap of its own, so
  // that the earliest exact deadline is at hand too. Timers fire in (deadline, creation)
  // order across both heaps.
  uint64_t add(Instant at, Fn fn, bool lax = false) {
    uint32_t slot;
    if (free_ != kNone) {
      slot = free_;
      free_ = static_cast<uint32_t>(slots_[slot] & ~kFree);
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(0);
    }
    const uint64_t seq = ++seq_;
    slots_[slot] = seq;
    auto& heap = heaps_[lax ? 1 : 0];
    heap.push_back(Entry{at, seq, slot, std::move(fn)});
    std::push_heap(heap.begin(), heap.end(), Later{});
    return (static_cast<uint64_t>(slot) << 40) | seq;
  }
  // No-op for a handle that already fired or was cancelled.
  void cancel(uint64_t handle) {
    const uint64_t slot = handle >> 40, seq = handle & ((uint64_t{1} << 40) - 1);
    if (slot >= slots_.size() || slots_[slot] != seq) return;
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
  // Takes the earliest timer if it is due at `now`.
  bool pop_due(Instant now, Fn& fn) {
    int h = earliest();
    if (h < 0 || heaps_[h].front().at > now) return false;
    auto& heap = heaps_[h];
    std::pop_heap(heap.begin(), heap.end(), Later{});
    fn = std::move(heap.back().fn);
    release(heap.back().slot);
    heap.pop_back();
    purge(heap);  // the other heap's front is untouched, and live
    return true;
  }

 private:
  struct Entry {
    Instant at;
    uint64_t seq;
    uint32_t slot;
    Fn fn;
  };
  // std heaps are max-heaps: the earliest (at, seq) must compare greatest. A function
  // object, so that the heap code inlines it.
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };
  // The heap whose front is the earliest timer, or -1 if both are empty.
  int earliest() const {
    int best = -1;
    for (int h = 0; h < 2; ++h)
      if (!heaps_[h].empty() && (best < 0 || Later{}(heaps_[best].front(), heaps_[h].front()))) best = h;
    return best;
  }
  bool live(const Entry& e) const { return slots_[e.slot] == e.seq; }
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
  // so a tick touches one array less); sequence numbers stay below 2^40.
  static constexpr uint64_t kFree = uint64_t{1} << 63;
  static constexpr uint32_t kNone = UINT32_MAX;

  std::array<std::vector<Entry>, 2> heaps_;  // exact, lax
  std::vector<uint64_t> slots_;  // sequence number of the live timer in each slot
  uint32_t free_ = kNone;        // first free slot
  uint64_t seq_ = 0;
};

}  // namespace memberlist::core
