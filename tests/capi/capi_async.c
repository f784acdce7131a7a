/* ml_memberlist_join_async, _ping_async and _leave_async: argument checks (done never called
 * on refusal), results and messages, done on a library thread and never inside the call, the
 * caller not waiting for the operation (a peer that never answers), more operations than
 * completion threads, done called exactly once with ML_E_CLOSED on shutdown and on destroy
 * (before destroy returns), and the rules inside done (blocking calls refused, async calls
 * and a deferred destroy work). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ml_test.h"

/* One operation's outcome, filled by done. */
typedef struct op {
  int calls; /* how often done ran: must end at exactly 1 */
  ml_status status;
  uint64_t value; /* joined or rtt_us */
  char message[512];
  pthread_t thread;
  /* inside done: what a blocking call and a nested async call returned */
  ml_status nested_blocking, nested_async;
  ml_memberlist *ml;   /* for the nested calls */
  int destroy_inside;  /* done destroys ml */
  struct op *chained;  /* done queues a ping_async reporting here */
} op;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void record(op *o, ml_status status, uint64_t value, const char *message) {
  pthread_mutex_lock(&mu);
  o->calls++;
  o->status = status;
  o->value = value;
  snprintf(o->message, sizeof o->message, "%s", message ? message : "(NULL)");
  o->thread = pthread_self();
  pthread_mutex_unlock(&mu);
}

static int calls_of(op *o) {
  int n;
  pthread_mutex_lock(&mu);
  n = o->calls;
  pthread_mutex_unlock(&mu);
  return n;
}

static void ping_done(void *user_data, ml_status status, uint64_t rtt_us, const char *message) {
  record((op *)user_data, status, rtt_us, message);
}

static void join_done(void *user_data, ml_status status, uint32_t joined, const char *message) {
  op *o = (op *)user_data;
  if (o->ml) {
    const char *addr = "127.0.0.1:1";
    o->nested_blocking = ml_memberlist_join(o->ml, &addr, 1, NULL);
    if (o->chained) o->nested_async = ml_memberlist_ping_async(o->ml, "async-a", ping_done, o->chained);
    if (o->destroy_inside) ml_memberlist_destroy(o->ml);
  }
  record(o, status, joined, message);
}

static void leave_done(void *user_data, ml_status status, const char *message) {
  record((op *)user_data, status, 0, message);
}

static int freed = 0;
static void on_free(void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&mu);
  freed++;
  pthread_mutex_unlock(&mu);
}
static int freed_count(void) {
  int n;
  pthread_mutex_lock(&mu);
  n = freed;
  pthread_mutex_unlock(&mu);
  return n;
}

static ml_memberlist *create(const char *name, uint32_t tcp_timeout_ms, int with_free) {
  ml_config *cfg = ml_test_config(name);
  ml_memberlist *ml = NULL;
  ml_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.version = ML_CALLBACKS_VERSION;
  cb.user_data_free = on_free;
  if (ml_config_set_tcp_timeout_ms(cfg, tcp_timeout_ms) != ML_OK) exit(1);
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, with_free ? &cb : NULL));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  return ml;
}

/* A TCP listener that never accepts: the kernel completes connections into its backlog and
 * nobody ever answers, so a join through it waits for its whole tcp_timeout. */
static int black_hole(char *addr, size_t cap) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int rc;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* (REQUIRE evaluates its condition twice: no calls inside it) */
  rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  if (rc == 0) rc = listen(fd, 64);
  if (rc == 0) rc = getsockname(fd, (struct sockaddr *)&sa, &len);
  REQUIRE(rc == 0);
  snprintf(addr, cap, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
  return fd;
}

#define PENDING 10 /* more operations than a memberlist's 4 completion threads */

int main(void) {
  ml_memberlist *a = create("async-a", 5000, 0);
  ml_memberlist *b = create("async-b", 5000, 0);
  char addr_a[64], hole[64];
  const char *addrs[2];
  op o, unknown, left, pend[PENDING], late;
  int ok, i, hole_fd;

  ml_test_address_of(a, addr_a, sizeof addr_a);
  hole_fd = black_hole(hole, sizeof hole);

  SECTION("refused calls return an error and never call done");
  memset(&o, 0, sizeof o);
  addrs[0] = addr_a;
  CHECK(ml_memberlist_join_async(NULL, addrs, 1, join_done, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_join_async(b, NULL, 1, join_done, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_join_async(b, addrs, 0, join_done, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_join_async(b, addrs, 1, NULL, &o) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(b), "done") != NULL);
  addrs[1] = NULL;
  CHECK(ml_memberlist_join_async(b, addrs, 2, join_done, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_ping_async(NULL, "x", ping_done, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_ping_async(b, NULL, ping_done, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_ping_async(b, "x", NULL, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_leave_async(NULL, 0, leave_done, &o) == ML_E_INVALID);
  CHECK(ml_memberlist_leave_async(b, 0, NULL, &o) == ML_E_INVALID);

  SECTION("join_async: ML_OK, done once on a library thread with joined = 1 and \"\"");
  memset(&o, 0, sizeof o);
  CHECK_OK(ml_memberlist_join_async(b, addrs, 1, join_done, &o));
  WAIT_UNTIL(ok, calls_of(&o) == 1);
  CHECK(ok);
  CHECK(o.status == ML_OK && o.value == 1);
  CHECK(strcmp(o.message, "") == 0);
  CHECK(!pthread_equal(o.thread, pthread_self()));
  WAIT_UNTIL(ok, t_num_members(a) == 2 && t_num_members(b) == 2);
  CHECK(ok);

  SECTION("ping_async: the RTT of a member; ML_E_NOT_FOUND and a message for an unknown name");
  memset(&o, 0, sizeof o);
  memset(&unknown, 0, sizeof unknown);
  CHECK_OK(ml_memberlist_ping_async(b, "async-a", ping_done, &o));
  CHECK_OK(ml_memberlist_ping_async(b, "no-such-node", ping_done, &unknown));
  WAIT_UNTIL(ok, calls_of(&o) == 1 && calls_of(&unknown) == 1);
  CHECK(ok);
  CHECK(o.status == ML_OK && o.value > 0);
  printf("ping_async async-a: %s, %llu us\n", ml_status_str(o.status), (unsigned long long)o.value);
  CHECK(unknown.status == ML_E_NOT_FOUND && unknown.value == 0);
  printf("ping_async no-such-node: %s: %s\n", ml_status_str(unknown.status), unknown.message);
  CHECK(strstr(unknown.message, "no-such-node") != NULL);

  SECTION("inside done: a blocking call is refused, an async one works");
  memset(&o, 0, sizeof o);
  memset(&late, 0, sizeof late);
  o.ml = b;
  o.chained = &late;
  CHECK_OK(ml_memberlist_join_async(b, addrs, 1, join_done, &o));
  WAIT_UNTIL(ok, calls_of(&o) == 1 && calls_of(&late) == 1);
  CHECK(ok);
  CHECK(o.status == ML_OK);
  CHECK(o.nested_blocking == ML_E_STATE);
  CHECK(o.nested_async == ML_OK);
  CHECK(late.status == ML_OK && late.value > 0);

  SECTION("the caller does not wait: joins through a peer that never answers stay pending");
  /* b's tcp_timeout is 5 s, but a fresh node with a long one makes "still pending" certain. */
  {
    ml_memberlist *c = create("async-c", 600000, 1);
    const char *h = hole;
    double t0 = ml_test_now();
    for (i = 0; i < PENDING; i++) {
      memset(&pend[i], 0, sizeof pend[i]);
      CHECK_OK(ml_memberlist_join_async(c, &h, 1, join_done, &pend[i]));
    }
    /* Nothing can answer them for 600 s: every one is still pending now. */
    for (i = 0; i < PENDING; i++) CHECK(calls_of(&pend[i]) == 0);
    printf("%d joins queued in %.3f s, none completed\n", PENDING, ml_test_now() - t0);

    SECTION("shutdown: every pending operation completes once with ML_E_CLOSED");
    CHECK_OK(ml_memberlist_shutdown(c));
    WAIT_UNTIL(ok, calls_of(&pend[PENDING - 1]) == 1 && calls_of(&pend[0]) == 1);
    for (i = 0; i < PENDING; i++) {
      WAIT_UNTIL(ok, calls_of(&pend[i]) == 1);
      CHECK(ok);
      CHECK(pend[i].status == ML_E_CLOSED && pend[i].value == 0);
    }
    printf("after shutdown: %s: %s\n", ml_status_str(pend[0].status), pend[0].message);
    CHECK(strstr(pend[0].message, "shut down") != NULL);
    memset(&late, 0, sizeof late);
    CHECK(ml_memberlist_join_async(c, &h, 1, join_done, &late) == ML_E_CLOSED);
    CHECK(ml_memberlist_ping_async(c, "async-a", ping_done, &late) == ML_E_CLOSED);
    CHECK(ml_memberlist_leave_async(c, 0, leave_done, &late) == ML_E_CLOSED);
    ml_memberlist_destroy(c);
    CHECK(calls_of(&late) == 0);
    for (i = 0; i < PENDING; i++) CHECK(calls_of(&pend[i]) == 1); /* exactly once */
  }

  SECTION("destroy: pending operations complete with ML_E_CLOSED before it returns");
  {
    ml_memberlist *d = create("async-d", 600000, 1);
    const char *h = hole;
    for (i = 0; i < PENDING; i++) {
      memset(&pend[i], 0, sizeof pend[i]);
      CHECK_OK(ml_memberlist_join_async(d, &h, 1, join_done, &pend[i]));
    }
    ml_memberlist_destroy(d);
    for (i = 0; i < PENDING; i++) {
      CHECK(calls_of(&pend[i]) == 1);
      CHECK(pend[i].status == ML_E_CLOSED);
    }
    printf("after destroy: %s: %s\n", ml_status_str(pend[0].status), pend[0].message);
  }

  SECTION("destroy from inside done is deferred until done returns");
  {
    int before = freed_count();
    ml_memberlist *e = create("async-e", 5000, 1);
    memset(&o, 0, sizeof o);
    o.ml = e;
    o.destroy_inside = 1;
    CHECK_OK(ml_memberlist_join_async(e, addrs, 1, join_done, &o));
    WAIT_UNTIL(ok, calls_of(&o) == 1 && freed_count() == before + 1);
    CHECK(ok);
    CHECK(o.status == ML_OK);
  }

  SECTION("leave_async: done once with ML_OK; later calls refused by the node");
  memset(&left, 0, sizeof left);
  CHECK_OK(ml_memberlist_leave_async(b, 5000, leave_done, &left));
  WAIT_UNTIL(ok, calls_of(&left) == 1);
  CHECK(ok);
  CHECK(left.status == ML_OK);
  CHECK(strcmp(left.message, "") == 0);
  memset(&o, 0, sizeof o);
  CHECK_OK(ml_memberlist_join_async(b, addrs, 1, join_done, &o));
  WAIT_UNTIL(ok, calls_of(&o) == 1);
  CHECK(ok);
  CHECK(o.status == ML_E_STATE);
  printf("join after leave: %s: %s\n", ml_status_str(o.status), o.message);

  ml_memberlist_destroy(b);
  ml_memberlist_destroy(a);
  close(hole_fd);
  return ml_test_finish("capi_async");
}
