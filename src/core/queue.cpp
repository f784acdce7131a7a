#include "core/queue.h"

#include <limits>

#include "core/formulas.h"

namespace memberlist::core {

namespace {
// Runs hooks collected while the queue was being changed.
void run(std::vector<std::pair<TransmitLimitedQueue::Done, FinishReason>>& hooks) {
  for (auto& [done, why] : hooks) done(why);
}
}  // namespace

void TransmitLimitedQueue::insert(Item item) {
  bytes_ += item.msg.size();
  auto it = items_.insert(std::move(item)).first;
  if (it->kind == Kind::Named) by_name_[it->name] = it;
}

void TransmitLimitedQueue::insert(Set::node_type node) {
  bytes_ += node.value().msg.size();
  auto it = items_.insert(std::move(node)).position;
  if (it->kind == Kind::Named) by_name_[it->name] = it;
}

TransmitLimitedQueue::Set::node_type TransmitLimitedQueue::take_node(Set::iterator it) {
  if (it->kind == Kind::Named) by_name_.erase(std::string_view(it->name));
  bytes_ -= it->msg.size();
  return items_.extract(it);
}

TransmitLimitedQueue::Item TransmitLimitedQueue::take(Set::iterator it) {
  return std::move(take_node(it).value());
}

void TransmitLimitedQueue::add(Item item, const Invalidates& invalidates) {
  std::vector<std::pair<Done, FinishReason>> replaced;
  if (item.kind == Kind::Named) {
    if (auto old = by_name_.find(item.name); old != by_name_.end()) {
      Item gone = take(old->second);
      if (gone.done) replaced.emplace_back(std::move(gone.done), FinishReason::Replaced);
    }
  } else if (item.kind == Kind::Plain && invalidates) {
    for (auto it = items_.begin(); it != items_.end();) {
      if (it->kind == Kind::Plain && invalidates(it->msg)) {
        Item gone = take(it++);
        if (gone.done) replaced.emplace_back(std::move(gone.done), FinishReason::Replaced);
      } else {
        ++it;
      }
    }
  }
  item.id = next_id_++;
  insert(std::move(item));
  // After the queue is consistent: the hook may look at us.
  run(replaced);
}

void TransmitLimitedQueue::queue(Bytes msg, std::string name, Finished finished) {
  Done done;
  if (finished) done = [f = std::move(finished)](FinishReason) { f(); };
  if (name.empty())
    queue_unique(std::move(msg), std::move(done));
  else
    queue_named(std::move(name), std::move(msg), std::move(done));
}

void TransmitLimitedQueue::queue_named(std::string name, Bytes msg, Done done) {
  if (name.empty()) return queue_unique(std::move(msg), std::move(done));
  add(Item{0, 0, std::move(msg), std::move(name), Kind::Named, std::move(done)}, {});
}

void TransmitLimitedQueue::queue_unique(Bytes msg, Done done) {
  add(Item{0, 0, std::move(msg), {}, Kind::Unique, std::move(done)}, {});
}

void TransmitLimitedQueue::queue_plain(Bytes msg, Invalidates invalidates, Done done) {
  add(Item{0, 0, std::move(msg), {}, Kind::Plain, std::move(done)}, invalidates);
}

void TransmitLimitedQueue::set_num_nodes(size_t n) {
  num_nodes_ = [n] { return n; };
}

std::vector<Bytes> TransmitLimitedQueue::get_broadcasts(size_t overhead, size_t limit) {
  return get_broadcasts(overhead, limit, num_nodes_ ? num_nodes_() : 1);
}

std::vector<Bytes> TransmitLimitedQueue::get_broadcasts(size_t overhead, size_t limit,
                                                        size_t num_nodes) {
  std::vector<Bytes> out;
  if (items_.empty()) return out;
  const int transmit_limit = retransmit_limit(retransmit_mult_, num_nodes);
  const int min_tr = items_.begin()->transmits;
  const int max_tr = items_.rbegin()->transmits;
  std::vector<Set::node_type> reinsert;
  std::vector<std::pair<Done, FinishReason>> finished;
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
    Set::node_type node = take_node(it);
    Item& item = node.value();
    used += overhead + item.msg.size();
    out.push_back(item.msg);
    if (item.transmits + 1 >= transmit_limit) {
      if (item.done) finished.emplace_back(std::move(item.done), FinishReason::Transmitted);
    } else {
      // Re-inserted after the scan so it is not picked again from a higher tier.
      item.transmits++;
      reinsert.push_back(std::move(node));
    }
  }
  for (auto& node : reinsert) insert(std::move(node));
  run(finished);
  return out;
}

size_t TransmitLimitedQueue::prune(size_t max_retain, size_t max_bytes) {
  std::vector<std::pair<Done, FinishReason>> finished;
  size_t dropped = 0;
  while (items_.size() > max_retain || bytes_ > max_bytes) {
    Item item = take(std::prev(items_.end()));
    if (item.done) finished.emplace_back(std::move(item.done), FinishReason::Dropped);
    ++dropped;
  }
  run(finished);
  return dropped;
}

void TransmitLimitedQueue::reset() {
  std::vector<std::pair<Done, FinishReason>> finished;
  for (auto& item : items_)
    if (item.done) finished.emplace_back(item.done, FinishReason::Dropped);
  items_.clear();
  by_name_.clear();
  bytes_ = 0;
  run(finished);
}

}  // namespace memberlist::core
