// Which application broadcasts this node has seen, by origin, so that each is delivered
// once (Core::Impl's de-duplication; see app_broadcasts.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/types.h"

namespace memberlist::core {

// Which application broadcasts of one origin (in one epoch) this node has seen: every seq
// up to `floor`, plus the ones in `above`. Seqs are given out 1, 2, 3... by the origin, so
// the set stays small; if more than kWindow arrive out of order, the oldest gaps are given
// up (a message that late would be dropped, never delivered twice).
struct SeenEpoch {
  static constexpr size_t kWindow = 4096;
  static constexpr size_t kMaxNames = 4096;
  uint32_t epoch = 0;
  uint32_t floor = 0;
  std::set<uint32_t> above;
  std::map<std::string, uint32_t> latest_named;  // newest seq seen per broadcast name

  // Marks `seq` seen; false if it was already.
  bool first_time(uint32_t seq) {
    if (seq <= floor || !above.insert(seq).second) return false;
    while (above.size() > kWindow) {
      floor = *above.begin();
      above.erase(above.begin());
    }
    while (!above.empty() && *above.begin() == floor + 1) {
      floor++;
      above.erase(above.begin());
    }
    return true;
  }
};

// The origins whose broadcasts we have seen, least recently heard first, at most `limit`
// of them. The index is only looked up, never iterated, so its order reaches no output.
class SeenOrigins {
 public:
  struct Origin {
    static constexpr size_t kMaxEpochs = 4;
    std::string name;
    std::deque<SeenEpoch> epochs;  // most recently used first
    Instant last{};                // when a broadcast of it last reached us
  };

  explicit SeenOrigins(size_t limit) : limit_(limit) {}

  // The record of `origin`, created if new, marked heard at `now`. At the limit, a new
  // origin takes the place of the least recently heard one; evicted_by_limit() counts them.
  Origin& touch(const std::string& origin, Instant now) {
    auto it = index_.find(origin);
    if (it != index_.end()) {
      lru_.splice(lru_.end(), lru_, it->second);  // the node (and the key's text) stays put
    } else {
      if (lru_.size() >= limit_) {
        forget_oldest();
        evicted_by_limit_++;
      }
      lru_.push_back(Origin{origin, {}, {}});
      index_.emplace(lru_.back().name, std::prev(lru_.end()));
    }
    lru_.back().last = now;
    return lru_.back();
  }
  // Forgets origins not heard from for more than `max_age`; returns how many.
  size_t expire(Instant now, Duration max_age) {
    size_t n = 0;
    while (!lru_.empty() && now - lru_.front().last > max_age) {
      forget_oldest();
      n++;
    }
    return n;
  }
  size_t size() const { return lru_.size(); }
  uint64_t evicted_by_limit() const { return evicted_by_limit_; }

 private:
  void forget_oldest() {
    index_.erase(lru_.front().name);
    lru_.pop_front();
  }

  size_t limit_;
  std::list<Origin> lru_;
  std::unordered_map<std::string_view, std::list<Origin>::iterator> index_;  // keys: lru_'s names
  uint64_t evicted_by_limit_ = 0;
};

}  // namespace memberlist::core
