// ml_runtime and ml_memberlist: lifetime (create, deferred destroy) and the blocking calls.
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>

#include "capi.h"

using namespace memberlist;
using capi::CallbackState;
using capi::fail;
using capi::guarded;

namespace {

using capi::destroy_now;
using capi::in_own_callback;

// The process-wide runtime used when ml_memberlist_create gets runtime == NULL: created on
// first use, freed with the last memberlist holding it (each holds a shared_ptr).
std::shared_ptr<runtime::Runtime> default_runtime() {
  static std::mutex mu;
  static std::weak_ptr<runtime::Runtime> weak;
  std::lock_guard lock(mu);
  auto rt = weak.lock();
  if (!rt) {
    rt = std::make_shared<runtime::Runtime>(2);
    weak = rt;
  }
  return rt;
}

// Size of ml_callbacks as declared by each version (fields are only appended).
constexpr size_t kCallbacksSize[] = {
    0,                                                               // version 0: invalid
    offsetof(ml_callbacks, on_log) + sizeof(ml_callbacks::on_log),  // version 1
    offsetof(ml_callbacks, on_metric) + sizeof(ml_callbacks::on_metric),  // version 2
};
static_assert(ML_CALLBACKS_VERSION == 2, "add the new version's size to kCallbacksSize");
static_assert(kCallbacksSize[ML_CALLBACKS_VERSION] == sizeof(ml_callbacks));

// Any of the version-2 hooks set: the node needs a core::Delegate (the core reports ping
// completions only to nodes with one).
bool wants_delegate(const ml_callbacks& cb) {
  return cb.node_meta || cb.get_broadcasts || cb.local_state || cb.merge_remote_state ||
         cb.notify_merge || cb.notify_alive || cb.ack_payload || cb.on_ping_complete;
}

bool has_notification_callbacks(const ml_callbacks& cb) {
  return cb.on_event || cb.on_log || cb.on_message || cb.on_broadcast || cb.on_broadcast_done ||
         cb.on_conflict || cb.on_ping_complete || cb.on_metric;
}

// Rejects the blocking calls from the memberlist's own callback, and calls after shutdown.
ml_status check_blocking(ml_memberlist* ml, const char* what) {
  if (in_own_callback(ml))
    return fail(ml, ML_E_STATE, what,
                " cannot be called from one of this memberlist's own callbacks");
  if (ml->shut_down) return fail(ml, ML_E_CLOSED, what, ": the memberlist is shut down");
  return ML_OK;
}

}  // namespace

namespace memberlist::capi {

// Tears the handle down; must not run on one of its own callbacks.
void destroy_now(ml_memberlist* ml) noexcept {
  // Shut down first, with the callbacks still open: the outcomes of broadcasts still queued
  // (ML_BROADCAST_DROPPED) and the membership events already queued reach the host.
  // Async operations not started yet complete with ML_E_CLOSED; running ones return once
  // the node is shut down.
  if (ml->async) capi::close_async_ops(*ml->async);
  try {
    if (ml->node) ml->node->shutdown();  // also makes blocking calls in flight return
  } catch (...) {
    // shutting down is best effort here; the node is released anyway
  }
  ml->callbacks->close_and_wait();
  if (ml->async) capi::wait_async_ops(*ml->async);  // every done has been called
  {
    std::unique_lock lock(ml->calls_mu);
    ml->calls_idle.wait(lock, [&] { return ml->calls == 0; });
  }
  ml->node.reset();
  // The host link's strand lives on the runtime's io_context: before the runtime (the
  // default one goes with its last memberlist).
  ml->host.reset();
  ml->runtime.reset();
  ml->callbacks->free_user_data();
  delete ml;
}

}  // namespace memberlist::capi

extern "C" {

// ---- runtime -----------------------------------------------------------------------------

ML_API ml_status ml_runtime_new(uint32_t threads, ml_runtime** out) { return ml_runtime_create(out, threads); }

ML_API ml_status ml_runtime_create(ml_runtime** out, uint32_t threads) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = nullptr;
    if (threads > 1024) return fail(ML_E_INVALID, "threads: at most 1024");
    auto rt = std::make_unique<ml_runtime>();
    rt->runtime = std::make_shared<runtime::Runtime>(threads == 0 ? 2 : threads);
    *out = rt.release();
    return ML_OK;
  });
}

// Memberlists hold their own reference: the threads stop when the last user is gone.
ML_API void ml_runtime_free(ml_runtime* runtime) { delete runtime; }

// ---- memberlist --------------------------------------------------------------------------

ML_API ml_status ml_memberlist_create(ml_memberlist** out, ml_runtime* runtime,
                                      const ml_config* config, const ml_callbacks* callbacks) {
  auto state = std::shared_ptr<CallbackState>();
  ml_status result = guarded([&] {
    if (out) *out = nullptr;
    state = std::make_shared<CallbackState>();
    if (callbacks) {
      // user_data and user_data_free are in every version: take them first so that they are
      // freed even if the rest is refused.
      state->cb.user_data = callbacks->user_data;
      state->cb.user_data_free = callbacks->user_data_free;
    }
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (callbacks) {
      uint32_t v = callbacks->version;
      if (v == 0)
        return fail(ML_E_VERSION, "callbacks->version is 0; set it to ML_CALLBACKS_VERSION");
      // A newer header's table may hold callbacks this library cannot call: refuse it rather
      // than ignore them without a word (as libgit2 does).
      if (v > ML_CALLBACKS_VERSION) {
        char msg[160];
        std::snprintf(msg, sizeof msg,
                      "callbacks->version is %u but this library knows versions 1 to %u: "
                      "link against a newer libmemberlist",
                      v, static_cast<unsigned>(ML_CALLBACKS_VERSION));
        return fail(ML_E_VERSION, msg);
      }
      std::memcpy(&state->cb, callbacks, kCallbacksSize[v]);
    }
    // One route per memberlist: with the event queue the notifications are polled, not called.
    if (config->event_queue && has_notification_callbacks(state->cb))
      return fail(ML_E_INVALID,
                  "the event queue is on (ml_config_set_event_queue): notification callbacks "
                  "(on_event, on_log, on_message, on_broadcast, on_broadcast_done, on_conflict, "
                  "on_ping_complete, on_metric) must be NULL");
    state->log_level = config->log_level;

    runtime::Options opts = config->opts;
    if (opts.core.name.empty()) return fail(ML_E_INVALID, "name must not be empty");
    if (opts.core.seed == 0) {
      std::random_device rd;
      opts.core.seed = (static_cast<uint64_t>(rd()) << 32 | rd()) | 1;  // never 0
    }
    if (!config->keys.empty()) {
      // A keyring of this node's own (keyring_add at run time must not touch the config).
      opts.framing.keyring = std::make_shared<wire::Keyring>();
      for (const auto& key : config->keys) {
        core::Status st = opts.framing.keyring->install(key);
        if (!st.ok()) return fail(nullptr, st);
      }
    }
    if (wants_delegate(state->cb))
      opts.core.delegate = capi::make_delegate(state, opts.framing.max_stream_message,
                                               opts.core.udp_buffer_size);
    if (!config->no_tcp_ping_nodes.empty()) {
      std::set<std::string, std::less<>> names(config->no_tcp_ping_nodes.begin(),
                                               config->no_tcp_ping_nodes.end());
      auto previous = opts.core.disable_tcp_pings_for_node;
      opts.core.disable_tcp_pings_for_node = [names, previous](std::string_view n) {
        return names.count(n) > 0 || (previous && previous(n));
      };
    }

    auto ml = std::make_unique<ml_memberlist>();
    static std::atomic<uint64_t> generations{0};
    ml->generation = ++generations;
    ml->runtime = runtime ? runtime->runtime : default_runtime();
    ml->callbacks = state;
    ml->async = capi::make_async_ops();
    state->owner = ml.get();

    runtime::Callbacks rcb;
    if (config->event_queue) {
      rcb.pull = true;
      rcb.log_level = static_cast<core::LogLevel>(config->log_level);  // ML_LOG_OFF: none
    } else {
      rcb.on_event = [state](const core::Event& ev) { state->deliver_event(ev); };
      rcb.on_log = [state](core::LogLevel level, const std::string& msg) {
        state->deliver_log(level, msg);
      };
      bool notes = state->cb.on_message || state->cb.on_broadcast ||
                   state->cb.on_broadcast_done || state->cb.on_conflict ||
                   state->cb.on_ping_complete;
      if (notes)
        rcb.on_notification = [state](const core::Notification& n) {
          state->deliver_notification(n);
        };
      if (state->cb.on_metric)
        rcb.on_metric = [state](const core::MetricSample& m) { state->deliver_metric(m); };
      rcb.log_level = static_cast<core::LogLevel>(
          config->log_level < ML_LOG_OFF ? config->log_level : ML_LOG_ERROR);
    }

    if (config->host_transport) {
      ml->host = capi::make_host_link(*config->host_transport, config->host_addr);
      opts.transport = ml->host->factory();
    }
    core::Status st;
    ml->node = runtime::Node::create(ml->runtime, std::move(opts), std::move(rcb), st);
    if (!ml->node) {
      state->close_and_wait();
      ml->host.reset();
      ml->runtime.reset();
      return st.ok() ? fail(ML_E_INTERNAL, "node creation failed without a reason")
                     : fail(nullptr, st);
    }
    *out = ml.release();
    return ML_OK;
  });
  // Exactly once when create fails: nothing else will ever call it.
  if (result != ML_OK) {
    if (state)
      state->free_user_data();
    else if (callbacks && callbacks->user_data_free)
      callbacks->user_data_free(callbacks->user_data);
  }
  return result;
}

// From inside one of its own callbacks the teardown is deferred until that callback returns
// (it happens on a library thread, then user_data_free runs there); otherwise it is complete
// when this returns.
ML_API void ml_memberlist_destroy(ml_memberlist* ml) {
  if (!ml) return;
  if (in_own_callback(ml)) {
    ml->destroy_deferred = true;
    return;
  }
  destroy_now(ml);
}

ML_API const char* ml_memberlist_last_error(const ml_memberlist* ml) {
  return ml ? capi::handle_error(ml) : "memberlist is NULL";
}

ML_API ml_status ml_memberlist_join(ml_memberlist* ml, const char* const* addresses, size_t count,
                                    uint32_t* joined) {
  if (joined) *joined = 0;
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!addresses) return fail(ml, ML_E_INVALID, "addresses is NULL");
    if (count == 0) return fail(ml, ML_E_INVALID, "count is 0: no address to join");
    std::vector<std::string> list;
    list.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      if (!addresses[i]) {
        char msg[64];
        std::snprintf(msg, sizeof msg, "addresses[%zu] is NULL", i);
        return fail(ml, ML_E_INVALID, msg);
      }
      list.emplace_back(addresses[i]);
    }
    if (ml_status s = check_blocking(ml, "ml_memberlist_join")) return s;
    core::Status st;
    int n = ml->node->join(list, st);
    if (joined) *joined = n > 0 ? static_cast<uint32_t>(n) : 0;
    if (n <= 0) {
      if (st.ok()) return fail(ml, ML_E_IO, "no address could be reached");
      return fail(ml, st);
    }
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_members(ml_memberlist* ml, ml_node_list** out) {
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!out) return fail(ml, ML_E_INVALID, "out is NULL");
    *out = nullptr;
    auto list = std::make_unique<ml_node_list>();
    for (const core::NodeInfo& info : ml->node->members()) list->nodes.emplace_back(info);
    *out = list.release();
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_get_num_members(ml_memberlist* ml, size_t* count) {
  if (count) *count = 0;
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!count) return fail(ml, ML_E_INVALID, "count is NULL");
    *count = ml->node->num_members();
    return ML_OK;
  });
}

ML_API size_t ml_memberlist_num_members(ml_memberlist* ml) {
  if (!ml) return 0;
  capi::CallGuard guard(ml);
  return capi::guarded_value<size_t>(0, [&] { return ml->node->num_members(); });
}

ML_API ml_status ml_memberlist_local_node(ml_memberlist* ml, ml_node** out) {
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!out) return fail(ml, ML_E_INVALID, "out is NULL");
    *out = nullptr;
    *out = new ml_node(ml->node->local_node());
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_get_health_score(ml_memberlist* ml, int32_t* score) {
  if (score) *score = 0;
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!score) return fail(ml, ML_E_INVALID, "score is NULL");
    *score = ml->node->health_score();
    return ML_OK;
  });
}

ML_API int32_t ml_memberlist_health_score(ml_memberlist* ml) {
  if (!ml) return -1;
  capi::CallGuard guard(ml);
  return capi::guarded_value<int32_t>(-1, [&] { return ml->node->health_score(); });
}

ML_API ml_status ml_memberlist_ping(ml_memberlist* ml, const char* node_name, uint64_t* rtt_us) {
  if (rtt_us) *rtt_us = 0;
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!node_name) return fail(ml, ML_E_INVALID, "node_name is NULL");
    if (ml_status s = check_blocking(ml, "ml_memberlist_ping")) return s;
    core::Duration rtt{};
    core::Status st = ml->node->ping(node_name, rtt);
    if (!st.ok()) return fail(ml, st);
    if (rtt_us) *rtt_us = static_cast<uint64_t>(rtt.count());
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_leave(ml_memberlist* ml, uint32_t timeout_ms) {
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (ml_status s = check_blocking(ml, "ml_memberlist_leave")) return s;
    core::Status st = ml->node->leave(capi::wait_limit(timeout_ms));
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_shutdown(ml_memberlist* ml) {
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (in_own_callback(ml))
      return fail(ml, ML_E_STATE,
                  "ml_memberlist_shutdown cannot be called from one of this memberlist's own "
                  "callbacks");
    if (ml->shut_down.exchange(true)) return ML_OK;  // idempotent
    core::Status st = ml->node->shutdown();
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

}  // extern "C"
