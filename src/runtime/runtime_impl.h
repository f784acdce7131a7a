// Runtime::Impl, shared by runtime.cpp and node.cpp.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
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

// One timer for every node of a runtime. Each node registers the core's next deadline,
// rounded up to a grid of kSlack; one asio timer waits for the earliest, and its handler
// runs every node due in that slot, on the thread that woke. So an idle cluster costs one
// wake-up per slot (not one per node per gossip tick, plus the hand-offs between threads),
// and a deadline fires at most kSlack late (timer slack, like the kernel's own).
class Ticker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kSlack = std::chrono::milliseconds(5);

  // What a node gives the ticker: called (outside the ticker's lock, on a pool thread) when
  // its slot came; `entry` is owned by the node and only touched under the ticker's lock.
  struct Entry {
    std::weak_ptr<void> owner;         // expired: the node is gone, the call is skipped
    std::function<void()> fire;        // set once at registration, before the first set()
    bool active = false;
    std::multimap<Clock::time_point, Entry*>::iterator it;
  };

  explicit Ticker(boost::asio::io_context& ioc) : timer_(ioc) {}
  // Registers `when` (rounded up to the grid) for `e`, replacing its previous deadline;
  // nullopt removes it. Cheap when the slot does not change.
  void set(Entry& e, std::optional<Clock::time_point> when);

 private:
  void arm();  // caller holds mu_
  void on_timer(const boost::system::error_code& ec, uint64_t gen);

  std::mutex mu_;
  std::multimap<Clock::time_point, Entry*> due_;
  boost::asio::steady_timer timer_;
  std::optional<Clock::time_point> armed_;
  uint64_t gen_ = 0;
};

struct Runtime::Impl {
  // Heap-allocated so that a Runtime destroyed from one of its own threads can leak it
  // instead of destroying an io_context a handler is still running on.
  std::unique_ptr<boost::asio::io_context> ioc = std::make_unique<boost::asio::io_context>();
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{ioc->get_executor()};
  // Declared after ioc: destroyed before it (its timer belongs to the io_context).
  std::unique_ptr<Ticker> ticker = std::make_unique<Ticker>(*ioc);
  std::vector<std::thread> threads;

  bool on_pool_thread() const;
};

}  // namespace memberlist::runtime
