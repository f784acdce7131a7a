#include "bridge.h"

#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "_cgo_export.h"

/* uintptr <-> void* conversions happen here, in C, so Go never turns an integer into a
 * pointer (go vet's unsafeptr check). Exported Go prototypes drop const. */
static void tramp_free(void *user_data) { goMemberlistFree((uintptr_t)user_data); }

static void tramp_event(void *user_data, uint32_t event, const ml_node *node) {
  goMemberlistEvent((uintptr_t)user_data, event, (ml_node *)node);
}

static void tramp_log(void *user_data, uint32_t level, const char *msg, size_t len) {
  goMemberlistLog((uintptr_t)user_data, level, (char *)msg, len);
}

static void tramp_node_meta(void *ud, ml_buffer *out, size_t limit) {
  goMemberlistNodeMeta((uintptr_t)ud, out, limit);
}
static void tramp_get_broadcasts(void *ud, ml_message_sink *sink, size_t overhead, size_t limit) {
  goMemberlistGetBroadcasts((uintptr_t)ud, sink, overhead, limit);
}
static void tramp_local_state(void *ud, uint32_t join, ml_buffer *out) {
  goMemberlistLocalState((uintptr_t)ud, join, out);
}
static void tramp_merge_remote_state(void *ud, const uint8_t *data, size_t len, uint32_t join) {
  goMemberlistMergeRemoteState((uintptr_t)ud, (uint8_t *)data, len, join);
}
static int32_t tramp_notify_merge(void *ud, const ml_node_list *peers, ml_buffer *reason) {
  return goMemberlistNotifyMerge((uintptr_t)ud, (ml_node_list *)peers, reason);
}
static int32_t tramp_notify_alive(void *ud, const ml_node *peer, ml_buffer *reason) {
  return goMemberlistNotifyAlive((uintptr_t)ud, (ml_node *)peer, reason);
}
static void tramp_ack_payload(void *ud, ml_buffer *out) { goMemberlistAckPayload((uintptr_t)ud, out); }
static void tramp_on_message(void *ud, const uint8_t *data, size_t len) {
  goMemberlistMessage((uintptr_t)ud, (uint8_t *)data, len);
}
static void tramp_on_broadcast(void *ud, const char *origin, const char *name, const uint8_t *data,
                               size_t len) {
  goMemberlistBroadcast((uintptr_t)ud, (char *)origin, (char *)name, (uint8_t *)data, len);
}
static void tramp_on_broadcast_done(void *ud, uint64_t id, uint32_t outcome) {
  goMemberlistBroadcastDone((uintptr_t)ud, id, outcome);
}
static void tramp_on_conflict(void *ud, const ml_node *existing, const ml_node *other) {
  goMemberlistConflict((uintptr_t)ud, (ml_node *)existing, (ml_node *)other);
}
static void tramp_on_ping_complete(void *ud, const ml_node *node, uint64_t rtt_us,
                                   const uint8_t *payload, size_t len) {
  goMemberlistPingComplete((uintptr_t)ud, (ml_node *)node, rtt_us, (uint8_t *)payload, len);
}
static void tramp_on_metric(void *ud, const char *name, uint32_t kind, double value) {
  goMemberlistMetric((uintptr_t)ud, (char *)name, kind, value);
}

void ml_go_callbacks(ml_callbacks *cb, uintptr_t handle, unsigned hooks) {
  memset(cb, 0, sizeof *cb); /* members a newer header appends stay NULL */
  cb->version = ML_CALLBACKS_VERSION;
  cb->user_data = (void *)handle;
  cb->user_data_free = tramp_free;
  if (hooks & ML_GO_EVENTS) cb->on_event = tramp_event;
  if (hooks & ML_GO_LOG) cb->on_log = tramp_log;
  if (hooks & ML_GO_DELEGATE) {
    cb->node_meta = tramp_node_meta;
    cb->get_broadcasts = tramp_get_broadcasts;
    cb->local_state = tramp_local_state;
    cb->merge_remote_state = tramp_merge_remote_state;
    cb->on_message = tramp_on_message;
  }
  if (hooks & ML_GO_MERGE) cb->notify_merge = tramp_notify_merge;
  if (hooks & ML_GO_ALIVE) cb->notify_alive = tramp_notify_alive;
  if (hooks & ML_GO_CONFLICT) cb->on_conflict = tramp_on_conflict;
  if (hooks & ML_GO_PING) {
    cb->ack_payload = tramp_ack_payload;
    cb->on_ping_complete = tramp_on_ping_complete;
  }
  if (hooks & ML_GO_BROADCAST) {
    cb->on_broadcast = tramp_on_broadcast;
    cb->on_broadcast_done = tramp_on_broadcast_done;
  }
  if (hooks & ML_GO_METRIC) cb->on_metric = tramp_on_metric;
  if (hooks & ML_GO_PULL) {
    /* The library refuses these with the event queue on: the events come from ml_go_poll. */
    cb->on_event = NULL;
    cb->on_log = NULL;
    cb->on_message = NULL;
    cb->on_broadcast = NULL;
    cb->on_broadcast_done = NULL;
    cb->on_conflict = NULL;
    cb->on_ping_complete = NULL;
    cb->on_metric = NULL;
  }
}

static int32_t tramp_send_packet(void *ud, const char *to, const uint8_t *data, size_t len) {
  return goTransportSendPacket((uintptr_t)ud, (char *)to, (uint8_t *)data, len);
}
static int32_t tramp_send_stream(void *ud, const char *to, uint64_t token, const uint8_t *data,
                                 size_t len) {
  return goTransportSendStream((uintptr_t)ud, (char *)to, token, (uint8_t *)data, len);
}
static void tramp_stream_reply(void *ud, uint64_t token, const uint8_t *reply, size_t len,
                               uint32_t has_reply) {
  goTransportStreamReply((uintptr_t)ud, token, (uint8_t *)reply, len, has_reply);
}

ml_status ml_go_set_transport(ml_config *cfg, uintptr_t handle, const char *address) {
  ml_transport t;
  memset(&t, 0, sizeof t);
  t.version = ML_TRANSPORT_VERSION;
  t.user_data = (void *)handle;
  t.send_packet = tramp_send_packet;
  t.send_stream = tramp_send_stream;
  t.stream_reply = tramp_stream_reply;
  return ml_config_set_transport(cfg, &t, address);
}

int ml_go_readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

static void flatten_node(const ml_node *n, ml_go_node *out) {
  out->name = ml_node_name(n);
  ml_node_ip(n, out->ip);
  out->meta = ml_node_meta(n, &out->meta_len);
  out->state = ML_STATE_DEAD;
  ml_node_get_state(n, &out->state);
  out->incarnation = ml_node_incarnation(n);
  out->port = ml_node_port(n);
  ml_node_versions(n, out->versions);
}

ml_status ml_go_poll(ml_memberlist *ml, ml_event_batch *batch, ml_go_event *out, size_t max,
                     size_t *count) {
  ml_status st = ml_memberlist_poll_events(ml, batch, max, count);
  if (st != ML_OK) return st;
  for (size_t i = 0; i < *count; i++) {
    const ml_event *ev = ml_event_batch_get(batch, i);
    ml_go_event *o = &out[i];
    memset(o, 0, sizeof *o);
    o->kind = ev->kind;
    o->type = ev->type;
    o->id = ev->id;
    o->origin = ev->origin;
    o->name = ev->name;
    o->data = ev->data;
    o->len = ev->len;
    if ((o->has_node = ev->node != NULL)) flatten_node(ev->node, &o->node);
    if ((o->has_other = ev->other != NULL)) flatten_node(ev->other, &o->other);
  }
  return ML_OK;
}

static void tramp_queue_done(void *ud, uint32_t outcome) { goMemberlistQueueDone((uintptr_t)ud, outcome); }

ml_status ml_go_queue_push(ml_broadcast_queue *q, const char *name, const uint8_t *data,
                           size_t len, uintptr_t done) {
  return ml_broadcast_queue_push(q, name, data, len, done ? tramp_queue_done : NULL, (void *)done);
}

struct bench_args {
  const ml_callbacks *cb;
  const ml_node *node;
  uint32_t n;
  uint64_t ns;
  const uint8_t *data; /* message benchmark: payload, or NULL for the event benchmark */
  size_t len;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *bench_thread(void *p) {
  struct bench_args *a = p;
  uint64_t start = now_ns();
  if (a->data)
    for (uint32_t i = 0; i < a->n; i++) a->cb->on_message(a->cb->user_data, a->data, a->len);
  else
    for (uint32_t i = 0; i < a->n; i++) a->cb->on_event(a->cb->user_data, ML_EVENT_UPDATE, a->node);
  a->ns = now_ns() - start;
  return NULL;
}

static uint64_t bench_run(struct bench_args *a) {
  pthread_t t;
  if (pthread_create(&t, NULL, bench_thread, a) != 0) return 0;
  pthread_join(t, NULL);
  return a->ns;
}

uint64_t ml_go_bench_fire(const ml_callbacks *cb, const ml_node *node, uint32_t n) {
  struct bench_args a = {cb, node, n, 0, NULL, 0};
  return bench_run(&a);
}

uint64_t ml_go_bench_fire_message(const ml_callbacks *cb, const uint8_t *data, size_t len, uint32_t n) {
  struct bench_args a = {cb, NULL, n, 0, data, len};
  return bench_run(&a);
}
