/* C side of the cgo bridge: the callback trampolines handed to libmemberlist. Kept out of the
 * Go files because a file with //export may only declare C functions in its preamble. */
#ifndef MEMBERLIST_GO_BRIDGE_H
#define MEMBERLIST_GO_BRIDGE_H

#include <stdint.h>
#include <memberlist.h>

/* Which hooks ml_go_callbacks installs (a hook left NULL costs nothing per packet). */
enum {
  ML_GO_EVENTS = 1 << 0,
  ML_GO_LOG = 1 << 1,
  ML_GO_DELEGATE = 1 << 2,  /* node_meta, get_broadcasts, local_state, merge_remote_state,
                               on_message */
  ML_GO_MERGE = 1 << 3,     /* notify_merge */
  ML_GO_ALIVE = 1 << 4,     /* notify_alive */
  ML_GO_CONFLICT = 1 << 5,  /* on_conflict */
  ML_GO_PING = 1 << 6,      /* ack_payload, on_ping_complete */
  ML_GO_BROADCAST = 1 << 7, /* on_broadcast, on_broadcast_done */
  ML_GO_METRIC = 1 << 8,    /* on_metric */
  ML_GO_PULL = 1 << 9       /* the event queue is on: no notification trampoline at all */
};

/* Fills *cb with the Go trampolines chosen by `hooks` (ML_GO_*); user_data carries a
 * cgo.Handle (never a Go pointer). */
void ml_go_callbacks(ml_callbacks *cb, uintptr_t handle, unsigned hooks);

/* Pushes onto a standalone broadcast queue; `done` (a cgo.Handle, 0 = none) gets the outcome. */
ml_status ml_go_queue_push(ml_broadcast_queue *q, const char *name, const uint8_t *data,
                           size_t len, uintptr_t done);

/* A node's fields, read in one call. */
typedef struct ml_go_node {
  const char *name;
  uint8_t ip[16];
  const uint8_t *meta;
  size_t meta_len;
  uint32_t state, incarnation;
  uint16_t port;
  uint8_t versions[6];
} ml_go_node;

/* A polled event with its nodes flattened: Go copies it without calling C again. */
typedef struct ml_go_event {
  uint32_t kind, type;
  uint64_t id;
  const char *origin, *name;
  const uint8_t *data;
  size_t len;
  int32_t has_node, has_other;
  ml_go_node node, other;
} ml_go_event;

/* Polls up to max events into batch and flattens them into out[0..*count): one cgo call per
 * batch. The views stay valid until the next poll into batch. */
ml_status ml_go_poll(ml_memberlist *ml, ml_event_batch *batch, ml_go_event *out, size_t max,
                     size_t *count);

/* Sets the Go transport trampolines (transport.go) on cfg at address; user_data carries a
 * cgo.Handle of the binding's transport state. */
ml_status ml_go_set_transport(ml_config *cfg, uintptr_t handle, const char *address);

/* 1 if fd is readable now (poll(2), timeout 0), else 0. */
int ml_go_readable(int fd);

/* Benchmark support: calls cb->on_event n times from a new (non-Go) thread, the way the
 * library's callback thread does; returns the elapsed nanoseconds. */
uint64_t ml_go_bench_fire(const ml_callbacks *cb, const ml_node *node, uint32_t n);
/* The same with cb->on_message and a len-byte payload. */
uint64_t ml_go_bench_fire_message(const ml_callbacks *cb, const uint8_t *data, size_t len, uint32_t n);

#endif
