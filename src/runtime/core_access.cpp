#include "runtime/core_access.h"

namespace memberlist::runtime {

namespace {
// The node whose core this thread is inside, holding its lock. The only such marker.
thread_local const void* tl_core_owner = nullptr;
}  // namespace

CoreAccess::CoreAccess(const void* owner, std::mutex& mu) : prev_(tl_core_owner) {
  if (tl_core_owner == owner) {
    nested_ = true;
    return;
  }
  lock_ = std::unique_lock<std::mutex>(mu);
  tl_core_owner = owner;
}

CoreAccess::CoreAccess(const void* owner, std::unique_lock<std::mutex> lock)
    : prev_(tl_core_owner), lock_(std::move(lock)) {
  tl_core_owner = owner;
}

CoreAccess::~CoreAccess() { release(); }

void CoreAccess::release() {
  if (!active_) return;
  active_ = false;
  if (nested_) return;
  tl_core_owner = prev_;
  if (lock_.owns_lock()) lock_.unlock();
}

bool CoreAccess::inside(const void* owner) { return owner != nullptr && tl_core_owner == owner; }

}  // namespace memberlist::runtime
