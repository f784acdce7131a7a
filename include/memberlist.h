/*
 * libmemberlist: cluster membership and failure detection (SWIM gossip with the Lifeguard
 * extensions), a C++ implementation of hashicorp/memberlist behind a stable C ABI.
 *
 * Conventions (see docs/abi.md):
 *  - Every function that can fail returns an ml_status (ML_OK == 0, errors negative). After a
 *    failure, ml_memberlist_last_error() (calls on a memberlist) or ml_last_error() (calls
 *    without one, thread-local) return a readable message. They never return NULL.
 *  - Handles are opaque and created by the library. *_free and *_destroy accept NULL.
 *  - Strings are UTF-8 and NUL-terminated. Inputs are borrowed for the duration of the call.
 *    Outputs are either copies the caller frees with the library's own ml_*_free, or views
 *    whose lifetime the function documents.
 *  - Durations are milliseconds (uint32_t) unless the name says otherwise.
 *  - Every ml_memberlist function may be called from any thread, concurrently.
 *  - Callbacks of one memberlist run on a library thread, one at a time, in the order the
 *    events happened, and never while the library holds an internal lock: calling any
 *    non-blocking function (members, local node, health score, ...) from inside a callback
 *    works. The blocking calls join, ping, leave and shutdown return ML_E_STATE when made
 *    from that memberlist's own callback; ml_memberlist_destroy called there is deferred
 *    until the callback returns.
 *  - Nothing the network sends and nothing passed through this header aborts the process:
 *    bad input yields an error status, a log line and a counter.
 *
 * Compiles as C99 and C++; no bool, enum, union, bit-field or variadic function in the ABI.
 */
#ifndef MEMBERLIST_H
#define MEMBERLIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define ML_API
#elif defined(ML_BUILDING_LIBRARY)
#define ML_API __attribute__((visibility("default")))
#else
#define ML_API
#endif

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
#define ML_E_CALLBACK (-7)         /* a host callback failed */
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

/* ---- opaque handles -------------------------------------------------------------------- */

typedef struct ml_config ml_config;         /* configuration, copied at create */
typedef struct ml_runtime ml_runtime;       /* thread pool shared by memberlists */
typedef struct ml_memberlist ml_memberlist; /* one cluster member */
typedef struct ml_node ml_node;             /* a copy of what is known about a node */
typedef struct ml_node_list ml_node_list;   /* a snapshot of nodes */

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
/* ML_STATE_*. */
ML_API uint32_t ml_node_state(const ml_node *node);
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

/* ---- configuration --------------------------------------------------------------------- */

/* The reference's presets: LAN (DefaultLANConfig), WAN and Local (loopback, fast timers).
 * Every value can be changed with the setters below; a setter refuses an out-of-range value
 * with ML_E_INVALID and a message naming the knob. */
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
/* Port for UDP and TCP (default 7946); 0 lets the system pick one, reported by
 * ml_memberlist_local_node. */
ML_API ml_status ml_config_set_bind_port(ml_config *config, uint16_t port);
ML_API uint16_t ml_config_get_bind_port(const ml_config *config);
/* Address peers should use to reach this node ("" = derived from the bind address). */
ML_API ml_status ml_config_set_advertise_addr(ml_config *config, const char *addr);
ML_API const char *ml_config_get_advertise_addr(const ml_config *config);
/* Port peers should use (0 = the bound port). */
ML_API ml_status ml_config_set_advertise_port(ml_config *config, uint16_t port);
ML_API uint16_t ml_config_get_advertise_port(const ml_config *config);
/* Protocol version spoken, 1..5 (default 2). */
ML_API ml_status ml_config_set_protocol_version(ml_config *config, uint32_t version);
ML_API uint32_t ml_config_get_protocol_version(const ml_config *config);
/* Delegate protocol version, min and max carried in the version vector (default 0). */
ML_API ml_status ml_config_set_delegate_protocol(ml_config *config, uint8_t version, uint8_t min,
                                                 uint8_t max);
ML_API void ml_config_get_delegate_protocol(const ml_config *config, uint8_t *version,
                                            uint8_t *min, uint8_t *max);
ML_API ml_status ml_config_set_tcp_timeout_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_tcp_timeout_ms(const ml_config *config);
ML_API ml_status ml_config_set_indirect_checks(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_indirect_checks(const ml_config *config);
ML_API ml_status ml_config_set_retransmit_mult(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_retransmit_mult(const ml_config *config);
ML_API ml_status ml_config_set_suspicion_mult(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_suspicion_mult(const ml_config *config);
/* 1 turns off Lifeguard's suspicion acceleration (max timeout == min timeout). */
ML_API ml_status ml_config_set_suspicion_max_timeout_mult(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_suspicion_max_timeout_mult(const ml_config *config);
/* 0 disables periodic push/pull. */
ML_API ml_status ml_config_set_push_pull_interval_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_push_pull_interval_ms(const ml_config *config);
/* 0 disables probing. */
ML_API ml_status ml_config_set_probe_interval_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_probe_interval_ms(const ml_config *config);
ML_API ml_status ml_config_set_probe_timeout_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_probe_timeout_ms(const ml_config *config);
/* Non-zero disables the TCP fallback ping for every node. */
ML_API ml_status ml_config_set_disable_tcp_pings(ml_config *config, uint32_t disable);
ML_API uint32_t ml_config_get_disable_tcp_pings(const ml_config *config);
/* Disables the TCP fallback ping towards one node name; may be called several times. */
ML_API ml_status ml_config_disable_tcp_pings_for_node(ml_config *config, const char *name);
/* 1 turns off Lifeguard's local health awareness. */
ML_API ml_status ml_config_set_awareness_max_multiplier(ml_config *config, uint32_t mult);
ML_API uint32_t ml_config_get_awareness_max_multiplier(const ml_config *config);
/* 0 disables gossip. */
ML_API ml_status ml_config_set_gossip_interval_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_gossip_interval_ms(const ml_config *config);
ML_API ml_status ml_config_set_gossip_nodes(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_gossip_nodes(const ml_config *config);
ML_API ml_status ml_config_set_gossip_to_the_dead_time_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_gossip_to_the_dead_time_ms(const ml_config *config);
/* Largest datagram the library builds (default 1400). */
ML_API ml_status ml_config_set_udp_buffer_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_udp_buffer_size(const ml_config *config);
/* 0 (default): a dead node's name never moves to another address until it is reaped. */
ML_API ml_status ml_config_set_dead_node_reclaim_time_ms(ml_config *config, uint32_t ms);
ML_API uint32_t ml_config_get_dead_node_reclaim_time_ms(const ml_config *config);
/* Inbound datagrams waiting to be processed before new ones are dropped (default 1024). */
ML_API ml_status ml_config_set_handoff_queue_depth(ml_config *config, uint32_t depth);
ML_API uint32_t ml_config_get_handoff_queue_depth(const ml_config *config);
/* Largest node metadata accepted (default 512, as the reference). */
ML_API ml_status ml_config_set_meta_max_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_meta_max_size(const ml_config *config);
/* Metadata of the local node, carried on its alive messages; ML_E_TOO_LARGE if over the
 * limit. data may be NULL when len is 0. */
ML_API ml_status ml_config_set_meta(ml_config *config, const uint8_t *data, size_t len);
/* View valid until the next setter call on the config. */
ML_API const uint8_t *ml_config_get_meta(const ml_config *config, size_t *len);
/* Least severe level passed to the log callback (default ML_LOG_INFO). */
ML_API ml_status ml_config_set_log_level(ml_config *config, uint32_t level);
ML_API uint32_t ml_config_get_log_level(const ml_config *config);
/* Seed of the protocol's randomness; 0 (default) picks one at random. */
ML_API ml_status ml_config_set_seed(ml_config *config, uint64_t seed);
ML_API uint64_t ml_config_get_seed(const ml_config *config);

/* ---- callbacks ------------------------------------------------------------------------- */

#define ML_CALLBACKS_VERSION 1

/* Set version to ML_CALLBACKS_VERSION and leave unused members NULL (zero the struct first).
 * Fields are only ever appended; a library reads only the fields the version declares. */
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
} ml_callbacks;

/* ---- runtime --------------------------------------------------------------------------- */

/* A pool of `threads` I/O threads (0 = 2) that memberlists can share. The runtime lives until
 * it is freed and every memberlist using it is destroyed. */
ML_API ml_status ml_runtime_new(uint32_t threads, ml_runtime **out);
ML_API void ml_runtime_free(ml_runtime *runtime);

/* ---- memberlist ------------------------------------------------------------------------ */

/* Binds the sockets, starts the protocol and fires ML_EVENT_JOIN for the local node.
 * runtime may be NULL: a process-wide default runtime is used. config and callbacks are
 * copied; callbacks may be NULL. */
ML_API ml_status ml_memberlist_create(ml_memberlist **out, ml_runtime *runtime,
                                      const ml_config *config, const ml_callbacks *callbacks);
/* Shuts down if needed (without leaving), waits for running callbacks, calls user_data_free
 * and frees the handle. */
ML_API void ml_memberlist_destroy(ml_memberlist *ml);
/* Message of the last failed call on this memberlist; valid until the next call on it. */
ML_API const char *ml_memberlist_last_error(const ml_memberlist *ml);

/* Joins a cluster through existing members: each entry is "host", "host:port",
 * "[v6addr]:port" or a DNS name, optionally prefixed "name/". Blocks until every address was
 * tried. *joined (may be NULL) receives how many were reached; the call fails only if none
 * was. */
ML_API ml_status ml_memberlist_join(ml_memberlist *ml, const char *const *addresses, size_t count,
                                    uint32_t *joined);
/* A snapshot of the alive and suspect members, the local node included. */
ML_API ml_status ml_memberlist_members(ml_memberlist *ml, ml_node_list **out);
/* Number of alive and suspect members (0 if ml is NULL). */
ML_API size_t ml_memberlist_num_members(ml_memberlist *ml);
/* A copy of the local node (its address shows the port actually bound). */
ML_API ml_status ml_memberlist_local_node(ml_memberlist *ml, ml_node **out);
/* Lifeguard health score: 0 is healthy, higher means this node is slow to process messages
 * (-1 if ml is NULL). */
ML_API int32_t ml_memberlist_health_score(ml_memberlist *ml);
/* Pings a member by name over UDP and waits for the ack; *rtt_us receives the round-trip
 * time in microseconds. ML_E_NOT_FOUND for an unknown name, ML_E_TIMEOUT without answer. */
ML_API ml_status ml_memberlist_ping(ml_memberlist *ml, const char *node_name, uint64_t *rtt_us);
/* Broadcasts that this node leaves and waits until the news has propagated or timeout_ms
 * passed (ML_E_TIMEOUT; the leave still goes on). The node keeps answering until shutdown
 * but cannot rejoin. */
ML_API ml_status ml_memberlist_leave(ml_memberlist *ml, uint32_t timeout_ms);
/* Stops the sockets and timers without leaving: peers will detect a failure. Idempotent. */
ML_API ml_status ml_memberlist_shutdown(ml_memberlist *ml);

#ifdef __cplusplus
}
#endif

#endif /* MEMBERLIST_H */
