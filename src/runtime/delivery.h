// Host callbacks of one node, off the protocol's path. The core's news (events,
// notifications, metric samples) and log lines are queued here, cheaply and under a lock of
// their own, by whichever thread produced them; they are run on the runtime's callback threads
// (not the ones that read sockets, run timers or serve streams), one at a time per node and in
// order. A host callback that blocks therefore delays only this node's later callbacks, never
// a probe, a push/pull or a join. The queue is bounded: beyond the limits new items are dropped
// and counted, and a summary line reports them once the queue drains.
//
// Pull mode (Callbacks::pull, constructed without a Schedule): the same queue, with the same
// bounds, counters and shutdown rule, but nothing runs the items: the host takes them with
// take(), and an eventfd is readable exactly while items are queued.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "core/core.h"

namespace memberlist::runtime {

struct Callbacks;

struct LogLine {
  core::LogLevel level;
  std::string text;
};

class Delivery {
 public:
  using Item = std::variant<core::Event, core::Notification, core::MetricSample, LogLine>;
  // Schedules a call of drain() on the node's callback strand; false once the node is gone.
  using Schedule = std::function<bool()>;

  // Pull mode when `schedule` is empty (opens the eventfd; throws std::system_error if it
  // cannot).
  Delivery(const Callbacks& cb, size_t max_items, size_t max_log_lines, Schedule schedule);
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // Any thread, any lock held: queues and, if nothing is scheduled yet, schedules a drain
  // (pull mode: makes the eventfd readable if the queue was empty).
  void push(Item item);
  // Pull mode, any thread: moves up to `max` of the oldest items to the end of `out` and
  // returns how many; the eventfd is reset when this empties the queue.
  size_t take(std::vector<Item>& out, size_t max);
  // Pull mode: the eventfd (owned here, closed by the destructor); -1 otherwise.
  int event_fd() const { return event_fd_; }
  // Callback strand: runs up to a batch of queued items; true if more remain (drain again).
  bool drain();
  // Shutdown has begun: what is still queued and is not a membership event or a broadcast
  // outcome is discarded, and so is anything pushed from now on but those two.
  void close();

  uint64_t dropped_items() const { return dropped_items_; }
  uint64_t dropped_log_lines() const { return dropped_logs_; }
  // Items and log lines waiting now.
  size_t queued() const;

 private:
  static bool kept_at_shutdown(const Item& item);
  // Pull mode, under mu_: the eventfd follows whether the queue is empty.
  void signal_locked();
  void run(const Item& item);

  const Callbacks& cb_;
  const size_t max_items_, max_logs_;
  Schedule schedule_;

  mutable std::mutex mu_;
  std::deque<Item> queue_;
  size_t items_ = 0, logs_ = 0;  // of each kind in queue_
  bool scheduled_ = false;
  bool closed_ = false;
  int event_fd_ = -1;  // pull mode only
  std::atomic<uint64_t> dropped_items_{0}, dropped_logs_{0};
  uint64_t reported_items_ = 0, reported_logs_ = 0;  // drain() only
};

}  // namespace memberlist::runtime
