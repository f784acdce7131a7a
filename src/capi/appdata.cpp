// Application data and security on a running memberlist: metadata, user messages,
// broadcasts, the keyring, metrics; and the byte-string lists and strings they hand out.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "capi.h"

using namespace memberlist;
using capi::fail;
using capi::guarded;

namespace {

core::Duration ms(uint32_t timeout_ms) { return capi::wait_limit(timeout_ms); }

// Refusals shared by the calls on a running memberlist. `blocking`: the call waits on the
// protocol, so it is refused inside a hook (the node's lock is held there).
ml_status check_running(ml_memberlist* ml, const char* what, bool blocking) {
  if (blocking && capi::in_own_hook(ml))
    return fail(ml, ML_E_STATE, what, " cannot be called from one of this memberlist's hooks");
  if (ml->shut_down) return fail(ml, ML_E_CLOSED, what, ": the memberlist is shut down");
  return ML_OK;
}

ml_status check_bytes(ml_memberlist* ml, const char* what, const uint8_t* data, size_t len) {
  if (!data && len > 0) return fail(ml, ML_E_INVALID, what, ": data is NULL but len is not 0");
  return ML_OK;
}

ml_status check_key(ml_memberlist* ml, const uint8_t* key, size_t len) {
  if (!key) return fail(ml, ML_E_INVALID, "key is NULL");
  core::Status st = wire::Keyring::validate_key({key, len});
  return st.ok() ? ML_OK : fail(ml, st);
}

core::Bytes bytes(const uint8_t* data, size_t len) {
  return len > 0 ? core::Bytes(data, data + len) : core::Bytes();
}

// Labels as Prometheus writes them: name="value" pairs, comma-separated, value escaped.
std::string render_labels(const core::MetricLabels& labels) {
  std::string out;
  for (const auto& l : labels) {
    if (!out.empty()) out += ',';
    out += core::prometheus_name(l.name);
    out += "=\"";
    for (char c : l.value) {
      if (c == '\\' || c == '"')
        out += {'\\', c};
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
    out += '"';
  }
  return out;
}

const core::MetricValue* metric_at(const ml_metrics* m, size_t i) {
  return m && i < m->values.size() ? &m->values[i] : nullptr;
}

}  // namespace

static_assert(static_cast<uint32_t>(core::MetricKind::Counter) == ML_METRIC_COUNTER &&
              static_cast<uint32_t>(core::MetricKind::Gauge) == ML_METRIC_GAUGE &&
              static_cast<uint32_t>(core::MetricKind::Timer) == ML_METRIC_TIMER);

// Every entry point on a handle: NULL check, then counted as a call in flight (a destroy
// waits for it), then the exception barrier.
#define ML_ON_HANDLE(ml, body)                                         \
  if (!(ml)) return fail(ML_E_INVALID, "memberlist is NULL");          \
  capi::CallGuard guard_(ml);                                          \
  return guarded(ml, [&]() -> ml_status body)

extern "C" {

// ---- byte-string lists and strings ------------------------------------------------------

ML_API size_t ml_bytes_list_len(const ml_bytes_list* list) { return list ? list->items.size() : 0; }

ML_API const uint8_t* ml_bytes_list_get(const ml_bytes_list* list, size_t index, size_t* len) {
  if (!list || index >= list->items.size()) {
    if (len) *len = 0;
    return nullptr;
  }
  if (len) *len = list->items[index].size();
  return list->items[index].data();
}

ML_API void ml_bytes_list_free(ml_bytes_list* list) { delete list; }

ML_API void ml_string_free(char* str) { std::free(str); }

// ---- metadata ----------------------------------------------------------------------------

ML_API ml_status ml_memberlist_update_node(ml_memberlist* ml, uint32_t timeout_ms) {
  ML_ON_HANDLE(ml, {
    if (ml_status s = check_running(ml, "ml_memberlist_update_node", true)) return s;
    core::Status st = ml->node->update_node(ms(timeout_ms));
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_set_meta(ml_memberlist* ml, const uint8_t* data, size_t len,
                                        uint32_t timeout_ms) {
  ML_ON_HANDLE(ml, {
    if (ml_status s = check_bytes(ml, "ml_memberlist_set_meta", data, len)) return s;
    if (ml_status s = check_running(ml, "ml_memberlist_set_meta", true)) return s;
    core::Status st = ml->node->update_meta(bytes(data, len), ms(timeout_ms));
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

// ---- user messages -----------------------------------------------------------------------

ML_API ml_status ml_memberlist_send_best_effort(ml_memberlist* ml, const char* node_name,
                                                const uint8_t* data, size_t len) {
  ML_ON_HANDLE(ml, {
    if (!node_name) return fail(ml, ML_E_INVALID, "node_name is NULL");
    if (ml_status s = check_bytes(ml, "ml_memberlist_send_best_effort", data, len)) return s;
    if (ml_status s = check_running(ml, "ml_memberlist_send_best_effort", false)) return s;
    core::Status st = ml->node->send_best_effort(node_name, bytes(data, len));
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_send_reliable(ml_memberlist* ml, const char* node_name,
                                             const uint8_t* data, size_t len) {
  ML_ON_HANDLE(ml, {
    if (!node_name) return fail(ml, ML_E_INVALID, "node_name is NULL");
    if (ml_status s = check_bytes(ml, "ml_memberlist_send_reliable", data, len)) return s;
    if (ml_status s = check_running(ml, "ml_memberlist_send_reliable", true)) return s;
    core::Status st = ml->node->send_reliable(node_name, bytes(data, len));
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_send_to_address(ml_memberlist* ml, const char* address,
                                               const uint8_t* data, size_t len) {
  ML_ON_HANDLE(ml, {
    if (!address) return fail(ml, ML_E_INVALID, "address is NULL");
    if (ml_status s = check_bytes(ml, "ml_memberlist_send_to_address", data, len)) return s;
    if (ml_status s = check_running(ml, "ml_memberlist_send_to_address", false)) return s;
    core::Status st = ml->node->send_to_address(address, bytes(data, len));
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

// ---- broadcasts --------------------------------------------------------------------------

ML_API ml_status ml_memberlist_queue_broadcast(ml_memberlist* ml, const char* name,
                                               const uint8_t* data, size_t len, uint64_t* id) {
  if (id) *id = 0;
  ML_ON_HANDLE(ml, {
    if (ml_status s = check_bytes(ml, "ml_memberlist_queue_broadcast", data, len)) return s;
    if (ml_status s = check_running(ml, "ml_memberlist_queue_broadcast", false)) return s;
    uint64_t out = 0;
    core::Status st = ml->node->queue_broadcast(name ? name : "", bytes(data, len), out);
    if (!st.ok()) return fail(ml, st);
    if (id) *id = out;
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_get_num_queued_broadcasts(ml_memberlist* ml, size_t* count) {
  if (count) *count = 0;
  ML_ON_HANDLE(ml, {
    if (!count) return fail(ml, ML_E_INVALID, "count is NULL");
    *count = ml->node->num_queued_broadcasts();
    return ML_OK;
  });
}

ML_API size_t ml_memberlist_num_queued_broadcasts(ml_memberlist* ml) {
  if (!ml) return 0;
  capi::CallGuard guard(ml);
  return capi::guarded_value<size_t>(0, [&] { return ml->node->num_queued_broadcasts(); });
}

// ---- keyring -----------------------------------------------------------------------------

ML_API ml_status ml_memberlist_keyring_add(ml_memberlist* ml, const uint8_t* key, size_t len) {
  ML_ON_HANDLE(ml, {
    if (ml_status s = check_running(ml, "ml_memberlist_keyring_add", false)) return s;
    if (ml_status s = check_key(ml, key, len)) return s;
    core::Status st = ml->node->keyring_add({key, len});
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_keyring_use(ml_memberlist* ml, const uint8_t* key, size_t len) {
  ML_ON_HANDLE(ml, {
    if (ml_status s = check_running(ml, "ml_memberlist_keyring_use", false)) return s;
    if (ml_status s = check_key(ml, key, len)) return s;
    core::Status st = ml->node->keyring_use({key, len});
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_keyring_remove(ml_memberlist* ml, const uint8_t* key, size_t len) {
  ML_ON_HANDLE(ml, {
    if (ml_status s = check_running(ml, "ml_memberlist_keyring_remove", false)) return s;
    if (ml_status s = check_key(ml, key, len)) return s;
    core::Status st = ml->node->keyring_remove({key, len});
    // The keyring refuses to remove the primary key as "rejected"; the header promises
    // ML_E_STATE (use another key first), as the caller's next step is a state change.
    if (st.code == core::Errc::rejected) return fail(ml, ML_E_STATE, st.message);
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_keyring_list(ml_memberlist* ml, ml_bytes_list** out) {
  ML_ON_HANDLE(ml, {
    if (!out) return fail(ml, ML_E_INVALID, "out is NULL");
    *out = nullptr;
    auto list = std::make_unique<ml_bytes_list>();
    list->items = ml->node->keyring_keys();
    *out = list.release();
    return ML_OK;
  });
}

ML_API ml_status ml_memberlist_set_gossip_verify(ml_memberlist* ml, uint32_t incoming,
                                                 uint32_t outgoing) {
  ML_ON_HANDLE(ml, {
    if (ml_status s = check_running(ml, "ml_memberlist_set_gossip_verify", false)) return s;
    core::Status st = ml->node->set_gossip_verify(incoming != 0, outgoing != 0);
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

// ---- metrics -----------------------------------------------------------------------------

ML_API ml_status ml_memberlist_metrics(ml_memberlist* ml, ml_metrics** out) {
  ML_ON_HANDLE(ml, {
    if (!out) return fail(ml, ML_E_INVALID, "out is NULL");
    *out = nullptr;
    auto m = std::make_unique<ml_metrics>();
    m->values = ml->node->metrics();
    m->names.reserve(m->values.size());
    m->labels.reserve(m->values.size());
    for (const auto& v : m->values) {
      m->names.push_back(v.name);
      m->labels.push_back(render_labels(v.labels));
    }
    *out = m.release();
    return ML_OK;
  });
}

ML_API size_t ml_metrics_len(const ml_metrics* metrics) {
  return metrics ? metrics->values.size() : 0;
}

ML_API const char* ml_metrics_name(const ml_metrics* metrics, size_t index) {
  return metric_at(metrics, index) ? metrics->names[index].c_str() : nullptr;
}

ML_API const char* ml_metrics_labels(const ml_metrics* metrics, size_t index) {
  return metric_at(metrics, index) ? metrics->labels[index].c_str() : nullptr;
}

ML_API ml_status ml_metrics_get_kind(const ml_metrics* metrics, size_t index, uint32_t* kind) {
  if (kind) *kind = ML_METRIC_COUNTER;
  if (!metrics) return fail(ML_E_INVALID, "metrics is NULL");
  if (!kind) return fail(ML_E_INVALID, "kind is NULL");
  const auto* v = metric_at(metrics, index);
  if (!v) return fail(ML_E_INVALID, "index is out of range");
  *kind = static_cast<uint32_t>(v->kind);
  return ML_OK;
}

ML_API uint32_t ml_metrics_kind(const ml_metrics* metrics, size_t index) {
  const auto* v = metric_at(metrics, index);
  return v ? static_cast<uint32_t>(v->kind) : ML_METRIC_COUNTER;
}

ML_API double ml_metrics_value(const ml_metrics* metrics, size_t index) {
  const auto* v = metric_at(metrics, index);
  if (!v) return 0;
  return v->kind == core::MetricKind::Timer ? v->timer.sum : v->value;
}

ML_API void ml_metrics_timer(const ml_metrics* metrics, size_t index, uint64_t* count,
                             double* sum_ms, double* min_ms, double* max_ms) {
  const auto* v = metric_at(metrics, index);
  core::TimerStats t;
  if (v && v->kind == core::MetricKind::Timer) t = v->timer;
  if (count) *count = t.count;
  if (sum_ms) *sum_ms = t.sum;
  if (min_ms) *min_ms = t.min;
  if (max_ms) *max_ms = t.max;
}

ML_API size_t ml_metrics_find(const ml_metrics* metrics, const char* name, const char* labels) {
  if (!metrics || !name) return SIZE_MAX;
  for (size_t i = 0; i < metrics->values.size(); ++i) {
    if (metrics->names[i] == name && (!labels || metrics->labels[i] == labels)) return i;
  }
  return SIZE_MAX;
}

ML_API void ml_metrics_free(ml_metrics* metrics) { delete metrics; }

ML_API ml_status ml_memberlist_prometheus(ml_memberlist* ml, char** out, size_t* len) {
  if (out) *out = nullptr;
  if (len) *len = 0;
  ML_ON_HANDLE(ml, {
    if (!out) return fail(ml, ML_E_INVALID, "out is NULL");
    std::string text = ml->node->prometheus();
    // malloc: ml_string_free releases it with free(), whatever allocator the host uses.
    auto* copy = static_cast<char*>(std::malloc(text.size() + 1));
    if (!copy) return fail(ml, ML_E_NOMEM, "out of memory");
    std::memcpy(copy, text.c_str(), text.size() + 1);
    *out = copy;
    if (len) *len = text.size();
    return ML_OK;
  });
}

}  // extern "C"
