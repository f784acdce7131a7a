/* A recording node for the application-data tests: one struct per memberlist that its
 * version-2 callbacks and hooks fill in (under a mutex), plus knobs the test sets to make the
 * hooks answer (metadata, state, vetoes, ack payload, pull broadcasts, reentrant calls).
 * Hooks run on library threads, some under the node's lock: they never hold rec.mu while
 * calling into the library. */
#ifndef ML_REC_H
#define ML_REC_H

#include <pthread.h>
#include <stdint.h>

#include "ml_test.h"

#define REC_TEXT 64
#define REC_PEERS 16
#define REC_ITEMS 256

typedef struct {
  char name[REC_TEXT];
  uint8_t meta[REC_TEXT];
  size_t meta_len;
  int joins, updates;
} rec_peer;

typedef struct {
  char origin[REC_TEXT];
  char name[REC_TEXT];
  char payload[REC_TEXT];
} rec_bcast;

typedef struct rec {
  pthread_mutex_t mu;
  char name[REC_TEXT];
  ml_memberlist *ml;

  /* ---- what the hooks answer (set by the test) ---- */
  int meta_hook;           /* node_meta appends meta[] */
  uint8_t meta[600];
  size_t meta_len;
  int meta_overflow;       /* node_meta tries to append limit + 1 bytes first */
  char state[REC_TEXT];    /* local_state content ("" = none) */
  int veto_merge;          /* notify_merge refuses, with veto_reason */
  char veto_reason[REC_TEXT];
  char veto_alive[REC_TEXT]; /* notify_alive refuses this node name */
  uint8_t ack[REC_TEXT];   /* ack_payload */
  size_t ack_len;
  int pull_pending;        /* get_broadcasts hands out "pull-<name>" this many times */
  int reenter_hook;        /* local_state calls into the library once */
  int reenter_cb;          /* on_broadcast forwards the first broadcast once */
  int destroy_in_hook;     /* notify_alive destroys the memberlist (deferred) once */
  int freed_when_destroy_returned; /* -1 until that happened */

  /* ---- what was observed ---- */
  rec_peer peers[REC_PEERS];
  int npeers;
  int events;
  rec_bcast bcasts[REC_ITEMS];
  int nbcasts;
  uint64_t done_id[REC_ITEMS];
  uint32_t done_outcome[REC_ITEMS];
  int ndone;
  int nmsgs;
  int npull; /* messages starting "pull-" (a peer's get_broadcasts) */
  char last_msg[REC_TEXT];
  size_t last_msg_len;
  uint32_t last_msg_hash;
  int merges_join, merges_periodic;
  char remote_state[REC_TEXT]; /* the last one merged */
  char join_state[REC_TEXT];   /* the last one merged with join = 1 */
  int merge_calls, merge_peers_seen, alive_calls, alive_vetoed;
  int conflicts;
  char conflict_existing[REC_TEXT], conflict_other[REC_TEXT];
  int pings;
  char ping_node[REC_TEXT];
  uint8_t ping_payload[REC_TEXT];
  size_t ping_len;
  uint64_t ping_rtt_us;
  int meta_hook_calls;
  ml_status meta_overflow_st, sink_overflow_st;
  /* reentrant calls from a hook / a callback */
  int hook_probed;
  ml_status hook_members_st, hook_local_st, hook_queue_st, hook_best_effort_st;
  ml_status hook_update_st, hook_set_meta_st, hook_reliable_st, hook_join_st;
  size_t hook_members_len, hook_num_members;
  int cb_probed;
  ml_status cb_members_st, cb_queue_st;
  size_t cb_members_len;
  int metric_samples;
  int freed;
} rec;

static uint32_t rec_hash(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  size_t i;
  for (i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

static void rec_copy(char *dst, const void *src, size_t n) {
  if (n >= REC_TEXT) n = REC_TEXT - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static void rec_lock(rec *r) { pthread_mutex_lock(&r->mu); }
static void rec_unlock(rec *r) { pthread_mutex_unlock(&r->mu); }

static rec_peer *rec_peer_of(rec *r, const char *name) {
  int i;
  for (i = 0; i < r->npeers; ++i)
    if (strcmp(r->peers[i].name, name) == 0) return &r->peers[i];
  if (r->npeers == REC_PEERS) return NULL;
  rec_copy(r->peers[r->npeers].name, name, strlen(name));
  return &r->peers[r->npeers++];
}

/* ---- callbacks ---------------------------------------------------------------------- */

static void rec_free(void *ud) {
  rec *r = (rec *)ud;
  rec_lock(r);
  r->freed++;
  rec_unlock(r);
}

static void rec_on_event(void *ud, uint32_t event, const ml_node *node) {
  rec *r = (rec *)ud;
  size_t len = 0;
  const uint8_t *meta = ml_node_meta(node, &len);
  rec_peer *p;
  rec_lock(r);
  r->events++;
  p = rec_peer_of(r, ml_node_name(node));
  if (p && event != ML_EVENT_LEAVE) {
    if (len > sizeof p->meta) len = sizeof p->meta;
    if (len > 0) memcpy(p->meta, meta, len);
    p->meta_len = len;
    if (event == ML_EVENT_JOIN) p->joins++;
    if (event == ML_EVENT_UPDATE) p->updates++;
  }
  rec_unlock(r);
}

static void rec_node_meta(void *ud, ml_buffer *out, size_t limit) {
  rec *r = (rec *)ud;
  uint8_t meta[600];
  size_t len;
  int on, overflow;
  rec_lock(r);
  r->meta_hook_calls++;
  on = r->meta_hook;
  overflow = r->meta_overflow;
  len = r->meta_len;
  memcpy(meta, r->meta, len);
  rec_unlock(r);
  if (!on) return;
  if (overflow) {
    static uint8_t big[70000];
    ml_status st = ml_buffer_append(out, big, limit + 1);
    rec_lock(r);
    r->meta_overflow_st = st;
    rec_unlock(r);
  }
  ml_buffer_append(out, meta, len);
}

static void rec_get_broadcasts(void *ud, ml_message_sink *sink, size_t overhead, size_t limit) {
  rec *r = (rec *)ud;
  char msg[REC_TEXT + 8];
  int n;
  static uint8_t big[70000];
  (void)overhead;
  rec_lock(r);
  n = r->pull_pending;
  snprintf(msg, sizeof msg, "pull-%s", r->name);
  rec_unlock(r);
  if (n <= 0) return;
  /* Something that cannot fit is refused; then our small message goes in. */
  {
    ml_status big_st = ml_message_sink_add(sink, big, limit < sizeof big ? limit + 1 : sizeof big);
    rec_lock(r);
    r->sink_overflow_st = big_st;
    rec_unlock(r);
  }
  if (ml_message_sink_add(sink, (const uint8_t *)msg, strlen(msg)) == ML_OK) {
    rec_lock(r);
    r->pull_pending--;
    rec_unlock(r);
  }
}

/* From inside a hook: queries and queue_broadcast work, blocking calls are refused. */
static void rec_probe_from_hook(rec *r, ml_memberlist *ml) {
  ml_node_list *list = NULL;
  ml_node *self = NULL;
  const char *addrs[1] = {"127.0.0.1:1"};
  const uint8_t m[1] = {'m'};
  ml_status members_st = ml_memberlist_members(ml, &list);
  ml_status local_st = ml_memberlist_local_node(ml, &self);
  size_t num = t_num_members(ml);
  ml_status queue_st = ml_memberlist_queue_broadcast(ml, "from-hook", (const uint8_t *)"hooked", 6, NULL);
  ml_status be_st = ml_memberlist_send_best_effort(ml, r->name, (const uint8_t *)"self", 4);
  ml_status update_st = ml_memberlist_update_node(ml, 100);
  ml_status set_meta_st = ml_memberlist_set_meta(ml, m, 1, 100);
  ml_status reliable_st = ml_memberlist_send_reliable(ml, r->name, m, 1);
  ml_status join_st = ml_memberlist_join(ml, addrs, 1, NULL);
  rec_lock(r);
  r->hook_probed = 1;
  r->hook_members_st = members_st;
  r->hook_members_len = ml_node_list_len(list);
  r->hook_local_st = local_st;
  r->hook_num_members = num;
  r->hook_queue_st = queue_st;
  r->hook_best_effort_st = be_st;
  r->hook_update_st = update_st;
  r->hook_set_meta_st = set_meta_st;
  r->hook_reliable_st = reliable_st;
  r->hook_join_st = join_st;
  rec_unlock(r);
  ml_node_list_free(list);
  ml_node_free(self);
}

static void rec_local_state(void *ud, uint32_t join, ml_buffer *out) {
  rec *r = (rec *)ud;
  char state[REC_TEXT + 16];
  ml_memberlist *probe_ml = NULL;
  rec_lock(r);
  snprintf(state, sizeof state, "%s:%u", r->state, join);
  if (r->reenter_hook && r->ml) {
    r->reenter_hook = 0;
    probe_ml = r->ml;
  }
  rec_unlock(r);
  if (probe_ml) rec_probe_from_hook(r, probe_ml);
  if (state[0] != ':') ml_buffer_append(out, (const uint8_t *)state, strlen(state));
}

static void rec_merge_remote_state(void *ud, const uint8_t *data, size_t len, uint32_t join) {
  rec *r = (rec *)ud;
  rec_lock(r);
  if (join) {
    r->merges_join++;
    rec_copy(r->join_state, data, len);
  } else
    r->merges_periodic++;
  rec_copy(r->remote_state, data, len);
  rec_unlock(r);
}

static int32_t rec_notify_merge(void *ud, const ml_node_list *peers, ml_buffer *reason) {
  rec *r = (rec *)ud;
  int veto;
  char why[REC_TEXT];
  rec_lock(r);
  r->merge_calls++;
  r->merge_peers_seen = (int)ml_node_list_len(peers);
  veto = r->veto_merge;
  snprintf(why, sizeof why, "%s", r->veto_reason);
  rec_unlock(r);
  if (!veto) return 0;
  ml_buffer_append(reason, (const uint8_t *)why, strlen(why));
  return 1;
}

static int32_t rec_notify_alive(void *ud, const ml_node *peer, ml_buffer *reason) {
  rec *r = (rec *)ud;
  int veto;
  ml_memberlist *doomed = NULL;
  rec_lock(r);
  if (r->destroy_in_hook && r->ml) {
    doomed = r->ml;
    r->ml = NULL;
    r->destroy_in_hook = 0;
  }
  rec_unlock(r);
  if (doomed) {
    ml_memberlist_destroy(doomed); /* inside our own hook: deferred until it returns */
    rec_lock(r);
    r->freed_when_destroy_returned = r->freed;
    rec_unlock(r);
  }
  rec_lock(r);
  r->alive_calls++;
  veto = r->veto_alive[0] != '\0' && strcmp(ml_node_name(peer), r->veto_alive) == 0;
  if (veto) r->alive_vetoed++;
  rec_unlock(r);
  if (!veto) return 0;
  ml_buffer_append(reason, (const uint8_t *)"not welcome", 11);
  return 1;
}

static void rec_ack_payload(void *ud, ml_buffer *out) {
  rec *r = (rec *)ud;
  uint8_t ack[REC_TEXT];
  size_t len;
  rec_lock(r);
  len = r->ack_len;
  memcpy(ack, r->ack, len);
  rec_unlock(r);
  ml_buffer_append(out, ack, len);
}

static void rec_on_message(void *ud, const uint8_t *data, size_t len) {
  rec *r = (rec *)ud;
  rec_lock(r);
  r->nmsgs++;
  if (len > 5 && memcmp(data, "pull-", 5) == 0) r->npull++;
  rec_copy(r->last_msg, data, len);
  r->last_msg_len = len;
  r->last_msg_hash = rec_hash(data, len);
  rec_unlock(r);
}

static void rec_on_broadcast(void *ud, const char *origin, const char *name, const uint8_t *data,
                             size_t len) {
  rec *r = (rec *)ud;
  ml_memberlist *fwd = NULL;
  rec_lock(r);
  if (r->nbcasts < REC_ITEMS) {
    rec_bcast *b = &r->bcasts[r->nbcasts];
    rec_copy(b->origin, origin, strlen(origin));
    rec_copy(b->name, name, strlen(name));
    rec_copy(b->payload, data, len);
  }
  r->nbcasts++;
  if (r->reenter_cb && r->ml) {
    r->reenter_cb = 0;
    fwd = r->ml;
  }
  rec_unlock(r);
  if (fwd) {
    /* A callback may read the membership and queue a broadcast of its own. */
    ml_node_list *list = NULL;
    ml_status members_st = ml_memberlist_members(fwd, &list);
    ml_status queue_st = ml_memberlist_queue_broadcast(fwd, NULL, (const uint8_t *)"echo", 4, NULL);
    rec_lock(r);
    r->cb_probed = 1;
    r->cb_members_st = members_st;
    r->cb_members_len = ml_node_list_len(list);
    r->cb_queue_st = queue_st;
    rec_unlock(r);
    ml_node_list_free(list);
  }
}

static void rec_on_broadcast_done(void *ud, uint64_t id, uint32_t outcome) {
  rec *r = (rec *)ud;
  rec_lock(r);
  if (r->ndone < REC_ITEMS) {
    r->done_id[r->ndone] = id;
    r->done_outcome[r->ndone] = outcome;
  }
  r->ndone++;
  rec_unlock(r);
}

static void rec_on_conflict(void *ud, const ml_node *existing, const ml_node *other) {
  rec *r = (rec *)ud;
  rec_lock(r);
  r->conflicts++;
  rec_copy(r->conflict_existing, ml_node_address(existing), strlen(ml_node_address(existing)));
  rec_copy(r->conflict_other, ml_node_address(other), strlen(ml_node_address(other)));
  rec_unlock(r);
}

static void rec_on_ping_complete(void *ud, const ml_node *node, uint64_t rtt_us,
                                 const uint8_t *payload, size_t len) {
  rec *r = (rec *)ud;
  rec_lock(r);
  r->pings++;
  rec_copy(r->ping_node, ml_node_name(node), strlen(ml_node_name(node)));
  if (len > sizeof r->ping_payload) len = sizeof r->ping_payload;
  if (len > 0) memcpy(r->ping_payload, payload, len);
  r->ping_len = len;
  r->ping_rtt_us = rtt_us;
  rec_unlock(r);
}

static void rec_on_metric(void *ud, const char *name, uint32_t kind, double value) {
  rec *r = (rec *)ud;
  (void)value;
  if (!name || name[0] == '\0' || kind > ML_METRIC_TIMER) return;
  rec_lock(r);
  r->metric_samples++;
  rec_unlock(r);
}

/* ---- helpers ------------------------------------------------------------------------- */

ML_TEST_UNUSED static void rec_init(rec *r, const char *name) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  r->freed_when_destroy_returned = -1;
  snprintf(r->name, sizeof r->name, "%s", name);
}

ML_TEST_UNUSED static ml_callbacks rec_callbacks(rec *r) {
  ml_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.version = ML_CALLBACKS_VERSION;
  cb.user_data = r;
  cb.user_data_free = rec_free;
  cb.on_event = rec_on_event;
  /* With a node_meta hook its output is the metadata (config metadata is then unused). */
  cb.node_meta = r->meta_hook ? rec_node_meta : NULL;
  cb.get_broadcasts = rec_get_broadcasts;
  cb.local_state = rec_local_state;
  cb.merge_remote_state = rec_merge_remote_state;
  cb.notify_merge = rec_notify_merge;
  cb.notify_alive = rec_notify_alive;
  cb.ack_payload = rec_ack_payload;
  cb.on_message = rec_on_message;
  cb.on_broadcast = rec_on_broadcast;
  cb.on_broadcast_done = rec_on_broadcast_done;
  cb.on_conflict = rec_on_conflict;
  cb.on_ping_complete = rec_on_ping_complete;
  cb.on_metric = rec_on_metric;
  return cb;
}

/* Creates the memberlist of `r` from `cfg` (freed here) with every callback set. */
ML_TEST_UNUSED static void rec_start(rec *r, ml_config *cfg) {
  ml_callbacks cb = rec_callbacks(r);
  ml_memberlist *ml = NULL;
  ml_status st = ml_memberlist_create(&ml, NULL, cfg, &cb);
  if (st != ML_OK) {
    fprintf(stderr, "create %s: %s\n", r->name, ml_last_error());
    exit(1);
  }
  ml_config_free(cfg);
  rec_lock(r);
  r->ml = ml;
  rec_unlock(r);
}

ML_TEST_UNUSED static void rec_stop(rec *r) {
  ml_memberlist *ml;
  rec_lock(r);
  ml = r->ml;
  r->ml = NULL;
  rec_unlock(r);
  ml_memberlist_destroy(ml);
}

/* Joins `r` to `to`; returns the status. */
ML_TEST_UNUSED static ml_status rec_join(rec *r, rec *to) {
  char addr[128];
  const char *list[1];
  ml_test_address_of(to->ml, addr, sizeof addr);
  list[0] = addr;
  return ml_memberlist_join(r->ml, list, 1, NULL);
}

/* An int field read under the lock (for WAIT_UNTIL conditions). */
#define REC_GET(r, expr) rec_get_int((r), &(r)->expr)
ML_TEST_UNUSED static int rec_get_int(rec *r, const int *field) {
  int v;
  rec_lock(r);
  v = *field;
  rec_unlock(r);
  return v;
}

/* True once `r` has seen `peer` with exactly this metadata. */
ML_TEST_UNUSED static int rec_sees_meta(rec *r, const char *peer, const void *meta, size_t len) {
  int ok = 0, i;
  rec_lock(r);
  for (i = 0; i < r->npeers; ++i)
    if (strcmp(r->peers[i].name, peer) == 0)
      ok = r->peers[i].meta_len == len && (len == 0 || memcmp(r->peers[i].meta, meta, len) == 0);
  rec_unlock(r);
  return ok;
}

ML_TEST_UNUSED static int rec_updates_of(rec *r, const char *peer) {
  int n = 0, i;
  rec_lock(r);
  for (i = 0; i < r->npeers; ++i)
    if (strcmp(r->peers[i].name, peer) == 0) n = r->peers[i].updates;
  rec_unlock(r);
  return n;
}

/* How many broadcasts `r` received with this origin, name and payload. */
ML_TEST_UNUSED static int rec_count_bcast(rec *r, const char *origin, const char *name,
                                          const char *payload) {
  int n = 0, i;
  rec_lock(r);
  for (i = 0; i < r->nbcasts && i < REC_ITEMS; ++i) {
    const rec_bcast *b = &r->bcasts[i];
    if (strcmp(b->origin, origin) == 0 && strcmp(b->name, name) == 0 &&
        strcmp(b->payload, payload) == 0)
      n++;
  }
  rec_unlock(r);
  return n;
}

/* Outcome reported for broadcast `id` (99 if none yet); *times receives how many reports. */
ML_TEST_UNUSED static uint32_t rec_done_of(rec *r, uint64_t id, int *times) {
  uint32_t outcome = 99;
  int i, n = 0;
  rec_lock(r);
  for (i = 0; i < r->ndone && i < REC_ITEMS; ++i)
    if (r->done_id[i] == id) {
      outcome = r->done_outcome[i];
      n++;
    }
  rec_unlock(r);
  if (times) *times = n;
  return outcome;
}

#endif
