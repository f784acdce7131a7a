#include "runtime/delivery.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "runtime/node.h"

namespace memberlist::runtime {

namespace {
// Items run per turn of the strand, so that one node's backlog does not hold a callback
// thread that other nodes' callbacks wait for.
constexpr int kBatch = 64;
}  // namespace

Delivery::Delivery(const Callbacks& cb, size_t max_items, size_t max_log_lines, Schedule schedule)
    : cb_(cb), max_items_(max_items), max_logs_(max_log_lines), schedule_(std::move(schedule)) {
  if (schedule_) return;
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Delivery::~Delivery() {
  if (event_fd_ >= 0) ::close(event_fd_);
}

void Delivery::signal_locked() {
  if (event_fd_ < 0) return;
  if (queue_.empty()) {
    uint64_t v;
    [[maybe_unused]] auto n = ::read(event_fd_, &v, sizeof v);  // EAGAIN if already reset
  } else {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  }
}

bool Delivery::kept_at_shutdown(const Item& item) {
  if (std::holds_alternative<core::Event>(item)) return true;
  const auto* n = std::get_if<core::Notification>(&item);
  return n != nullptr && std::holds_alternative<core::BroadcastDone>(*n);
}

void Delivery::push(Item item) {
  const bool log = std::holds_alternative<LogLine>(item);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_ && !kept_at_shutdown(item)) return;
    if (log ? logs_ >= max_logs_ : items_ >= max_items_) {
      ++(log ? dropped_logs_ : dropped_items_);
      return;
    }
    ++(log ? logs_ : items_);
    queue_.push_back(std::move(item));
    if (!schedule_) {
      if (queue_.size() == 1) signal_locked();  // empty -> readable; later ones keep it so
      return;
    }
    if (scheduled_) return;
    scheduled_ = true;
  }
  if (!schedule_()) {
    std::lock_guard<std::mutex> l(mu_);
    scheduled_ = false;
  }
}

size_t Delivery::take(std::vector<Item>& out, size_t max) {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = 0;
  for (; n < max && !queue_.empty(); ++n) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
    --(std::holds_alternative<LogLine>(out.back()) ? logs_ : items_);
  }
  if (n > 0 && queue_.empty()) signal_locked();
  return n;
}

bool Delivery::drain() {
  for (int i = 0; i < kBatch; ++i) {
    Item item;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (queue_.empty()) break;
      item = std::move(queue_.front());
      queue_.pop_front();
      --(std::holds_alternative<LogLine>(item) ? logs_ : items_);
    }
    run(item);
  }
  // What the bounds dropped since the last summary, in one line (itself never dropped).
  const uint64_t items = dropped_items_, logs = dropped_logs_;
  if ((items != reported_items_ || logs != reported_logs_) && cb_.on_log &&
      cb_.log_level <= core::LogLevel::Warn) {
    try {
      cb_.on_log(core::LogLevel::Warn,
                 fmt::format("callback queue full: dropped {} notifications and {} log lines so far",
                             items, logs));
    } catch (...) {
    }
  }
  reported_items_ = items;
  reported_logs_ = logs;
  std::lock_guard<std::mutex> l(mu_);
  if (queue_.empty()) scheduled_ = false;
  return !queue_.empty();
}

void Delivery::close() {
  std::lock_guard<std::mutex> l(mu_);
  closed_ = true;
  std::deque<Item> kept;
  for (auto& item : queue_) {
    if (kept_at_shutdown(item)) kept.push_back(std::move(item));
  }
  queue_ = std::move(kept);
  items_ = queue_.size();
  logs_ = 0;
  if (queue_.empty()) signal_locked();
}

size_t Delivery::queued() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size();
}

void Delivery::run(const Item& item) {
  auto report = [&](const char* what, const char* detail) {
    if (!cb_.on_log || cb_.log_level > core::LogLevel::Warn) return;
    try {
      cb_.on_log(core::LogLevel::Warn, fmt::format("{} callback threw: {}", what, detail));
    } catch (...) {
    }
  };
  auto guarded = [&](const char* what, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      report(what, e.what());
    } catch (...) {
      report(what, "unknown exception");
    }
  };
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, core::Event>) {
          if (cb_.on_event) guarded("event", [&] { cb_.on_event(x); });
        } else if constexpr (std::is_same_v<T, core::Notification>) {
          if (cb_.on_notification) guarded("notification", [&] { cb_.on_notification(x); });
        } else if constexpr (std::is_same_v<T, core::MetricSample>) {
          if (cb_.on_metric) guarded("metric", [&] { cb_.on_metric(x); });
        } else {
          // Nowhere left to report a failing log sink.
          try {
            if (cb_.on_log) cb_.on_log(x.level, x.text);
          } catch (...) {
          }
        }
      },
      item);
}

}  // namespace memberlist::runtime
