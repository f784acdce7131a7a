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

/* Outcome of a queued broadcast (ml_callbacks.on_broadcast_done, ml_broadcast_done_fn). */
#define ML_BROADCAST_DELIVERED 0 /* fully retransmitted */
#define ML_BROADCAST_REPLACED 1  /* a newer broadcast with the same name took its place */
#define ML_BROADCAST_DROPPED 2   /* pruned, reset, or the memberlist shut down first */

/* Kinds of metric (ml_metrics_kind). */
#define ML_METRIC_COUNTER 0
#define ML_METRIC_GAUGE 1
#define ML_METRIC_TIMER 2 /* a summary of durations in milliseconds: count, sum, min, max */

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

/* Extra push/pulls with random members shortly after a successful join (default 3, 0..10),
 * at 2, 4 and 8 gossip intervals: a joining cluster converges in a few gossip rounds instead
 * of waiting for the periodic push/pull. 0 restores hashicorp/memberlist's behaviour. */
ML_API ml_status ml_config_set_post_join_push_pulls(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_post_join_push_pulls(const ml_config *config);

/* -- application data limits (defaults as the reference) -- */
/* Largest user message sent or accepted reliably over TCP (default 20 MiB). */
ML_API ml_status ml_config_set_max_user_msg_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_user_msg_size(const ml_config *config);

/* -- security and framing -- */
/* Cluster label (0..255 bytes, default ""): carried on every packet and stream and bound into
 * the encryption; traffic with another label is dropped and counted. */
ML_API ml_status ml_config_set_label(ml_config *config, const char *label);
ML_API const char *ml_config_get_label(const ml_config *config);
/* Non-zero: inbound traffic carries no label and this node's label is assumed. */
ML_API ml_status ml_config_set_skip_inbound_label_check(ml_config *config, uint32_t skip);
ML_API uint32_t ml_config_get_skip_inbound_label_check(const ml_config *config);
/* Installs an AES-GCM key of 16, 24 or 32 bytes; the first one installed is the primary key
 * (used to encrypt), every installed key is tried to decrypt. Installing keys turns
 * encryption on. */
ML_API ml_status ml_config_add_key(ml_config *config, const uint8_t *key, size_t len);
/* Number of keys installed in the config. */
ML_API uint32_t ml_config_get_key_count(const ml_config *config);
/* With keys: non-zero (default) refuses plaintext input; 0 accepts it (for switching a
 * running cluster to encryption). */
ML_API ml_status ml_config_set_gossip_verify_incoming(ml_config *config, uint32_t verify);
ML_API uint32_t ml_config_get_gossip_verify_incoming(const ml_config *config);
/* With keys: non-zero (default) encrypts output; 0 sends plaintext. */
ML_API ml_status ml_config_set_gossip_verify_outgoing(ml_config *config, uint32_t verify);
ML_API uint32_t ml_config_get_gossip_verify_outgoing(const ml_config *config);
/* Non-zero (default) compresses packets and streams when that makes them smaller. */
ML_API ml_status ml_config_set_enable_compression(ml_config *config, uint32_t enable);
ML_API uint32_t ml_config_get_enable_compression(const ml_config *config);
/* Non-zero (default) adds a CRC32 checksum to every UDP packet. */
ML_API ml_status ml_config_set_enable_checksum(ml_config *config, uint32_t enable);
ML_API uint32_t ml_config_get_enable_checksum(const ml_config *config);
/* Accepts nodes, packets and streams only from these CIDR ranges ("10.0.0.0/8",
 * "fd00::/8"; a bare address means /32 or /128); may be called several times. None (default): everyone is accepted. */
ML_API ml_status ml_config_add_allowed_cidr(ml_config *config, const char *cidr);
ML_API uint32_t ml_config_get_allowed_cidr_count(const ml_config *config);
/* -- bounds on what the network may make this node hold (defaults as the reference) -- */
/* Largest stream message (push/pull state, reliable message) accepted (default 20 MiB). */
ML_API ml_status ml_config_set_max_stream_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_stream_size(const ml_config *config);
/* Most nodes accepted in one push/pull (default 1048576). */
ML_API ml_status ml_config_set_max_push_pull_nodes(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_push_pull_nodes(const ml_config *config);
/* Largest decompressed message (default 40 MiB). */
ML_API ml_status ml_config_set_max_decompressed_size(ml_config *config, uint32_t bytes);
ML_API uint32_t ml_config_get_max_decompressed_size(const ml_config *config);
/* Most inbound streams with a body over 1 KiB (push/pulls, reliable messages) read at once;
 * more are closed after their header (1..65535, default 128, the reference's bound on
 * push/pulls). TCP pings and other small messages are not counted, so that bulk traffic
 * cannot get a healthy node's fallback ping refused. */
ML_API ml_status ml_config_set_max_concurrent_streams(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_concurrent_streams(const ml_config *config);
/* Most inbound TCP connections open at once, whatever they carry; more are closed at once
 * (1..65535, default 512). */
ML_API ml_status ml_config_set_max_inbound_connections(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_inbound_connections(const ml_config *config);
/* Most callbacks (events, notifications, metric samples) queued for delivery to the host
 * (1..16777216, default 65536). Callbacks run off the protocol's path: one that blocks lets
 * the queue grow up to this bound, beyond which new ones are dropped and counted
 * (memberlist.callbacks.dropped) and a WARN line says so. */
ML_API ml_status ml_config_set_max_queued_callbacks(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_queued_callbacks(const ml_config *config);
/* Most log lines queued for on_log (1..16777216, default 1024); beyond it they are dropped
 * and counted (memberlist.log.dropped), so that a log flood cannot crowd out events. */
ML_API ml_status ml_config_set_max_queued_log_lines(ml_config *config, uint32_t count);
ML_API uint32_t ml_config_get_max_queued_log_lines(const ml_config *config);

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
  /* Before a join merges a peer's nodes: non-zero vetoes (the join fails with ML_E_REJECTED
   * and nothing is merged); a reason may be appended to `reason`. */
  int32_t (*notify_merge)(void *user_data, const ml_node_list *peers, ml_buffer *reason);
  /* Before a node is let in or changed by an alive message: non-zero keeps it out. */
  int32_t (*notify_alive)(void *user_data, const ml_node *peer, ml_buffer *reason);
  /* Payload attached to the acks this node sends. */
  void (*ack_payload)(void *user_data, ml_buffer *out);
  /* Notifications, delivered like on_event (serialized, outside any lock). */
  /* A user message arrived (best effort or reliable). */
  void (*on_message)(void *user_data, const uint8_t *data, size_t len);
  /* A broadcast queued with ml_memberlist_queue_broadcast on node `origin` arrived; each one is
   * delivered once. name is "" for unnamed broadcasts. */
  void (*on_broadcast)(void *user_data, const char *origin, const char *name, const uint8_t *data,
                       size_t len);
  /* A broadcast this node queued is done (ML_BROADCAST_*). */
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
ML_API ml_status ml_runtime_new(uint32_t threads, ml_runtime **out);
ML_API void ml_runtime_free(ml_runtime *runtime);

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
/* Stops the sockets and timers without leaving: peers will detect a failure. Idempotent.
 * Of the callbacks still queued, membership events and broadcast outcomes are delivered and
 * the rest (messages, pings, metric samples, log lines) discarded; none starts after it
 * returns. */
ML_API ml_status ml_memberlist_shutdown(ml_memberlist *ml);

/* -- metadata ------------------------------------------------------------------------------ */
/* Asks the node_meta hook again and announces the result; waits until the change has
 * propagated or timeout_ms passed (ML_E_TIMEOUT; the update still goes on). */
ML_API ml_status ml_memberlist_update_node(ml_memberlist *ml, uint32_t timeout_ms);
/* Sets the local metadata and announces it, waiting as ml_memberlist_update_node does.
 * ML_E_TOO_LARGE over the configured limit. */
ML_API ml_status ml_memberlist_set_meta(ml_memberlist *ml, const uint8_t *data, size_t len,
                                        uint32_t timeout_ms);

/* -- user messages ------------------------------------------------------------------------- */
/* One UDP datagram to a member; ML_E_TOO_LARGE if it cannot fit one datagram. */
ML_API ml_status ml_memberlist_send_best_effort(ml_memberlist *ml, const char *node_name,
                                                const uint8_t *data, size_t len);
/* Over a TCP stream to a member; returns once written. ML_E_TOO_LARGE over
 * max_user_msg_size. */
ML_API ml_status ml_memberlist_send_reliable(ml_memberlist *ml, const char *node_name,
                                             const uint8_t *data, size_t len);
/* One UDP datagram to "host:port" (a member or not). */
ML_API ml_status ml_memberlist_send_to_address(ml_memberlist *ml, const char *address,
                                               const uint8_t *data, size_t len);

/* -- broadcasts ---------------------------------------------------------------------------- */
/* Queues a broadcast that spreads to every member (each delivers it once, through
 * on_broadcast). name NULL or "": unique; otherwise a newer broadcast with the same name
 * replaces the older one everywhere. *id (may be NULL) identifies it in on_broadcast_done.
 * ML_E_TOO_LARGE if it cannot fit one datagram (use send_reliable). */
ML_API ml_status ml_memberlist_queue_broadcast(ml_memberlist *ml, const char *name,
                                               const uint8_t *data, size_t len, uint64_t *id);
/* Broadcasts still being retransmitted by this node. */
ML_API size_t ml_memberlist_num_queued_broadcasts(ml_memberlist *ml);

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
/* A snapshot of every metric (names as hashicorp/memberlist: "memberlist.msg.alive", ...). */
ML_API ml_status ml_memberlist_metrics(ml_memberlist *ml, ml_metrics **out);
ML_API size_t ml_metrics_len(const ml_metrics *metrics);
/* Name of the i-th metric (NULL if out of range). */
ML_API const char *ml_metrics_name(const ml_metrics *metrics, size_t index);
/* Its labels in Prometheus form ("node_state=\"alive\"", "" if none). */
ML_API const char *ml_metrics_labels(const ml_metrics *metrics, size_t index);
/* ML_METRIC_*. */
ML_API uint32_t ml_metrics_kind(const ml_metrics *metrics, size_t index);
/* Counter or gauge value; for timers the sum in milliseconds. */
ML_API double ml_metrics_value(const ml_metrics *metrics, size_t index);
/* Timer summary (any pointer may be NULL); zeros for other kinds. */
ML_API void ml_metrics_timer(const ml_metrics *metrics, size_t index, uint64_t *count,
                             double *sum_ms, double *min_ms, double *max_ms);
/* Index of the first metric with this name (and labels, if not NULL), or SIZE_MAX. */
ML_API size_t ml_metrics_find(const ml_metrics *metrics, const char *name, const char *labels);
ML_API void ml_metrics_free(ml_metrics *metrics);
/* Every metric as Prometheus text exposition; free *out with ml_string_free. */
ML_API ml_status ml_memberlist_prometheus(ml_memberlist *ml, char **out, size_t *len);

/* ---- a transmit-limited queue of one's own ----------------------------------------------- */
/* For hosts that build their own broadcasts (hashicorp's TransmitLimitedQueue, as Serf uses):
 * each message is handed out by ml_broadcast_queue_get retransmit_mult * ceil(log10(n + 1))
 * times, least-transmitted first. Not thread-safe: one thread at a time per queue. */
typedef void (*ml_broadcast_done_fn)(void *user_data, uint32_t outcome);
ML_API ml_status ml_broadcast_queue_new(uint32_t retransmit_mult, ml_broadcast_queue **out);
/* Messages still queued are reported ML_BROADCAST_DROPPED. */
ML_API void ml_broadcast_queue_free(ml_broadcast_queue *queue);
/* The cluster size n used for the retransmit limit (default 1). */
ML_API ml_status ml_broadcast_queue_set_num_nodes(ml_broadcast_queue *queue, uint32_t num_nodes);
/* Queues a message; name NULL or "": unique, else it replaces a queued one with that name.
 * done (may be NULL) is called once with ML_BROADCAST_* when the message leaves the queue,
 * from inside the queue call that removes it. */
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

#ifdef __cplusplus
}
#endif

#endif /* MEMBERLIST_H */
