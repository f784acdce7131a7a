/* Events without callbacks (ml_config_set_event_queue, ml_memberlist_poll_events,
 * ml_memberlist_event_fd): argument checks; the event fd is readable exactly while events are
 * queued and is reset by the poll that empties the queue; a burst of events taken by another
 * thread arrives complete and in order; overflow drops the newest and counts them; a cluster
 * of two delivers joins, messages, broadcasts, their outcomes, log lines and leaves through
 * the queue; destroy frees events still queued (the sanitizer runs check the leak). */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <pthread.h>

#include "ml_test.h"

/* The fd is readable within `ms` milliseconds. */
static int readable(int32_t fd, int ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN) != 0;
}

static ml_memberlist *create_queued(const char *name, uint32_t max_queued) {
  ml_config *cfg = ml_test_config(name);
  ml_memberlist *ml = NULL;
  CHECK_OK(ml_config_set_event_queue(cfg, 1));
  if (max_queued) CHECK_OK(ml_config_set_max_queued_callbacks(cfg, max_queued));
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, NULL));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  return ml;
}

/* Polls until nothing is left; returns how many events were taken. */
static size_t drain(ml_memberlist *ml, ml_event_batch *batch) {
  size_t total = 0, n = 0;
  do {
    CHECK_OK(ml_memberlist_poll_events(ml, batch, 16, &n));
    total += n;
  } while (n == 16);
  return total;
}

static int freed_count = 0;
static void count_free(void *ud) {
  (void)ud;
  freed_count++;
}
static void on_event_noop(void *ud, uint32_t ev, const ml_node *node) {
  (void)ud;
  (void)ev;
  (void)node;
}

static void test_arguments(void) {
  ml_config *cfg = ml_test_config("args");
  ml_memberlist *ml = NULL;
  ml_event_batch *batch = NULL;
  ml_callbacks cb;
  int32_t fd = 0;
  size_t count = 7, queued = 7;
  uint64_t dropped = 7;
  SECTION("arguments and the setting");
  CHECK(ml_config_get_event_queue(cfg) == 0);
  CHECK(ml_event_batch_create(NULL) == ML_E_INVALID);
  CHECK_OK(ml_event_batch_create(&batch));
  REQUIRE(batch != NULL);
  CHECK(ml_event_batch_len(batch) == 0);
  CHECK(ml_event_batch_get(batch, 0) == NULL);
  CHECK(ml_event_batch_len(NULL) == 0);
  CHECK(ml_event_batch_get(NULL, 0) == NULL);
  ml_event_batch_free(NULL);

  CHECK(ml_memberlist_poll_events(NULL, batch, 16, &count) == ML_E_INVALID);
  CHECK(count == 0);
  CHECK(ml_memberlist_event_fd(NULL, &fd) == ML_E_INVALID);
  CHECK(fd == -1);
  CHECK(ml_memberlist_get_event_stats(NULL, &queued, &dropped) == ML_E_INVALID);

  /* Queue off (the default): the pull calls say so. */
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, NULL));
  REQUIRE(ml != NULL);
  CHECK(ml_memberlist_poll_events(ml, batch, 16, &count) == ML_E_STATE);
  CHECK(strstr(ml_memberlist_last_error(ml), "ml_config_set_event_queue") != NULL);
  CHECK(ml_memberlist_event_fd(ml, &fd) == ML_E_STATE);
  CHECK(fd == -1);
  CHECK_OK(ml_memberlist_get_event_stats(ml, &queued, &dropped));
  ml_memberlist_destroy(ml);

  /* Queue on: notification callbacks are refused, user_data_free still runs once. */
  CHECK_OK(ml_config_set_event_queue(cfg, 5));
  CHECK(ml_config_get_event_queue(cfg) == 1);
  memset(&cb, 0, sizeof cb);
  cb.version = ML_CALLBACKS_VERSION;
  cb.user_data_free = count_free;
  cb.on_event = on_event_noop;
  ml = NULL;
  CHECK(ml_memberlist_create(&ml, NULL, cfg, &cb) == ML_E_INVALID);
  CHECK(ml == NULL);
  CHECK(strstr(ml_last_error(), "notification callbacks") != NULL);
  CHECK(freed_count == 1);
  /* Hooks and user_data_free alone are fine. */
  cb.on_event = NULL;
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, &cb));
  REQUIRE(ml != NULL);
  CHECK(ml_memberlist_poll_events(ml, NULL, 16, &count) == ML_E_INVALID);
  CHECK(ml_memberlist_poll_events(ml, batch, 0, &count) == ML_E_INVALID);
  CHECK(ml_memberlist_event_fd(ml, NULL) == ML_E_INVALID);
  CHECK_OK(ml_memberlist_event_fd(ml, &fd));
  CHECK(fd >= 0);
  CHECK_OK(ml_memberlist_poll_events(ml, batch, 16, NULL)); /* count may be NULL */
  ml_memberlist_destroy(ml);
  CHECK(freed_count == 2);
  ml_event_batch_free(batch);
  ml_config_free(cfg);
}

static void test_fd_and_local_join(void) {
  ml_memberlist *ml = create_queued("solo", 0);
  ml_event_batch *batch = NULL;
  const ml_event *ev;
  int32_t fd = -1;
  size_t n = 0, queued = 9;
  uint64_t dropped = 9;
  SECTION("the fd follows the queue; the local join is the first event");
  CHECK_OK(ml_event_batch_create(&batch));
  CHECK_OK(ml_memberlist_event_fd(ml, &fd));
  CHECK(readable(fd, 30000)); /* the local node's join */
  CHECK_OK(ml_memberlist_get_event_stats(ml, &queued, &dropped));
  CHECK(queued >= 1);
  CHECK(dropped == 0);
  CHECK_OK(ml_memberlist_poll_events(ml, batch, 1, &n));
  CHECK(n == 1);
  CHECK(ml_event_batch_len(batch) == 1);
  ev = ml_event_batch_get(batch, 0);
  REQUIRE(ev != NULL);
  CHECK(ev->size == sizeof(ml_event));
  CHECK(ev->kind == ML_EVENT_KIND_MEMBER);
  CHECK(ev->type == ML_EVENT_JOIN);
  REQUIRE(ev->node != NULL);
  CHECK(strcmp(ml_node_name(ev->node), "solo") == 0);
  CHECK(ev->other == NULL && ev->data == NULL && ev->len == 0);
  {
    /* The raw address: 127.0.0.1 as ::ffff:127.0.0.1; NULL gives zeros. */
    static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    uint8_t ip[16];
    memset(ip, 0xaa, sizeof ip);
    ml_node_ip(ev->node, ip);
    CHECK(memcmp(ip, loopback, 16) == 0);
    CHECK(strcmp(ml_node_host(ev->node), "127.0.0.1") == 0);
    ml_node_ip(NULL, ip);
    CHECK(ip[0] == 0 && ip[10] == 0 && ip[15] == 0);
  }
  CHECK(strcmp(ev->origin, "") == 0 && strcmp(ev->name, "") == 0);
  CHECK(ml_event_batch_get(batch, 1) == NULL);
  drain(ml, batch);
  CHECK(!readable(fd, 0)); /* reset by the poll that emptied the queue */
  CHECK_OK(ml_memberlist_poll_events(ml, batch, 16, &n));
  CHECK(n == 0);
  CHECK(ml_event_batch_len(batch) == 0);

  /* A new event makes it readable again. */
  {
    uint64_t id1 = 0, id2 = 0;
    const uint8_t x = 'x';
    CHECK_OK(ml_memberlist_queue_broadcast(ml, "k", &x, 1, &id1));
    CHECK_OK(ml_memberlist_queue_broadcast(ml, "k", &x, 1, &id2)); /* replaces id1 */
    CHECK(readable(fd, 30000));
    CHECK_OK(ml_memberlist_poll_events(ml, batch, 16, &n));
    CHECK(n == 1);
    ev = ml_event_batch_get(batch, 0);
    REQUIRE(ev != NULL);
    CHECK(ev->kind == ML_EVENT_KIND_BROADCAST_DONE);
    CHECK(ev->id == id1);
    CHECK(ev->type == ML_BROADCAST_REPLACED);
    CHECK(!readable(fd, 0));
    /* Shutdown keeps the outcomes: id2 ends DROPPED, polled after shutdown. */
    CHECK_OK(ml_memberlist_shutdown(ml));
    CHECK(readable(fd, 30000));
    CHECK_OK(ml_memberlist_poll_events(ml, batch, 16, &n));
    CHECK(n == 1);
    ev = ml_event_batch_get(batch, 0);
    CHECK(ev != NULL && ev->kind == ML_EVENT_KIND_BROADCAST_DONE && ev->id == id2 &&
          ev->type == ML_BROADCAST_DROPPED);
    CHECK(!readable(fd, 0));
  }
  ml_memberlist_destroy(ml);
  ml_event_batch_free(batch);
}

/* ---- a burst taken by another thread ---- */

#define BURST 3000

typedef struct {
  ml_memberlist *ml;
  int32_t fd;
  uint64_t ids[BURST + 8];
  size_t got;
  int bad_kind;
} consumer;

static void *consume(void *arg) {
  consumer *c = (consumer *)arg;
  ml_event_batch *batch = NULL;
  double t0 = ml_test_now();
  if (ml_event_batch_create(&batch) != ML_OK) return NULL;
  while (c->got < BURST - 1 && ml_test_now() - t0 < 60.0) {
    size_t n = 0, i;
    if (!readable(c->fd, 200)) continue;
    if (ml_memberlist_poll_events(c->ml, batch, 64, &n) != ML_OK) break;
    for (i = 0; i < n; ++i) {
      const ml_event *ev = ml_event_batch_get(batch, i);
      if (!ev || ev->kind != ML_EVENT_KIND_BROADCAST_DONE || ev->type != ML_BROADCAST_REPLACED) {
        c->bad_kind++;
        continue;
      }
      if (c->got < BURST + 8) c->ids[c->got++] = ev->id;
    }
  }
  ml_event_batch_free(batch);
  return NULL;
}

static void test_burst(void) {
  static consumer c;
  static uint64_t sent[BURST];
  ml_event_batch *batch = NULL;
  pthread_t th;
  size_t i, in_order = 0;
  uint64_t dropped = 1;
  const uint8_t payload[4] = {1, 2, 3, 4};
  SECTION("a burst of 2999 events, polled by another thread while produced: all, each once");
  memset(&c, 0, sizeof c);
  c.ml = create_queued("burst", 0);
  CHECK_OK(ml_event_batch_create(&batch));
  drain(c.ml, batch); /* the local join */
  CHECK_OK(ml_memberlist_event_fd(c.ml, &c.fd));
  REQUIRE(pthread_create(&th, NULL, consume, &c) == 0);
  /* Each broadcast replaces the previous one of the same name: one REPLACED outcome per call
   * after the first, in the order of the calls. */
  for (i = 0; i < BURST; ++i) CHECK_OK(ml_memberlist_queue_broadcast(c.ml, "same", payload, 4, &sent[i]));
  pthread_join(th, NULL);
  CHECK(c.bad_kind == 0);
  CHECK(c.got == BURST - 1);
  /* Every outcome exactly once (none lost, none twice), in the order of the calls. */
  {
    static unsigned char seen_id[BURST + 2];
    size_t complete = 0;
    memset(seen_id, 0, sizeof seen_id);
    for (i = 0; i < c.got; ++i)
      if (c.ids[i] >= sent[0] && c.ids[i] - sent[0] < BURST && seen_id[c.ids[i] - sent[0]]++ == 0) complete++;
    CHECK(complete == BURST - 1);
    for (i = 0; i < c.got && i < BURST - 1; ++i) {
      if (c.ids[i] != sent[i] && in_order == i)
        fprintf(stderr, "burst: event %zu is the outcome of id %llu, want %llu\n", i,
                (unsigned long long)c.ids[i], (unsigned long long)sent[i]);
      in_order += c.ids[i] == sent[i];
    }
    CHECK(in_order == BURST - 1);
  }
  CHECK_OK(ml_memberlist_get_event_stats(c.ml, NULL, &dropped));
  CHECK(dropped == 0);
  ml_memberlist_destroy(c.ml);
  ml_event_batch_free(batch);
}

static void test_overflow(void) {
  ml_memberlist *ml = create_queued("overflow", 100);
  ml_event_batch *batch = NULL;
  uint64_t ids[300];
  size_t i, n = 0, queued = 0, got = 0, in_order = 0;
  uint64_t dropped = 0;
  int32_t fd = -1;
  int done_seen = 0;
  const uint8_t x = 'x';
  SECTION("overflow: the newest are dropped and counted, the oldest kept");
  CHECK_OK(ml_event_batch_create(&batch));
  CHECK_OK(ml_memberlist_event_fd(ml, &fd));
  drain(ml, batch);
  for (i = 0; i < 300; ++i) CHECK_OK(ml_memberlist_queue_broadcast(ml, "same", &x, 1, &ids[i]));
  /* 299 REPLACED outcomes into a queue of 100. */
  CHECK_OK(ml_memberlist_get_event_stats(ml, &queued, &dropped));
  CHECK(queued == 100);
  CHECK(dropped == 199);
  CHECK(readable(fd, 0));
  do {
    CHECK_OK(ml_memberlist_poll_events(ml, batch, 32, &n));
    for (i = 0; i < n; ++i) {
      const ml_event *ev = ml_event_batch_get(batch, i);
      if (ev && ev->kind == ML_EVENT_KIND_BROADCAST_DONE) {
        in_order += got < 300 && ev->id == ids[got];
        got++;
      }
    }
  } while (n == 32);
  CHECK(got == 100);
  CHECK(in_order == 100);
  CHECK(!readable(fd, 0));
  /* Room again: the next event gets in. */
  CHECK_OK(ml_memberlist_queue_broadcast(ml, "same", &x, 1, &ids[0]));
  CHECK(readable(fd, 30000));
  CHECK_OK(ml_memberlist_poll_events(ml, batch, 32, &n));
  for (i = 0; i < n; ++i) {
    const ml_event *ev = ml_event_batch_get(batch, i);
    if (ev && ev->kind == ML_EVENT_KIND_BROADCAST_DONE && ev->type == ML_BROADCAST_REPLACED) done_seen++;
  }
  CHECK(done_seen == 1);
  CHECK_OK(ml_memberlist_get_event_stats(ml, &queued, &dropped));
  CHECK(dropped == 199);
  {
    /* The same count as a metric. */
    ml_metrics *m = NULL;
    size_t idx;
    CHECK_OK(ml_memberlist_metrics(ml, &m));
    idx = ml_metrics_find(m, "memberlist.callbacks.dropped", NULL);
    CHECK(idx != (size_t)-1 && ml_metrics_value(m, idx) == 199.0);
    ml_metrics_free(m);
  }
  ml_memberlist_destroy(ml);
  ml_event_batch_free(batch);
}

static void test_destroy_with_pending(void) {
  ml_memberlist *ml = create_queued("pending", 0);
  size_t i, queued = 0;
  const uint8_t x = 'x';
  SECTION("destroy with events still queued frees them");
  for (i = 0; i < 200; ++i) CHECK_OK(ml_memberlist_queue_broadcast(ml, "same", &x, 1, NULL));
  CHECK_OK(ml_memberlist_get_event_stats(ml, &queued, NULL));
  CHECK(queued >= 199);
  ml_memberlist_destroy(ml); /* LeakSanitizer reports them if they were not freed */
}

/* ---- two nodes ---- */

typedef struct {
  int joins_b, leaves_b, messages, broadcasts, done_delivered, logs, bad;
  char last_msg[64], last_origin[32], last_name[32];
} seen;

static void take(ml_memberlist *ml, ml_event_batch *batch, seen *s) {
  size_t n = 0, i;
  if (ml_memberlist_poll_events(ml, batch, 8, &n) != ML_OK) return;
  for (i = 0; i < n; ++i) {
    const ml_event *ev = ml_event_batch_get(batch, i);
    if (!ev) {
      s->bad++;
      continue;
    }
    switch (ev->kind) {
      case ML_EVENT_KIND_MEMBER:
        if (ev->node && strcmp(ml_node_name(ev->node), "b") == 0) {
          if (ev->type == ML_EVENT_JOIN) s->joins_b++;
          if (ev->type == ML_EVENT_LEAVE && t_node_state(ev->node) == ML_STATE_LEFT) s->leaves_b++;
        }
        break;
      case ML_EVENT_KIND_MESSAGE:
        s->messages++;
        snprintf(s->last_msg, sizeof s->last_msg, "%.*s", (int)ev->len, (const char *)ev->data);
        break;
      case ML_EVENT_KIND_BROADCAST:
        s->broadcasts++;
        snprintf(s->last_msg, sizeof s->last_msg, "%.*s", (int)ev->len, (const char *)ev->data);
        snprintf(s->last_origin, sizeof s->last_origin, "%s", ev->origin);
        snprintf(s->last_name, sizeof s->last_name, "%s", ev->name);
        break;
      case ML_EVENT_KIND_BROADCAST_DONE:
        if (ev->type == ML_BROADCAST_DELIVERED) s->done_delivered++;
        break;
      case ML_EVENT_KIND_LOG:
        s->logs++;
        if (ev->type > ML_LOG_ERROR || ev->type < ML_LOG_WARN || !ev->data ||
            ev->data[ev->len] != '\0' || strlen((const char *)ev->data) != ev->len)
          s->bad++;
        break;
      default:
        s->bad++;
    }
  }
}

/* Takes events from both until `cond` holds or the deadline passes. */
#define PUMP_UNTIL(ok, cond)                                                          \
  do {                                                                                \
    double t0_ = ml_test_now();                                                       \
    (ok) = 0;                                                                         \
    while (!((ok) = (cond)) && ml_test_now() - t0_ < ML_TEST_DEADLINE_S) {            \
      readable(fd_a, 20);                                                             \
      take(a, ba, &sa);                                                               \
      take(b, bb, &sb);                                                               \
    }                                                                                 \
  } while (0)

static void test_cluster(void) {
  ml_memberlist *a = create_queued("a", 0), *b = create_queued("b", 0);
  ml_event_batch *ba = NULL, *bb = NULL;
  seen sa, sb;
  char addr[64];
  const char *addrs[1];
  const char *bad[1] = {"127.0.0.1:1"};
  int32_t fd_a = -1;
  int ok;
  uint64_t id = 0;
  SECTION("two nodes: join, message, broadcast and outcome, log line, leave");
  memset(&sa, 0, sizeof sa);
  memset(&sb, 0, sizeof sb);
  CHECK_OK(ml_event_batch_create(&ba));
  CHECK_OK(ml_event_batch_create(&bb));
  CHECK_OK(ml_memberlist_event_fd(a, &fd_a));
  ml_test_address_of(a, addr, sizeof addr);
  addrs[0] = addr;
  CHECK_OK(ml_memberlist_join(b, addrs, 1, NULL));
  PUMP_UNTIL(ok, sa.joins_b >= 1);
  CHECK(ok);

  CHECK_OK(ml_memberlist_send_reliable(b, "a", (const uint8_t *)"hello a", 7));
  PUMP_UNTIL(ok, sa.messages >= 1);
  CHECK(ok);
  CHECK(strcmp(sa.last_msg, "hello a") == 0);

  /* Epidemic delivery is probabilistic: another broadcast once the last is done, until a
   * has one (as the bindings' tests do). */
  {
    int round;
    for (round = 1; round <= 50 && sa.broadcasts == 0; ++round) {
      CHECK_OK(ml_memberlist_queue_broadcast(b, "news", (const uint8_t *)"extra", 5, &id));
      PUMP_UNTIL(ok, sb.done_delivered >= round || sa.broadcasts >= 1);
      REQUIRE(ok);
    }
  }
  PUMP_UNTIL(ok, sa.broadcasts >= 1); /* the last one may still be on its way */
  CHECK(ok);
  CHECK(strcmp(sa.last_msg, "extra") == 0);
  CHECK(strcmp(sa.last_origin, "b") == 0);
  CHECK(strcmp(sa.last_name, "news") == 0);

  /* A failed join logs a WARN line (the config's level): it arrives as an event. */
  CHECK(ml_memberlist_join(a, bad, 1, NULL) != ML_OK);
  PUMP_UNTIL(ok, sa.logs >= 1);
  CHECK(ok);

  CHECK_OK(ml_memberlist_leave(b, 5000));
  PUMP_UNTIL(ok, sa.leaves_b >= 1);
  CHECK(ok);
  CHECK(sa.bad == 0);
  CHECK(sb.bad == 0);
  ml_memberlist_destroy(b);
  ml_memberlist_destroy(a);
  ml_event_batch_free(ba);
  ml_event_batch_free(bb);
}

int main(void) {
  test_arguments();
  test_fd_and_local_join();
  test_burst();
  test_overflow();
  test_destroy_with_pending();
  test_cluster();
  return ml_test_finish("capi_events");
}
