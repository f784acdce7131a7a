// Runtime: a fixed pool of threads running one io_context (streams), one running the host's
// callbacks, and as many Tickers (the nodes' UDP sockets and timers, each on a thread of its
// own).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>
#include <tuple>

#include "runtime/runtime_impl.h"

namespace memberlist::runtime {

Ticker::Ticker() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epfd_ < 0 || wakefd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }
  thread_ = std::thread([this] { run(); });
}

Ticker::~Ticker() {
  stop_detached();
  ::close(epfd_);
  ::close(wakefd_);
}

void Ticker::stop_detached() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake();
  if (on_thread()) {
    thread_.detach();
  } else if (thread_.joinable()) {
    thread_.join();
  }
}

void Ticker::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wakefd_, &one, sizeof one);  // EAGAIN: already signalled
}

bool Ticker::watch(Entry& e, int fd) {
  std::lock_guard<std::mutex> l(mu_);
  e.watch_id = next_watch_id_++;
  watched_[e.watch_id] = &e;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = e.watch_id;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) return true;
  watched_.erase(e.watch_id);
  e.watch_id = 0;
  return false;
}

void Ticker::unwatch(Entry& e, int fd) {
  std::lock_guard<std::mutex> l(mu_);
  if (e.watch_id == 0) return;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  // Events already returned for it are looked up by id, under this lock: they find nothing.
  watched_.erase(e.watch_id);
  e.watch_id = 0;
}

namespace {
Ticker::Clock::time_point round_up(Ticker::Clock::time_point when, Ticker::Clock::duration step) {
  auto t = when.time_since_epoch();
  auto rem = t % step;
  return Ticker::Clock::time_point(rem.count() == 0 ? t : t - rem + step);
}
}  // namespace

Ticker::Clock::time_point Ticker::exact_slot(Clock::time_point when) { return round_up(when, kMinSlack); }

Ticker::Clock::time_point Ticker::lax_slot(Clock::time_point when, size_t nodes) {
  using std::chrono::milliseconds;
  // A second holds 1 s / step slots, for `nodes` probe ticks a second.
  auto per_second = static_cast<Clock::rep>(std::max<size_t>(nodes, 1));
  Clock::duration bound = Clock::duration(std::chrono::seconds(1)) * static_cast<Clock::rep>(kNodesPerSlot) / per_second;
  Clock::duration step = kMinSlack;
  for (Clock::duration g : {Clock::duration(milliseconds(10)), Clock::duration(milliseconds(20)),
                            Clock::duration(milliseconds(50)), Clock::duration(milliseconds(100)), kMaxSlack})
    if (bound >= g) step = g;
  return round_up(when, step);
}

std::optional<Ticker::Clock::time_point> Ticker::slot(std::optional<Clock::time_point> exact,
                                                     std::optional<Clock::time_point> lax, size_t nodes) {
  if (!lax) return exact ? std::optional(exact_slot(*exact)) : std::nullopt;
  auto s = lax_slot(*lax, nodes);
  return exact ? std::min(s, exact_slot(*exact)) : s;
}

void Ticker::set(Entry& e, std::optional<Clock::time_point> exact, std::optional<Clock::time_point> lax) {
  bool need_wake = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto slot = Ticker::slot(exact, lax, watched_.size());
    if (e.active && slot && e.it->first == *slot) return;
    if (e.active) {
      due_.erase(e.it);
      e.active = false;
    }
    if (!slot) return;
    e.it = due_.emplace(*slot, &e);
    e.active = true;
    // Only an earlier slot than the one the thread sleeps for needs to wake it (while it
    // runs nodes, it looks again anyway).
    need_wake = sleeping_until_ && *slot < *sleeping_until_;
    if (need_wake) sleeping_until_ = *slot;
  }
  if (need_wake) wake();
}

void Ticker::run() {
  constexpr int kMaxEvents = 64;
  std::array<epoll_event, kMaxEvents> events{};
  // (owner, entry, fire: timer / read: socket)
  std::vector<std::tuple<std::shared_ptr<void>, Entry*, bool>> batch;
  auto call = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (...) {
      // The nodes' handlers catch their own errors; this only keeps the others going.
    }
  };
  int timeout_ms = 0;
  for (;;) {
    int n = epoll_wait(epfd_, events.data(), kMaxEvents, timeout_ms);
    std::unique_lock<std::mutex> l(mu_);
    sleeping_until_.reset();
    if (stop_) return;
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[static_cast<size_t>(i)].data.u64;
      if (id == 0) {
        uint64_t v;
        [[maybe_unused]] auto r = ::read(wakefd_, &v, sizeof v);
        continue;
      }
      auto it = watched_.find(id);
      if (it == watched_.end()) continue;  // unwatched since
      if (auto owner = it->second->owner.lock()) batch.emplace_back(std::move(owner), it->second, false);
    }
    auto now = Clock::now();
    while (!due_.empty() && due_.begin()->first <= now) {
      Entry* e = due_.begin()->second;
      due_.erase(due_.begin());
      // An expired owner is being destroyed: its entry is dropped without touching it.
      if (auto owner = e->owner.lock()) {
        e->active = false;
        batch.emplace_back(std::move(owner), e, true);
      }
    }
    if (!batch.empty()) {
      l.unlock();
      for (auto& [owner, e, fire] : batch) call(fire ? e->fire : e->readable);
      batch.clear();  // may destroy a node (and even the runtime: see ~Runtime)
      l.lock();
      if (stop_) return;
      now = Clock::now();
    }
    // Sleep until the earliest slot, or a datagram (what just ran may have sent one to
    // another node of this process: epoll_wait then returns at once), or an earlier slot.
    if (due_.empty()) {
      sleeping_until_ = Clock::time_point::max();
      timeout_ms = -1;
    } else if (due_.begin()->first <= now) {
      timeout_ms = 0;
    } else {
      sleeping_until_ = due_.begin()->first;
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(due_.begin()->first - now);
      timeout_ms = static_cast<int>(std::min<int64_t>(wait.count(), 60'000));
    }
  }
}

bool Runtime::Impl::on_pool_thread() const {
  auto me = std::this_thread::get_id();
  auto is_me = [&](const std::thread& t) { return t.get_id() == me; };
  return std::any_of(threads.begin(), threads.end(), is_me) ||
         std::any_of(cb_threads.begin(), cb_threads.end(), is_me);
}

bool Runtime::Impl::on_ticker_thread() const {
  return std::any_of(tickers.begin(), tickers.end(), [](const std::unique_ptr<Ticker>& t) { return t->on_thread(); });
}

Ticker& Runtime::Impl::pick_ticker() {
  Ticker* fewest = nullptr;
  size_t fewest_nodes = 0;
  for (auto& t : tickers) {
    size_t n = t->watched();
    if (n < nodes_per_ticker) return *t;
    if (!fewest || n < fewest_nodes) {
      fewest = t.get();
      fewest_nodes = n;
    }
  }
  return *fewest;
}

namespace {
// Runs `ioc` until stopped. A handler that throws must not take the pool (and the host)
// down: every handler of ours catches its own errors, so this only guards against bugs.
void run_pool_thread(boost::asio::io_context* ioc) {
  for (;;) {
    try {
      ioc->run();
      return;
    } catch (...) {
    }
  }
}
}  // namespace

Runtime::Runtime(unsigned threads, size_t nodes_per_ticker) : impl_(std::make_unique<Impl>()) {
  if (threads == 0) threads = 1;
  impl_->nodes_per_ticker = std::max<size_t>(nodes_per_ticker, 1);
  for (unsigned i = 0; i < threads; ++i) impl_->tickers.push_back(std::make_unique<Ticker>());
  for (unsigned i = 0; i < threads; ++i) {
    impl_->threads.emplace_back(run_pool_thread, impl_->ioc.get());
    impl_->cb_threads.emplace_back(run_pool_thread, impl_->cb_ioc.get());
  }
}

Runtime::~Runtime() {
  impl_->work.reset();
  impl_->cb_work.reset();
  impl_->ioc->stop();
  impl_->cb_ioc->stop();
  bool self = impl_->on_pool_thread() || impl_->on_ticker_thread();
  for (auto* pool : {&impl_->threads, &impl_->cb_threads}) {
    for (auto& t : *pool) {
      if (t.get_id() == std::this_thread::get_id()) {
        t.detach();
      } else {
        t.join();
      }
    }
  }
  // Destroyed from one of its own threads (the last Node released inside a handler): that
  // thread is still inside io_context::run, so the io_contexts must outlive it.
  if (self) {
    // A ticker's thread may be this one: it stops after the current batch and that ticker
    // is leaked, like the io_contexts; the others are stopped and destroyed.
    for (auto& t : impl_->tickers) {
      if (t->on_thread()) t.release()->stop_detached();
    }
    (void)impl_->ioc.release();
    (void)impl_->cb_ioc.release();
  } else {
    // A ticker's thread may still hold the last reference to a node's State (see run()),
    // whose strands belong to the io_contexts: stop the tickers before those are destroyed.
    impl_->tickers.clear();
  }
}

}  // namespace memberlist::runtime
