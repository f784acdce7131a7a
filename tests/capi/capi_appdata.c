/* Application data through the C ABI on a 3-node loopback cluster: callbacks tables of
 * version 1 and of a future version; metadata set at start (config and node_meta hook) and
 * updated later (set_meta, update_node) seen everywhere with update events; local/remote
 * state on join and on periodic push/pull; epidemic broadcasts delivered once per node,
 * named replacement and the done outcomes; best-effort, address and reliable (1 MiB)
 * messages; pull broadcasts from get_broadcasts; ack payloads in on_ping_complete; calls
 * from inside a callback and a hook; every size refusal (ML_E_TOO_LARGE). */
#define _POSIX_C_SOURCE 200809L
#include "ml_rec.h"

/* ---- callbacks tables of other versions -------------------------------------------------- */

/* Exactly the fields of version 1, as an old caller compiled against the first header has. */
typedef struct {
  uint32_t version;
  void *user_data;
  void (*user_data_free)(void *user_data);
  void (*on_event)(void *user_data, uint32_t event, const ml_node *node);
  void (*on_log)(void *user_data, uint32_t level, const char *msg, size_t len);
} callbacks_v1;

/* A newer caller: version 3 with a field this library does not know. */
typedef struct {
  ml_callbacks v2;
  void (*on_future)(void *user_data);
} callbacks_v3;

typedef struct {
  pthread_mutex_t mu;
  int joins, freed;
} counter;

static void count_event(void *ud, uint32_t event, const ml_node *node) {
  counter *c = (counter *)ud;
  (void)node;
  pthread_mutex_lock(&c->mu);
  if (event == ML_EVENT_JOIN) c->joins++;
  pthread_mutex_unlock(&c->mu);
}

static void count_free(void *ud) {
  counter *c = (counter *)ud;
  pthread_mutex_lock(&c->mu);
  c->freed++;
  pthread_mutex_unlock(&c->mu);
}

static int counter_get(counter *c, int *field) {
  int v;
  pthread_mutex_lock(&c->mu);
  v = *field;
  pthread_mutex_unlock(&c->mu);
  return v;
}

static void check_versions(void) {
  counter c1, c3;
  callbacks_v1 *v1;
  callbacks_v3 v3;
  ml_memberlist *ml = NULL;
  ml_config *cfg;
  int ok;

  SECTION("a version-1 callbacks table (only its own bytes are read) keeps working");
  memset(&c1, 0, sizeof c1);
  pthread_mutex_init(&c1.mu, NULL);
  /* Heap block of exactly the v1 size: reading past it would be caught by ASan. */
  v1 = (callbacks_v1 *)malloc(sizeof *v1);
  REQUIRE(v1 != NULL);
  memset(v1, 0, sizeof *v1);
  v1->version = ML_CALLBACKS_VERSION_1;
  v1->user_data = &c1;
  v1->user_data_free = count_free;
  v1->on_event = count_event;
  cfg = ml_test_config("v1-node");
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, (const ml_callbacks *)v1));
  ml_config_free(cfg);
  free(v1); /* copied at create */
  REQUIRE(ml != NULL);
  WAIT_UNTIL(ok, counter_get(&c1, &c1.joins) >= 1); /* the local node's own join */
  CHECK(ok);
  ml_memberlist_destroy(ml);
  CHECK(counter_get(&c1, &c1.freed) == 1);

  SECTION("a table from a newer header (version 3) is refused: its new fields would be ignored");
  memset(&c3, 0, sizeof c3);
  pthread_mutex_init(&c3.mu, NULL);
  memset(&v3, 0, sizeof v3);
  v3.v2.version = 3;
  v3.v2.user_data = &c3;
  v3.v2.user_data_free = count_free;
  v3.v2.on_event = count_event;
  v3.on_future = count_free; /* never called: this library does not know the field */
  ml = NULL;
  cfg = ml_test_config("v3-node");
  CHECK(ml_memberlist_create(&ml, NULL, cfg, &v3.v2) == ML_E_VERSION);
  ml_config_free(cfg);
  CHECK(ml == NULL);
  CHECK(counter_get(&c3, &c3.joins) == 0);
  CHECK(counter_get(&c3, &c3.freed) == 1); /* user_data_free still runs, exactly once */
}

/* ---- the cluster ----------------------------------------------------------------------- */

static rec A, B, C;

static int all_see_meta(const char *peer, const char *meta) {
  rec *all[3] = {&A, &B, &C};
  int i;
  for (i = 0; i < 3; ++i)
    if (strcmp(all[i]->name, peer) != 0 && !rec_sees_meta(all[i], peer, meta, strlen(meta))) return 0;
  return 1;
}

static void dump_peers(void) {
  rec *all[3] = {&A, &B, &C};
  int i, j;
  for (i = 0; i < 3; ++i) {
    rec_lock(all[i]);
    for (j = 0; j < all[i]->npeers; ++j)
      fprintf(stderr, "%s sees %s meta '%.*s' (%d joins, %d updates)\n", all[i]->name,
              all[i]->peers[j].name, (int)all[i]->peers[j].meta_len,
              (const char *)all[i]->peers[j].meta, all[i]->peers[j].joins,
              all[i]->peers[j].updates);
    rec_unlock(all[i]);
  }
}

static int queues_drained(void) {
  return t_num_queued(A.ml) == 0 &&
         t_num_queued(B.ml) == 0 &&
         t_num_queued(C.ml) == 0;
}

static void start_cluster(void) {
  ml_config *ca = ml_test_config("node-a"), *cb = ml_test_config("node-b"),
            *cc = ml_test_config("node-c");
  SECTION("start: a has config metadata, b a node_meta hook, c none");
  rec_init(&A, "node-a");
  rec_init(&B, "node-b");
  rec_init(&C, "node-c");
  CHECK_OK(ml_config_set_meta(ca, (const uint8_t *)"a0", 2));
  /* Broadcasts are epidemic: with the Local preset's retransmit_mult of 2 a node of 3 misses
   * one now and then (each node sends it twice, maybe to the same peer), until broadcast repair
   * (on by default) brings it at a push/pull. 8 makes a miss vanishingly rare, so that the
   * waits below do not depend on repair. */
  CHECK_OK(ml_config_set_retransmit_mult(ca, 8));
  CHECK_OK(ml_config_set_retransmit_mult(cb, 8));
  CHECK_OK(ml_config_set_retransmit_mult(cc, 8));
  B.meta_hook = 1;
  memcpy(B.meta, "b0", 2);
  B.meta_len = 2;
  snprintf(A.state, sizeof A.state, "st-a");
  snprintf(B.state, sizeof B.state, "st-b");
  snprintf(C.state, sizeof C.state, "st-c");
  memcpy(B.ack, "ack-b", 5);
  B.ack_len = 5;
  memcpy(C.ack, "ack-c", 5);
  C.ack_len = 5;
  rec_start(&A, ca);
  rec_start(&B, cb);
  rec_start(&C, cc);
  CHECK(REC_GET(&B, meta_hook_calls) >= 1); /* asked at create */
  CHECK_OK(rec_join(&B, &A));
  CHECK_OK(rec_join(&C, &A));
}

static void check_meta(void) {
  int ok;
  uint8_t big[513];
  SECTION("metadata from start is seen by all");
  WAIT_UNTIL(ok, all_see_meta("node-a", "a0") && all_see_meta("node-b", "b0") &&
                     all_see_meta("node-c", ""));
  CHECK(ok);
  if (!ok) dump_peers();

  SECTION("set_meta: every node sees the new metadata with an update event");
  CHECK_OK(ml_memberlist_set_meta(A.ml, (const uint8_t *)"a1", 2, 10000));
  WAIT_UNTIL(ok, all_see_meta("node-a", "a1") && rec_updates_of(&B, "node-a") >= 1 &&
                     rec_updates_of(&C, "node-a") >= 1);
  CHECK(ok);

  SECTION("update_node asks the node_meta hook again");
  rec_lock(&B);
  memcpy(B.meta, "b1", 2);
  rec_unlock(&B);
  CHECK_OK(ml_memberlist_update_node(B.ml, 10000));
  WAIT_UNTIL(ok, all_see_meta("node-b", "b1") && rec_updates_of(&A, "node-b") >= 1 &&
                     rec_updates_of(&C, "node-b") >= 1);
  CHECK(ok);

  SECTION("a hook cannot append past its limit; what fits is used");
  rec_lock(&B);
  memcpy(B.meta, "b2", 2);
  B.meta_overflow = 1;
  rec_unlock(&B);
  CHECK_OK(ml_memberlist_update_node(B.ml, 10000));
  rec_lock(&B);
  CHECK(B.meta_overflow_st == ML_E_TOO_LARGE);
  B.meta_overflow = 0;
  rec_unlock(&B);
  WAIT_UNTIL(ok, all_see_meta("node-b", "b2"));
  CHECK(ok);

  SECTION("oversized or malformed metadata is refused and changes nothing");
  memset(big, 'x', sizeof big);
  CHECK(ml_memberlist_set_meta(A.ml, big, sizeof big, 1000) == ML_E_TOO_LARGE);
  CHECK(strlen(ml_memberlist_last_error(A.ml)) > 0);
  CHECK(ml_memberlist_set_meta(A.ml, NULL, 3, 1000) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(A.ml), "data") != NULL);
  CHECK(ml_memberlist_set_meta(NULL, big, 1, 1000) == ML_E_INVALID);
  CHECK(ml_memberlist_update_node(NULL, 1000) == ML_E_INVALID);
  CHECK(all_see_meta("node-a", "a1"));
}

static void check_state_exchange(void) {
  int ok;
  char remote[REC_TEXT];
  SECTION("local/remote state exchanged on join (join = 1), both ways");
  rec_lock(&B);
  CHECK(B.merges_join >= 1);
  rec_unlock(&B);
  CHECK(REC_GET(&A, merges_join) >= 2); /* from b and from c */
  rec_lock(&C);
  snprintf(remote, sizeof remote, "%s", C.join_state);
  rec_unlock(&C);
  CHECK(strcmp(remote, "st-a:1") == 0);

  SECTION("and on periodic push/pull (join = 0)");
  WAIT_UNTIL(ok, REC_GET(&B, merges_periodic) >= 1 && REC_GET(&C, merges_periodic) >= 1);
  CHECK(ok);
  rec_lock(&B);
  CHECK(strlen(B.remote_state) > 2 && strcmp(B.remote_state + strlen(B.remote_state) - 2, ":0") == 0);
  rec_unlock(&B);
}

static void check_broadcasts(void) {
  int ok, times = 0, ndone;
  uint64_t id1 = 0, id2 = 0, id3 = 0;
  uint8_t big[2000];

  /* Repair is on (the default): the outcome comes once the broadcast's repair horizon (two
   * push/pull intervals, 4 s here) has passed, ML_BROADCAST_SETTLED. */
  SECTION("a broadcast reaches every other node exactly once; SETTLED on its origin");
  rec_lock(&B);
  B.reenter_cb = 1; /* b's on_broadcast reads members and broadcasts "echo" */
  rec_unlock(&B);
  CHECK_OK(ml_memberlist_queue_broadcast(A.ml, NULL, (const uint8_t *)"hello", 5, &id1));
  CHECK(id1 != 0);
  WAIT_UNTIL(ok, rec_count_bcast(&B, "node-a", "", "hello") >= 1 &&
                     rec_count_bcast(&C, "node-a", "", "hello") >= 1);
  CHECK(ok);
  WAIT_UNTIL(ok, rec_done_of(&A, id1, NULL) == ML_BROADCAST_SETTLED);
  CHECK(ok);

  SECTION("a callback may call members and queue_broadcast");
  WAIT_UNTIL(ok, REC_GET(&B, cb_probed));
  CHECK(ok);
  rec_lock(&B);
  CHECK(B.cb_members_st == ML_OK && B.cb_members_len == 3);
  CHECK(B.cb_queue_st == ML_OK);
  rec_unlock(&B);
  WAIT_UNTIL(ok, rec_count_bcast(&A, "node-b", "", "echo") >= 1 &&
                     rec_count_bcast(&C, "node-b", "", "echo") >= 1);
  CHECK(ok);

  SECTION("a named broadcast replaces its predecessor");
  CHECK_OK(ml_memberlist_queue_broadcast(A.ml, "cfg", (const uint8_t *)"v1", 2, &id2));
  CHECK_OK(ml_memberlist_queue_broadcast(A.ml, "cfg", (const uint8_t *)"v2", 2, &id3));
  CHECK(id2 != 0 && id3 != 0 && id2 != id3);
  WAIT_UNTIL(ok, rec_done_of(&A, id2, NULL) == ML_BROADCAST_REPLACED);
  CHECK(ok);
  WAIT_UNTIL(ok, rec_count_bcast(&B, "node-a", "cfg", "v2") >= 1 &&
                     rec_count_bcast(&C, "node-a", "cfg", "v2") >= 1);
  CHECK(ok);
  WAIT_UNTIL(ok, rec_done_of(&A, id3, NULL) == ML_BROADCAST_SETTLED);
  CHECK(ok);

  SECTION("over a while (until every queue drained): each delivered once, never to its origin");
  WAIT_UNTIL(ok, queues_drained());
  CHECK(ok);
  CHECK(rec_count_bcast(&B, "node-a", "", "hello") == 1);
  CHECK(rec_count_bcast(&C, "node-a", "", "hello") == 1);
  CHECK(rec_count_bcast(&A, "node-a", "", "hello") == 0);
  CHECK(rec_count_bcast(&A, "node-b", "", "echo") == 1);
  CHECK(rec_count_bcast(&C, "node-b", "", "echo") == 1);
  CHECK(rec_count_bcast(&B, "node-b", "", "echo") == 0);
  CHECK(rec_count_bcast(&B, "node-a", "cfg", "v2") == 1);
  CHECK(rec_count_bcast(&C, "node-a", "cfg", "v2") == 1);
  CHECK(rec_count_bcast(&B, "node-a", "cfg", "v1") <= 1);
  CHECK(rec_done_of(&A, id1, &times) == ML_BROADCAST_SETTLED && times == 1);
  CHECK(rec_done_of(&A, id2, &times) == ML_BROADCAST_REPLACED && times == 1);
  CHECK(rec_done_of(&A, id3, &times) == ML_BROADCAST_SETTLED && times == 1);

  SECTION("refusals");
  memset(big, 'b', sizeof big);
  CHECK(ml_memberlist_queue_broadcast(A.ml, NULL, big, sizeof big, &id1) == ML_E_TOO_LARGE);
  CHECK(id1 == 0);
  CHECK(strlen(ml_memberlist_last_error(A.ml)) > 0);
  CHECK(ml_memberlist_queue_broadcast(A.ml, NULL, NULL, 4, NULL) == ML_E_INVALID);
  CHECK(ml_memberlist_queue_broadcast(NULL, NULL, big, 4, NULL) == ML_E_INVALID);

  /* docs/abi.md, "Failed calls take nothing": the refusals above got no on_broadcast_done.
   * Outcomes arrive in order, so once the next broadcast's has arrived, any for a refused
   * one would have too. */
  SECTION("a refused broadcast gets no outcome");
  rec_lock(&A);
  ndone = A.ndone;
  rec_unlock(&A);
  CHECK_OK(ml_memberlist_queue_broadcast(A.ml, NULL, (const uint8_t *)"after", 5, &id1));
  WAIT_UNTIL(ok, rec_done_of(&A, id1, NULL) == ML_BROADCAST_SETTLED);
  CHECK(ok);
  rec_lock(&A);
  CHECK(A.ndone == ndone + 1);
  rec_unlock(&A);
}

static void check_messages(void) {
  int ok;
  char addr[128];
  size_t big_len = (size_t)1 << 20, i;
  uint8_t *big = (uint8_t *)malloc(21u << 20);
  uint32_t big_hash;
  REQUIRE(big != NULL);
  for (i = 0; i < (21u << 20); ++i) big[i] = (uint8_t)(i * 7 + (i >> 13));
  big_hash = rec_hash(big, big_len);

  SECTION("best-effort message");
  CHECK_OK(ml_memberlist_send_best_effort(A.ml, "node-b", (const uint8_t *)"be-1", 4));
  WAIT_UNTIL(ok, REC_GET(&B, nmsgs) >= 1);
  CHECK(ok);
  rec_lock(&B);
  CHECK(strcmp(B.last_msg, "be-1") == 0 && B.last_msg_len == 4);
  rec_unlock(&B);

  SECTION("message to an address");
  ml_test_address_of(C.ml, addr, sizeof addr);
  CHECK_OK(ml_memberlist_send_to_address(A.ml, addr, (const uint8_t *)"to-addr", 7));
  WAIT_UNTIL(ok, REC_GET(&C, nmsgs) >= 1);
  CHECK(ok);
  rec_lock(&C);
  CHECK(strcmp(C.last_msg, "to-addr") == 0);
  rec_unlock(&C);

  SECTION("reliable message of 1 MiB arrives intact");
  CHECK_OK(ml_memberlist_send_reliable(A.ml, "node-c", big, big_len));
  WAIT_UNTIL(ok, REC_GET(&C, nmsgs) >= 2);
  CHECK(ok);
  rec_lock(&C);
  CHECK(C.last_msg_len == big_len);
  CHECK(C.last_msg_hash == big_hash);
  rec_unlock(&C);

  SECTION("refusals: too large, unknown node, bad arguments");
  CHECK(ml_memberlist_send_best_effort(A.ml, "node-b", big, 70000) == ML_E_TOO_LARGE);
  CHECK(ml_memberlist_send_to_address(A.ml, addr, big, 70000) == ML_E_TOO_LARGE);
  CHECK(ml_memberlist_send_reliable(A.ml, "node-c", big, (20u << 20) + 1) == ML_E_TOO_LARGE);
  CHECK(strlen(ml_memberlist_last_error(A.ml)) > 0);
  CHECK(ml_memberlist_send_best_effort(A.ml, "nobody", big, 4) == ML_E_NOT_FOUND);
  CHECK(ml_memberlist_send_reliable(A.ml, "nobody", big, 4) == ML_E_NOT_FOUND);
  CHECK(strstr(ml_memberlist_last_error(A.ml), "nobody") != NULL);
  CHECK(ml_memberlist_send_best_effort(A.ml, NULL, big, 4) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(A.ml), "node_name") != NULL);
  CHECK(ml_memberlist_send_reliable(A.ml, "node-c", NULL, 4) == ML_E_INVALID);
  CHECK(ml_memberlist_send_to_address(A.ml, NULL, big, 4) == ML_E_INVALID);
  CHECK(ml_memberlist_send_best_effort(NULL, "node-b", big, 4) == ML_E_INVALID);
  CHECK(REC_GET(&B, nmsgs) == 1);
  free(big);
}

static void check_pull_and_ping(void) {
  int ok;
  SECTION("get_broadcasts: a message handed to the sink reaches a peer as a user message");
  rec_lock(&A);
  A.pull_pending = 1;
  rec_unlock(&A);
  WAIT_UNTIL(ok, REC_GET(&B, npull) + REC_GET(&C, npull) >= 1);
  CHECK(ok);
  rec_lock(&A);
  CHECK(A.sink_overflow_st == ML_E_TOO_LARGE); /* a message over the budget is refused */
  rec_unlock(&A);

  SECTION("ack payload and RTT reach on_ping_complete");
  WAIT_UNTIL(ok, REC_GET(&A, pings) >= 1);
  CHECK(ok);
  rec_lock(&A);
  CHECK(strcmp(A.ping_node, "node-b") == 0 || strcmp(A.ping_node, "node-c") == 0);
  CHECK(A.ping_len == 5 && memcmp(A.ping_payload, "ack-", 4) == 0 &&
        A.ping_payload[4] == (uint8_t)A.ping_node[5]);
  CHECK(A.ping_rtt_us < 60u * 1000000u);
  rec_unlock(&A);
}

static void check_hook_reentrancy(void) {
  int ok;
  SECTION("a hook may query and queue a broadcast; blocking calls return ML_E_STATE");
  rec_lock(&C);
  C.reenter_hook = 1; /* c's next local_state (a push/pull) probes */
  rec_unlock(&C);
  WAIT_UNTIL(ok, REC_GET(&C, hook_probed));
  CHECK(ok);
  rec_lock(&C);
  CHECK(C.hook_members_st == ML_OK && C.hook_members_len == 3);
  CHECK(C.hook_local_st == ML_OK && C.hook_num_members == 3);
  CHECK(C.hook_queue_st == ML_OK);
  CHECK(C.hook_best_effort_st == ML_OK);
  CHECK(C.hook_update_st == ML_E_STATE);
  CHECK(C.hook_set_meta_st == ML_E_STATE);
  CHECK(C.hook_reliable_st == ML_E_STATE);
  CHECK(C.hook_join_st == ML_E_STATE);
  rec_unlock(&C);
  WAIT_UNTIL(ok, rec_count_bcast(&A, "node-c", "from-hook", "hooked") == 1 &&
                     rec_count_bcast(&B, "node-c", "from-hook", "hooked") == 1);
  CHECK(ok);
}

/* With repair on, a broadcast fully sent but still within its repair horizon when its node
 * shuts down ends DELIVERED (its repair was cut short), once, before shutdown returns. */
static void check_outcome_at_shutdown(void) {
  static rec D;
  ml_config *cd = ml_test_config("node-d");
  uint64_t id = 0;
  int ok, times = 0;
  SECTION("shut down within a broadcast's repair horizon: DELIVERED, once");
  CHECK_OK(ml_config_set_push_pull_interval_ms(cd, 60000)); /* horizon 120 s, far off */
  rec_init(&D, "node-d");
  rec_start(&D, cd);
  CHECK_OK(rec_join(&D, &A));
  CHECK_OK(ml_memberlist_queue_broadcast(D.ml, NULL, (const uint8_t *)"last", 4, &id));
  WAIT_UNTIL(ok, t_num_queued(D.ml) == 0); /* its retransmissions are over */
  CHECK(ok);
  CHECK(rec_done_of(&D, id, NULL) == 99); /* no outcome yet: it is still repairable */
  CHECK_OK(ml_memberlist_shutdown(D.ml));
  CHECK(rec_done_of(&D, id, &times) == ML_BROADCAST_DELIVERED && times == 1);
  rec_stop(&D);
}

int main(void) {
  check_versions();
  start_cluster();
  check_meta();
  check_state_exchange();
  check_broadcasts();
  check_messages();
  check_pull_and_ping();
  check_hook_reentrancy();
  check_outcome_at_shutdown();
  SECTION("metric samples reached on_metric");
  CHECK(REC_GET(&A, metric_samples) > 0);
  SECTION("after shutdown: ML_E_CLOSED");
  CHECK_OK(ml_memberlist_shutdown(C.ml));
  CHECK(ml_memberlist_queue_broadcast(C.ml, NULL, (const uint8_t *)"x", 1, NULL) == ML_E_CLOSED);
  CHECK(ml_memberlist_send_best_effort(C.ml, "node-a", (const uint8_t *)"x", 1) == ML_E_CLOSED);
  CHECK(ml_memberlist_send_reliable(C.ml, "node-a", (const uint8_t *)"x", 1) == ML_E_CLOSED);
  CHECK(ml_memberlist_set_meta(C.ml, (const uint8_t *)"x", 1, 100) == ML_E_CLOSED);
  CHECK(ml_memberlist_update_node(C.ml, 100) == ML_E_CLOSED);
  CHECK(strstr(ml_memberlist_last_error(C.ml), "shut down") != NULL);
  rec_stop(&C);
  rec_stop(&B);
  rec_stop(&A);
  CHECK(REC_GET(&A, freed) == 1 && REC_GET(&B, freed) == 1 && REC_GET(&C, freed) == 1);
  return ml_test_finish("capi_appdata");
}
