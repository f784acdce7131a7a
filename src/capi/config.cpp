// ml_config: runtime::Options plus the log level and the per-node TCP-ping opt-outs, with one
// table that defines every numeric setter/getter and its allowed range.
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

#include "capi.h"
#include "runtime/address.h"

using namespace memberlist;
using capi::fail;
using capi::guarded;

namespace {

constexpr uint64_t kMaxMs = 24ull * 3600 * 1000;  // no duration knob makes sense beyond a day
constexpr uint64_t kMaxMult = 64;
constexpr size_t kMaxNameLen = 255;
// The core's 64-byte minimum budget plus the least framing create() counts (header and
// encryption, wire::packet_overhead): a smaller udp_buffer_size could never be used.
constexpr uint64_t kMinUdpBufferSize = 64 + wire::kFrameHeaderOverhead + wire::kEncryptionOverhead;
// Smaller stream bounds would refuse the protocol's own push/pull of a small cluster.
constexpr uint64_t kMinStreamBound = 1024;

// X(api type, knob name, field of ml_config, min, max)
// Every numeric knob of the header is one line here; setters and getters are generated below.
#define ML_CONFIG_KNOBS(X)                                                                     \
  X(uint16_t, bind_port, opts.bind_port, 0, 65535)                                             \
  X(uint16_t, advertise_port, opts.advertise_port, 0, 65535)                                   \
  X(uint32_t, protocol_version, opts.core.protocol_version, core::kProtocolVersionMin,         \
    core::kProtocolVersionMax)                                                                 \
  X(uint32_t, tcp_timeout_ms, opts.core.tcp_timeout, 1, kMaxMs)                                \
  X(uint32_t, indirect_checks, opts.core.indirect_checks, 0, kMaxMult)                         \
  X(uint32_t, retransmit_mult, opts.core.retransmit_mult, 1, kMaxMult)                         \
  X(uint32_t, suspicion_mult, opts.core.suspicion_mult, 1, kMaxMult)                           \
  X(uint32_t, suspicion_max_timeout_mult, opts.core.suspicion_max_timeout_mult, 1, kMaxMult)   \
  X(uint32_t, push_pull_interval_ms, opts.core.push_pull_interval, 0, kMaxMs)                  \
  X(uint32_t, probe_interval_ms, opts.core.probe_interval, 0, kMaxMs)                          \
  X(uint32_t, probe_timeout_ms, opts.core.probe_timeout, 1, kMaxMs)                            \
  X(uint32_t, disable_tcp_pings, opts.core.disable_tcp_pings, 0, UINT32_MAX)                   \
  X(uint32_t, awareness_max_multiplier, opts.core.awareness_max_multiplier, 1, kMaxMult)       \
  X(uint32_t, gossip_interval_ms, opts.core.gossip_interval, 0, kMaxMs)                        \
  X(uint32_t, gossip_nodes, opts.core.gossip_nodes, 0, 1024)                                   \
  X(uint32_t, gossip_to_the_dead_time_ms, opts.core.gossip_to_the_dead_time, 0, kMaxMs)        \
  X(uint32_t, udp_buffer_size, opts.core.udp_buffer_size, kMinUdpBufferSize, 65507)            \
  X(uint32_t, dead_node_reclaim_time_ms, opts.core.dead_node_reclaim_time, 0, kMaxMs)          \
  X(uint32_t, handoff_queue_depth, opts.handoff_queue_depth, 1, 1u << 20)                      \
  X(uint32_t, meta_max_size, opts.core.meta_max_size, 0, 65535)                                \
  X(uint32_t, log_level, log_level, ML_LOG_TRACE, ML_LOG_OFF)                                  \
  X(uint64_t, seed, opts.core.seed, 0, UINT64_MAX)                                             \
  X(uint32_t, max_user_msg_size, opts.core.max_user_msg_size, 1, UINT32_MAX)                   \
  X(uint32_t, skip_inbound_label_check, opts.framing.skip_inbound_label_check, 0, UINT32_MAX)  \
  X(uint32_t, gossip_verify_incoming, opts.framing.verify_incoming, 0, UINT32_MAX)             \
  X(uint32_t, gossip_verify_outgoing, opts.framing.verify_outgoing, 0, UINT32_MAX)             \
  X(uint32_t, enable_compression, opts.framing.compress, 0, UINT32_MAX)                        \
  X(uint32_t, enable_checksum, opts.framing.crc, 0, UINT32_MAX)                                \
  X(uint32_t, max_stream_size, opts.framing.max_stream_message, kMinStreamBound, UINT32_MAX)   \
  X(uint32_t, max_push_pull_nodes, opts.core.max_push_nodes, 1, UINT32_MAX)                   \
  X(uint32_t, max_decompressed_size, opts.framing.max_decompressed, kMinStreamBound,           \
    UINT32_MAX)                                                                                \
  X(uint32_t, max_concurrent_streams, opts.max_concurrent_streams, 1, 65535)                  \
  X(uint32_t, max_inbound_connections, opts.max_inbound_connections, 1, 65535)                \
  X(uint32_t, max_queued_callbacks, opts.max_queued_callbacks, 1, 1u << 24)                   \
  X(uint32_t, max_queued_log_lines, opts.max_queued_log_lines, 1, 1u << 24)                   \
  X(uint32_t, post_join_push_pulls, opts.core.post_join_push_pulls, 0,                         \
    core::kMaxPostJoinPushPulls)                                                               \
  X(uint32_t, max_broadcast_origins, opts.core.max_broadcast_origins, 1, 1u << 24)             \
  X(uint32_t, max_replies_per_packet, opts.core.max_replies_per_packet, 1, 255)                \
  X(uint32_t, max_queued_broadcasts, opts.core.max_queued_broadcasts, 1, 1u << 24)             \
  X(uint32_t, max_queued_broadcast_bytes, opts.core.max_queued_broadcast_bytes, 65536, UINT32_MAX) \
  X(uint32_t, max_repair_broadcasts, opts.core.max_repair_broadcasts, 0, core::kMaxRepairBroadcasts) \
  X(uint32_t, max_inbound_connections_per_source, opts.max_inbound_connections_per_source, 1, 65535) \
  X(uint32_t, max_inbound_stream_bytes, opts.max_inbound_stream_bytes, 1024, UINT32_MAX)         \
  X(uint32_t, reconnect_interval_ms, opts.core.reconnect_interval, 0, kMaxMs)                  \
  X(uint32_t, reconnect_timeout_ms, opts.core.reconnect_timeout, 0, kMaxMs)                    \
  X(uint32_t, max_reconnect_members, opts.core.max_reconnect_members, 1, 1u << 24)             \
  X(uint32_t, reconnect_seeds, opts.core.reconnect_seeds, 0, UINT32_MAX)                      \
  X(uint32_t, event_queue, event_queue, 0, UINT32_MAX)                                         \
  X(uint32_t, wire_format, opts.wire_format, ML_WIRE_NATIVE, ML_WIRE_HASHICORP)

// Field <-> API value: durations cross as milliseconds, flags as 0/1.
template <class T>
uint64_t to_api(const T& field) {
  if constexpr (std::is_same_v<T, core::Duration>)
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(field).count());
  else
    return static_cast<uint64_t>(field);
}

template <class T>
void from_api(T& field, uint64_t value) {
  if constexpr (std::is_same_v<T, core::Duration>)
    field = std::chrono::milliseconds(value);
  else if constexpr (std::is_same_v<T, bool>)
    field = value != 0;
  else
    field = static_cast<T>(value);
}

template <class Access>
ml_status set_knob(ml_config* cfg, const char* knob, Access access, uint64_t value, uint64_t lo,
                   uint64_t hi) {
  if (!cfg) return fail(ML_E_INVALID, "config is NULL");
  if (value < lo || value > hi) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "%s: %" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "]",
                  knob, value, lo, hi);
    return fail(ML_E_INVALID, msg);
  }
  from_api(access(*cfg), value);
  return ML_OK;
}

bool valid_ip_literal(const char* s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

ml_status new_config(ml_config** out, core::Config (*preset)()) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = nullptr;
    auto cfg = std::make_unique<ml_config>();
    cfg->opts.core = preset();
    cfg->opts.core.name = host_name();
    // The reference's defaults where the framing's own are off (plain frames).
    cfg->opts.framing.compress = true;
    cfg->opts.framing.crc = true;
    *out = cfg.release();
    return ML_OK;
  });
}

// Checks a NUL-terminated string argument: not NULL and at most `max` bytes (min 1 if
// `required`).
ml_status check_string(const char* what, const char* s, size_t max, bool required) {
  if (!s) return fail(ML_E_INVALID, what, " is NULL");
  size_t n = std::strlen(s);
  if (required && n == 0) return fail(ML_E_INVALID, what, " must not be empty");
  if (n > max) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "%s is %zu bytes; at most %zu allowed", what, n, max);
    return fail(ML_E_INVALID, msg);
  }
  return ML_OK;
}

}  // namespace

extern "C" {

ML_API ml_status ml_config_new_lan(ml_config** out) { return new_config(out, &core::Config::lan); }
ML_API ml_status ml_config_new_wan(ml_config** out) { return new_config(out, &core::Config::wan); }
ML_API ml_status ml_config_new_local(ml_config** out) {
  return new_config(out, &core::Config::local);
}

ML_API ml_status ml_config_clone(const ml_config* config, ml_config** out) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = nullptr;
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    *out = new ml_config(*config);
    return ML_OK;
  });
}

ML_API void ml_config_free(ml_config* config) { delete config; }

// ---- the numeric knobs, from the table ---------------------------------------------------

#define ML_DEFINE_KNOB(T, knob, field, lo, hi)                                                 \
  ML_API ml_status ml_config_set_##knob(ml_config* config, T value) {                          \
    return guarded([&] {                                                                       \
      return set_knob(                                                                         \
          config, #knob, [](ml_config& c) -> auto& { return c.field; },                        \
          static_cast<uint64_t>(value), static_cast<uint64_t>(lo), static_cast<uint64_t>(hi)); \
    });                                                                                        \
  }                                                                                            \
  ML_API T ml_config_get_##knob(const ml_config* config) {                                     \
    return config ? static_cast<T>(to_api(config->field)) : T{0};                              \
  }
ML_CONFIG_KNOBS(ML_DEFINE_KNOB)
#undef ML_DEFINE_KNOB

// ---- strings, bytes and compound knobs ----------------------------------------------------

ML_API ml_status ml_config_set_name(ml_config* config, const char* name) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (ml_status s = check_string("name", name, kMaxNameLen, true)) return s;
    config->opts.core.name = name;
    return ML_OK;
  });
}

ML_API const char* ml_config_get_name(const ml_config* config) {
  return config ? config->opts.core.name.c_str() : "";
}

ML_API ml_status ml_config_set_bind_addr(ml_config* config, const char* addr) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (ml_status s = check_string("bind_addr", addr, 64, true)) return s;
    if (!valid_ip_literal(addr))
      return fail(ML_E_INVALID, "bind_addr: not an IPv4 or IPv6 literal: ", addr);
    config->opts.bind_addr = addr;
    return ML_OK;
  });
}

ML_API const char* ml_config_get_bind_addr(const ml_config* config) {
  return config ? config->opts.bind_addr.c_str() : "";
}

ML_API ml_status ml_config_set_advertise_addr(ml_config* config, const char* addr) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (ml_status s = check_string("advertise_addr", addr, 64, false)) return s;
    if (addr[0] != '\0' && !valid_ip_literal(addr))
      return fail(ML_E_INVALID, "advertise_addr: not an IPv4 or IPv6 literal: ", addr);
    config->opts.advertise_addr = addr;
    return ML_OK;
  });
}

ML_API const char* ml_config_get_advertise_addr(const ml_config* config) {
  return config ? config->opts.advertise_addr.c_str() : "";
}

ML_API ml_status ml_config_set_delegate_protocol(ml_config* config, uint8_t version, uint8_t min,
                                                 uint8_t max) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (min > max || version < min || version > max) {
      char msg[128];
      std::snprintf(msg, sizeof msg,
                    "delegate_protocol: need min <= version <= max, got version %u, min %u, max %u",
                    version, min, max);
      return fail(ML_E_INVALID, msg);
    }
    auto& c = config->opts.core;
    c.delegate_protocol_version = version;
    c.delegate_protocol_min = min;
    c.delegate_protocol_max = max;
    return ML_OK;
  });
}

ML_API void ml_config_get_delegate_protocol(const ml_config* config, uint8_t* version,
                                            uint8_t* min, uint8_t* max) {
  const auto* c = config ? &config->opts.core : nullptr;
  if (version) *version = c ? c->delegate_protocol_version : 0;
  if (min) *min = c ? c->delegate_protocol_min : 0;
  if (max) *max = c ? c->delegate_protocol_max : 0;
}

ML_API ml_status ml_config_disable_tcp_pings_for_node(ml_config* config, const char* name) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (ml_status s = check_string("name", name, kMaxNameLen, true)) return s;
    config->no_tcp_ping_nodes.emplace_back(name);
    return ML_OK;
  });
}

ML_API ml_status ml_config_set_meta(ml_config* config, const uint8_t* data, size_t len) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (!data && len > 0) return fail(ML_E_INVALID, "meta: data is NULL but len is not 0");
    size_t limit = config->opts.core.meta_max_size;
    if (len > limit) {
      char msg[128];
      std::snprintf(msg, sizeof msg, "meta: %zu bytes is over meta_max_size (%zu)", len, limit);
      return fail(ML_E_TOO_LARGE, msg);
    }
    config->opts.core.meta.assign(data, data + len);
    return ML_OK;
  });
}

ML_API const uint8_t* ml_config_get_meta(const ml_config* config, size_t* len) {
  if (len) *len = config ? config->opts.core.meta.size() : 0;
  return config ? config->opts.core.meta.data() : nullptr;
}

// ---- security and framing ------------------------------------------------------------------

ML_API ml_status ml_config_set_label(ml_config* config, const char* label) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (ml_status s = check_string("label", label, wire::kMaxLabelSize, false)) return s;
    config->opts.framing.label = label;
    return ML_OK;
  });
}

ML_API const char* ml_config_get_label(const ml_config* config) {
  return config ? config->opts.framing.label.c_str() : "";
}

ML_API ml_status ml_config_add_key(ml_config* config, const uint8_t* key, size_t len) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (!key) return fail(ML_E_INVALID, "key is NULL");
    core::Status st = wire::Keyring::validate_key({key, len});
    if (!st.ok()) return fail(capi::to_status(st.code), "key: ", st.message);
    core::Bytes k(key, key + len);
    for (const auto& have : config->keys)
      if (have == k) return ML_OK;  // installing a present key is a no-op, as in the keyring
    config->keys.push_back(std::move(k));
    return ML_OK;
  });
}

ML_API uint32_t ml_config_get_key_count(const ml_config* config) {
  return config ? static_cast<uint32_t>(config->keys.size()) : 0;
}

ML_API ml_status ml_config_add_allowed_cidr(ml_config* config, const char* cidr) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (ml_status s = check_string("cidr", cidr, 64, true)) return s;
    // The runtime's own parser: what is accepted here is what create() will accept.
    runtime::detail::AllowList parsed;
    core::Status st = runtime::detail::AllowList::parse({cidr}, parsed);
    if (!st.ok()) return fail(ML_E_INVALID, "cidr: ", st.message);
    config->opts.allowed_cidrs.emplace_back(cidr);
    return ML_OK;
  });
}

ML_API uint32_t ml_config_get_allowed_cidr_count(const ml_config* config) {
  return config ? static_cast<uint32_t>(config->opts.allowed_cidrs.size()) : 0;
}

}  // extern "C"
