// The transmit-limited broadcast queue (reference §1.6, §3.6): every message is sent
// retransmit_limit(mult, n) times in total, least-transmitted first, then largest, then
// newest. Three kinds of broadcasts, as the reference's:
// - named: replaces a queued one with the same name (news about a node supersedes older
//   news), O(log n);
// - unique: never replaces anything;
// - plain: its `invalidates` predicate is asked about every queued plain broadcast (O(n))
//   and removes those it returns true for.
// Each broadcast may carry a hook that runs once when it leaves the queue, with the reason.
// Hooks run after the queue is consistent again, so they may call back into the queue.
// Used by the core for its own news and for application broadcasts, and usable on its own
// by hosts that build their own broadcasts (num_nodes then comes from set_num_nodes).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/types.h"

namespace memberlist::core {

enum class FinishReason : uint8_t {
  Transmitted = 0,  // sent retransmit_limit times
  Replaced = 1,     // a newer broadcast with the same name (or a plain one) took its place
  Dropped = 2,      // removed by prune() or reset()
};

class TransmitLimitedQueue {
 public:
  // Runs when the broadcast leaves the queue: fully transmitted, replaced, pruned or reset.
  using Finished = std::function<void()>;
  // The same, told why.
  using Done = std::function<void(FinishReason)>;
  // Plain broadcasts: does the new message make the queued `older` one obsolete?
  using Invalidates = std::function<bool(const Bytes& older)>;

  explicit TransmitLimitedQueue(int retransmit_mult) : retransmit_mult_(retransmit_mult) {}
  TransmitLimitedQueue(const TransmitLimitedQueue&) = delete;
  TransmitLimitedQueue& operator=(const TransmitLimitedQueue&) = delete;

  // `name` empty = a unique broadcast.
  void queue(Bytes msg, std::string name = {}, Finished finished = {});
  void queue_named(std::string name, Bytes msg, Done done = {});
  void queue_unique(Bytes msg, Done done = {});
  void queue_plain(Bytes msg, Invalidates invalidates, Done done = {});

  // Messages that fit `limit` bytes, counting `overhead` extra bytes per message.
  // `num_nodes` sets the retransmit limit.
  std::vector<Bytes> get_broadcasts(size_t overhead, size_t limit, size_t num_nodes);
  // The same with the cluster size from set_num_nodes().
  std::vector<Bytes> get_broadcasts(size_t overhead, size_t limit);
  size_t size() const { return items_.size(); }
  size_t bytes() const { return bytes_; }  // of the queued messages
  // Drops the most-transmitted (then smallest, oldest) until at most `max_retain` remain and
  // they hold at most `max_bytes`. Returns how many it dropped.
  size_t prune(size_t max_retain, size_t max_bytes = SIZE_MAX);
  // Drops everything.
  void reset();

  // For get_broadcasts(overhead, limit): a fixed number, or asked each time.
  void set_num_nodes(size_t n);
  void set_num_nodes(std::function<size_t()> fn) { num_nodes_ = std::move(fn); }
  void set_retransmit_mult(int mult) { retransmit_mult_ = mult; }
  int retransmit_mult() const { return retransmit_mult_; }

 private:
  enum class Kind : uint8_t { Named, Unique, Plain };
  struct Item {
    int transmits = 0;
    uint64_t id = 0;
    Bytes msg;
    std::string name;
    Kind kind = Kind::Unique;
    Done done;
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

  void add(Item item, const Invalidates& invalidates);
  void insert(Item item);
  void insert(Set::node_type node);
  // Out of the set (and the name index), keeping its node: no allocation to put it back.
  Set::node_type take_node(Set::iterator it);
  Item take(Set::iterator it);

  int retransmit_mult_;
  uint64_t next_id_ = 1;
  Set items_;
  size_t bytes_ = 0;  // the sum of items_' message sizes
  // Named items by name; keys view the items' own names (a set node never moves, even
  // while extracted). Only looked up, never iterated.
  std::unordered_map<std::string_view, Set::iterator> by_name_;
  std::function<size_t()> num_nodes_;
};

}  // namespace memberlist::core
