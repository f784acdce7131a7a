/* Five memberlists on loopback (Local preset, fast timers, port 0, 127.0.0.1) in one
 * process, all on the default runtime: they join, their member lists agree, one destroyed
 * without leaving is seen dead by the others, one that leaves is seen left, and every
 * user_data_free runs exactly once. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "ml_test.h"

#define N 5
#define MAX_EVENTS 256

typedef struct {
  uint32_t event;
  uint32_t state;
  char name[64];
} recorded;

typedef struct {
  pthread_mutex_t mu;
  recorded events[MAX_EVENTS];
  int count;
  int overflow;
  int freed; /* user_data_free calls */
  int after_free; /* callbacks after user_data_free: must stay 0 */
} recorder;

static void on_event(void *ud, uint32_t event, const ml_node *node) {
  recorder *r = (recorder *)ud;
  pthread_mutex_lock(&r->mu);
  if (r->freed) r->after_free++;
  if (r->count < MAX_EVENTS) {
    recorded *e = &r->events[r->count++];
    e->event = event;
    e->state = t_node_state(node);
    snprintf(e->name, sizeof e->name, "%s", ml_node_name(node));
  } else {
    r->overflow = 1;
  }
  pthread_mutex_unlock(&r->mu);
}

static void on_free(void *ud) {
  recorder *r = (recorder *)ud;
  pthread_mutex_lock(&r->mu);
  r->freed++;
  pthread_mutex_unlock(&r->mu);
}

/* Whether `r` saw `event` for `name` (with `state`, unless state is UINT32_MAX). */
static int saw(recorder *r, uint32_t event, const char *name, uint32_t state) {
  int i, found = 0;
  pthread_mutex_lock(&r->mu);
  for (i = 0; i < r->count && !found; ++i)
    found = r->events[i].event == event && strcmp(r->events[i].name, name) == 0 &&
            (state == UINT32_MAX || r->events[i].state == state);
  pthread_mutex_unlock(&r->mu);
  return found;
}

static int freed(recorder *r) {
  int n;
  pthread_mutex_lock(&r->mu);
  n = r->freed;
  pthread_mutex_unlock(&r->mu);
  return n;
}

static ml_memberlist *nodes[N];
static recorder recs[N];
static char names[N][16];

static int all_see(int alive_from, int alive_to, size_t count) {
  int i;
  for (i = alive_from; i < alive_to; ++i)
    if (t_num_members(nodes[i]) != count) return 0;
  return 1;
}

static int all_saw(int from, int to, uint32_t event, const char *name, uint32_t state) {
  int i;
  for (i = from; i < to; ++i)
    if (!saw(&recs[i], event, name, state)) return 0;
  return 1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted names of node i's members, joined with ','. */
static void member_names(int i, char *buf, size_t cap) {
  ml_node_list *list = NULL;
  const char *sorted[N + 4];
  size_t k, n;
  buf[0] = '\0';
  if (ml_memberlist_members(nodes[i], &list) != ML_OK) return;
  n = ml_node_list_len(list);
  if (n > N + 4) n = N + 4;
  for (k = 0; k < n; ++k) sorted[k] = ml_node_name(ml_node_list_get(list, k));
  qsort(sorted, n, sizeof sorted[0], cmp_str);
  for (k = 0; k < n; ++k) {
    strncat(buf, sorted[k], cap - strlen(buf) - 1);
    strncat(buf, ",", cap - strlen(buf) - 1);
  }
  ml_node_list_free(list);
}

int main(void) {
  char seed[64];
  int i, ok;
  double t0;

  SECTION("create 5 memberlists on 127.0.0.1 (port 0) with the default runtime");
  for (i = 0; i < N; ++i) {
    ml_config *cfg;
    ml_callbacks cb;
    snprintf(names[i], sizeof names[i], "node-%d", i);
    pthread_mutex_init(&recs[i].mu, NULL);
    cfg = ml_test_config(names[i]);
    memset(&cb, 0, sizeof cb);
    cb.version = ML_CALLBACKS_VERSION;
    cb.user_data = &recs[i];
    cb.user_data_free = on_free;
    cb.on_event = on_event;
    CHECK_OK(ml_memberlist_create(&nodes[i], NULL, cfg, &cb));
    REQUIRE(nodes[i] != NULL);
    ml_config_free(cfg);
  }
  {
    ml_node *self = NULL;
    CHECK_OK(ml_memberlist_local_node(nodes[0], &self));
    CHECK(strcmp(ml_node_name(self), "node-0") == 0);
    CHECK(strcmp(ml_node_host(self), "127.0.0.1") == 0);
    CHECK(ml_node_port(self) != 0); /* the port actually bound */
    CHECK(t_node_state(self) == ML_STATE_ALIVE);
    ml_node_free(self);
  }
  ml_test_address_of(nodes[0], seed, sizeof seed);
  printf("seed node at %s\n", seed);

  SECTION("each node fires a join event for itself");
  WAIT_UNTIL(ok, all_saw(0, 1, ML_EVENT_JOIN, "node-0", ML_STATE_ALIVE));
  for (i = 0; i < N; ++i) {
    WAIT_UNTIL(ok, saw(&recs[i], ML_EVENT_JOIN, names[i], ML_STATE_ALIVE));
    CHECK(ok);
  }

  SECTION("nodes 1..4 join node 0; all converge on 5 members");
  t0 = ml_test_now();
  for (i = 1; i < N; ++i) {
    const char *addrs[1];
    uint32_t joined = 0;
    addrs[0] = seed;
    CHECK_OK(ml_memberlist_join(nodes[i], addrs, 1, &joined));
    CHECK(joined == 1);
  }
  WAIT_UNTIL(ok, all_see(0, N, N));
  CHECK(ok);
  printf("converged on %d members in %.2f s\n", N, ml_test_now() - t0);
  for (i = 0; i < N; ++i) {
    int j;
    for (j = 0; j < N; ++j) {
      WAIT_UNTIL(ok, saw(&recs[i], ML_EVENT_JOIN, names[j], ML_STATE_ALIVE));
      if (!ok) fprintf(stderr, "%s never saw %s join\n", names[i], names[j]);
      CHECK(ok);
    }
  }

  SECTION("member lists agree");
  {
    char first[256], other[256];
    member_names(0, first, sizeof first);
    printf("node-0 sees: %s\n", first);
    CHECK(strcmp(first, "node-0,node-1,node-2,node-3,node-4,") == 0);
    for (i = 1; i < N; ++i) {
      member_names(i, other, sizeof other);
      CHECK(strcmp(first, other) == 0);
    }
  }
  {
    /* node 1's entry in node 0's list matches node 1's own view of itself */
    ml_node_list *list = NULL;
    ml_node *self = NULL;
    size_t k;
    int found = 0;
    CHECK_OK(ml_memberlist_members(nodes[0], &list));
    CHECK_OK(ml_memberlist_local_node(nodes[1], &self));
    for (k = 0; k < ml_node_list_len(list); ++k) {
      const ml_node *n = ml_node_list_get(list, k);
      if (strcmp(ml_node_name(n), "node-1") == 0) {
        ml_node *copy = NULL;
        uint8_t v[6];
        found = 1;
        CHECK(strcmp(ml_node_address(n), ml_node_address(self)) == 0);
        CHECK(ml_node_port(n) == ml_node_port(self));
        CHECK(t_node_state(n) == ML_STATE_ALIVE);
        ml_node_versions(n, v);
        CHECK(v[2] == 2); /* protocol version spoken: the default */
        CHECK_OK(ml_node_copy(n, &copy));
        CHECK(strcmp(ml_node_name(copy), "node-1") == 0);
        ml_node_free(copy);
      }
    }
    CHECK(found);
    CHECK(ml_node_list_get(list, ml_node_list_len(list)) == NULL);
    ml_node_list_free(list);
    ml_node_free(self);
  }

  SECTION("node-4 destroyed without leaving: the others see it dead");
  t0 = ml_test_now();
  ml_memberlist_destroy(nodes[4]);
  nodes[4] = NULL;
  CHECK(freed(&recs[4]) == 1); /* user_data_free ran before destroy returned */
  WAIT_UNTIL(ok, all_saw(0, 4, ML_EVENT_LEAVE, "node-4", ML_STATE_DEAD));
  CHECK(ok);
  printf("node-4 seen dead by all in %.2f s\n", ml_test_now() - t0);
  WAIT_UNTIL(ok, all_see(0, 4, 4));
  CHECK(ok);
  CHECK(!all_saw(0, 4, ML_EVENT_LEAVE, "node-4", ML_STATE_LEFT));

  SECTION("node-3 leaves gracefully: the others see it left");
  t0 = ml_test_now();
  CHECK_OK(ml_memberlist_leave(nodes[3], 5000));
  (void)ml_memberlist_leave(nodes[3], 100); /* a second leave: any status, no crash */
  WAIT_UNTIL(ok, all_saw(0, 3, ML_EVENT_LEAVE, "node-3", ML_STATE_LEFT));
  CHECK(ok);
  printf("node-3 seen left by all in %.2f s\n", ml_test_now() - t0);
  WAIT_UNTIL(ok, all_see(0, 3, 3));
  CHECK(ok);
  {
    char first[256];
    member_names(0, first, sizeof first);
    printf("node-0 sees: %s\n", first);
    CHECK(strcmp(first, "node-0,node-1,node-2,") == 0);
  }

  SECTION("shutdown is idempotent; destroy frees user data exactly once");
  CHECK_OK(ml_memberlist_shutdown(nodes[3]));
  CHECK_OK(ml_memberlist_shutdown(nodes[3]));
  for (i = 0; i < 4; ++i) {
    ml_memberlist_destroy(nodes[i]);
    nodes[i] = NULL;
  }
  for (i = 0; i < N; ++i) {
    CHECK(freed(&recs[i]) == 1);
    CHECK(recs[i].after_free == 0);
    CHECK(!recs[i].overflow);
  }
  return ml_test_finish("capi_cluster");
}
