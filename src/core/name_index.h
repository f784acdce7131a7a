// Members by name (Core::Impl's index of its member records).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

namespace memberlist::core {

// Members by name: open addressing with linear probing, kept at most 3/4 full; a slot holds
// a record pointer and its name's hash -- 16 bytes a slot, ~21 a member, instead of a heap
// node per member (a core of a 10,000-node cluster holds 10,000 of them). The hash beside
// the pointer lets a lookup pass other names without reading their records, which are
// cold in a large simulation, and makes erase and growth rehash-free. Only looked up,
// never iterated, so its order cannot reach any output. Rec needs `info.name`; records
// never rename.
template <class Rec>
class NameIndex {
 public:
  Rec* find(std::string_view name) const {
    if (slots_.empty()) return nullptr;
    const size_t h = hash(name);
    for (size_t i = h & mask();; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (s.rec == nullptr) return nullptr;
      if (s.hash == h && s.rec->info.name == name) return s.rec;
    }
  }
  // `r`'s name must not be present.
  void insert(Rec* r) {
    if (4 * (size_ + 1) > 3 * slots_.size()) grow(std::max<size_t>(16, 2 * slots_.size()));
    place(Slot{r, hash(r->info.name)});
    size_++;
  }
  void erase(std::string_view name) {
    if (slots_.empty()) return;
    const size_t h = hash(name);
    size_t i = h & mask();
    for (;; i = (i + 1) & mask()) {
      if (slots_[i].rec == nullptr) return;
      if (slots_[i].hash == h && slots_[i].rec->info.name == name) break;
    }
    slots_[i] = Slot{};
    size_--;
    // Backward-shift deletion: move later entries of the run into the hole when their
    // home does not lie (cyclically) between the hole and them.
    for (size_t j = (i + 1) & mask(); slots_[j].rec != nullptr; j = (j + 1) & mask()) {
      const size_t k = slots_[j].hash & mask();
      const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      slots_[j] = Slot{};
      i = j;
    }
  }
  void reserve(size_t n) {
    size_t cap = 16;
    while (3 * cap < 4 * n) cap *= 2;
    if (cap > slots_.size()) grow(cap);
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    Rec* rec = nullptr;
    size_t hash = 0;
  };
  static size_t hash(std::string_view name) { return std::hash<std::string_view>{}(name); }
  size_t mask() const { return slots_.size() - 1; }
  void place(const Slot& s) {
    size_t i = s.hash & mask();
    while (slots_[i].rec != nullptr) i = (i + 1) & mask();
    slots_[i] = s;
  }
  void grow(size_t cap) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    for (const Slot& s : old)
      if (s.rec != nullptr) place(s);
  }

  std::vector<Slot> slots_;  // size is a power of two (or 0)
  size_t size_ = 0;
};

}  // namespace memberlist::core
