// Lifeguard local health awareness (LHA-Probe): a score in [0, max-1] that scales timeouts.
#pragma once

#include "core/types.h"

namespace memberlist::core {

class Awareness {
 public:
  explicit Awareness(int max_multiplier) : max_(max_multiplier < 1 ? 1 : max_multiplier) {}

  // Returns true if the score changed.
  bool apply_delta(int delta) {
    int before = score_;
    score_ += delta;
    if (score_ < 0) score_ = 0;
    if (score_ > max_ - 1) score_ = max_ - 1;
    return score_ != before;
  }
  int score() const { return score_; }
  Duration scale_timeout(Duration t) const { return t * (score_ + 1); }

 private:
  int max_;
  int score_ = 0;
};

}  // namespace memberlist::core
