// Runtime: a fixed pool of threads running one io_context.
#include <algorithm>

#include "runtime/runtime_impl.h"

namespace memberlist::runtime {

void Ticker::set(Entry& e, std::optional<Clock::time_point> when) {
  std::optional<Clock::time_point> slot;
  if (when) {
    // Round up to the grid (from the clock's epoch, shared by every node).
    auto t = when->time_since_epoch();
    auto rem = t % kSlack;
    slot = Clock::time_point((rem.count() == 0 ? t : t - rem + kSlack));
  }
  std::lock_guard<std::mutex> l(mu_);
  if (e.active && slot && e.it->first == *slot) return;
  if (e.active) {
    due_.erase(e.it);
    e.active = false;
  }
  if (!slot) return;
  e.it = due_.emplace(*slot, &e);
  e.active = true;
  // Re-arm only for an earlier slot: a later one is found when the armed one fires.
  if (!armed_ || *slot < *armed_) arm();
}

void Ticker::arm() {
  if (due_.empty()) {
    // Left armed: the handler finds nothing due and re-arms for what is there then.
    return;
  }
  auto first = due_.begin()->first;
  if (armed_ && *armed_ == first) return;
  armed_ = first;
  ++gen_;
  timer_.expires_at(first);
  timer_.async_wait([this, gen = gen_](const boost::system::error_code& ec) { on_timer(ec, gen); });
}

void Ticker::on_timer(const boost::system::error_code& ec, uint64_t gen) {
  if (ec == boost::asio::error::operation_aborted) return;  // re-armed earlier, or stopping
  std::vector<std::pair<std::shared_ptr<void>, Entry*>> run;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (gen != gen_) return;  // a stale completion: a newer wait is pending
    armed_.reset();
    auto now = Clock::now();
    while (!due_.empty() && due_.begin()->first <= now) {
      Entry* e = due_.begin()->second;
      due_.erase(due_.begin());
      // An expired owner is being destroyed: its entry is dropped without touching it.
      if (auto owner = e->owner.lock()) {
        e->active = false;
        run.emplace_back(std::move(owner), e);
      }
    }
    arm();
  }
  for (auto& [owner, e] : run) {
    try {
      e->fire();
    } catch (...) {
      // The nodes' handlers catch their own errors; this only keeps the others ticking.
    }
  }
}

bool Runtime::Impl::on_pool_thread() const {
  auto me = std::this_thread::get_id();
  return std::any_of(threads.begin(), threads.end(),
                     [&](const std::thread& t) { return t.get_id() == me; });
}

Runtime::Runtime(unsigned threads) : impl_(std::make_unique<Impl>()) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([ioc = impl_->ioc.get()] {
      // A handler that throws must not take the pool (and the host) down: every handler of
      // ours catches its own errors, so this only guards against bugs.
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (...) {
        }
      }
    });
  }
}

Runtime::~Runtime() {
  impl_->work.reset();
  impl_->ioc->stop();
  bool self = impl_->on_pool_thread();
  for (auto& t : impl_->threads) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }
  // Destroyed from one of its own threads (the last Node released inside a handler): that
  // thread is still inside io_context::run, so the io_context must outlive it.
  if (self) {
    (void)impl_->ticker.release();
    (void)impl_->ioc.release();
  }
}

}  // namespace memberlist::runtime
