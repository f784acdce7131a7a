// The transmit-limited broadcast queue (reference §1.6, §3.6): every message is sent
// retransmit_limit(mult, n) times in total, least-transmitted first, then largest, then
// newest. Named broadcasts replace a queued one with the same name (news about a node
// supersedes older news); unnamed ones are unique and never replace anything.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/types.h"

namespace memberlist::core {

class TransmitLimitedQueue {
 public:
  // Runs when the broadcast leaves the queue: fully transmitted, replaced, pruned or reset.
  using Finished = std::function<void()>;

  explicit TransmitLimitedQueue(int retransmit_mult) : retransmit_mult_(retransmit_mult) {}
  TransmitLimitedQueue(const TransmitLimitedQueue&) = delete;
  TransmitLimitedQueue& operator=(const TransmitLimitedQueue&) = delete;

  // `name` empty = a unique broadcast.
  void queue(Bytes msg, std::string name = {}, Finished finished = {});
  // Messages that fit `limit` bytes, counting `overhead` extra bytes per message.
  // `num_nodes` sets the retransmit limit.
  std::vector<Bytes> get_broadcasts(size_t overhead, size_t limit, size_t num_nodes);
  size_t size() const { return items_.size(); }
  // Drops the most-transmitted (then smallest, oldest) until at most `max_retain` remain.
  void prune(size_t max_retain);
  // Drops everything.
  void reset();

 private:
  struct Item {
    int transmits = 0;
    uint64_t id = 0;
    Bytes msg;
    std::string name;
    Finished finished;
  };
  // Sort key: transmits ascending, size descending, id descending (newest first).
  struct Key {
    int transmits;
    size_t size;
    uint64_t id;
  };
  static Key key(const Item& i) { return {i.transmits, i.msg.size(), i.id}; }
  static Key key(const Key& k) { return k; }
  struct Order {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      Key x = key(a), y = key(b);
      if (x.transmits != y.transmits) return x.transmits < y.transmits;
      if (x.size != y.size) return x.size > y.size;
      return x.id > y.id;
    }
  };
  using Set = std::set<Item, Order>;

  void insert(Item item);
  Item take(Set::iterator it);

  int retransmit_mult_;
  uint64_t next_id_ = 1;
  Set items_;
  std::map<std::string, Set::iterator> by_name_;
};

}  // namespace memberlist::core
