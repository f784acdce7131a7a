// The reference's scaling formulas (memberlist-protocol.md §3.1). Internal to the core.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/types.h"

namespace memberlist::core {

// mult * floor(max(1, log10(max(1, n))) * 1000) * interval / 1000
inline Duration suspicion_timeout(int mult, size_t n, Duration interval) {
  double node_scale = std::max(1.0, std::log10(std::max(1.0, static_cast<double>(n))));
  // The reference truncates the scale to milliseconds precision.
  auto scale_ms = static_cast<int64_t>(node_scale * 1000.0);
  return Duration(int64_t{mult} * scale_ms * interval.count() / 1000);
}

// mult * ceil(log10(n + 1)), in integers: ceil(log10(n + 1)) is the number of decimal
// digits of n. Exact, and it keeps libm (and its tables' pages) off the gossip path.
inline int retransmit_limit(int mult, size_t n) {
  int digits = 0;
  for (; n > 0; n /= 10) ++digits;
  return mult * digits;
}

// interval for n <= 32, then one more interval each time the cluster doubles:
// ceil(log2(n) - log2(32)) + 1, in integers (ceil(log2(n)) is bit_width(n - 1)).
inline Duration push_pull_scale(Duration interval, size_t n) {
  constexpr size_t kThreshold = 32;
  if (n <= kThreshold) return interval;
  const int64_t mult = int64_t(std::bit_width(n - 1)) - std::bit_width(kThreshold - 1) + 1;
  return Duration(mult * interval.count());
}

// Lifeguard: the suspicion timeout after n of k expected confirmations, minus what has
// already elapsed (may be negative: the timer is overdue).
inline Duration remaining_suspicion_time(int n, int k, Duration elapsed, Duration min,
                                         Duration max) {
  double frac = std::log(n + 1.0) / std::log(k + 1.0);
  double max_s = std::chrono::duration<double>(max).count();
  double min_s = std::chrono::duration<double>(min).count();
  double raw = max_s - frac * (max_s - min_s);
  Duration timeout = std::chrono::milliseconds(static_cast<int64_t>(std::floor(1000.0 * raw)));
  if (timeout < min) timeout = min;
  return timeout - elapsed;
}

}  // namespace memberlist::core
