// Allocation budgets for the fuzz targets: operator new is replaced to count the bytes live
// during one input, and a target aborts when one input made the code under test hold more
// than a fixed multiple of its own size (plus a constant for fixed buffers). A stranger's
// input must never cost more than a small multiple of itself.
#pragma once

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace memberlist::wire::fuzz {

inline size_t g_live = 0;     // bytes allocated through operator new and not yet freed
inline size_t g_peak = 0;     // the most of them at once since the budget started
inline bool g_counting = false;

// Counts from construction; aborts at destruction if the peak beyond what was live at
// construction exceeded `factor` x `input` + `slack` bytes.
class AllocationBudget {
 public:
  AllocationBudget(size_t input, size_t factor, size_t slack)
      : limit_(input * factor + slack), base_(g_live) {
    g_peak = g_live;
    g_counting = true;
  }
  ~AllocationBudget() {
    g_counting = false;
    if (g_peak - base_ > limit_) {
      std::fprintf(stderr, "allocation budget exceeded: %zu bytes held at once, budget %zu\n", g_peak - base_, limit_);
      std::abort();
    }
  }
  AllocationBudget(const AllocationBudget&) = delete;
  AllocationBudget& operator=(const AllocationBudget&) = delete;

 private:
  size_t limit_, base_;
};

inline void* counted_alloc(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  g_live += malloc_usable_size(p);
  if (g_counting && g_live > g_peak) g_peak = g_live;
  return p;
}
inline void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  g_live -= malloc_usable_size(p);
  std::free(p);
}

}  // namespace memberlist::wire::fuzz

// Include this header in exactly one file of a target (the one with LLVMFuzzerTestOneInput).
void* operator new(size_t n) { return memberlist::wire::fuzz::counted_alloc(n); }
void* operator new[](size_t n) { return memberlist::wire::fuzz::counted_alloc(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  try {
    return memberlist::wire::fuzz::counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { memberlist::wire::fuzz::counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { memberlist::wire::fuzz::counted_free(p); }
void operator delete(void* p) noexcept { memberlist::wire::fuzz::counted_free(p); }
void operator delete[](void* p) noexcept { memberlist::wire::fuzz::counted_free(p); }
void operator delete(void* p, size_t) noexcept { memberlist::wire::fuzz::counted_free(p); }
void operator delete[](void* p, size_t) noexcept { memberlist::wire::fuzz::counted_free(p); }
