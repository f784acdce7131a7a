// The one way into a node's core. Every path that touches core::Core (public calls, timers,
// datagrams, stream completions, shutdown) holds a CoreAccess: it takes the node's lock and
// marks the thread as inside that node's core, together. Delegate hooks run inside it, and a
// query or non-blocking command made from a hook finds the mark and is served without
// locking again; blocking calls see it and refuse (they would wait for themselves).
#pragma once

#include <mutex>

namespace memberlist::runtime {

class CoreAccess {
 public:
  // Takes `mu` unless this thread is already inside `owner`'s core (then nested()).
  CoreAccess(const void* owner, std::mutex& mu);
  // With `lock` already holding `mu` (a try_lock that succeeded).
  CoreAccess(const void* owner, std::unique_lock<std::mutex> lock);
  ~CoreAccess();
  CoreAccess(const CoreAccess&) = delete;
  CoreAccess& operator=(const CoreAccess&) = delete;

  // Inside a hook of the same core: the outer entry holds the lock and drains the outputs.
  bool nested() const { return nested_; }
  // For condition variables: the lock this entry holds (not for nested entries).
  std::unique_lock<std::mutex>& lock() { return lock_; }
  // Leaves the core early (before dispatching its outputs, which must not run under the lock).
  void release();

  // True while this thread is inside `owner`'s core.
  static bool inside(const void* owner);

 private:
  const void* prev_;
  bool nested_ = false;
  bool active_ = true;
  std::unique_lock<std::mutex> lock_;
};

}  // namespace memberlist::runtime
