// Internals of the C ABI glue: the structs behind the opaque handles, error recording and
// the exception barrier every extern "C" entry point goes through. Not installed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "memberlist.h"
#include "core/queue.h"
#include "runtime/mem_network.h"
#include "runtime/node.h"

namespace memberlist::capi {

// Error messages live in fixed buffers: recording one never allocates (it runs inside the
// bad_alloc handler too) and a returned pointer never dangles.
inline constexpr size_t kErrorCapacity = 512;

struct ErrorBuffer {
  char text[kErrorCapacity] = "";
  void set(std::string_view msg, std::string_view detail = {}) noexcept;
};

// The thread-local message returned by ml_last_error().
ErrorBuffer& thread_error() noexcept;
// ml_memberlist_last_error: this thread's last failure on `ml` if it had one, else a
// thread-local copy of the handle's last failure on any thread. Never shared between threads.
const char* handle_error(const ml_memberlist* ml) noexcept;

ml_status to_status(core::Errc code) noexcept;

}  // namespace memberlist::capi

// ---- the structs behind the handles (global namespace: they complete the C typedefs) ------

struct ml_config {
  memberlist::runtime::Options opts;
  uint32_t log_level = ML_LOG_INFO;
  std::vector<std::string> no_tcp_ping_nodes;  // wired into core::Config::disable_tcp_pings_for_node
  // Keys as bytes, primary first: every memberlist created from the config (or a clone) gets
  // a keyring of its own, so changing one node's keys at run time touches no other.
  std::vector<memberlist::core::Bytes> keys;
  bool event_queue = false;  // notifications go to ml_memberlist_poll_events (events.cpp)
  // ml_config_set_transport: the host's callbacks and the node's address (network.cpp).
  std::optional<ml_transport> host_transport;
  memberlist::core::Address host_addr;
};

struct ml_node {
  std::string name;
  memberlist::core::Address addr;
  std::vector<uint8_t> meta;
  uint32_t state = ML_STATE_ALIVE;
  uint32_t incarnation = 0;
  uint8_t versions[6] = {};

  ml_node() = default;
  explicit ml_node(const memberlist::core::NodeInfo& info);
  // Copies everything but the formatted strings, which the copy formats again if asked.
  ml_node(const ml_node& other);
  ml_node& operator=(const ml_node&) = delete;

  // "host:port" and the host as text, formatted on first use (most nodes handed to a host,
  // such as those of polled events, are never asked); safe from concurrent const calls.
  const std::string& address() const;
  const std::string& host() const;

 private:
  void format() const;
  // Not std::call_once: glibc's pthread_once makes a futex syscall on every first call,
  // which was most of the cost of a polled event's node (bindings/README.md). An
  // uncontended mutex makes none.
  mutable std::atomic<bool> formatted_{false};
  mutable std::mutex format_mu_;
  mutable std::string address_, host_;
};

struct ml_node_list {
  std::vector<ml_node> nodes;
};

struct ml_bytes_list {
  std::vector<memberlist::core::Bytes> items;
};

// What a hook appends to; lives on the stack of the hook call.
struct ml_buffer {
  memberlist::core::Bytes data;
  size_t limit = 0;
  const char* what = "";  // the hook's name, for the error message
};

// Whole messages a get_broadcasts hook hands back, within a byte budget.
struct ml_message_sink {
  std::vector<memberlist::core::Bytes> messages;
  size_t overhead = 0;
  size_t remaining = 0;
};

struct ml_metrics {
  std::vector<memberlist::core::MetricValue> values;
  std::vector<std::string> names;   // MetricValue::name, kept as C strings
  std::vector<std::string> labels;  // Prometheus form: a="x",b="y"
};

struct ml_broadcast_queue {
  memberlist::core::TransmitLimitedQueue queue;
  explicit ml_broadcast_queue(int mult) : queue(mult) {}
};

// Polled events and the storage their views point into (events.cpp).
struct ml_event_batch {
  std::vector<memberlist::runtime::Delivery::Item> items;
  std::deque<ml_node> nodes;  // a deque: growing it moves no node an event points to
  std::vector<ml_event> events;
};

struct ml_runtime {
  std::shared_ptr<memberlist::runtime::Runtime> runtime;
};

// The handle is one reference; every memberlist created on the network holds another.
struct ml_network {
  std::shared_ptr<memberlist::runtime::MemNetwork> net;
};

namespace memberlist::capi {

class AsyncOps;
std::shared_ptr<AsyncOps> make_async_ops();
// Refuses new operations; those queued complete with ML_E_CLOSED (destroy, before shutdown).
void close_async_ops(AsyncOps& ops) noexcept;
// Waits until every accepted operation has called its done and the threads have ended.
void wait_async_ops(AsyncOps& ops) noexcept;

// The host's callbacks and the bookkeeping that makes user_data_free run exactly once, after
// the last callback. Shared with the runtime's std::function callbacks, which may outlive the
// handle by a little.
struct CallbackState {
  ml_callbacks cb{};                 // up-converted copy; unused members NULL
  uint32_t log_level = ML_LOG_INFO;  // least severe level delivered
  ml_memberlist* owner = nullptr;

  std::mutex mu;
  std::condition_variable idle;
  bool closed = false;  // no callback starts once set
  int active = 0;       // callbacks running now

  void deliver_event(const core::Event& ev);
  void deliver_log(core::LogLevel level, const std::string& msg);
  void deliver_notification(const core::Notification& note);
  void deliver_metric(const core::MetricSample& sample);
  // Runs host code: counted as active (a destroy waits for it), marked as this memberlist's
  // own callback (blocking calls refuse), a destroy called inside it deferred until it
  // returns. Delegate hooks also go through here. Returns false if the memberlist is closing
  // (f was not called). Defined in callbacks.cpp.
  template <class F>
  bool run(F&& f);
  // Stops new callbacks and waits for running ones (other than the caller's own).
  void close_and_wait();
  void free_user_data() noexcept;

 private:
  std::atomic<bool> user_data_freed_{false};
};

}  // namespace memberlist::capi

struct ml_memberlist {
  std::shared_ptr<memberlist::runtime::Runtime> runtime;
  std::shared_ptr<memberlist::runtime::HostLink> host;  // with ml_config_set_transport
  std::shared_ptr<memberlist::runtime::Node> node;
  std::shared_ptr<memberlist::capi::CallbackState> callbacks;
  std::atomic<bool> shut_down{false};
  std::atomic<bool> destroy_deferred{false};  // destroy was called from our own callback
  uint64_t generation = 0;  // unique per handle: a thread's error names the handle by it
  // The last failure of any thread (ml_memberlist_last_error on a thread that had none).
  mutable std::mutex error_mu;
  memberlist::capi::ErrorBuffer error;
  // API calls running on this handle: a destroy (e.g. deferred from a callback while another
  // thread is blocked in join) waits for them before freeing anything they use.
  std::mutex calls_mu;
  std::condition_variable calls_idle;
  int calls = 0;
  // The completion threads of the *_async calls (async.cpp).
  std::shared_ptr<memberlist::capi::AsyncOps> async;
};

namespace memberlist::capi {

// Counts one API call on a handle for its whole duration (see ml_memberlist::calls).
class CallGuard {
 public:
  explicit CallGuard(ml_memberlist* ml) : ml_(ml) {
    std::lock_guard lock(ml_->calls_mu);
    ++ml_->calls;
  }
  ~CallGuard() {
    // Notify under the lock: once it is released with calls == 0, a destroy may free ml_.
    std::lock_guard lock(ml_->calls_mu);
    if (--ml_->calls == 0) ml_->calls_idle.notify_all();
  }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

 private:
  ml_memberlist* ml_;
};

}  // namespace memberlist::capi

namespace memberlist::capi {

// This thread runs one of this memberlist's callbacks (or hooks): blocking calls refuse.
bool in_own_callback(const ml_memberlist* ml) noexcept;
// A delegate hook of this memberlist is running on this thread (it is inside the core): the
// calls the header lists as refused inside hooks (update_node, set_meta, send_reliable)
// check it.
bool in_own_hook(const ml_memberlist* ml) noexcept;
// Runs `f` (an async operation's done) as one of this memberlist's own callbacks: blocking
// calls refuse, a destroy called inside is deferred until it returns (callbacks.cpp).
void run_completion(ml_memberlist* ml, const std::function<void()>& f) noexcept;
// Tears the handle down (memberlist.cpp); must not run on one of its own callbacks.
void destroy_now(ml_memberlist* ml) noexcept;

// The core::Delegate that forwards to the C hooks of a version-2 callbacks table;
// local_state may append up to state_limit bytes, ack_payload up to ack_limit.
std::shared_ptr<core::Delegate> make_delegate(std::shared_ptr<CallbackState> state,
                                              size_t state_limit, size_t ack_limit);

// Records `msg` + `detail` as the thread's last error and returns `status`.
ml_status fail(ml_status status, std::string_view msg, std::string_view detail = {}) noexcept;
// Records it on the handle as well (when ml is not NULL).
ml_status fail(ml_memberlist* ml, ml_status status, std::string_view msg,
               std::string_view detail = {}) noexcept;
ml_status fail(ml_memberlist* ml, const core::Status& st) noexcept;

// The exception barrier: runs `body` (returning ml_status), converting any exception into a
// status and a message (on the handle if there is one).
template <class F>
ml_status guarded(ml_memberlist* ml, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(ml, ML_E_NOMEM, "out of memory");
  } catch (const std::exception& e) {
    return fail(ml, ML_E_INTERNAL, "internal error: ", e.what());
  } catch (...) {
    return fail(ml, ML_E_INTERNAL, "internal error: unknown exception");
  }
}

template <class F>
ml_status guarded(F&& body) noexcept {
  return guarded(static_cast<ml_memberlist*>(nullptr), std::forward<F>(body));
}

// The runtime's side of an ml_transport (network.cpp).
std::shared_ptr<runtime::HostLink> make_host_link(const ml_transport& t, const core::Address& addr);

// A timeout_ms as the runtime's wait limit: 0 and ML_TIMEOUT_FOREVER wait without limit
// (the runtime's zero), anything else is milliseconds.
inline core::Duration wait_limit(uint32_t timeout_ms) {
  if (timeout_ms == ML_TIMEOUT_FOREVER) return core::Duration::zero();
  return std::chrono::milliseconds(timeout_ms);
}

// For entry points that return a value instead of a status: `fallback` on any exception.
template <class T, class F>
T guarded_value(T fallback, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    fail(ML_E_NOMEM, "out of memory");
  } catch (const std::exception& e) {
    fail(ML_E_INTERNAL, "internal error: ", e.what());
  } catch (...) {
    fail(ML_E_INTERNAL, "internal error: unknown exception");
  }
  return fallback;
}

}  // namespace memberlist::capi
