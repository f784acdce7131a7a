#include "core/queue.h"

#include <limits>

#include "core/formulas.h"

namespace memberlist::core {

void TransmitLimitedQueue::insert(Item item) {
  std::string name = item.name;
  auto it = items_.insert(std::move(item)).first;
  if (!name.empty()) by_name_[name] = it;
}

TransmitLimitedQueue::Item TransmitLimitedQueue::take(Set::iterator it) {
  if (!it->name.empty()) by_name_.erase(it->name);
  return std::move(items_.extract(it).value());
}

void TransmitLimitedQueue::queue(Bytes msg, std::string name, Finished finished) {
  Item item{0, next_id_++, std::move(msg), std::move(name), std::move(finished)};
  Finished replaced;
  if (!item.name.empty()) {
    if (auto old = by_name_.find(item.name); old != by_name_.end())
      replaced = take(old->second).finished;
  }
  insert(std::move(item));
  // After the queue is consistent: the hook may look at us.
  if (replaced) replaced();
}

std::vector<Bytes> TransmitLimitedQueue::get_broadcasts(size_t overhead, size_t limit,
                                                        size_t num_nodes) {
  std::vector<Bytes> out;
  if (items_.empty()) return out;
  const int transmit_limit = retransmit_limit(retransmit_mult_, num_nodes);
  const int min_tr = items_.begin()->transmits;
  const int max_tr = items_.rbegin()->transmits;
  std::vector<Item> reinsert;
  std::vector<Finished> finished;
  size_t used = 0;
  for (int tr = min_tr; tr <= max_tr;) {
    if (used + overhead >= limit) break;
    size_t free = limit - used - overhead;
    // The largest (then newest) item of this tier that fits.
    auto it = items_.lower_bound(Key{tr, free, std::numeric_limits<uint64_t>::max()});
    if (it == items_.end() || it->transmits != tr) {
      ++tr;
      continue;
    }
    Item item = take(it);
    used += overhead + item.msg.size();
    out.push_back(item.msg);
    if (item.transmits + 1 >= transmit_limit) {
      if (item.finished) finished.push_back(std::move(item.finished));
    } else {
      // Re-inserted after the scan so it is not picked again from a higher tier.
      item.transmits++;
      reinsert.push_back(std::move(item));
    }
  }
  for (auto& item : reinsert) insert(std::move(item));
  for (auto& f : finished) f();
  return out;
}

void TransmitLimitedQueue::prune(size_t max_retain) {
  std::vector<Finished> finished;
  while (items_.size() > max_retain) {
    Item item = take(std::prev(items_.end()));
    if (item.finished) finished.push_back(std::move(item.finished));
  }
  for (auto& f : finished) f();
}

void TransmitLimitedQueue::reset() {
  std::vector<Finished> finished;
  for (auto& item : items_)
    if (item.finished) finished.push_back(item.finished);
  items_.clear();
  by_name_.clear();
  for (auto& f : finished) f();
}

}  // namespace memberlist::core
