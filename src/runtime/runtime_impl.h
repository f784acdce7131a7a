// Runtime::Impl, shared by runtime.cpp and node.cpp.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/node.h"

namespace memberlist::runtime {

// The hot path of a share of a runtime's nodes, on one thread of its own (a runtime has one
// ticker per pool thread): the nodes' UDP sockets (epoll) and their timers. Each node
// registers the core's next deadline, rounded up to a grid (see slot()); the thread sleeps in
// epoll_wait until the earliest slot or a datagram, and runs the due nodes and reads the
// ready sockets itself. So an idle cluster costs one wake-up per slot and per burst of
// datagrams (a probe's ping and ack between two nodes of the same ticker are usually handled
// in the same wake-up), not one per node per timer plus Asio's hand-offs between its threads.
class Ticker {
 public:
  using Clock = std::chrono::steady_clock;
  // Timer slack, like the kernel's own, on grids counted from the clock's epoch, so that
  // the nodes of a ticker share slots. Exact deadlines (those that time the protocol:
  // probe and suspicion timeouts, gossip rounds) fire at most kMinSlack late. Lax ones (the
  // periodic probe, push/pull and queue-check ticks, whose phase is random anyway; see
  // core::Core::poll_exact_timeout) fire at most kMaxSlack late, on a grid coarse enough
  // that a slot holds about kNodesPerSlot nodes' probe ticks: one wake-up then runs a batch
  // of probes while the code and the ticker's state are still in cache, which at 128 nodes
  // halves the CPU of an idle cluster (and at 8-32 nodes, with up to 200 ms, too), and a
  // ticker with many nodes keeps a fine grid (a coarser one would only make bursts). A late
  // tick delays nothing else: the next one is set from its deadline, not from when it ran.
  static constexpr Clock::duration kMinSlack = std::chrono::milliseconds(5);
  static constexpr Clock::duration kMaxSlack = std::chrono::milliseconds(200);
  static constexpr size_t kNodesPerSlot = 8;
  // The slot an exact deadline fires in: rounded up to the kMinSlack grid.
  static Clock::time_point exact_slot(Clock::time_point when);
  // The slot a lax deadline of one of `nodes` nodes fires in: rounded up to a grid of 5, 10,
  // 20, 50, 100 or 200 ms, as above.
  static Clock::time_point lax_slot(Clock::time_point when, size_t nodes);
  // The earlier of the two (set() below); nullopt if both are.
  static std::optional<Clock::time_point> slot(std::optional<Clock::time_point> exact,
                                               std::optional<Clock::time_point> lax, size_t nodes);

  // A node's registration. `fire` and `readable` run on the ticker's thread, outside its
  // lock, while `owner` is held; the other fields are only touched under the ticker's lock.
  struct Entry {
    std::weak_ptr<void> owner;       // expired: the node is being destroyed, skip it
    std::function<void()> fire;      // its deadline came; set before the first set()
    std::function<void()> readable;  // its socket has data; set before watch()
    bool active = false;
    std::multimap<Clock::time_point, Entry*>::iterator it;
    uint64_t watch_id = 0;  // its socket's key in the epoll set, 0 if none
  };

  Ticker();
  ~Ticker();  // stops and joins the thread; never called from it (see stop_detached)
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  // Registers `e`'s next deadlines, replacing the previous ones: it fires in the earlier of
  // exact_slot(exact) and lax_slot(lax); both nullopt removes it. Cheap when the slot does
  // not change.
  void set(Entry& e, std::optional<Clock::time_point> exact, std::optional<Clock::time_point> lax = std::nullopt);
  // Calls e.readable whenever `fd` has data (level-triggered), until unwatch(). False if
  // epoll refused the descriptor.
  bool watch(Entry& e, int fd);
  void unwatch(Entry& e, int fd);
  // For a Runtime destroyed from one of its own threads: stops the thread without
  // destroying the ticker (which is then leaked).
  void stop_detached();
  bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  // Sockets being watched: the ticker's nodes.
  size_t watched() {
    std::lock_guard<std::mutex> l(mu_);
    return watched_.size();
  }

 private:
  void run();
  void wake();

  std::mutex mu_;
  std::multimap<Clock::time_point, Entry*> due_;
  std::map<uint64_t, Entry*> watched_;
  uint64_t next_watch_id_ = 1;  // 0 is the wake-up eventfd
  std::optional<Clock::time_point> sleeping_until_;  // the thread's wake-up time, if waiting
  bool stop_ = false;
  int epfd_ = -1;
  int wakefd_ = -1;
  std::thread thread_;
};

struct Runtime::Impl {
  // Heap-allocated so that a Runtime destroyed from one of its own threads can leak it
  // instead of destroying an io_context a handler is still running on.
  std::unique_ptr<boost::asio::io_context> ioc = std::make_unique<boost::asio::io_context>();
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{ioc->get_executor()};
  // One ticker per pool thread: a node's datagrams and timers stay on one thread (no
  // hand-off). A few nodes share the first ticker, so that a probe between two of them
  // wakes one thread, not two; beyond nodes_per_ticker each new node goes to the ticker
  // with the fewest, so that a process with many nodes uses every core for them.
  std::vector<std::unique_ptr<Ticker>> tickers;
  size_t nodes_per_ticker = Runtime::kNodesPerTicker;
  std::vector<std::thread> threads;
  // The host's callbacks: an io_context of their own, so that a callback that blocks holds
  // one of these threads, never one that reads sockets or serves streams.
  std::unique_ptr<boost::asio::io_context> cb_ioc = std::make_unique<boost::asio::io_context>();
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> cb_work{cb_ioc->get_executor()};
  std::vector<std::thread> cb_threads;

  Ticker& pick_ticker();
  bool on_pool_thread() const;
  bool on_ticker_thread() const;
};

}  // namespace memberlist::runtime
