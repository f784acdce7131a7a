// Running host code: the callbacks table (events, log lines, notifications) and the delegate
// hooks, with the bookkeeping that keeps destroy, user_data_free and reentrant calls safe.
#include <cstdio>
#include <thread>
#include <type_traits>
#include <variant>

#include "capi.h"

using namespace memberlist;
using capi::CallbackState;
using capi::fail;
using capi::guarded;

namespace {

// The memberlist whose callback (or hook) this thread is running, nullptr outside them.
// (Whether it is inside the core, as in a hook, the runtime's CoreAccess knows.)
thread_local const CallbackState* tls_in_callback = nullptr;

void log_to_stderr(uint32_t level, const std::string& msg) {
  static const char* const names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};
  std::fprintf(stderr, "[memberlist] %s %s\n", level < 5 ? names[level] : "?", msg.c_str());
}

// A hook's veto reason: what it appended, or a default naming the hook.
core::Status veto(const char* hook, const ml_buffer& reason) {
  std::string msg = std::string(hook) + " hook refused";
  if (!reason.data.empty()) msg += ": " + std::string(reason.data.begin(), reason.data.end());
  return core::Status::error(core::Errc::rejected, std::move(msg));
}

// Forwards the core's Delegate calls to the C hooks. Every buffer handed to a hook lives on
// this stack frame only, as the header says.
class HookDelegate final : public core::Delegate {
 public:
  HookDelegate(std::shared_ptr<CallbackState> state, size_t state_limit, size_t ack_limit)
      : s_(std::move(state)), state_limit_(state_limit), ack_limit_(ack_limit) {}

  std::optional<core::Bytes> node_meta(size_t limit) override {
    auto fn = s_->cb.node_meta;
    if (!fn) return std::nullopt;
    ml_buffer out;
    out.limit = limit;
    out.what = "node_meta";
    if (!s_->run([&] { fn(s_->cb.user_data, &out, limit); })) return std::nullopt;
    return std::move(out.data);
  }

  std::vector<core::Bytes> get_broadcasts(size_t overhead, size_t limit) override {
    auto fn = s_->cb.get_broadcasts;
    if (!fn) return {};
    ml_message_sink sink;
    sink.overhead = overhead;
    sink.remaining = limit;
    s_->run([&] { fn(s_->cb.user_data, &sink, overhead, limit); });
    return std::move(sink.messages);
  }

  core::Bytes local_state(bool join) override {
    auto fn = s_->cb.local_state;
    if (!fn) return {};
    ml_buffer out;
    out.limit = state_limit_;
    out.what = "local_state";
    s_->run([&] { fn(s_->cb.user_data, join ? 1u : 0u, &out); });
    return std::move(out.data);
  }

  void merge_remote_state(std::span<const uint8_t> state, bool join) override {
    auto fn = s_->cb.merge_remote_state;
    if (!fn) return;
    s_->run([&] { fn(s_->cb.user_data, state.data(), state.size(), join ? 1u : 0u); });
  }

  core::Status notify_merge(const std::vector<core::NodeInfo>& peers) override {
    auto fn = s_->cb.notify_merge;
    if (!fn) return core::Status::success();
    ml_node_list list;
    list.nodes.reserve(peers.size());
    for (const auto& p : peers) list.nodes.emplace_back(p);
    ml_buffer reason;
    reason.limit = kReasonLimit;
    reason.what = "notify_merge reason";
    int32_t rc = 0;
    s_->run([&] { rc = fn(s_->cb.user_data, &list, &reason); });
    return rc == 0 ? core::Status::success() : veto("notify_merge", reason);
  }

  core::Status notify_alive(const core::NodeInfo& peer) override {
    auto fn = s_->cb.notify_alive;
    if (!fn) return core::Status::success();
    const ml_node node(peer);
    ml_buffer reason;
    reason.limit = kReasonLimit;
    reason.what = "notify_alive reason";
    int32_t rc = 0;
    s_->run([&] { rc = fn(s_->cb.user_data, &node, &reason); });
    return rc == 0 ? core::Status::success() : veto("notify_alive", reason);
  }

  core::Bytes ack_payload() override {
    auto fn = s_->cb.ack_payload;
    if (!fn) return {};
    ml_buffer out;
    out.limit = ack_limit_;
    out.what = "ack_payload";
    s_->run([&] { fn(s_->cb.user_data, &out); });
    return std::move(out.data);
  }

 private:
  // Long enough for a sentence; the error buffers keep 511 bytes anyway.
  static constexpr size_t kReasonLimit = 400;
  std::shared_ptr<CallbackState> s_;
  size_t state_limit_;
  size_t ack_limit_;
};

}  // namespace

namespace memberlist::capi {

bool in_own_callback(const ml_memberlist* ml) noexcept {
  return ml->callbacks && tls_in_callback == ml->callbacks.get();
}

bool in_own_hook(const ml_memberlist* ml) noexcept { return ml->node && ml->node->in_core(); }

template <class F>
bool CallbackState::run(F&& f) {
  {
    std::lock_guard lock(mu);
    if (closed) return false;
    ++active;
  }
  const CallbackState* saved = tls_in_callback;
  tls_in_callback = this;
  try {
    f();  // host code; nothing of ours is locked here (a hook runs inside the core)
  } catch (...) {
    // a C++ host threw through a C callback: never let it reach the runtime's threads
  }
  tls_in_callback = saved;
  // Read before we stop counting as active: once active drops, a destroy may free `owner`.
  ml_memberlist* deferred = owner && owner->destroy_deferred.exchange(false) ? owner : nullptr;
  {
    std::lock_guard lock(mu);
    --active;
    idle.notify_all();
  }
  // ml_memberlist_destroy was called from inside that callback: finish it now that the
  // callback has returned, on a thread of its own (we may be on a runtime thread that the
  // teardown waits for, or inside the core holding the node's lock).
  if (deferred) {
    try {
      std::thread([deferred] { destroy_now(deferred); }).detach();
    } catch (...) {
      // no thread to spare: the handle leaks rather than deadlocking this one
    }
  }
  return true;
}

void run_completion(ml_memberlist* ml, const std::function<void()>& f) noexcept {
  const CallbackState* saved = tls_in_callback;
  tls_in_callback = ml->callbacks.get();
  try {
    f();
  } catch (...) {
    // a C++ host threw through a C callback: never let it reach our threads
  }
  tls_in_callback = saved;
  // As in CallbackState::run: a destroy called inside finishes on a thread of its own (this
  // one is a completion thread the teardown waits for).
  if (ml->destroy_deferred.exchange(false)) {
    try {
      std::thread([ml] { destroy_now(ml); }).detach();
    } catch (...) {
      // no thread to spare: the handle leaks rather than deadlocking this one
    }
  }
}

void CallbackState::deliver_event(const core::Event& ev) {
  if (!cb.on_event) return;
  const ml_node node(ev.node);  // borrowed by the host for the duration of the call
  run([&] { cb.on_event(cb.user_data, static_cast<uint32_t>(ev.type), &node); });
}

void CallbackState::deliver_log(core::LogLevel level, const std::string& msg) {
  auto lvl = static_cast<uint32_t>(level);
  if (lvl < log_level || log_level >= ML_LOG_OFF) return;
  if (!cb.on_log) {
    if (lvl >= ML_LOG_WARN) log_to_stderr(lvl, msg);
    return;
  }
  run([&] { cb.on_log(cb.user_data, lvl, msg.c_str(), msg.size()); });
}

void CallbackState::deliver_notification(const core::Notification& note) {
  void* ud = cb.user_data;
  std::visit(
      [&](const auto& n) {
        using T = std::decay_t<decltype(n)>;
        if constexpr (std::is_same_v<T, core::UserMessage>) {
          if (cb.on_message) run([&] { cb.on_message(ud, n.payload.data(), n.payload.size()); });
        } else if constexpr (std::is_same_v<T, core::Conflict>) {
          if (!cb.on_conflict) return;
          const ml_node existing(n.existing), other(n.other);
          run([&] { cb.on_conflict(ud, &existing, &other); });
        } else if constexpr (std::is_same_v<T, core::PingComplete>) {
          if (!cb.on_ping_complete) return;
          const ml_node node(n.node);
          auto rtt = static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(n.rtt).count());
          run([&] { cb.on_ping_complete(ud, &node, rtt, n.payload.data(), n.payload.size()); });
        } else if constexpr (std::is_same_v<T, core::BroadcastDone>) {
          if (!cb.on_broadcast_done) return;
          run([&] { cb.on_broadcast_done(ud, n.id, static_cast<uint32_t>(n.outcome)); });
        } else if constexpr (std::is_same_v<T, core::BroadcastReceived>) {
          if (!cb.on_broadcast) return;
          run([&] {
            cb.on_broadcast(ud, n.origin.c_str(), n.name.c_str(), n.payload.data(), n.payload.size());
          });
        }
      },
      note);
}

void CallbackState::deliver_metric(const core::MetricSample& sample) {
  if (!cb.on_metric) return;
  run([&] {
    cb.on_metric(cb.user_data, sample.name.c_str(), static_cast<uint32_t>(sample.kind), sample.value);
  });
}

void CallbackState::close_and_wait() {
  std::unique_lock lock(mu);
  closed = true;
  // A callback of ours running on this very thread cannot finish while we wait.
  int own = tls_in_callback == this ? 1 : 0;
  idle.wait(lock, [&] { return active <= own; });
}

void CallbackState::free_user_data() noexcept {
  if (cb.user_data_free && !user_data_freed_.exchange(true)) cb.user_data_free(cb.user_data);
}

std::shared_ptr<core::Delegate> make_delegate(std::shared_ptr<CallbackState> state,
                                              size_t state_limit, size_t ack_limit) {
  return std::make_shared<HookDelegate>(std::move(state), state_limit, ack_limit);
}

}  // namespace memberlist::capi

static_assert(static_cast<uint32_t>(core::EventType::Join) == ML_EVENT_JOIN &&
              static_cast<uint32_t>(core::EventType::Leave) == ML_EVENT_LEAVE &&
              static_cast<uint32_t>(core::EventType::Update) == ML_EVENT_UPDATE);
static_assert(static_cast<uint32_t>(core::LogLevel::Trace) == ML_LOG_TRACE &&
              static_cast<uint32_t>(core::LogLevel::Error) == ML_LOG_ERROR);
static_assert(static_cast<uint32_t>(core::BroadcastOutcome::Delivered) == ML_BROADCAST_DELIVERED &&
              static_cast<uint32_t>(core::BroadcastOutcome::Replaced) == ML_BROADCAST_REPLACED &&
              static_cast<uint32_t>(core::BroadcastOutcome::Dropped) == ML_BROADCAST_DROPPED &&
              static_cast<uint32_t>(core::BroadcastOutcome::Settled) == ML_BROADCAST_SETTLED);

extern "C" {

ML_API ml_status ml_buffer_append(ml_buffer* buffer, const uint8_t* data, size_t len) {
  return guarded([&] {
    if (!buffer) return fail(ML_E_INVALID, "buffer is NULL");
    if (!data && len > 0) return fail(ML_E_INVALID, "data is NULL but len is not 0");
    if (len > buffer->limit - buffer->data.size()) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "%s: appending %zu bytes to %zu exceeds the limit of %zu",
                    buffer->what, len, buffer->data.size(), buffer->limit);
      return fail(ML_E_TOO_LARGE, msg);
    }
    buffer->data.insert(buffer->data.end(), data, data + len);
    return ML_OK;
  });
}

ML_API ml_status ml_message_sink_add(ml_message_sink* sink, const uint8_t* data, size_t len) {
  return guarded([&] {
    if (!sink) return fail(ML_E_INVALID, "sink is NULL");
    if (!data && len > 0) return fail(ML_E_INVALID, "data is NULL but len is not 0");
    if (len > sink->remaining || sink->overhead > sink->remaining - len) {
      char msg[160];
      std::snprintf(msg, sizeof msg,
                    "get_broadcasts: a %zu-byte message (+%zu overhead) does not fit the %zu bytes "
                    "left",
                    len, sink->overhead, sink->remaining);
      return fail(ML_E_TOO_LARGE, msg);
    }
    sink->messages.emplace_back(data, data + len);
    sink->remaining -= len + sink->overhead;
    return ML_OK;
  });
}

}  // extern "C"
