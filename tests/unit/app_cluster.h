// A small joined cluster on the virtual-time harness, shared by the application-data tests.
#pragma once

#include <functional>
#include <string>

#include "harness.h"

namespace memberlist::test {

inline std::string nm(int i) { return "n" + std::to_string(i); }

// n nodes "n1".."n<n>" joined to n1; `tweak` may change each config (e.g. set a delegate).
inline void start(Cluster& c, int n, const std::function<void(core::Config&, int)>& tweak = {}) {
  for (int i = 1; i <= n; ++i) {
    core::Config cfg = test_config(nm(i), i);
    if (tweak) tweak(cfg, i);
    c.add(cfg);
  }
  for (int i = 2; i <= n; ++i) c.join(nm(i), "n1");
}

// Every node sees all n alive.
inline bool converged(Cluster& c, int n) {
  for (int i = 1; i <= n; ++i)
    if (c.alive_view(nm(i)).size() != static_cast<size_t>(n)) return false;
  return true;
}

}  // namespace memberlist::test
