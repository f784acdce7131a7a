// ml_memberlist_join_async, _ping_async and _leave_async: the blocking forms run on a small
// pool of threads each memberlist owns, and report through the host's `done` function.
//
// Why threads and not Asio completions: the runtime's join, ping and leave wait on a
// condition variable (runtime/node.cpp), not on an Asio operation that could complete a
// handler. Running the blocking form on a bounded, library-owned thread keeps the runtime
// untouched, and the host's threads never wait.
#include <algorithm>
#include <chrono>
#include <deque>
#include <cstdio>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "capi.h"

using namespace memberlist;
using capi::fail;
using capi::guarded;

namespace memberlist::capi {

// At most this many operations of one memberlist run at once; more wait in the queue.
constexpr size_t kMaxAsyncThreads = 4;
// A thread without work for this long ends (an idle memberlist holds no thread).
constexpr auto kAsyncLinger = std::chrono::seconds(10);

class AsyncOps {
 public:
  ~AsyncOps() { wait(); }

  // Queues `op`; false once closing (the op was not taken). Throws if no thread can be
  // started for it (then it was not taken either).
  bool submit(std::function<void()> op) {
    std::unique_lock lock(mu_);
    if (closing_) return false;
    queue_.push_back(std::move(op));
    if (idle_ > 0) {
      cv_.notify_one();
      return true;
    }
    if (live_ < kMaxAsyncThreads) {
      reap(lock);
      try {
        threads_.emplace_back([this] { work(); });
      } catch (...) {
        queue_.pop_back();
        throw;
      }
      ++live_;
    }
    return true;  // a busy thread takes it next
  }

  // Operations queued from now on are refused; those already queued still run (and see
  // closing() true).
  void close() {
    std::lock_guard lock(mu_);
    closing_ = true;
    cv_.notify_all();
  }

  bool closing() {
    std::lock_guard lock(mu_);
    return closing_;
  }

  // Waits until every queued operation ran and every thread ended (after close()).
  void wait() {
    std::unique_lock lock(mu_);
    closing_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return live_ == 0 && queue_.empty(); });
    reap(lock);
  }

 private:
  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (!queue_.empty()) {
        auto op = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        op();  // never throws: the ops catch everything themselves
        lock.lock();
        continue;
      }
      if (closing_) break;
      ++idle_;
      bool woken = cv_.wait_for(lock, kAsyncLinger, [&] { return !queue_.empty() || closing_; });
      --idle_;
      if (!woken) break;
    }
    --live_;
    ended_.push_back(std::this_thread::get_id());
    done_cv_.notify_all();
  }

  // Joins the threads that have ended (they hold no lock past their last line).
  void reap(std::unique_lock<std::mutex>&) {
    for (auto it = threads_.begin(); it != threads_.end();) {
      auto found = std::find(ended_.begin(), ended_.end(), it->get_id());
      if (found == ended_.end()) {
        ++it;
        continue;
      }
      ended_.erase(found);
      it->join();
      it = threads_.erase(it);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;       // work or closing for idle threads
  std::condition_variable done_cv_;  // a thread ended
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> ended_;
  size_t live_ = 0;
  size_t idle_ = 0;
  bool closing_ = false;
};

std::shared_ptr<AsyncOps> make_async_ops() { return std::make_shared<AsyncOps>(); }
void close_async_ops(AsyncOps& ops) noexcept {
  try {
    ops.close();
  } catch (...) {
  }
}
void wait_async_ops(AsyncOps& ops) noexcept {
  try {
    ops.wait();
  } catch (...) {
  }
}

}  // namespace memberlist::capi

namespace {

// Queues `run` (the blocking call, returning its status) and `report` (calls done with the
// status and the message) as one operation of `ml`.
template <class Run, class Report>
ml_status submit(ml_memberlist* ml, const char* what, Run run, Report report) {
  // The op holds a call on the handle while it runs, so that a destroy waits for it; the
  // destroy also waits for the queue to empty before it frees anything.
  auto op = [ml, what, run = std::move(run), report = std::move(report)]() mutable noexcept {
    capi::CallGuard guard(ml);
    ml_status status = ML_E_CLOSED;
    std::string message;
    try {
      if (ml->async->closing()) {
        message = std::string("the memberlist was destroyed before ") + what + " ran";
      } else {
        status = run();
        if (status != ML_OK) message = ml_memberlist_last_error(ml);
        // Interrupted by a shutdown or destroy: say so with one status.
        if (status != ML_OK && status != ML_E_CLOSED && (ml->shut_down || ml->async->closing())) {
          message = std::string("the memberlist was shut down before ") + what +
                    " completed (" + message + ")";
          status = ML_E_CLOSED;
        }
      }
    } catch (...) {
      status = ML_E_NOMEM;  // only std::string can throw here
      message.clear();
    }
    capi::run_completion(ml, [&] { report(status, message.c_str()); });
  };
  try {
    if (!ml->async->submit(std::move(op)))
      return fail(ml, ML_E_CLOSED, what, ": the memberlist is being destroyed");
  } catch (const std::system_error& e) {
    return fail(ml, ML_E_NOMEM, "cannot start a completion thread: ", e.what());
  }
  return ML_OK;
}

// What the blocking forms would refuse before doing anything, refused here too.
ml_status check_accepting(ml_memberlist* ml, const char* what) {
  if (ml->shut_down) return fail(ml, ML_E_CLOSED, what, ": the memberlist is shut down");
  return ML_OK;
}

}  // namespace

extern "C" {

ML_API ml_status ml_memberlist_join_async(ml_memberlist* ml, const char* const* addresses,
                                          size_t count, ml_join_done_fn done, void* user_data) {
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!done) return fail(ml, ML_E_INVALID, "done is NULL");
    if (!addresses) return fail(ml, ML_E_INVALID, "addresses is NULL");
    if (count == 0) return fail(ml, ML_E_INVALID, "count is 0: no address to join");
    auto list = std::make_shared<std::vector<std::string>>();
    list->reserve(count);
    for (size_t i = 0; i < count; ++i) {
      if (!addresses[i]) {
        char msg[64];
        std::snprintf(msg, sizeof msg, "addresses[%zu] is NULL", i);
        return fail(ml, ML_E_INVALID, msg);
      }
      list->emplace_back(addresses[i]);
    }
    if (ml_status s = check_accepting(ml, "ml_memberlist_join_async")) return s;
    auto joined = std::make_shared<uint32_t>(0);
    return submit(
        ml, "ml_memberlist_join_async",
        [ml, list, joined] {
          std::vector<const char*> ptrs;
          ptrs.reserve(list->size());
          for (const auto& a : *list) ptrs.push_back(a.c_str());
          return ml_memberlist_join(ml, ptrs.data(), ptrs.size(), joined.get());
        },
        [done, user_data, joined](ml_status st, const char* msg) {
          done(user_data, st, st == ML_OK ? *joined : 0, msg);
        });
  });
}

ML_API ml_status ml_memberlist_ping_async(ml_memberlist* ml, const char* node_name,
                                          ml_ping_done_fn done, void* user_data) {
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!done) return fail(ml, ML_E_INVALID, "done is NULL");
    if (!node_name) return fail(ml, ML_E_INVALID, "node_name is NULL");
    if (ml_status s = check_accepting(ml, "ml_memberlist_ping_async")) return s;
    auto name = std::make_shared<std::string>(node_name);
    auto rtt = std::make_shared<uint64_t>(0);
    return submit(
        ml, "ml_memberlist_ping_async",
        [ml, name, rtt] { return ml_memberlist_ping(ml, name->c_str(), rtt.get()); },
        [done, user_data, rtt](ml_status st, const char* msg) {
          done(user_data, st, st == ML_OK ? *rtt : 0, msg);
        });
  });
}

ML_API ml_status ml_memberlist_leave_async(ml_memberlist* ml, uint32_t timeout_ms,
                                           ml_leave_done_fn done, void* user_data) {
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!done) return fail(ml, ML_E_INVALID, "done is NULL");
    if (ml_status s = check_accepting(ml, "ml_memberlist_leave_async")) return s;
    return submit(
        ml, "ml_memberlist_leave_async",
        [ml, timeout_ms] { return ml_memberlist_leave(ml, timeout_ms); },
        [done, user_data](ml_status st, const char* msg) { done(user_data, st, msg); });
  });
}

}  // extern "C"
