// Events without callbacks: the runtime's delivery queue in pull mode (Callbacks::pull),
// taken in batches into a caller-owned ml_event_batch, with an eventfd to wait on.
#include <type_traits>
#include <variant>

#include "capi.h"

using namespace memberlist;
using capi::fail;
using capi::guarded;

namespace {

// One item as an ml_event whose views point into `b` (its items are not moved afterwards).
bool to_event(ml_event_batch& b, const runtime::Delivery::Item& item, ml_event& ev) {
  ev = ml_event{};
  ev.size = sizeof(ml_event);
  ev.origin = "";
  ev.name = "";
  auto node = [&](const core::NodeInfo& info) { return &b.nodes.emplace_back(info); };
  auto bytes = [&](const core::Bytes& data) {
    ev.data = data.empty() ? nullptr : data.data();
    ev.len = data.size();
  };
  bool known = true;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, core::Event>) {
          ev.kind = ML_EVENT_KIND_MEMBER;
          ev.type = static_cast<uint32_t>(x.type);
          ev.node = node(x.node);
        } else if constexpr (std::is_same_v<T, runtime::LogLine>) {
          ev.kind = ML_EVENT_KIND_LOG;
          ev.type = static_cast<uint32_t>(x.level);
          ev.data = reinterpret_cast<const uint8_t*>(x.text.c_str());
          ev.len = x.text.size();
        } else if constexpr (std::is_same_v<T, core::Notification>) {
          std::visit(
              [&](const auto& n) {
                using N = std::decay_t<decltype(n)>;
                if constexpr (std::is_same_v<N, core::UserMessage>) {
                  ev.kind = ML_EVENT_KIND_MESSAGE;
                  bytes(n.payload);
                } else if constexpr (std::is_same_v<N, core::BroadcastReceived>) {
                  ev.kind = ML_EVENT_KIND_BROADCAST;
                  ev.origin = n.origin.c_str();
                  ev.name = n.name.c_str();
                  bytes(n.payload);
                } else if constexpr (std::is_same_v<N, core::BroadcastDone>) {
                  ev.kind = ML_EVENT_KIND_BROADCAST_DONE;
                  ev.id = n.id;
                  ev.type = static_cast<uint32_t>(n.outcome);
                } else if constexpr (std::is_same_v<N, core::Conflict>) {
                  ev.kind = ML_EVENT_KIND_CONFLICT;
                  ev.node = node(n.existing);
                  ev.other = node(n.other);
                } else {
                  known = false;  // ping completions: not queued (the header says so)
                }
              },
              x);
        } else {
          known = false;  // metric samples: never pushed in pull mode
        }
      },
      item);
  return known;
}

ml_status need_queue(ml_memberlist* ml, const char* what) {
  if (ml->node->event_fd() < 0)
    return fail(ml, ML_E_STATE, what,
                ": the event queue is off (enable it with ml_config_set_event_queue)");
  return ML_OK;
}

}  // namespace

extern "C" {

ML_API ml_status ml_event_batch_create(ml_event_batch** out) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = new ml_event_batch();
    return ML_OK;
  });
}

ML_API void ml_event_batch_free(ml_event_batch* batch) { delete batch; }

ML_API size_t ml_event_batch_len(const ml_event_batch* batch) {
  return batch ? batch->events.size() : 0;
}

ML_API const ml_event* ml_event_batch_get(const ml_event_batch* batch, size_t index) {
  if (!batch || index >= batch->events.size()) return nullptr;
  return &batch->events[index];
}

ML_API ml_status ml_memberlist_poll_events(ml_memberlist* ml, ml_event_batch* batch, size_t max,
                                           size_t* count) {
  if (count) *count = 0;
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!batch) return fail(ml, ML_E_INVALID, "batch is NULL");
    if (max == 0) return fail(ml, ML_E_INVALID, "max is 0");
    if (ml_status s = need_queue(ml, "ml_memberlist_poll_events")) return s;
    batch->items.clear();
    batch->nodes.clear();
    batch->events.clear();
    // Taken first and never touched again: the events point into these items.
    ml->node->poll_events(batch->items, max);
    batch->events.resize(batch->items.size());
    size_t n = 0;
    for (const auto& item : batch->items) {
      if (to_event(*batch, item, batch->events[n])) ++n;
    }
    batch->events.resize(n);
    if (count) *count = n;
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_event_fd(ml_memberlist* ml, int32_t* fd) {
  if (fd) *fd = -1;
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    if (!fd) return fail(ml, ML_E_INVALID, "fd is NULL");
    if (ml_status s = need_queue(ml, "ml_memberlist_event_fd")) return s;
    *fd = ml->node->event_fd();
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_get_event_stats(ml_memberlist* ml, size_t* queued,
                                               uint64_t* dropped) {
  if (queued) *queued = 0;
  if (dropped) *dropped = 0;
  if (!ml) return fail(ML_E_INVALID, "memberlist is NULL");
  capi::CallGuard guard(ml);
  return guarded(ml, [&] {
    runtime::RuntimeStats st = ml->node->runtime_stats();
    if (queued) *queued = st.callbacks_queued;
    if (dropped) *dropped = st.callbacks_dropped + st.log_lines_dropped;
    return ML_OK;
  });
}

}  // extern "C"
