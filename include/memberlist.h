/*
 * libmemberlist: cluster membership and failure detection (SWIM gossip with the Lifeguard
 * extensions), a C++ implementation of hashicorp/memberlist behind a stable C ABI.
 *
 * Conventions (see docs/abi.md):
 *  - Every function that can fail returns an ml_status (ML_OK == 0, errors negative). After a
 *    failure, ml_memberlist_last_error() (calls on a memberlist) or ml_last_error() (calls
 *    without one, thread-local) return a readable message. They never return NULL.
 *  - A function returning a value instead of a status cannot fail; on misuse (NULL, index out
 *    of range) it returns the neutral value its comment gives.
 *  - The handle a function acts on comes first and out-parameters last; constructors, which act
 *    on no handle, take their out-parameter first.
 *  - A call that fails takes nothing: a callback passed to it never runs and its user data
 *    stays the caller's (the one exception: ml_memberlist_create always calls user_data_free).
 *  - timeout_ms 0 and ML_TIMEOUT_FOREVER both wait without limit.
 *  - Forms marked ML_DEPRECATED keep working until the SONAME changes; use the form named.
 *  - Handles are opaque and created by the library. *_free and *_destroy accept NULL.
 *  - Strings are UTF-8 and NUL-terminated. Inputs are borrowed for the duration of the call.
 *    Outputs are either copies the caller frees with the library's own ml_*_free, or views
 *    whose lifetime the function documents.
 *  - Durations are milliseconds (uint32_t) unless the name says otherwise.
 *  - Every ml_memberlist function may be called from any thread, concurrently.
 *  - Notifications (on_event, on_log, on_message, on_broadcast, on_broadcast_done,
 *    on_conflict, on_ping_complete, on_metric) of one memberlist run on the library's
 *    callback threads, one at a time, in the order the events happened, never while the
 *    library holds an internal lock and never on a thread the protocol needs: a callback that
 *    blocks delays only this memberlist's later callbacks, which queue up to
 *    ml_config_set_max_queued_callbacks (then they are dropped and counted). Calling any
 *    non-blocking function (members, local node, health score, ...) from them works; the
 *    blocking calls join, ping, leave and shutdown return ML_E_STATE there;
 *    ml_memberlist_destroy called there is deferred until the callback returns.
 *  - Hooks (node_meta ... ack_payload in ml_callbacks) run synchronously inside the protocol
 *    on whichever thread entered it: a library thread, or the caller's own thread inside
 *    ml_memberlist_create, join, ping, leave, update_node and set_meta. Hooks of one
 *    memberlist never run concurrently with each other, but may run concurrently with its
 *    notifications.
 *  - After ml_memberlist_shutdown the queries (members, num_members, local_node,
 *    health_score, metrics, prometheus, keyring_list) answer from the last state and every
 *    other call on the memberlist returns ML_E_CLOSED.
 *  - Nothing the network sends and nothing passed through this header aborts the process:
 *    bad input yields an error status, a log line and a counter.
 *
 * Compiles as C89, C99, C11 and C++; no bool, enum, union, bit-field or variadic function in the ABI.
 */
#ifndef MEMBERLIST_H
#define MEMBERLIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ML_API marks every exported function (docs/abi.md, "Export and deprecation macros"):
 * dllexport while building the Windows DLL (ML_BUILDING_LIBRARY), dllimport for its users,
 * nothing for a static library (define ML_STATIC when building and using it), default
 * visibility elsewhere (the library is built with -fvisibility=hidden). */
#if defined(ML_STATIC)
#define ML_API
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(ML_BUILDING_LIBRARY)
#define ML_API __declspec(dllexport)
#else
#define ML_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define ML_API __attribute__((visibility("default")))
#else
#define ML_API
#endif

/* ML_DEPRECATED("use ...") marks a form kept for compatibility: it works as before until the
 * SONAME changes. Define ML_NO_DEPRECATION_WARNINGS to silence the warnings. */
#if defined(ML_NO_DEPRECATION_WARNINGS)
#define ML_DEPRECATED(msg)
#elif defined(_MSC_VER)
#define ML_DEPRECATED(msg) __declspec(deprecated(msg))
#elif defined(__clang__) || (defined(__GNUC__) && (__GNUC__ * 100 + __GNUC_MINOR__) >= 405)
#define ML_DEPRECATED(msg) __attribute__((deprecated(msg)))
#elif defined(__GNUC__)
#define ML_DEPRECATED(msg) __attribute__((deprecated))
#else
#define ML_DEPRECATED(msg)
#endif

/* Declarations outside the compatibility promise go in the experimental section at the end,
 * seen only with ML_EXPERIMENTAL defined, and are declared with ML_EXPERIMENTAL_API. */
#define ML_EXPERIMENTAL_API ML_API

/* ---- versions -------------------------------------------------------------------------- */

#define ML_VERSION_MAJOR 0
#define ML_VERSION_MINOR 1
#define ML_VERSION_PATCH 0
/* The ABI major version; it is the SONAME's number (libmemberlist.so.0). */
#define ML_ABI_VERSION 0

/* Version of the library actually loaded (may be newer than the header). Any pointer may be
 * NULL. */
ML_API void ml_version(uint32_t *major, uint32_t *minor, uint32_t *patch);
/* "0.1.0": a static string. */
ML_API const char *ml_version_string(void);
/* ML_ABI_VERSION of the loaded library. */
ML_API uint32_t ml_abi_version(void);

/* ---- status codes (values are never renumbered) ---------------------------------------- */

typedef int32_t ml_status;

#define ML_OK 0
#define ML_E_INVALID (-1)          /* bad argument: NULL pointer, out-of-range value, ... */
#define ML_E_NOMEM (-2)            /* out of memory */
#define ML_E_BUFFER_TOO_SMALL (-3) /* a caller buffer is too small */
#define ML_E_NOT_FOUND (-4)        /* no such node or item */
#define ML_E_STATE (-5)            /* not allowed now (left, shut down, inside a callback) */
#define ML_E_CLOSED (-6)           /* the memberlist is shut down */
#define ML_E_CALLBACK (-7)         /* reserved: never returned (see docs/abi.md, "Errors") */
#define ML_E_PROTOCOL (-8)         /* a peer sent something malformed or unexpected */
#define ML_E_VERSION (-9)          /* incompatible protocol or struct version */
#define ML_E_TIMEOUT (-10)         /* the operation did not complete in time */
#define ML_E_IO (-11)              /* socket, bind or name resolution failure */
#define ML_E_REJECTED (-12)        /* refused by a rule or a hook */
#define ML_E_TOO_LARGE (-13)       /* a size limit was exceeded */
#define ML_E_INTERNAL (-14)        /* a bug in the library; please report */

/* A static, human-readable name for a status ("ok", "invalid argument", ...). */
ML_API const char *ml_status_str(ml_status status);
/* The detail message of the last failed handle-less call on this thread (config functions,
 * ml_memberlist_create, ml_runtime_new). Valid until the next call on this thread. */
ML_API const char *ml_last_error(void);

/* ---- constants ------------------------------------------------------------------------- */

/* Node states (ml_node_state). */
#define ML_STATE_ALIVE 0
#define ML_STATE_SUSPECT 1
#define ML_STATE_DEAD 2
#define ML_STATE_LEFT 3

/* Membership events (ml_callbacks.on_event). */
#define ML_EVENT_JOIN 0
#define ML_EVENT_LEAVE 1
#define ML_EVENT_UPDATE 2

/* Log levels. */
#define ML_LOG_TRACE 0
#define ML_LOG_DEBUG 1
#define ML_LOG_INFO 2
#define ML_LOG_WARN 3
#define ML_LOG_ERROR 4
#define ML_LOG_OFF 5

/* Outcome of a queued broadcast (ml_callbacks.on_broadcast_done, ml_broadcast_done_fn). */
#define ML_BROADCAST_DELIVERED 0 /* sent its whole retransmit budget (not a receipt) */
#define ML_BROADCAST_REPLACED 1  /* a newer broadcast with the same name took its place */
#define ML_BROADCAST_DROPPED 2   /* pruned, reset, or the memberlist shut down first */
/* Broadcast repair on (ml_config_set_max_repair_broadcasts): sent its whole retransmit budget,
 * then stayed in the push/pull repair for its whole horizon (see ml_memberlist_queue_broadcast).
 * With repair on, a broadcast whose repair was cut short (pushed out by newer ones, shutdown)
 * ends DELIVERED. ml_broadcast_queue never reports it. */
#define ML_BROADCAST_SETTLED 3

/* Kinds of metric (ml_metrics_kind). */
#define ML_METRIC_COUNTER 0
#define ML_METRIC_GAUGE 1
#define ML_METRIC_TIMER 2 /* a summary of durations in milliseconds: count, sum, min, max */

/* A timeout_ms that waits as long as it takes (UINT32_MAX; 0 means the same, as in
 * hashicorp/memberlist: see docs/abi.md, "Timeouts"). */
#define ML_TIMEOUT_FOREVER 0xFFFFFFFFu

/* ---- opaque handles -------------------------------------------------------------------- */

typedef struct ml_config ml_config;         /* configuration, copied at create */
typedef struct ml_runtime ml_runtime;       /* thread pool shared by memberlists */
typedef struct ml_memberlist ml_memberlist; /* one cluster member */
typedef struct ml_node ml_node;             /* a copy of what is known about a node */
typedef struct ml_node_list ml_node_list;   /* a snapshot of nodes */
typedef struct ml_bytes_list ml_bytes_list; /* a list of byte strings (keys, broadcasts) */
typedef struct ml_buffer ml_buffer;         /* bytes a hook hands back to the library */
typedef struct ml_message_sink ml_message_sink; /* messages a hook hands back to the library */
typedef struct ml_metrics ml_metrics;       /* a snapshot of metrics */
typedef struct ml_broadcast_queue ml_broadcast_queue; /* a transmit-limited queue of one's own */
typedef struct ml_network ml_network;       /* an in-memory network of memberlists */

/* ---- nodes ----------------------------------------------------------------------------- */

/* Accessors of a node. Returned pointers live as long as the node (or its list). */
ML_API const char *ml_node_name(const ml_node *node);
/* The node's address as "host:port" ("[v6]:port" for IPv6). */
ML_API const char *ml_node_address(const ml_node *node);
/* The node's IP address as text, without the port. */
ML_API const char *ml_node_host(const ml_node *node);
ML_API uint16_t ml_node_port(const ml_node *node);
/* Metadata bytes; *len receives the length (may be 0). len may be NULL. */
ML_API const uint8_t *ml_node_meta(const ml_node *node, size_t *len);
/* *state receives the node's ML_STATE_*; ML_E_INVALID (and ML_STATE_DEAD) if node is NULL. */
ML_API ml_status ml_node_get_state(const ml_node *node, uint32_t *state);
/* ML_STATE_*; ML_STATE_DEAD if node is NULL, which looks like a real answer. */
ML_API ML_DEPRECATED("use ml_node_get_state")
uint32_t ml_node_state(const ml_node *node);
ML_API uint32_t ml_node_incarnation(const ml_node *node);
/* Protocol versions: out[0..5] = protocol min, max, current, delegate min, max, current. */
ML_API void ml_node_versions(const ml_node *node, uint8_t out[6]);
/* A copy the caller owns, for keeping a node seen in a callback or list. */
ML_API ml_status ml_node_copy(const ml_node *node, ml_node **out);
ML_API void ml_node_free(ml_node *node);

ML_API size_t ml_node_list_len(const ml_node_list *list);
/* The i-th node (NULL if out of range); lives as long as the list. */
ML_API const ml_node *ml_node_list_get(const ml_node_list *list, size_t index);
ML_API void ml_node_list_free(ml_node_list *list);

ML_API size_t ml_bytes_list_len(const ml_bytes_list *list);
/* The i-th byte string (NULL if out of range); *len receives its length. Lives as long as the
 * list. */
ML_API const uint8_t *ml_bytes_list_get(const ml_bytes_list *list, size_t index, size_t *len);
ML_API void ml_bytes_list_free(ml_bytes_list *list);

/* A string the library allocated (ml_memberlist_prometheus). */
ML_API void ml_string_free(char *str);

/* Hooks hand bytes back through these; both are only valid during the hook call.
 * ml_buffer_append appends to the one result (ML_E_TOO_LARGE past the hook's limit);
 * ml_message_sink_add adds one whole message (ML_E_TOO_LARGE if it does not fit the
 * remaining budget: stop adding then). */
ML_API ml_status ml_buffer_append(ml_buffer *buffer, const uint8_t *data, size_t len);
ML_API ml_status ml_message_sink_add(ml_message_sink *sink, const uint8_t *data, size_t len);

/* ---- configuration --------------------------------------------------------------------- */

/* The reference's presets: LAN (DefaultLANConfig), WAN and Local (loopback, fast timers).
 * Every value can be changed with the setters below. Each numeric setter's comment gives
 * its range as lo..hi (both included), its LAN default and what 0 means; a value outside
 * the range is refused with ML_E_INVALID and a message naming the knob, and leaves the
 * config unchanged. Flags take any value: 0 is off, anything else on (read back as 1).
 * Where knobs constrain each other, ml_memberlist_create checks them (ML_E_INVALID), as
 * their comments say. Durations are milliseconds, at most 86400000 (a day). */
ML_API ml_status ml_config_new_lan(ml_config **out);
ML_API ml_status ml_config_new_wan(ml_config **out);
ML_API ml_status ml_config_new_local(ml_config **out);
ML_API ml_status ml_config_clone(const ml_config *config, ml_config **out);
ML_API void ml_config_free(ml_config *config);

/* Unique node name (required; default: the host name). 1..255 bytes. */
ML_API ml_status ml_config_set_name(ml_config *config, const char *name);
/* The returned string lives until the next setter call on the config. */
ML_API const char *ml_config_get_name(const ml_config *config);
/* IPv4 or IPv6 literal to bind UDP and TCP to (default "0.0.0.0"). */
ML_API ml_status ml_config_set_bind_addr(ml_config *config, const char *addr);
ML_API const char *ml_config_get_bind_addr(const ml_config *config);
/* Port for UDP and TCP, 0..65535 (default 7946); 0 lets the system pick one, reported by
 * ml_memberlist_local_node. */
ML_API ml_status ml_config_set_bind_port(ml_config *config, uint16_t port);
ML_API uint16_t ml_config_get_bind_port(const ml_config *config);
/* Address peers should use to reach this node ("" = derived from the bind address). With ""
 * and a bind address of "0.0.0.0" or "::", the node advertises the first private IPv4 address
 * (RFC 1918, RFC 6598) of an interface that is up, then (binding "::") the first unique-local
 * IPv6 one. Failing those it still starts, where the reference refuses, and logs a warning:
 * it advertises the first other routable address (never link-local), or else 127.0.0.1, which
 * only nodes on the same host can reach. */
ML_API ml_status ml_config_set_advertise_addr(ml_config *config, const char *addr);
ML_API const char *ml_config_get_advertise_addr(const ml_config *config);
/* Port peers should use, 0..65535; 0 (default) means the bound port. */
ML_API ml_status ml_config_set_advertise_port(ml_config *config, uint16_t port);
ML_API uint16_t ml_config_get_advertise_port(const ml_config *config);
/* Protocol version spoken, 1..5 (default 2); 0 is refused. */
ML_API ml_status ml_config_set_protocol_version(ml_config *config, uint32_t version);
ML_API uint32_t ml_config_get_protocol_version(const ml_config *config);
/* Delegate protocol version, min and max carried in the version vector (default 0, 0, 0):
 * any bytes with min <= version <= max, else ML_E_INVALID. */
ML_API ml_status ml_config_set_delegate_protocol(ml_config *config, uint8_t version, uint8_t min,
                                                 uint8_t max);
ML_API void ml_config_get_delegate_protocol(const ml_config *config, uint8_t *version,
                                            uint8_t *min, uint8_t *max);
/* Deadline of a TCP connect and of each stream exchange (push/pull, reliable message,
 * fallback ping), 1..86400000 (default 10000; WAN 30000, Local 1000); 0 is refused (every
 * stream would time out at once). */
ML_API ml_status ml_config_set_tcp_timeout_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_tcp_timeout_ms(const ml_config *config);
/* Members asked to probe a node that missed its direct ack, 0..64 (default 3; Local 1);
 * 0: no indirect probes, only the TCP fallback ping. */
ML_API ml_status ml_config_set_indirect_checks(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_indirect_checks(const ml_config *config);
/* Each node that has a broadcast (membership news, ml_memberlist_queue_broadcast) sends it
 * retransmit_mult * ceil(log10(n + 1)) times in a cluster of n, 1..64 (default 4; Local 2);
 * 0 is refused. */
ML_API ml_status ml_config_set_retransmit_mult(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_retransmit_mult(const ml_config *config);
/* The minimum time a suspect has to refute before it is declared dead is suspicion_mult *
 * max(1, log10(n)) * probe_interval, 1..64 (default 4; WAN 6, Local 3); 0 is refused. */
ML_API ml_status ml_config_set_suspicion_mult(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_suspicion_mult(const ml_config *config);
/* The maximum suspicion timeout, as a multiple of the minimum one, shortened as other
 * members confirm the suspicion, 1..64 (default 6); 1 turns off Lifeguard's suspicion
 * acceleration (max timeout == min timeout); 0 is refused. */
ML_API ml_status ml_config_set_suspicion_max_timeout_mult(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_suspicion_max_timeout_mult(const ml_config *config);
/* Period of the full state sync with a random member, scaled up in large clusters,
 * 0..86400000 (default 30000; WAN 60000, Local 15000); 0 disables periodic push/pull (joins
 * still push/pull; post_join_push_pulls then does nothing). */
ML_API ml_status ml_config_set_push_pull_interval_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_push_pull_interval_ms(const ml_config *config);
/* Period of the failure detector's probes, 0..86400000 (default 1000; WAN 5000); 0 disables
 * probing. Suspicion timeouts scale with it: at 0, a suspect reported by another member is
 * declared dead at once. */
ML_API ml_status ml_config_set_probe_interval_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_probe_interval_ms(const ml_config *config);
/* How long a probe waits for the direct ack before asking other members, and then for
 * their answers and the TCP fallback ping, 1..86400000 (default 500; WAN 3000, Local 200);
 * 0 is refused (every probe would fail). Keep it below probe_interval (not checked, as in
 * the reference). */
ML_API ml_status ml_config_set_probe_timeout_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_probe_timeout_ms(const ml_config *config);
/* Flag, 0..UINT32_MAX (default 0): non-zero disables the TCP fallback ping for every node;
 * 0 keeps it. */
ML_API ml_status ml_config_set_disable_tcp_pings(ml_config *config, uint32_t disable);
ML_API uint32_t ml_config_get_disable_tcp_pings(const ml_config *config);
/* Disables the TCP fallback ping towards one node name; may be called several times. */
ML_API ml_status ml_config_disable_tcp_pings_for_node(ml_config *config, const char *name);
/* Lifeguard: a node that misses acks stretches its probe interval and timeout up to this
 * many times, 1..64 (default 8); 1 turns off local health awareness; 0 is refused. */
ML_API ml_status ml_config_set_awareness_max_multiplier(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_awareness_max_multiplier(const ml_config *config);
/* Period of the gossip rounds, 0..86400000 (default 200; WAN 500, Local 100); 0 disables
 * gossip: news then travels only piggybacked on probes and acks. */
ML_API ml_status ml_config_set_gossip_interval_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_gossip_interval_ms(const ml_config *config);
/* Random members each gossip round sends to, 0..1024 (default 3; WAN 4); 0 disables gossip
 * as gossip_interval_ms 0 does. */
ML_API ml_status ml_config_set_gossip_nodes(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_gossip_nodes(const ml_config *config);
/* How long a dead node is still gossiped to, and a dead or left node kept before it is
 * forgotten, 0..86400000 (default 30000; WAN 60000, Local 15000). It is also how long a broadcast
 * origin is remembered for on_broadcast's de-duplication (see max_broadcast_origins): below
 * the time a broadcast keeps travelling (a few gossip intervals), a late copy is delivered
 * again. 0: dead nodes are neither gossiped to nor kept, and copies of a broadcast arriving
 * after the first are delivered again. */
ML_API ml_status ml_config_set_gossip_to_the_dead_time_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_gossip_to_the_dead_time_ms(const ml_config *config);
/* Largest datagram the library builds, framing included, 95..65507 (default 1400); 0 is refused
 * (as is anything below 95). Gossip packets are filled up to it, and it bounds
 * ml_memberlist_queue_broadcast and the metadata (not ml_memberlist_send_best_effort, which
 * sends one datagram of its own, as the reference's SendBestEffort does). The framing
 * takes 31 bytes (2, plus 29 for encryption, always counted since a key may be installed at
 * run time), 5 more with enable_checksum and 2 + its length with a label;
 * ml_memberlist_create refuses a size that leaves less than 64 bytes after it (so at least
 * 100 with the default checksum). */
ML_API ml_status ml_config_set_udp_buffer_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_udp_buffer_size(const ml_config *config);
/* 0..86400000; 0 (default): the name of a node that failed (dead, not left) does not move to
 * another address until it is forgotten; otherwise a node of that name at another address
 * is let in once the dead one has been dead this long. A node that left may come back at
 * another address at any time. */
ML_API ml_status ml_config_set_dead_node_reclaim_time_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_dead_node_reclaim_time_ms(const ml_config *config);
/* Inbound datagrams waiting to be processed before new ones are dropped, 1..1048576
 * (default 1024); 0 is refused. */
ML_API ml_status ml_config_set_handoff_queue_depth(ml_config *config, uint32_t depth);
ML_API uint32_t ml_config_get_handoff_queue_depth(const ml_config *config);
/* Largest node metadata accepted, 0..65535 (default 512, as the reference); 0: no metadata
 * (ml_config_set_meta and the node_meta hook can give only 0 bytes). Metadata must also fit
 * an alive message within udp_buffer_size. */
ML_API ml_status ml_config_set_meta_max_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_meta_max_size(const ml_config *config);
/* Metadata of the local node, carried on its alive messages; ML_E_TOO_LARGE if over the
 * limit. data may be NULL when len is 0. */
ML_API ml_status ml_config_set_meta(ml_config *config, const uint8_t *data, size_t len);
/* View valid until the next setter call on the config. */
ML_API const uint8_t *ml_config_get_meta(const ml_config *config, size_t *len);
/* Least severe level passed to the log callback, 0..5 (ML_LOG_TRACE..ML_LOG_OFF, default 2,
 * ML_LOG_INFO); 0 is ML_LOG_TRACE, ML_LOG_OFF passes nothing. */
ML_API ml_status ml_config_set_log_level(ml_config *config, uint32_t level);
ML_API uint32_t ml_config_get_log_level(const ml_config *config);
/* Seed of the protocol's randomness, 0..UINT64_MAX; 0 (default) picks one at random. */
ML_API ml_status ml_config_set_seed(ml_config *config, uint64_t seed);
ML_API uint64_t ml_config_get_seed(const ml_config *config);

/* Extra push/pulls with random members shortly after a successful join, 0..10 (default 3),
 * at 2, 4 and 8 gossip intervals: a joining cluster converges in a few gossip rounds instead
 * of waiting for the periodic push/pull. 0 restores hashicorp/memberlist's behaviour; they
 * need push_pull_interval_ms and gossip_interval_ms non-zero. */
ML_API ml_status ml_config_set_post_join_push_pulls(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_post_join_push_pulls(const ml_config *config);

/* -- application data limits (defaults as the reference) -- */
/* Largest user message sent or accepted reliably over TCP, 1..UINT32_MAX (default 20971520,
 * 20 MiB); 0 is refused. */
ML_API ml_status ml_config_set_max_user_msg_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_user_msg_size(const ml_config *config);

/* -- security and framing -- */
/* Cluster label (0..255 bytes, default ""): carried on every packet and stream and bound into
 * the encryption; traffic with another label is dropped and counted. */
ML_API ml_status ml_config_set_label(ml_config *config, const char *label);
ML_API const char *ml_config_get_label(const ml_config *config);
/* Flag, 0..UINT32_MAX (default 0): non-zero means inbound traffic carries no label and this
 * node's label is assumed; 0 checks the label. */
ML_API ml_status ml_config_set_skip_inbound_label_check(ml_config *config, uint32_t skip);
ML_API uint32_t ml_config_get_skip_inbound_label_check(const ml_config *config);
/* Installs an AES-GCM key of 16, 24 or 32 bytes; the first one installed is the primary key
 * (used to encrypt), every installed key is tried to decrypt. Installing keys turns
 * encryption on. */
ML_API ml_status ml_config_add_key(ml_config *config, const uint8_t *key, size_t len);
/* Number of keys installed in the config. */
ML_API uint32_t ml_config_get_key_count(const ml_config *config);
/* Flag, 0..UINT32_MAX (default 1): with keys, non-zero refuses plaintext input; 0 accepts
 * it (for switching a running cluster to encryption). */
ML_API ml_status ml_config_set_gossip_verify_incoming(ml_config *config, uint32_t verify);
ML_API uint32_t ml_config_get_gossip_verify_incoming(const ml_config *config);
/* Flag, 0..UINT32_MAX (default 1): with keys, non-zero encrypts output; 0 sends plaintext. */
ML_API ml_status ml_config_set_gossip_verify_outgoing(ml_config *config, uint32_t verify);
ML_API uint32_t ml_config_get_gossip_verify_outgoing(const ml_config *config);
/* Flag, 0..UINT32_MAX (default 1): non-zero compresses packets and streams when that makes
 * them smaller; 0 never compresses. */
ML_API ml_status ml_config_set_enable_compression(ml_config *config, uint32_t enable);
ML_API uint32_t ml_config_get_enable_compression(const ml_config *config);
/* Flag, 0..UINT32_MAX (default 1): non-zero adds a CRC32 checksum to every UDP packet; 0
 * sends none (inbound checksums are verified either way). */
ML_API ml_status ml_config_set_enable_checksum(ml_config *config, uint32_t enable);
ML_API uint32_t ml_config_get_enable_checksum(const ml_config *config);
/* Wire formats, for ml_config_set_wire_format. */
#define ML_WIRE_NATIVE 0
#define ML_WIRE_HASHICORP 1
/* Wire format, 0..1 (default 0): which protocol the node speaks; every node of a cluster
 * must use the same one. ML_E_INVALID for another value.
 *   0, ML_WIRE_NATIVE     libmemberlist's own format (FlatBuffers messages, its framing).
 *   1, ML_WIRE_HASHICORP  hashicorp/memberlist's (msgpack messages, LZW compression, Go's
 *                         AES-GCM and label framing), byte for byte as Go memberlist 0.2.2
 *                         writes it: the node joins clusters of Go memberlist nodes and
 *                         they join it.
 * In ML_WIRE_HASHICORP mode:
 *   - enable_compression means Go's EnableCompression: LZW on packets when smaller, on every
 *     stream message; enable_checksum is not used: a packet carries a CRC32 when its
 *     recipient is a member whose protocol maximum is 5 or more, as Go decides;
 *   - ml_memberlist_queue_broadcast() messages go out as plain user messages (a Go node sees
 *     them in NotifyMsg), piggybacked on gossip from this node only: receivers neither
 *     forward nor de-duplicate them (a node may get one more than once, or not at all),
 *     a named broadcast replaces an older one of the same name only in this node's queue,
 *     and on_broadcast_done reports this node's own transmissions, not delivery. Go's user
 *     messages and delegate broadcasts arrive at on_message.
 * docs/hashicorp-wire.md lists what else differs. */
ML_API ml_status ml_config_set_wire_format(ml_config *config, uint32_t format);
ML_API uint32_t ml_config_get_wire_format(const ml_config *config);
/* Accepts nodes, packets and streams only from these CIDR ranges ("10.0.0.0/8",
 * "fd00::/8"; a bare address means /32 or /128); may be called several times. None
 * (default): everyone is accepted. */
ML_API ml_status ml_config_add_allowed_cidr(ml_config *config, const char *cidr);
ML_API uint32_t ml_config_get_allowed_cidr_count(const ml_config *config);
/* -- bounds on what the network may make this node hold (defaults as the reference) -- */
/* Largest stream message (push/pull state, reliable message) accepted, 1024..UINT32_MAX
 * (default 20971520, 20 MiB); 0 is refused, as is anything below 1024 (the protocol's own
 * push/pull would not fit). */
ML_API ml_status ml_config_set_max_stream_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_stream_size(const ml_config *config);
/* Most nodes accepted in one push/pull, 1..UINT32_MAX (default 1048576); 0 is refused. */
ML_API ml_status ml_config_set_max_push_pull_nodes(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_push_pull_nodes(const ml_config *config);
/* Largest decompressed stream message, 1024..UINT32_MAX (default 41943040, 40 MiB);
 * 0 is refused, as is anything below 1024. A datagram inflates to at most 64 KiB whatever this is
 * (nobody compresses more into one), and memory grows with what really inflates, never with
 * the size a message claims. */
ML_API ml_status ml_config_set_max_decompressed_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_decompressed_size(const ml_config *config);
/* Most inbound streams with a body over 1 KiB (push/pulls, reliable messages) read at once;
 * more are closed after their header (1..65535, default 128, the reference's bound on
 * push/pulls; 0 is refused). TCP pings and other small messages are not counted, so that
 * bulk traffic cannot get a healthy node's fallback ping refused. */
ML_API ml_status ml_config_set_max_concurrent_streams(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_concurrent_streams(const ml_config *config);
/* Most inbound TCP connections open at once, whatever they carry; more are closed at once
 * (1..65535, default 512; 0 is refused). */
ML_API ml_status ml_config_set_max_inbound_connections(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_inbound_connections(const ml_config *config);
/* Of those, most from one IP address, 1..65535 (default 32); 0 is refused. More from that
 * address are closed at once and counted (memberlist.tcp.refused_streams), so that one
 * source cannot hold every slot and lock out the joins, push/pulls and fallback pings of
 * the others. */
ML_API ml_status ml_config_set_max_inbound_connections_per_source(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_inbound_connections_per_source(const ml_config *config);
/* Bytes of inbound stream bodies over 1 KiB being read at once, as their headers declare
 * them, 1024..UINT32_MAX (default 67108864, 64 MiB); 0 is refused, as is anything below
 * 1024. A stream that would go over it is closed after its header and counted
 * (memberlist.tcp.refused_streams): stalled senders cannot make the node hold more. */
ML_API ml_status ml_config_set_max_inbound_stream_bytes(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_inbound_stream_bytes(const ml_config *config);
/* Most callbacks (events, notifications, metric samples) queued for delivery to the host
 * (1..16777216, default 65536; 0 is refused). Callbacks run off the protocol's path: one that
 * blocks lets the queue grow up to this bound, beyond which new ones are dropped and counted
 * (memberlist.callbacks.dropped) and a WARN line says so. */
ML_API ml_status ml_config_set_max_queued_callbacks(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_queued_callbacks(const ml_config *config);
/* Most log lines queued for on_log (1..16777216, default 1024; 0 is refused); beyond it they
 * are dropped and counted (memberlist.log.dropped), so that a log flood cannot crowd out
 * events. */
ML_API ml_status ml_config_set_max_queued_log_lines(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_queued_log_lines(const ml_config *config);
/* Broadcast origins (nodes that queued broadcasts) remembered for on_broadcast's
 * de-duplication, 1..16777216 (default 4096); 0 is refused. An origin is forgotten
 * gossip_to_the_dead_time after its last broadcast reached this node, or earlier, least
 * recently heard first, when more origins than this broadcast within that time (both
 * counted in memberlist.broadcast.origins_evicted); a copy of a forgotten origin's broadcast
 * still travelling would then be delivered again. Raise it for clusters with more
 * broadcasting nodes. */
ML_API ml_status ml_config_set_max_broadcast_origins(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_broadcast_origins(const ml_config *config);
/* Replies one received datagram may cause: acks to the pings it carries and probes for the
 * indirect ping requests it carries, 1..255 (default 4); 0 is refused. Further ones in the same
 * datagram are dropped and counted (memberlist.bad_messages, reason "reply_budget"): without
 * the bound, one small compound of pings naming another address would turn this node into an
 * amplifier towards it. A real datagram carries one ping or one request. */
ML_API ml_status ml_config_set_max_replies_per_packet(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_replies_per_packet(const ml_config *config);
/* Most application broadcasts held for gossip, this node's own (ml_memberlist_queue_broadcast)
 * and those it forwards, 1..16777216 (default 4096); 0 is refused. Beyond it (or beyond
 * max_queued_broadcast_bytes), the most-transmitted are dropped first (they have done most of
 * their work; this node's own then finish with ML_BROADCAST_DROPPED), counted in
 * memberlist.user.broadcasts.dropped. */
ML_API ml_status ml_config_set_max_queued_broadcasts(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_queued_broadcasts(const ml_config *config);
/* Most bytes of application broadcasts held for gossip (as max_queued_broadcasts),
 * 65536..4294967295 (default 4194304); 0 is refused, as is anything below one datagram. */
ML_API ml_status ml_config_set_max_queued_broadcast_bytes(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_queued_broadcast_bytes(const ml_config *config);
/* Broadcast repair (not in the reference; see ml_memberlist_queue_broadcast): the most
 * application broadcasts this node keeps, 0..4096 (default 256), for its periodic push/pulls
 * to list and to send to the peer that lacks them. It bounds this node's memory for them (at
 * most this many datagram-sized broadcasts), the digest each push/pull carries and the
 * broadcasts one push/pull reply repairs; when more are sent within the repair horizon (two
 * push/pull intervals), the oldest go first and are only best effort. 0 turns repair off:
 * broadcasts are best effort, as in the reference, and this node neither asks for nor sends
 * repairs (nodes with it on still repair each other). Needs push_pull_interval_ms > 0. */
ML_API ml_status ml_config_set_max_repair_broadcasts(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_repair_broadcasts(const ml_config *config);
/* Automatic reconnection (not in the reference), every reconnect_interval_ms,
 * 0..86400000 (default 30000); 0 turns it off. The node pings one member it marked dead (never
 * one that left) at its last address and, if it answers, joins it with a push/pull, so that a
 * healed partition or a node that stopped receiving merges back without a call from the
 * application (memberlist.reconnect.attempts / .successes). */
ML_API ml_status ml_config_set_reconnect_interval_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_reconnect_interval_ms(const ml_config *config);
/* How long after its death a member is still tried, 0..86400000 (default 86400000, a
 * day); 0 never tries dead members (seeds still are, see reconnect_seeds). */
ML_API ml_status ml_config_set_reconnect_timeout_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_reconnect_timeout_ms(const ml_config *config);
/* Dead members remembered for reconnection, 1..16777216 (default 1024); 0 is refused.
 * Beyond it the longest dead is forgotten first (memberlist.reconnect.forgotten). */
ML_API ml_status ml_config_set_max_reconnect_members(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_reconnect_members(const ml_config *config);
/* Flag, 0..UINT32_MAX (default 1): non-zero also re-joins, one per reconnect tick, the
 * addresses given to ml_memberlist_join (the last 16) while no other member is alive; 0
 * does not. */
ML_API ml_status ml_config_set_reconnect_seeds(ml_config *config, uint32_t enable);
ML_API uint32_t ml_config_get_reconnect_seeds(const ml_config *config);

/* ---- callbacks ------------------------------------------------------------------------- */

#define ML_CALLBACKS_VERSION_1 1
#define ML_CALLBACKS_VERSION_2 2 /* adds the delegate hooks and notifications */
/* The newest version this header describes. */
#define ML_CALLBACKS_VERSION ML_CALLBACKS_VERSION_2

/* Set version to ML_CALLBACKS_VERSION and leave unused members NULL (zero the struct first).
 * Fields are only ever appended; a library reads only the fields the version declares, and
 * refuses a version newer than it knows (ML_E_VERSION) rather than ignore callbacks. */
typedef struct ml_callbacks {
  uint32_t version;
  void *user_data;
  /* Called exactly once, after the last callback of the memberlist (at destroy, or at create
   * if create fails). */
  void (*user_data_free)(void *user_data);
  /* A node joined (also the local node at create), left or failed (ML_EVENT_LEAVE: see
   * ml_node_state for left vs dead), or updated its metadata. `node` is borrowed for the
   * call; ml_node_copy keeps it. */
  void (*on_event)(void *user_data, uint32_t event, const ml_node *node);
  /* One log line (not NUL-terminated beyond len; msg[len] is NUL). NULL: lines of WARN and
   * above go to stderr. */
  void (*on_log)(void *user_data, uint32_t level, const char *msg, size_t len);

  /* ---- version 2 --------------------------------------------------------------------- */
  /* Hooks, called synchronously from inside the protocol on a library thread: they must be
   * quick and must not block. From inside a hook the queries (members, num_members,
   * local_node, health_score, metrics) and queue_broadcast / send_best_effort work; join,
   * ping, leave, shutdown, update_node, set_meta and send_reliable return ML_E_STATE.
   * Any hook may be NULL. */
  /* Metadata of the local node, asked at create and by ml_memberlist_update_node: append at
   * most `limit` bytes to `out`. When this hook is set, what it appends (even nothing)
   * replaces the config's metadata. */
  void (*node_meta)(void *user_data, ml_buffer *out, size_t limit);
  /* Pull-style broadcasts to piggyback on a packet being built: add whole messages to `sink`
   * until it refuses (each costs `overhead` bytes more than its length). */
  void (*get_broadcasts)(void *user_data, ml_message_sink *sink, size_t overhead, size_t limit);
  /* State sent in a push/pull (join != 0 when joining): append it to `out`. */
  void (*local_state)(void *user_data, uint32_t join, ml_buffer *out);
  /* State a peer sent in a push/pull (only when it sent some). */
  void (*merge_remote_state)(void *user_data, const uint8_t *data, size_t len, uint32_t join);
  /* Called on both sides of a join's push/pull, before anything of it is merged, with the
   * other side's nodes in `peers` (not on periodic push/pulls, as in the reference): on the
   * member contacted, with the joiner's nodes; on the joining node, with the nodes the member
   * answered. Non-zero refuses the merge; a reason may be appended to `reason`.
   * Refused by the member contacted: it merges nothing and answers with the reason instead of
   * its state, so the joiner merges nothing either and that address counts as not reached
   * (ml_memberlist_join fails with ML_E_REJECTED and the reason if no address was reached).
   * Refused by the joiner: it merges nothing and that address counts as not reached likewise,
   * but the member contacted has already merged the joiner (it merges after answering), so it
   * will probe and gossip to the joiner, which may then learn of members from that gossip
   * (notify_alive can keep them out). */
  int32_t (*notify_merge)(void *user_data, const ml_node_list *peers, ml_buffer *reason);
  /* Before a node is let in or changed by an alive message: non-zero keeps it out. */
  int32_t (*notify_alive)(void *user_data, const ml_node *peer, ml_buffer *reason);
  /* Payload attached to the acks this node sends. */
  void (*ack_payload)(void *user_data, ml_buffer *out);
  /* Notifications, delivered like on_event (serialized, outside any lock). */
  /* A user message arrived (best effort or reliable). */
  void (*on_message)(void *user_data, const uint8_t *data, size_t len);
  /* A broadcast queued with ml_memberlist_queue_broadcast on node `origin` arrived; each one is
   * delivered at most once while its origin is remembered (see
   * ml_config_set_max_broadcast_origins), and possibly never (see
   * ml_memberlist_queue_broadcast). name is "" for unnamed broadcasts. */
  void (*on_broadcast)(void *user_data, const char *origin, const char *name, const uint8_t *data,
                       size_t len);
  /* A broadcast this node queued is done (ML_BROADCAST_*): DELIVERED once this node has sent
   * it its whole retransmit budget, which says nothing about who received it; with broadcast
   * repair on, SETTLED once its repair horizon has passed too (two push/pull intervals later),
   * which says every member alive and reachable throughout had the chance to fetch it. */
  void (*on_broadcast_done)(void *user_data, uint64_t id, uint32_t outcome);
  /* A node with the name of a known node but another address showed up; it was ignored. */
  void (*on_conflict)(void *user_data, const ml_node *existing, const ml_node *other);
  /* A probe of `node` completed with a direct ack carrying `payload`. */
  void (*on_ping_complete)(void *user_data, const ml_node *node, uint64_t rtt_us,
                           const uint8_t *payload, size_t len);
  /* Every metric sample as it is recorded (ML_METRIC_*; timers in milliseconds). */
  void (*on_metric)(void *user_data, const char *name, uint32_t kind, double value);
} ml_callbacks;

/* ---- runtime --------------------------------------------------------------------------- */

/* A pool of `threads` I/O threads (0 = 2) that memberlists can share, plus as many threads
 * that serve the nodes' UDP sockets and timers (each node on one of them: the first 256 share
 * the first thread, so that probes between them wake one thread; later ones go to the
 * least loaded).
 * The runtime lives until it is freed and every memberlist using it is destroyed. */
ML_API ml_status ml_runtime_create(ml_runtime **out, uint32_t threads);
/* ml_runtime_create with the out-parameter last. */
ML_API ML_DEPRECATED("use ml_runtime_create")
ml_status ml_runtime_new(uint32_t threads, ml_runtime **out);
ML_API void ml_runtime_free(ml_runtime *runtime);

/* ---- in-memory network ---------------------------------------------------------------- */

/* An in-memory network: many memberlists of one process talk through it with no sockets,
 * no ports and no root, and the host sets per-link loss, delay and cuts at run time (to test
 * its own logic on membership: a node dies, a partition, a lossy or slow link). Each
 * memberlist on it has an address of its own, "ip:port" ("10.0.0.1:7946", "[fd00::1]:7946":
 * an IP literal other than 0.0.0.0 and ::, and a port), which it advertises and which others
 * join; two memberlists alive at once cannot share one. Datagrams between them may be lost or
 * delayed as the link says; streams (joins, push/pulls, reliable messages, TCP pings) are
 * reliable, delayed on connection by the link's delay, and refused at once over a cut link.
 * A datagram to an address nobody has is lost silently; a stream to it is refused.
 * Everything else (timers, framing, encryption, budgets, the protocol) is as over sockets.
 *
 * The handle holds one reference to the network and every memberlist created on it holds
 * another: ml_network_destroy may come before or after ml_memberlist_destroy of its
 * memberlists, and the network goes when the last of them does. Every ml_network function is
 * safe to call from any thread, concurrently, also from callbacks; settings take effect for
 * the next datagram or connection. */
ML_API ml_status ml_network_create(ml_network **out);
/* Drops the handle's reference (see above); NULL is ignored. */
ML_API void ml_network_destroy(ml_network *net);
/* Memberlists created from `config` run on `net` at `address` ("ip:port", see above) instead
 * of binding sockets: bind_addr and bind_port are then not used, the node advertises
 * `address` unless advertise_addr/advertise_port say otherwise, and a join address without a
 * port gets the port of `address`. The config holds a reference to the network until it is
 * freed or set again. net NULL goes back to sockets (address is then ignored). ML_E_INVALID
 * for a bad address; ml_memberlist_create fails with ML_E_IO if a live memberlist already
 * has the address. */
ML_API ml_status ml_config_set_network(ml_config *config, ml_network *net, const char *address);
/* Loss and delay of every link without a setting of its own (default: 0 and 0). loss is the
 * probability, 0.0 to 1.0, that a datagram is lost; delay_ms, at most 60000, is added to
 * every datagram and to the set-up of every stream. ML_E_INVALID out of range. */
ML_API ml_status ml_network_set_default_link(ml_network *net, double loss, uint32_t delay_ms);
/* Loss and delay (as above) of the link from `from` to `to`, one direction only. */
ML_API ml_status ml_network_set_link(ml_network *net, const char *from, const char *to, double loss,
                                     uint32_t delay_ms);
/* Every link back to loss 0 and delay 0 (cuts stay: see ml_network_heal). */
ML_API ml_status ml_network_clear_links(ml_network *net);
/* Cuts every link between an address of group_a and one of group_b, both directions: nothing
 * gets through, whatever the link's loss and delay, until ml_network_heal. Cutting twice is
 * harmless. count 0 with a NULL list is an empty group. ML_E_INVALID for a bad address. */
ML_API ml_status ml_network_partition(ml_network *net, const char *const *group_a, size_t count_a,
                                      const char *const *group_b, size_t count_b);
/* Non-zero `blocked` cuts every link to and from `address` (a node that is alive but
 * unreachable); 0 restores them (cuts made by ml_network_partition stay). */
ML_API ml_status ml_network_block(ml_network *net, const char *address, uint32_t blocked);
/* Removes every cut and block (link loss and delay stay). */
ML_API ml_status ml_network_heal(ml_network *net);

/* ---- host transport -------------------------------------------------------------------- */

/* A transport the host provides: the host carries the node's datagrams and streams over
 * whatever it likes (TLS, TCP only, a message bus, a test queue), and the library keeps the
 * timers, threads, framing, encryption, budgets and the protocol. The bytes handed over are
 * opaque, already framed (and sealed, with a keyring): deliver them unchanged.
 *
 * Addresses are "ip:port" strings ("10.0.0.1:7946", "[fd00::1]:7946"): the node advertises
 * its own (ml_config_set_transport), peers are known by theirs, and the host maps them to its
 * own endpoints. The library's calls into the host (send_packet, send_stream, stream_reply)
 * come from library threads, several at once, never while it holds an internal lock; they
 * must not block (queue the bytes and return) and must not call ml_memberlist_destroy or
 * the blocking calls. Every buffer they get is borrowed for the duration of the call.
 * The host's calls into the library (ml_memberlist_transport_*) are safe from any thread,
 * also from inside those callbacks, copy what they keep, and never block; as every call on a
 * memberlist, they must not race with or follow its ml_memberlist_destroy (stop handing it
 * bytes first; after ml_memberlist_shutdown they return ML_E_CLOSED). Tokens still
 * outstanding at destroy are void.
 *
 * Streams carry one message each: an outgoing one goes out with send_stream and a token, and
 * the host completes the token once with ml_memberlist_transport_stream_done (the peer's
 * reply, or an error). An inbound one comes in with ml_memberlist_transport_stream and a token
 * of the host's choosing, and the library answers it once through stream_reply. A slow host
 * is bounded by the library's own deadlines (tcp_timeout for streams; datagrams are best
 * effort); a host that fails returns an error, which the library counts and handles as the
 * network failing. */
#define ML_TRANSPORT_VERSION_1 1
#define ML_TRANSPORT_VERSION_2 2 /* adds send_stream_flags */
#define ML_TRANSPORT_VERSION ML_TRANSPORT_VERSION_2

/* send_stream_flags: the library waits for the peer's reply to this stream message. */
#define ML_STREAM_EXPECTS_REPLY 1u

/* Set version to ML_TRANSPORT_VERSION and zero the struct first; send_packet and
 * stream_reply are required, and one of send_stream and send_stream_flags. Copied by
 * ml_config_set_transport; user_data is the host's and must outlive every memberlist created
 * with it (the library never frees it). */
typedef struct ml_transport {
  uint32_t version;
  void *user_data;
  /* One datagram to `to`. Return 0 if taken (it may still be lost, as UDP), non-zero if not
   * (counted as a dropped send). */
  int32_t (*send_packet)(void *user_data, const char *to, const uint8_t *data, size_t len);
  /* One stream message to `to`. Return 0 and complete `token` later (exactly once, from any
   * thread) with ml_memberlist_transport_stream_done, or non-zero: the stream fails at once
   * ("the host transport refused to carry the stream"; do not complete the token then). */
  int32_t (*send_stream)(void *user_data, const char *to, uint64_t token, const uint8_t *data,
                         size_t len);
  /* The answer to the inbound stream `token`: with has_reply non-zero, `reply` goes back to
   * the peer as its stream's reply; with 0 there is no reply (the message needed none, or was
   * refused: close the peer's stream without one). Called exactly once per stream the library
   * accepted (ml_memberlist_transport_stream returned ML_OK). */
  void (*stream_reply)(void *user_data, uint64_t token, const uint8_t *reply, size_t len,
                       uint32_t has_reply);
  /* ---- version 2 --------------------------------------------------------------------- */
  /* send_stream with `flags`; when set, it is called instead of send_stream (which may then be
   * NULL). Without ML_STREAM_EXPECTS_REPLY the library does not wait for a reply: the host may
   * close its stream once the bytes are delivered, and need not complete the token (a
   * completion gets ML_E_NOT_FOUND, harmlessly). Other bits are reserved: ignore them. */
  int32_t (*send_stream_flags)(void *user_data, const char *to, uint64_t token,
                               const uint8_t *data, size_t len, uint32_t flags);
} ml_transport;

/* Memberlists created from `config` use the host's `transport` at `address` ("ip:port", a
 * specific IP literal and a port; the advertised address unless advertise_addr/advertise_port
 * say otherwise) instead of binding sockets. transport NULL goes back to sockets. Replaces
 * ml_config_set_network and is replaced by it. ML_E_VERSION for a version of 0 or newer than
 * the library's; ML_E_INVALID for a missing function or a bad address. */
ML_API ml_status ml_config_set_transport(ml_config *config, const ml_transport *transport,
                                         const char *address);
/* A datagram the host received for this memberlist from `from` ("ip:port"), copied; it is
 * handled as a UDP datagram is (queued up to handoff_queue_depth, allow-list, framing).
 * ML_E_TOO_LARGE over 65507 bytes; ML_E_STATE without a host transport; ML_E_CLOSED after
 * ml_memberlist_shutdown. */
ML_API ml_status ml_memberlist_transport_packet(ml_memberlist *ml, const char *from,
                                                const uint8_t *data, size_t len);
/* A whole inbound stream message from `from`, copied; `token` is the host's, handed back
 * with the answer through stream_reply, once, only if this returns ML_OK: a refused stream
 * gets no stream_reply (close the peer's stream). ML_E_STATE without a host transport, or
 * with too many streams waiting (256); ML_E_CLOSED after ml_memberlist_shutdown. */
ML_API ml_status ml_memberlist_transport_stream(ml_memberlist *ml, const char *from,
                                                uint64_t token, const uint8_t *data, size_t len);
/* Completes the outgoing stream `token`: status ML_OK with the peer's reply (len 0 if it sent
 * none), or ML_E_TIMEOUT (the stream timed out), ML_E_REJECTED (the peer closed it without a
 * reply: reported as a peer that refused our message, e.g. another key or label), any other
 * status (the connection failed; the stream's error, e.g. a join's, names that status).
 * ML_E_NOT_FOUND for a token the library no longer waits for (already completed, timed out,
 * or a message that needed no reply): harmless. */
ML_API ml_status ml_memberlist_transport_stream_done(ml_memberlist *ml, uint64_t token,
                                                     ml_status status, const uint8_t *reply,
                                                     size_t len);

/* ---- memberlist ------------------------------------------------------------------------ */

/* Binds the sockets, starts the protocol and fires ML_EVENT_JOIN for the local node.
 * runtime may be NULL: a process-wide default runtime is used. config and callbacks are
 * copied; callbacks may be NULL. */
ML_API ml_status ml_memberlist_create(ml_memberlist **out, ml_runtime *runtime,
                                      const ml_config *config, const ml_callbacks *callbacks);
/* Shuts down if needed (without leaving), delivers the outcomes of the broadcasts still queued
 * (ML_BROADCAST_DROPPED) and the membership events already queued, waits for running
 * callbacks, calls user_data_free and frees the handle. */
ML_API void ml_memberlist_destroy(ml_memberlist *ml);
/* Message of this thread's last failed call on this memberlist (if this thread had none, a
 * copy of the last failure of any thread); valid until this thread's next call on it. */
ML_API const char *ml_memberlist_last_error(const ml_memberlist *ml);

/* Joins a cluster through existing members: each entry is "host", "host:port",
 * "[v6addr]:port" or a DNS name, optionally prefixed "name/" (hashicorp's form). The name
 * must not be empty but is otherwise not used: it is not compared with the name of the node
 * that answers (hashicorp hands it to its transport, whose default ignores it too). Blocks
 * until every address was tried (a DNS name may resolve to several). *joined (may be NULL)
 * receives how many were reached; the call fails only if none was, with the status the
 * failures share if they share one, else ML_E_IO. Per address: ML_E_REJECTED when the peer
 * refused the merge (see notify_merge) or closed the connection right after our message (most
 * likely another encryption key or label, or our address outside its allowed CIDRs);
 * ML_E_PROTOCOL when the peer is not memberlist (say, a web server on that port);
 * ML_E_TIMEOUT when it did not answer within tcp_timeout; ML_E_IO otherwise ("connection
 * refused" when nothing listens). ml_memberlist_last_error names the address and the reason. */
ML_API ml_status ml_memberlist_join(ml_memberlist *ml, const char *const *addresses, size_t count,
                                    uint32_t *joined);
/* A snapshot of the alive and suspect members, the local node included. */
ML_API ml_status ml_memberlist_members(ml_memberlist *ml, ml_node_list **out);
/* *count receives the number of alive and suspect members, the local node included. */
ML_API ml_status ml_memberlist_get_num_members(ml_memberlist *ml, size_t *count);
/* As ml_memberlist_get_num_members; 0 on any failure. */
ML_API ML_DEPRECATED("use ml_memberlist_get_num_members")
size_t ml_memberlist_num_members(ml_memberlist *ml);
/* A copy of the local node (its address shows the port actually bound). */
ML_API ml_status ml_memberlist_local_node(ml_memberlist *ml, ml_node **out);
/* *score receives the Lifeguard health score: 0 is healthy, higher means this node is slow to
 * process messages. */
ML_API ml_status ml_memberlist_get_health_score(ml_memberlist *ml, int32_t *score);
/* As ml_memberlist_get_health_score; -1 on any failure. */
ML_API ML_DEPRECATED("use ml_memberlist_get_health_score")
int32_t ml_memberlist_health_score(ml_memberlist *ml);
/* Pings a member by name over UDP and waits for the ack; *rtt_us receives the round-trip
 * time in microseconds. ML_E_NOT_FOUND for an unknown name, ML_E_TIMEOUT without answer. */
ML_API ml_status ml_memberlist_ping(ml_memberlist *ml, const char *node_name, uint64_t *rtt_us);
/* Broadcasts that this node leaves and waits until the news has propagated or timeout_ms
 * passed (ML_E_TIMEOUT; the leave still goes on); 0 or ML_TIMEOUT_FOREVER: no limit. The node
 * keeps answering until shutdown but cannot rejoin. */
ML_API ml_status ml_memberlist_leave(ml_memberlist *ml, uint32_t timeout_ms);
/* Stops the sockets and timers without leaving: peers will detect a failure. Idempotent.
 * Of the callbacks still queued, membership events and broadcast outcomes are delivered and
 * the rest (messages, pings, metric samples, log lines) discarded; none starts after it
 * returns. */
ML_API ml_status ml_memberlist_shutdown(ml_memberlist *ml);

/* -- join, ping and leave without blocking the caller ------------------------------------- */
/* The same operations as ml_memberlist_join, ml_memberlist_ping and ml_memberlist_leave, for
 * hosts whose threads must not wait (event loops, .NET's thread pool, async runtimes): the
 * call only checks its arguments, copies them and returns; the operation runs on a library
 * thread and its outcome arrives through `done`.
 *  - Return value: ML_OK means the operation was accepted and `done` will be called exactly
 *    once. Any other status (ML_E_INVALID: ml, an address or done NULL, count 0;
 *    ML_E_CLOSED: after ml_memberlist_shutdown, or while ml_memberlist_destroy runs) means
 *    it was not, and `done` is never called: user_data stays the caller's.
 *  - `done` is called on one of the memberlist's completion threads, never inside the call
 *    that queued the operation. The memberlist runs the operations it accepted on at most
 *    4 such threads, started when needed and ended after 10 s without work or at destroy;
 *    a fifth waits until one of them is free. So the blocking wait happens on a bounded
 *    thread the library owns (the blocking forms wait on a condition, not on an Asio
 *    operation that could complete a callback), never on the host's.
 *  - `done` receives the status the blocking form would return and its result; `message`
 *    is "" on success, else what ml_memberlist_last_error would say. It is borrowed for the
 *    call (copy it to keep it). Calls of `done` for different operations may run at the
 *    same time, also alongside the notification callbacks.
 *  - Inside `done` the memberlist counts as in one of its own callbacks: the blocking calls
 *    (join, ping, leave, shutdown) return ML_E_STATE, ml_memberlist_destroy is deferred
 *    until `done` returns, and the *_async calls work.
 *  - Shutdown and destroy: an operation that has not completed when the memberlist is shut
 *    down, or destroyed, completes with ML_E_CLOSED; ml_memberlist_destroy returns only
 *    after every accepted operation has called its `done`. */
typedef void (*ml_join_done_fn)(void *user_data, ml_status status, uint32_t joined,
                                const char *message);
typedef void (*ml_ping_done_fn)(void *user_data, ml_status status, uint64_t rtt_us,
                                const char *message);
typedef void (*ml_leave_done_fn)(void *user_data, ml_status status, const char *message);
/* ml_memberlist_join without waiting: `joined` is how many addresses were reached. The
 * addresses are copied before it returns. */
ML_API ml_status ml_memberlist_join_async(ml_memberlist *ml, const char *const *addresses,
                                          size_t count, ml_join_done_fn done, void *user_data);
/* ml_memberlist_ping without waiting: `rtt_us` is the round-trip time (0 on failure). */
ML_API ml_status ml_memberlist_ping_async(ml_memberlist *ml, const char *node_name,
                                          ml_ping_done_fn done, void *user_data);
/* ml_memberlist_leave without waiting (timeout_ms as there). */
ML_API ml_status ml_memberlist_leave_async(ml_memberlist *ml, uint32_t timeout_ms,
                                           ml_leave_done_fn done, void *user_data);

/* -- metadata ------------------------------------------------------------------------------ */
/* Asks the node_meta hook again and announces the result; waits until the change has
 * propagated or timeout_ms passed (ML_E_TIMEOUT; the update still goes on); 0 or
 * ML_TIMEOUT_FOREVER: no limit. */
ML_API ml_status ml_memberlist_update_node(ml_memberlist *ml, uint32_t timeout_ms);
/* Sets the local metadata and announces it, waiting as ml_memberlist_update_node does.
 * ML_E_TOO_LARGE over the configured limit. */
ML_API ml_status ml_memberlist_set_meta(ml_memberlist *ml, const uint8_t *data, size_t len,
                                        uint32_t timeout_ms);

/* -- user messages ------------------------------------------------------------------------- */
/* One UDP datagram to a member, best effort: no ack, it may be lost. Its own datagram, not
 * bounded by udp_buffer_size (as the reference's SendBestEffort): the encoded message may take
 * 65000 bytes, so len may be at most 64975 (25 bytes of message encoding), whatever the
 * framing. Longer is refused with ML_E_TOO_LARGE and nothing is sent (use send_reliable).
 * Datagrams larger than the path's MTU are fragmented by IP, and lost whole if one fragment
 * is. ML_E_NOT_FOUND for an unknown member. */
ML_API ml_status ml_memberlist_send_best_effort(ml_memberlist *ml, const char *node_name,
                                                const uint8_t *data, size_t len);
/* Over a TCP stream to a member; returns once written. Each call is a stream of its own, and
 * the receiver handles streams as they complete: two calls may arrive in either order (as in
 * hashicorp's SendReliable). ML_E_TOO_LARGE over max_user_msg_size. */
ML_API ml_status ml_memberlist_send_reliable(ml_memberlist *ml, const char *node_name,
                                             const uint8_t *data, size_t len);
/* One UDP datagram to "host:port" (a member or not), bounded as send_best_effort. */
ML_API ml_status ml_memberlist_send_to_address(ml_memberlist *ml, const char *address,
                                               const uint8_t *data, size_t len);

/* -- broadcasts ---------------------------------------------------------------------------- */
/* Queues a broadcast for gossip. This node piggybacks it on its gossip and probe packets, each
 * to one member, until it has sent it retransmit_mult * ceil(log10(n + 1)) times (n: the
 * cluster size); each member that receives it delivers it through on_broadcast and forwards
 * it the same way. That alone reaches every member alive meanwhile with high probability only
 * (lost datagrams, partitions), as in the reference.
 * Broadcast repair (not in the reference; on by default, ml_config_set_max_repair_broadcasts)
 * closes that gap: every node keeps the broadcasts it sent or received for the repair horizon,
 * two push/pull intervals (scaled with the cluster size as push/pull itself), and each
 * periodic push/pull carries a digest of them both ways, the peer sending back (in its reply)
 * or after it (by datagram) those the other lacks. A node that queued or received broadcasts
 * also starts an extra exchange with a random member once they stop coming (a few gossip
 * rounds after the last), and another if that one found either side lacking some: at most
 * two per push/pull interval, counted in memberlist.user.broadcasts.settle_exchanges. A
 * member whose own exchange came while they were still spreading is so repaired within
 * about one interval. A member then gets
 * the broadcast within about the horizon if: it was a member before the broadcast was queued (a member that joins
 * later is never repaired the cluster's past, though gossip still travelling may bring it);
 * it was alive and reachable for a push/pull with a node that had it within the horizon; at
 * most max_repair_broadcasts broadcasts went round within the horizon (beyond that the oldest
 * leave repair, best effort again); and both ends have repair on (nodes with it off, or of an
 * older version, take no part). It stays no receipt and brings no order between broadcasts:
 * use send_reliable for what must arrive. Counted in memberlist.user.broadcasts.repairs_sent
 * (broadcasts a node sent to repair a peer) and memberlist.user.broadcasts.repaired (ones it
 * delivered from a repair); a peer configured with a higher limit may send more in one
 * exchange than this node takes: the excess waits for a later one
 * (memberlist.user.broadcasts.repairs_skipped).
 * on_broadcast_done(id, outcome) tells when this node is done with it: ML_BROADCAST_DELIVERED
 * once it sent its whole budget (not a receipt), or, with repair on, ML_BROADCAST_SETTLED once
 * its repair horizon has passed as well (DELIVERED if it left repair early: pushed out by
 * newer ones, or shutdown); ML_BROADCAST_REPLACED if a newer broadcast with the same name was
 * queued here first, ML_BROADCAST_DROPPED if the memberlist shut down first. *id (may be
 * NULL) identifies it there.
 * name NULL or "": unique; otherwise (at most 255 bytes, else ML_E_INVALID) a newer
 * broadcast with the same name replaces the older one in every queue it reaches, and a member
 * that delivered the newer one does not deliver the older. ML_E_TOO_LARGE if it does not fit
 * a gossip datagram of udp_buffer_size (use send_reliable). */
ML_API ml_status ml_memberlist_queue_broadcast(ml_memberlist *ml, const char *name,
                                               const uint8_t *data, size_t len, uint64_t *id);
/* *count receives the number of broadcasts still being retransmitted by this node. */
ML_API ml_status ml_memberlist_get_num_queued_broadcasts(ml_memberlist *ml, size_t *count);
/* As ml_memberlist_get_num_queued_broadcasts; 0 on any failure. */
ML_API ML_DEPRECATED("use ml_memberlist_get_num_queued_broadcasts")
size_t ml_memberlist_num_queued_broadcasts(ml_memberlist *ml);

/* -- keyring (encryption at run time) ------------------------------------------------------ */
/* Installs a key (16, 24 or 32 bytes); the first key installed becomes the primary and
 * turns encryption on. */
ML_API ml_status ml_memberlist_keyring_add(ml_memberlist *ml, const uint8_t *key, size_t len);
/* Makes an installed key the primary (ML_E_NOT_FOUND if it is not installed). */
ML_API ml_status ml_memberlist_keyring_use(ml_memberlist *ml, const uint8_t *key, size_t len);
/* Removes a key; removing the primary key is refused (ML_E_STATE). */
ML_API ml_status ml_memberlist_keyring_remove(ml_memberlist *ml, const uint8_t *key, size_t len);
/* The installed keys, primary first. */
ML_API ml_status ml_memberlist_keyring_list(ml_memberlist *ml, ml_bytes_list **out);
/* Changes gossip_verify_incoming / gossip_verify_outgoing of a running node. */
ML_API ml_status ml_memberlist_set_gossip_verify(ml_memberlist *ml, uint32_t incoming,
                                                 uint32_t outgoing);

/* -- metrics ------------------------------------------------------------------------------- */
/* A snapshot of the metrics recorded so far (names as hashicorp/memberlist:
 * "memberlist.msg.alive", ...). A series appears with its first sample: one that never had
 * any (say "memberlist.msg.dead" before any node died) is absent rather than 0, so look it up
 * with ml_metrics_find and read SIZE_MAX as "0 so far". */
ML_API ml_status ml_memberlist_metrics(ml_memberlist *ml, ml_metrics **out);
ML_API size_t ml_metrics_len(const ml_metrics *metrics);
/* Name of the i-th metric (NULL if out of range). */
ML_API const char *ml_metrics_name(const ml_metrics *metrics, size_t index);
/* Its labels in Prometheus form ("node_state=\"alive\"", "" if none). */
ML_API const char *ml_metrics_labels(const ml_metrics *metrics, size_t index);
/* *kind receives the i-th metric's ML_METRIC_*; ML_E_INVALID if the index is out of range. */
ML_API ml_status ml_metrics_get_kind(const ml_metrics *metrics, size_t index, uint32_t *kind);
/* ML_METRIC_*; ML_METRIC_COUNTER if the index is out of range, which looks like a real
 * answer. */
ML_API ML_DEPRECATED("use ml_metrics_get_kind")
uint32_t ml_metrics_kind(const ml_metrics *metrics, size_t index);
/* Counter or gauge value; for timers the sum in milliseconds. */
ML_API double ml_metrics_value(const ml_metrics *metrics, size_t index);
/* Timer summary (any pointer may be NULL); zeros for other kinds. */
ML_API void ml_metrics_timer(const ml_metrics *metrics, size_t index, uint64_t *count,
                             double *sum_ms, double *min_ms, double *max_ms);
/* Index of the first metric with this name (and labels, if not NULL), or SIZE_MAX. */
ML_API size_t ml_metrics_find(const ml_metrics *metrics, const char *name, const char *labels);
ML_API void ml_metrics_free(ml_metrics *metrics);
/* The metrics recorded so far (as ml_memberlist_metrics) as Prometheus text exposition;
 * free *out with ml_string_free. */
ML_API ml_status ml_memberlist_prometheus(ml_memberlist *ml, char **out, size_t *len);

/* ---- events without callbacks: a queue to poll ------------------------------------------ */
/* For hosts that would rather not be called on a library thread (Python, Go, event loops such
 * as libuv, asyncio or epoll): with ml_config_set_event_queue(config, 1) the notifications that
 * would go to the callbacks are queued on the memberlist instead, and the host takes them in
 * batches with ml_memberlist_poll_events, waiting on ml_memberlist_event_fd in between.
 *  - What is queued: membership events, user messages, broadcasts received, outcomes of this
 *    node's broadcasts, conflicts and log lines (at or above the config's log level), in the
 *    order they happened. Ping completions and metric samples are not (read metrics with
 *    ml_memberlist_metrics).
 *  - Exclusive with the notification callbacks: ml_memberlist_create refuses a callbacks
 *    table that sets on_event, on_log, on_message, on_broadcast, on_broadcast_done,
 *    on_conflict, on_ping_complete or on_metric (ML_E_INVALID). The hooks and user_data_free
 *    work as usual. Without the setting nothing changes and nothing is queued.
 *  - Bounded, never blocking the protocol: the queue is the callbacks' queue, and holds at
 *    most max_queued_callbacks events and max_queued_log_lines log lines. When it is full the
 *    new event is dropped (those already queued are kept) and counted, in
 *    ml_memberlist_get_event_stats and the metrics memberlist.callbacks.dropped and
 *    memberlist.log.dropped.
 *  - Shutdown: as with callbacks, the membership events and broadcast outcomes still queued
 *    are kept (poll them after ml_memberlist_shutdown) and the rest is discarded.
 *    ml_memberlist_destroy frees whatever is still queued. */

/* Kinds of queued event (ml_event.kind). */
#define ML_EVENT_KIND_MEMBER 0         /* type: ML_EVENT_JOIN/LEAVE/UPDATE; node */
#define ML_EVENT_KIND_MESSAGE 1        /* data, len: a user message */
#define ML_EVENT_KIND_BROADCAST 2      /* origin, name, data, len: as on_broadcast */
#define ML_EVENT_KIND_BROADCAST_DONE 3 /* id, type: ML_BROADCAST_*, as on_broadcast_done */
#define ML_EVENT_KIND_CONFLICT 4       /* node: the known node; other: the newcomer */
#define ML_EVENT_KIND_LOG 5            /* type: ML_LOG_*; data, len: the line (data[len] is NUL) */

/* One queued event, filled by the library inside an ml_event_batch. Fields are only ever
 * appended: `size` is the sizeof(ml_event) of the library that filled it, so a field added
 * later may be read only when size covers it. Fields a kind does not use are 0, NULL or "".
 * Every pointer is a view into the batch, valid until the next poll into that batch or its
 * free; ml_node_copy keeps a node longer. */
typedef struct ml_event {
  uint32_t size;
  uint32_t kind;         /* ML_EVENT_KIND_* */
  uint32_t type;         /* per kind, see ML_EVENT_KIND_* */
  uint32_t reserved;     /* 0 */
  uint64_t id;           /* BROADCAST_DONE: the id ml_memberlist_queue_broadcast gave */
  const ml_node *node;   /* MEMBER, CONFLICT */
  const ml_node *other;  /* CONFLICT */
  const char *origin;    /* BROADCAST: the node that queued it; else "" */
  const char *name;      /* BROADCAST: its name ("" if unnamed); else "" */
  const uint8_t *data;   /* MESSAGE, BROADCAST: the payload; LOG: the line; else NULL */
  size_t len;
} ml_event;

/* The node's IP address as 16 bytes, IPv4 as ::ffff:a.b.c.d (as in6_addr, Go's net.IP and
 * .NET's IPAddress.MapToIPv6 hold it): bindings copying many nodes (events) build their
 * address value from it without formatting and parsing text. Zeros if node is NULL. */
ML_API void ml_node_ip(const ml_node *node, uint8_t out[16]);

/* Storage for polled events, owned by the caller, reused by every poll into it. Not
 * thread-safe: one thread at a time per batch (a memberlist may be polled by several threads,
 * each into a batch of its own). */
typedef struct ml_event_batch ml_event_batch;
ML_API ml_status ml_event_batch_create(ml_event_batch **out);
/* Frees the batch and the events in it. */
ML_API void ml_event_batch_free(ml_event_batch *batch);
/* Events of the last poll into the batch. */
ML_API size_t ml_event_batch_len(const ml_event_batch *batch);
/* The i-th of them (NULL if out of range); valid until the next poll into the batch or its
 * free. */
ML_API const ml_event *ml_event_batch_get(const ml_event_batch *batch, size_t index);

/* Flag, 0..UINT32_MAX (default 0): non-zero queues the notifications for
 * ml_memberlist_poll_events instead of calling the callbacks (see above); 0 calls them. */
ML_API ml_status ml_config_set_event_queue(ml_config *config, uint32_t enable);
ML_API uint32_t ml_config_get_event_queue(const ml_config *config);

/* Moves up to `max` (>= 1) of the oldest queued events into `batch`, replacing what it held;
 * *count (may be NULL) receives how many, 0 if none is queued. Never blocks. Works after
 * ml_memberlist_shutdown too (to take what it kept). ML_E_STATE if the event queue is not
 * enabled. */
ML_API ml_status ml_memberlist_poll_events(ml_memberlist *ml, ml_event_batch *batch, size_t max,
                                           size_t *count);
/* *fd receives a descriptor (an eventfd) that is readable exactly while events are queued:
 * wait for it with poll, epoll, select or an event loop, then poll events until a poll
 * returns fewer than it asked for (the queue was emptied: the descriptor is no longer
 * readable until the next event). It becomes readable again each time an event arrives in an
 * empty queue, which edge-triggered waiters rely on. Owned by the memberlist and valid until
 * ml_memberlist_destroy: do not read, write or close it. ML_E_STATE if the event queue is not
 * enabled. */
ML_API ml_status ml_memberlist_event_fd(ml_memberlist *ml, int32_t *fd);
/* *queued (may be NULL) receives the events and log lines waiting now; *dropped (may be NULL)
 * those dropped so far because the queue was full (or, with callbacks, the callbacks
 * dropped). */
ML_API ml_status ml_memberlist_get_event_stats(ml_memberlist *ml, size_t *queued,
                                               uint64_t *dropped);

/* ---- a transmit-limited queue of one's own ----------------------------------------------- */
/* For hosts that build their own broadcasts (hashicorp's TransmitLimitedQueue, as Serf uses):
 * each message is handed out by ml_broadcast_queue_get retransmit_mult * ceil(log10(n + 1))
 * times, least-transmitted first. Not thread-safe: one thread at a time per queue. */
typedef void (*ml_broadcast_done_fn)(void *user_data, uint32_t outcome);
ML_API ml_status ml_broadcast_queue_create(ml_broadcast_queue **out, uint32_t retransmit_mult);
/* ml_broadcast_queue_create with the out-parameter last. */
ML_API ML_DEPRECATED("use ml_broadcast_queue_create")
ml_status ml_broadcast_queue_new(uint32_t retransmit_mult, ml_broadcast_queue **out);
/* Messages still queued are reported ML_BROADCAST_DROPPED. */
ML_API void ml_broadcast_queue_free(ml_broadcast_queue *queue);
/* The cluster size n used for the retransmit limit (default 1). */
ML_API ml_status ml_broadcast_queue_set_num_nodes(ml_broadcast_queue *queue, uint32_t num_nodes);
/* Queues a message; name NULL or "": unique, else it replaces a queued one with that name.
 * done (may be NULL) is called once with ML_BROADCAST_* when the message leaves the queue,
 * from inside the queue call that removes it. A refused push (any status but ML_OK) never
 * calls done, keeps nothing, and replaces nothing. */
ML_API ml_status ml_broadcast_queue_push(ml_broadcast_queue *queue, const char *name,
                                         const uint8_t *data, size_t len, ml_broadcast_done_fn done,
                                         void *done_user_data);
/* Messages that fit `limit` bytes, each counted with `overhead` extra bytes. */
ML_API ml_status ml_broadcast_queue_get(ml_broadcast_queue *queue, size_t overhead, size_t limit,
                                        ml_bytes_list **out);
ML_API size_t ml_broadcast_queue_len(const ml_broadcast_queue *queue);
/* Drops the most-transmitted messages until at most max_retain remain. */
ML_API ml_status ml_broadcast_queue_prune(ml_broadcast_queue *queue, size_t max_retain);
/* Drops every message. */
ML_API ml_status ml_broadcast_queue_reset(ml_broadcast_queue *queue);

/* ---- experimental ------------------------------------------------------------------------ */
/* Outside the compatibility promise (docs/abi.md, "Experimental API"): declared here with
 * ML_EXPERIMENTAL_API inside #ifdef ML_EXPERIMENTAL. Empty in this version. */

#ifdef __cplusplus
}
#endif

#endif /* MEMBERLIST_H */
