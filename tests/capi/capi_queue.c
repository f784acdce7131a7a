/* ml_broadcast_queue: retransmit counts (retransmit_mult * ceil(log10(n + 1))), least
 * transmitted first, the byte limit with per-message overhead, named replacement with its done
 * outcome, prune (most transmitted first), reset, free, a done callback that pushes again,
 * and the refusals. No sockets. */
#include "ml_test.h"

#define MAX_DONE 64

typedef struct {
  int count;
  char tags[MAX_DONE];         /* which message finished ('a', 'b', ...) */
  uint32_t outcomes[MAX_DONE]; /* ML_BROADCAST_* */
  ml_broadcast_queue *repush;  /* if set, a done callback queues "r" on it once */
} done_log;

typedef struct {
  done_log *log;
  char tag;
} done_ctx;

static void on_done(void *ud, uint32_t outcome) {
  done_ctx *c = (done_ctx *)ud;
  done_log *log = c->log;
  if (log->count < MAX_DONE) {
    log->tags[log->count] = c->tag;
    log->outcomes[log->count] = outcome;
  }
  log->count++;
  if (log->repush) {
    ml_broadcast_queue *q = log->repush;
    log->repush = NULL;
    CHECK_OK(ml_broadcast_queue_push(q, NULL, (const uint8_t *)"r", 1, NULL, NULL));
  }
}

/* Outcome recorded for `tag`, or 99 if it never finished. */
static uint32_t outcome_of(const done_log *log, char tag) {
  int i;
  for (i = 0; i < log->count && i < MAX_DONE; ++i)
    if (log->tags[i] == tag) return log->outcomes[i];
  return 99;
}

static int times_finished(const done_log *log, char tag) {
  int i, n = 0;
  for (i = 0; i < log->count && i < MAX_DONE; ++i)
    if (log->tags[i] == tag) n++;
  return n;
}

/* One get; returns how many messages came out, and copies the first one's first byte. */
static size_t get_once(ml_broadcast_queue *q, size_t overhead, size_t limit, char *first) {
  ml_bytes_list *list = NULL;
  size_t n, len = 0;
  const uint8_t *p;
  CHECK_OK(ml_broadcast_queue_get(q, overhead, limit, &list));
  REQUIRE(list != NULL);
  n = ml_bytes_list_len(list);
  p = ml_bytes_list_get(list, 0, &len);
  if (first) *first = n > 0 && p && len > 0 ? (char)p[0] : '\0';
  CHECK(ml_bytes_list_get(list, n, &len) == NULL && len == 0); /* out of range */
  ml_bytes_list_free(list);
  return n;
}

static void check_retransmits(void) {
  ml_broadcast_queue *q = NULL;
  done_log log;
  done_ctx a = {&log, 'a'}, b = {&log, 'b'};
  char first;
  int i, gets;
  memset(&log, 0, sizeof log);

  SECTION("retransmit limit: mult 3, n = 1 -> 3 transmissions; n = 10 -> 6");
  CHECK_OK(ml_broadcast_queue_create(&q, 3));
  REQUIRE(q != NULL);
  CHECK(ml_broadcast_queue_len(q) == 0);
  CHECK_OK(ml_broadcast_queue_push(q, NULL, (const uint8_t *)"a-msg", 5, on_done, &a));
  CHECK(ml_broadcast_queue_len(q) == 1);
  for (i = 0; i < 3; ++i) {
    CHECK(get_once(q, 0, 1400, &first) == 1);
    CHECK(first == 'a');
    CHECK(times_finished(&log, 'a') == (i < 2 ? 0 : 1));
  }
  CHECK(outcome_of(&log, 'a') == ML_BROADCAST_DELIVERED);
  CHECK(ml_broadcast_queue_len(q) == 0);
  CHECK(get_once(q, 0, 1400, NULL) == 0);

  CHECK_OK(ml_broadcast_queue_set_num_nodes(q, 10));
  CHECK_OK(ml_broadcast_queue_push(q, "", (const uint8_t *)"b-msg", 5, on_done, &b));
  for (gets = 0; gets < 20 && ml_broadcast_queue_len(q) > 0; ++gets) get_once(q, 0, 1400, NULL);
  CHECK(gets == 6);
  CHECK(times_finished(&log, 'b') == 1);
  CHECK(outcome_of(&log, 'b') == ML_BROADCAST_DELIVERED);
  ml_broadcast_queue_free(q);
}

static void check_order_and_limit(void) {
  ml_broadcast_queue *q = NULL;
  ml_bytes_list *list = NULL;
  uint8_t big[100];
  size_t len;
  const uint8_t *p;
  char first;

  SECTION("least transmitted first; the limit counts each message's overhead");
  CHECK_OK(ml_broadcast_queue_create(&q, 4));
  CHECK_OK(ml_broadcast_queue_push(q, NULL, (const uint8_t *)"x1", 2, NULL, NULL));
  CHECK(get_once(q, 0, 1400, &first) == 1 && first == 'x'); /* x transmitted once */
  CHECK_OK(ml_broadcast_queue_push(q, NULL, (const uint8_t *)"y1", 2, NULL, NULL));
  CHECK(get_once(q, 0, 2, &first) == 1); /* room for one: the fresh one */
  CHECK(first == 'y');
  /* 2 + 3 overhead = 5 bytes each: 9 bytes hold one, 10 hold both */
  CHECK(get_once(q, 3, 9, NULL) == 1);
  CHECK(get_once(q, 3, 10, NULL) == 2);
  memset(big, 'z', sizeof big);
  CHECK_OK(ml_broadcast_queue_push(q, NULL, big, sizeof big, NULL, NULL));
  CHECK_OK(ml_broadcast_queue_get(q, 0, 50, &list)); /* too big for 50: skipped */
  CHECK(ml_bytes_list_len(list) == 2);
  ml_bytes_list_free(list);
  CHECK_OK(ml_broadcast_queue_get(q, 0, 100, &list)); /* now it fits, alone */
  REQUIRE(ml_bytes_list_len(list) == 1);
  p = ml_bytes_list_get(list, 0, &len);
  CHECK(len == sizeof big && p != NULL && memcmp(p, big, len) == 0);
  ml_bytes_list_free(list);
  ml_broadcast_queue_free(q);
}

static void check_named_prune_reset(void) {
  ml_broadcast_queue *q = NULL;
  done_log log;
  done_ctx a = {&log, 'a'}, b = {&log, 'b'}, c = {&log, 'c'}, d = {&log, 'd'}, e = {&log, 'e'};
  ml_bytes_list *list = NULL;
  size_t len = 0, i;
  const uint8_t *p;
  int saw_b = 0, saw_c = 0, saw_d = 0;
  memset(&log, 0, sizeof log);

  SECTION("a named message replaces its predecessor (REPLACED), unique ones never do");
  CHECK_OK(ml_broadcast_queue_create(&q, 4));
  CHECK_OK(ml_broadcast_queue_push(q, "key", (const uint8_t *)"a-old", 5, on_done, &a));
  CHECK_OK(ml_broadcast_queue_push(q, "key", (const uint8_t *)"b-new", 5, on_done, &b));
  CHECK(outcome_of(&log, 'a') == ML_BROADCAST_REPLACED);
  CHECK(times_finished(&log, 'b') == 0);
  CHECK(ml_broadcast_queue_len(q) == 1);
  CHECK_OK(ml_broadcast_queue_get(q, 0, 1400, &list));
  REQUIRE(ml_bytes_list_len(list) == 1);
  p = ml_bytes_list_get(list, 0, &len);
  CHECK(len == 5 && memcmp(p, "b-new", 5) == 0);
  ml_bytes_list_free(list);
  CHECK_OK(ml_broadcast_queue_push(q, NULL, (const uint8_t *)"c", 1, on_done, &c));
  CHECK_OK(ml_broadcast_queue_push(q, NULL, (const uint8_t *)"d", 1, on_done, &d));
  CHECK(ml_broadcast_queue_len(q) == 3);

  SECTION("prune drops the most transmitted first (DROPPED)");
  CHECK_OK(ml_broadcast_queue_prune(q, 2)); /* b was handed out once, c and d never */
  CHECK(ml_broadcast_queue_len(q) == 2);
  CHECK(outcome_of(&log, 'b') == ML_BROADCAST_DROPPED);
  CHECK_OK(ml_broadcast_queue_get(q, 0, 1400, &list));
  for (i = 0; i < ml_bytes_list_len(list); ++i) {
    p = ml_bytes_list_get(list, i, &len);
    saw_b += len == 5;
    saw_c += len == 1 && p[0] == 'c';
    saw_d += len == 1 && p[0] == 'd';
  }
  CHECK(saw_b == 0 && saw_c == 1 && saw_d == 1);
  ml_bytes_list_free(list);
  CHECK_OK(ml_broadcast_queue_prune(q, 5)); /* nothing to drop */
  CHECK(ml_broadcast_queue_len(q) == 2);

  SECTION("reset drops everything; a done callback may push again");
  log.repush = q;
  CHECK_OK(ml_broadcast_queue_reset(q));
  CHECK(outcome_of(&log, 'c') == ML_BROADCAST_DROPPED);
  CHECK(outcome_of(&log, 'd') == ML_BROADCAST_DROPPED);
  CHECK(ml_broadcast_queue_len(q) == 1); /* the "r" pushed from inside the callback */
  CHECK_OK(ml_broadcast_queue_reset(q));
  CHECK(ml_broadcast_queue_len(q) == 0);

  SECTION("free reports what is still queued as DROPPED, once");
  CHECK_OK(ml_broadcast_queue_push(q, "e", (const uint8_t *)"e", 1, on_done, &e));
  ml_broadcast_queue_free(q);
  CHECK(times_finished(&log, 'e') == 1);
  CHECK(outcome_of(&log, 'e') == ML_BROADCAST_DROPPED);
  CHECK(times_finished(&log, 'a') == 1 && times_finished(&log, 'b') == 1);
}

static void check_refusals(void) {
  ml_broadcast_queue *q = (ml_broadcast_queue *)1;
  ml_bytes_list *list = (ml_bytes_list *)1;
  SECTION("refusals");
  CHECK(ml_broadcast_queue_create(&q, 0) == ML_E_INVALID && q == NULL);
  CHECK(strstr(ml_last_error(), "retransmit_mult") != NULL);
  CHECK(ml_broadcast_queue_create(&q, 65) == ML_E_INVALID);
  CHECK(ml_broadcast_queue_create(NULL, 3) == ML_E_INVALID);
  CHECK_OK(ml_broadcast_queue_create(&q, 3));
  CHECK(ml_broadcast_queue_push(q, NULL, NULL, 3, NULL, NULL) == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "data") != NULL);
  CHECK(ml_broadcast_queue_push(NULL, NULL, (const uint8_t *)"x", 1, NULL, NULL) == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "queue") != NULL);
  CHECK(ml_broadcast_queue_get(NULL, 0, 10, &list) == ML_E_INVALID && list == NULL);
  CHECK(ml_broadcast_queue_get(q, 0, 10, NULL) == ML_E_INVALID);
  CHECK(ml_broadcast_queue_set_num_nodes(NULL, 3) == ML_E_INVALID);
  CHECK(ml_broadcast_queue_prune(NULL, 3) == ML_E_INVALID);
  CHECK(ml_broadcast_queue_reset(NULL) == ML_E_INVALID);
  CHECK(ml_broadcast_queue_len(NULL) == 0);
  CHECK(ml_bytes_list_len(NULL) == 0);
  CHECK(ml_bytes_list_get(NULL, 0, NULL) == NULL);
  ml_bytes_list_free(NULL);
  ml_broadcast_queue_free(q);
  ml_broadcast_queue_free(NULL);
}

/* docs/abi.md, "Failed calls take nothing": a refused push never runs its done callback, and
 * does not replace a queued message of the same name. */
static void check_failed_push_takes_nothing(void) {
  done_log log;
  done_ctx kept = {NULL, 'k'}, refused = {NULL, 'f'};
  ml_broadcast_queue *q = NULL;
  SECTION("a refused push takes nothing");
  memset(&log, 0, sizeof log);
  kept.log = &log;
  refused.log = &log;
  CHECK_OK(ml_broadcast_queue_create(&q, 3));
  CHECK_OK(ml_broadcast_queue_push(q, "n", (const uint8_t *)"k", 1, on_done, &kept));
  CHECK(ml_broadcast_queue_push(q, "n", NULL, 3, on_done, &refused) == ML_E_INVALID);
  CHECK(ml_broadcast_queue_push(NULL, "n", (const uint8_t *)"f", 1, on_done, &refused) ==
        ML_E_INVALID);
  CHECK(log.count == 0);
  CHECK(ml_broadcast_queue_len(q) == 1);
  ml_broadcast_queue_free(q); /* the kept one leaves as dropped; the refused one never ran */
  CHECK(outcome_of(&log, 'k') == ML_BROADCAST_DROPPED);
  CHECK(times_finished(&log, 'f') == 0);
  CHECK(log.count == 1);
}

int main(void) {
  check_retransmits();
  check_order_and_limit();
  check_named_prune_reset();
  check_refusals();
  check_failed_push_takes_nothing();
  return ml_test_finish("capi_queue");
}
