/* Issue 13: one way into the core. Every delegate hook, fired from every entry path (create,
 * join, ping, update_node, set_meta, leave, the periodic timers), makes every call the header
 * allows from a hook (the queries, queue_broadcast, send_best_effort) and gets ML_E_STATE from
 * the blocking ones. Before the seam, a local_state hook calling num_members hung join and a
 * get_broadcasts hook calling it hung ping: a watchdog fails the test on any hang. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "ml_test.h"

enum { H_NODE_META, H_GET_BROADCASTS, H_LOCAL_STATE, H_MERGE_REMOTE, H_NOTIFY_MERGE, H_NOTIFY_ALIVE, H_ACK_PAYLOAD, NHOOKS };
static const char *const hook_names[NHOOKS] = {"node_meta",    "get_broadcasts", "local_state", "merge_remote_state",
                                               "notify_merge", "notify_alive",   "ack_payload"};

typedef struct {
  pthread_mutex_t mu;
  ml_memberlist *self; /* NULL until create returned */
  char peer[64];       /* a member to send_best_effort to */
  int fired[NHOOKS];   /* hook ran with a handle to call into */
  int early[NHOOKS];   /* hook ran before create returned (no handle yet) */
  int bad[NHOOKS];     /* calls that did not behave as the header says */
  int queued;          /* one broadcast queued from a hook (more would feed get_broadcasts forever) */
  char first_bad[256];
} probe;

static void note_bad(probe *p, int hook, const char *call, ml_status s) {
  pthread_mutex_lock(&p->mu);
  if (p->bad[hook]++ == 0 && p->first_bad[0] == '\0')
    snprintf(p->first_bad, sizeof p->first_bad, "%s: %s returned %s", hook_names[hook], call, ml_status_str(s));
  pthread_mutex_unlock(&p->mu);
}

#define EXPECT_STATUS(call, want)               \
  do {                                          \
    ml_status s_ = (call);                      \
    if (s_ != (want)) note_bad(p, hook, #call, s_); \
  } while (0)

/* What a hook may do, and what it may not, on this node. */
static void exercise(probe *p, int hook) {
  ml_memberlist *ml;
  ml_node_list *list = NULL;
  ml_node *node = NULL;
  ml_metrics *metrics = NULL;
  uint32_t joined = 0;
  uint64_t rtt = 0, id = 0;
  const char *seed = "127.0.0.1:1";
  int queue_one;
  char peer[64];
  pthread_mutex_lock(&p->mu);
  ml = p->self;
  if (!ml) {
    p->early[hook]++;
    pthread_mutex_unlock(&p->mu);
    return;
  }
  p->fired[hook]++;
  queue_one = p->queued++ == 0;
  snprintf(peer, sizeof peer, "%s", p->peer);
  pthread_mutex_unlock(&p->mu);

  /* Allowed: queries and the non-blocking commands. */
  if (t_num_members(ml) < 1) note_bad(p, hook, "ml_memberlist_get_num_members", ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_members(ml, &list), ML_OK);
  ml_node_list_free(list);
  EXPECT_STATUS(ml_memberlist_local_node(ml, &node), ML_OK);
  ml_node_free(node);
  if (t_health_score(ml) < 0) note_bad(p, hook, "ml_memberlist_get_health_score", ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_metrics(ml, &metrics), ML_OK);
  ml_metrics_free(metrics);
  if (t_num_queued(ml) == (size_t)-1) note_bad(p, hook, "ml_memberlist_get_num_queued_broadcasts", ML_E_STATE);
  if (queue_one) EXPECT_STATUS(ml_memberlist_queue_broadcast(ml, NULL, (const uint8_t *)"hi", 2, &id), ML_OK);
  if (peer[0] != '\0') {
    ml_status s = ml_memberlist_send_best_effort(ml, peer, (const uint8_t *)"x", 1);
    if (s != ML_OK && s != ML_E_NOT_FOUND) note_bad(p, hook, "ml_memberlist_send_best_effort", s);
  }
  /* Refused: every call that waits on the protocol. */
  EXPECT_STATUS(ml_memberlist_join(ml, &seed, 1, &joined), ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_ping(ml, "nobody", &rtt), ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_update_node(ml, 100), ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_set_meta(ml, (const uint8_t *)"m", 1, 100), ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_send_reliable(ml, peer[0] ? peer : "nobody", (const uint8_t *)"x", 1), ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_leave(ml, 100), ML_E_STATE);
  EXPECT_STATUS(ml_memberlist_shutdown(ml), ML_E_STATE);
}

static void h_node_meta(void *ud, ml_buffer *out, size_t limit) {
  (void)limit;
  exercise(ud, H_NODE_META);
  ml_buffer_append(out, (const uint8_t *)"meta", 4);
}
static void h_get_broadcasts(void *ud, ml_message_sink *sink, size_t overhead, size_t limit) {
  (void)sink, (void)overhead, (void)limit;
  exercise(ud, H_GET_BROADCASTS);
}
static void h_local_state(void *ud, uint32_t join, ml_buffer *out) {
  (void)join;
  exercise(ud, H_LOCAL_STATE);
  ml_buffer_append(out, (const uint8_t *)"state", 5);
}
static void h_merge_remote(void *ud, const uint8_t *data, size_t len, uint32_t join) {
  (void)data, (void)len, (void)join;
  exercise(ud, H_MERGE_REMOTE);
}
static int32_t h_notify_merge(void *ud, const ml_node_list *peers, ml_buffer *reason) {
  (void)peers, (void)reason;
  exercise(ud, H_NOTIFY_MERGE);
  return 0;
}
static int32_t h_notify_alive(void *ud, const ml_node *peer, ml_buffer *reason) {
  (void)peer, (void)reason;
  exercise(ud, H_NOTIFY_ALIVE);
  return 0;
}
static void h_ack_payload(void *ud, ml_buffer *out) {
  exercise(ud, H_ACK_PAYLOAD);
  ml_buffer_append(out, (const uint8_t *)"ack", 3);
}

static ml_callbacks hooks_for(probe *p) {
  ml_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.version = ML_CALLBACKS_VERSION;
  cb.user_data = p;
  cb.node_meta = h_node_meta;
  cb.get_broadcasts = h_get_broadcasts;
  cb.local_state = h_local_state;
  cb.merge_remote_state = h_merge_remote;
  cb.notify_merge = h_notify_merge;
  cb.notify_alive = h_notify_alive;
  cb.ack_payload = h_ack_payload;
  return cb;
}

static void snapshot(probe *p, int out[NHOOKS]) {
  int i;
  pthread_mutex_lock(&p->mu);
  for (i = 0; i < NHOOKS; ++i) out[i] = p->fired[i];
  pthread_mutex_unlock(&p->mu);
}

/* Runs one entry path under the watchdog and reports which hooks of `p` fired during it. */
static const char *current_path = "";
static void on_alarm(int sig) {
  static const char msg[] = "capi_reentry: an entry path hung (deadlock with a hook calling into the memberlist)\n";
  (void)sig;
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, current_path, strlen(current_path));
  _exit(2);
}

static int fired_during(probe *p, const int before[NHOOKS], int hook) {
  int now[NHOOKS];
  snapshot(p, now);
  return now[hook] - before[hook];
}

static void report(probe *p, const char *path, const int before[NHOOKS]) {
  int i;
  printf("%s:", path);
  for (i = 0; i < NHOOKS; ++i)
    if (fired_during(p, before, i) > 0) printf(" %s", hook_names[i]);
  printf("\n");
}

static probe pa, pb;

static void start(probe *p, const char *name, ml_memberlist **out) {
  ml_config *cfg = ml_test_config(name);
  ml_callbacks cb = hooks_for(p);
  CHECK_OK(ml_config_set_push_pull_interval_ms(cfg, 300));
  CHECK_OK(ml_memberlist_create(out, NULL, cfg, &cb));
  ml_config_free(cfg);
  pthread_mutex_lock(&p->mu);
  p->self = *out;
  pthread_mutex_unlock(&p->mu);
}

int main(void) {
  ml_memberlist *a = NULL, *b = NULL;
  char addr[64];
  const char *seeds[1];
  int before[NHOOKS], ok, i;
  uint64_t rtt = 0;
  memset(&pa, 0, sizeof pa);
  memset(&pb, 0, sizeof pb);
  pthread_mutex_init(&pa.mu, NULL);
  pthread_mutex_init(&pb.mu, NULL);
  signal(SIGALRM, on_alarm);
  alarm(120); /* far beyond what the whole test needs on a loaded machine */

  SECTION("create: node_meta runs before the handle exists");
  current_path = "create\n";
  start(&pa, "reentry-a", &a);
  start(&pb, "reentry-b", &b);
  REQUIRE(a && b);
  CHECK(pa.early[H_NODE_META] >= 1 && pb.early[H_NODE_META] >= 1);
  snprintf(pa.peer, sizeof pa.peer, "reentry-b");
  snprintf(pb.peer, sizeof pb.peer, "reentry-a");

  SECTION("join: the joiner's push/pull hooks run on its own thread");
  current_path = "join\n";
  ml_test_address_of(a, addr, sizeof addr);
  seeds[0] = addr;
  snapshot(&pb, before);
  CHECK_OK(ml_memberlist_join(b, seeds, 1, NULL));
  report(&pb, "join (b)", before);
  CHECK(fired_during(&pb, before, H_LOCAL_STATE) >= 1);
  CHECK(fired_during(&pb, before, H_NOTIFY_MERGE) >= 1);
  CHECK(fired_during(&pb, before, H_MERGE_REMOTE) >= 1);
  WAIT_UNTIL(ok, t_num_members(a) == 2 && t_num_members(b) == 2);
  CHECK(ok);

  SECTION("ping: get_broadcasts on the pinger, ack_payload on the target");
  current_path = "ping\n";
  snapshot(&pb, before);
  CHECK_OK(ml_memberlist_ping(b, "reentry-a", &rtt));
  report(&pb, "ping (b)", before);
  CHECK(fired_during(&pb, before, H_GET_BROADCASTS) >= 1);

  SECTION("update_node: node_meta with a handle, then the broadcast");
  current_path = "update_node\n";
  snapshot(&pb, before);
  CHECK_OK(ml_memberlist_update_node(b, 10000));
  report(&pb, "update_node (b)", before);
  CHECK(fired_during(&pb, before, H_NODE_META) >= 1);

  SECTION("set_meta");
  current_path = "set_meta\n";
  snapshot(&pb, before);
  CHECK_OK(ml_memberlist_set_meta(b, (const uint8_t *)"new", 3, 10000));
  report(&pb, "set_meta (b)", before);

  SECTION("the periodic timers: probes, gossip and push/pull fire the hooks from library threads");
  current_path = "timers\n";
  snapshot(&pa, before);
  WAIT_UNTIL(ok, fired_during(&pa, before, H_LOCAL_STATE) >= 1 && fired_during(&pa, before, H_GET_BROADCASTS) >= 1 &&
                     fired_during(&pa, before, H_ACK_PAYLOAD) >= 1);
  report(&pa, "timers (a)", before);
  CHECK(ok);

  SECTION("leave");
  current_path = "leave\n";
  snapshot(&pb, before);
  CHECK_OK(ml_memberlist_leave(b, 10000));
  report(&pb, "leave (b)", before);

  current_path = "destroy\n";
  ml_memberlist_destroy(b);
  ml_memberlist_destroy(a);
  alarm(0);

  SECTION("every hook ran with a handle, and every call from it behaved as the header says");
  for (i = 0; i < NHOOKS; ++i) {
    printf("%-18s a: %d fired, %d bad; b: %d fired, %d bad\n", hook_names[i], pa.fired[i], pa.bad[i], pb.fired[i],
           pb.bad[i]);
    CHECK(pa.fired[i] + pb.fired[i] >= 1);
    CHECK(pa.bad[i] == 0 && pb.bad[i] == 0);
  }
  if (pa.first_bad[0]) printf("a: first bad call: %s\n", pa.first_bad);
  if (pb.first_bad[0]) printf("b: first bad call: %s\n", pb.first_bad);
  return ml_test_finish("capi_reentry");
}
