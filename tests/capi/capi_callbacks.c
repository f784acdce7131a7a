/* Callbacks: user_data reaches every callback and user_data_free runs exactly once (also when
 * create fails); a callback may call the non-blocking functions (members, local node, ...)
 * without deadlock while the blocking ones return ML_E_STATE; ml_memberlist_destroy from the
 * memberlist's own callback is deferred until that callback returns; log lines respect the
 * level; an explicit runtime can be freed while memberlists still use it. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "ml_test.h"

typedef struct {
  pthread_mutex_t mu;
  ml_memberlist *ml; /* set by the main thread after create */
  const char *trigger; /* the remote node whose join triggers the action */
  int action;          /* 0: record only, 1: reentrancy probe, 2: destroy self */
  int events;
  int freed;
  int after_free;
  int done;
  /* results of the reentrancy probe */
  ml_status members_st, local_st, leave_st, join_st, ping_st, shutdown_st;
  size_t members_len, num_members;
  int32_t health;
  char local_name[64];
  char leave_msg[256];
  /* destroy-from-callback */
  int freed_when_destroy_returned;
  /* log lines */
  int log_lines, log_bad_level, log_bad_len;
  uint32_t log_min;
} probe;

static void probe_init(probe *p, const char *trigger, int action) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  p->trigger = trigger;
  p->action = action;
  p->members_st = p->local_st = p->leave_st = p->join_st = p->ping_st = p->shutdown_st = 99;
  p->freed_when_destroy_returned = -1;
}

static int get_int(probe *p, int *field) {
  int v;
  pthread_mutex_lock(&p->mu);
  v = *field;
  pthread_mutex_unlock(&p->mu);
  return v;
}

static void on_free(void *ud) {
  probe *p = (probe *)ud;
  pthread_mutex_lock(&p->mu);
  p->freed++;
  pthread_mutex_unlock(&p->mu);
}

static void on_event(void *ud, uint32_t event, const ml_node *node) {
  probe *p = (probe *)ud;
  ml_memberlist *ml;
  pthread_mutex_lock(&p->mu);
  if (p->freed) p->after_free++;
  p->events++;
  ml = p->ml;
  pthread_mutex_unlock(&p->mu);
  if (event != ML_EVENT_JOIN || !p->trigger || strcmp(ml_node_name(node), p->trigger) != 0 || !ml)
    return;

  if (p->action == 1) {
    /* Non-blocking calls work from a callback; blocking ones are refused. */
    ml_node_list *list = NULL;
    ml_node *self = NULL;
    const char *addrs[1] = {"127.0.0.1:1"};
    uint64_t rtt = 0;
    ml_status members_st = ml_memberlist_members(ml, &list);
    ml_status local_st = ml_memberlist_local_node(ml, &self);
    size_t num = t_num_members(ml);
    int32_t health = t_health_score(ml);
    ml_status leave_st = ml_memberlist_leave(ml, 1000);
    char leave_msg[256];
    ml_status join_st, ping_st, shutdown_st;
    snprintf(leave_msg, sizeof leave_msg, "%s", ml_memberlist_last_error(ml));
    join_st = ml_memberlist_join(ml, addrs, 1, NULL);
    ping_st = ml_memberlist_ping(ml, p->trigger, &rtt);
    shutdown_st = ml_memberlist_shutdown(ml);
    pthread_mutex_lock(&p->mu);
    p->members_st = members_st;
    p->members_len = ml_node_list_len(list);
    p->local_st = local_st;
    snprintf(p->local_name, sizeof p->local_name, "%s", ml_node_name(self));
    p->num_members = num;
    p->health = health;
    p->leave_st = leave_st;
    snprintf(p->leave_msg, sizeof p->leave_msg, "%s", leave_msg);
    p->join_st = join_st;
    p->ping_st = ping_st;
    p->shutdown_st = shutdown_st;
    p->done = 1;
    pthread_mutex_unlock(&p->mu);
    ml_node_list_free(list);
    ml_node_free(self);
  } else if (p->action == 2) {
    int freed_now;
    ml_memberlist_destroy(ml); /* deferred: we are inside ml's own callback */
    pthread_mutex_lock(&p->mu);
    freed_now = p->freed;
    p->freed_when_destroy_returned = freed_now;
    p->ml = NULL;
    p->done = 1;
    pthread_mutex_unlock(&p->mu);
  }
}

static void on_log(void *ud, uint32_t level, const char *msg, size_t len) {
  probe *p = (probe *)ud;
  pthread_mutex_lock(&p->mu);
  p->log_lines++;
  if (level < p->log_min || level > ML_LOG_ERROR) p->log_bad_level++;
  if (msg == NULL || msg[len] != '\0' || strlen(msg) != len) p->log_bad_len++;
  pthread_mutex_unlock(&p->mu);
}

static ml_callbacks callbacks_for(probe *p) {
  ml_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.version = ML_CALLBACKS_VERSION;
  cb.user_data = p;
  cb.user_data_free = on_free;
  cb.on_event = on_event;
  cb.on_log = on_log;
  return cb;
}

static ml_memberlist *create(const char *name, probe *p, ml_runtime *rt) {
  ml_config *cfg = ml_test_config(name);
  ml_callbacks cb = callbacks_for(p);
  ml_memberlist *ml = NULL;
  CHECK_OK(ml_memberlist_create(&ml, rt, cfg, &cb));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  pthread_mutex_lock(&p->mu);
  p->ml = ml;
  pthread_mutex_unlock(&p->mu);
  return ml;
}

static void join(ml_memberlist *ml, ml_memberlist *target) {
  char addr[64];
  const char *addrs[1];
  uint32_t joined = 0;
  ml_test_address_of(target, addr, sizeof addr);
  addrs[0] = addr;
  CHECK_OK(ml_memberlist_join(ml, addrs, 1, &joined));
  CHECK(joined == 1);
}

static void check_reentrancy(ml_memberlist *b) {
  probe pa;
  ml_memberlist *a;
  int ok;
  SECTION("a callback calls members/local_node (works) and leave/join/ping/shutdown (ML_E_STATE)");
  probe_init(&pa, "cb-b", 1);
  a = create("cb-a", &pa, NULL);
  join(a, b);
  WAIT_UNTIL(ok, get_int(&pa, &pa.done));
  REQUIRE(ok);
  CHECK(pa.members_st == ML_OK);
  CHECK(pa.members_len >= 2);
  CHECK(pa.local_st == ML_OK);
  CHECK(strcmp(pa.local_name, "cb-a") == 0);
  CHECK(pa.num_members >= 2);
  CHECK(pa.health >= 0);
  CHECK(pa.leave_st == ML_E_STATE);
  CHECK(strstr(pa.leave_msg, "callback") != NULL);
  printf("leave from a callback: %s\n", pa.leave_msg);
  CHECK(pa.join_st == ML_E_STATE);
  CHECK(pa.ping_st == ML_E_STATE);
  CHECK(pa.shutdown_st == ML_E_STATE);
  /* the refused calls changed nothing: a is still a working member */
  CHECK(t_num_members(a) >= 2);
  {
    uint64_t rtt = 0;
    CHECK_OK(ml_memberlist_ping(a, "cb-b", &rtt));
  }
  CHECK(get_int(&pa, &pa.freed) == 0);
  ml_memberlist_destroy(a);
  CHECK(get_int(&pa, &pa.freed) == 1);
  CHECK(pa.after_free == 0);
}

static void check_destroy_from_callback(ml_memberlist *b) {
  probe pc, pd;
  ml_memberlist *c, *d;
  int ok;
  SECTION("ml_memberlist_destroy from the memberlist's own callback is deferred until it returns");
  /* c destroys itself when it sees cb-d join (after its own join call has returned) */
  probe_init(&pc, "cb-d", 2);
  c = create("cb-c", &pc, NULL);
  join(c, b);
  probe_init(&pd, NULL, 0);
  d = create("cb-d", &pd, NULL);
  join(d, b);
  WAIT_UNTIL(ok, get_int(&pc, &pc.done));
  REQUIRE(ok);
  CHECK(pc.freed_when_destroy_returned == 0); /* not torn down under the running callback */
  WAIT_UNTIL(ok, get_int(&pc, &pc.freed) == 1);
  CHECK(ok);
  printf("deferred destroy completed; user_data_free called %d time(s)\n", get_int(&pc, &pc.freed));
  /* the node is really gone: b stops counting it */
  WAIT_UNTIL(ok, t_num_members(b) == 2); /* b and d */
  CHECK(ok);
  ml_memberlist_destroy(d);
  CHECK(pd.freed == 1);
  CHECK(get_int(&pc, &pc.freed) == 1);
  CHECK(get_int(&pc, &pc.after_free) == 0);
}

static void check_destroy_during_join(ml_memberlist *b) {
  probe pe;
  ml_memberlist *e;
  char addr[64];
  const char *addrs[1];
  ml_status s;
  int ok;
  SECTION("destroy from a callback while this thread is still inside join on the same handle");
  /* e destroys itself on seeing cb-b join, which the join below causes: the teardown must
   * wait for the join call to return before freeing what it uses */
  probe_init(&pe, "cb-b", 2);
  e = create("cb-e", &pe, NULL);
  ml_test_address_of(b, addr, sizeof addr);
  addrs[0] = addr;
  s = ml_memberlist_join(e, addrs, 1, NULL);
  printf("join returned %s while its memberlist was being destroyed\n", ml_status_str(s));
  WAIT_UNTIL(ok, get_int(&pe, &pe.freed) == 1);
  CHECK(ok);
  CHECK(get_int(&pe, &pe.done) == 1);
  CHECK(get_int(&pe, &pe.after_free) == 0);
}

static void check_failed_creates(ml_memberlist *b) {
  ml_config *cfg;
  ml_callbacks cb;
  ml_memberlist *ml = (ml_memberlist *)1;
  probe p;
  ml_status s;
  uint8_t meta[100];
  ml_node *self = NULL;

  SECTION("user_data_free runs exactly once when create fails");
  probe_init(&p, NULL, 0);
  cb = callbacks_for(&p);
  CHECK(ml_memberlist_create(&ml, NULL, NULL, &cb) == ML_E_INVALID && ml == NULL);
  CHECK(p.freed == 1);

  probe_init(&p, NULL, 0);
  cb = callbacks_for(&p);
  CHECK(ml_memberlist_create(NULL, NULL, NULL, &cb) == ML_E_INVALID);
  CHECK(p.freed == 1);

  probe_init(&p, NULL, 0);
  cb = callbacks_for(&p);
  cb.version = 0;
  cfg = ml_test_config("cb-v0");
  CHECK(ml_memberlist_create(&ml, NULL, cfg, &cb) == ML_E_VERSION);
  CHECK(strstr(ml_last_error(), "version") != NULL);
  CHECK(p.freed == 1);
  ml_config_free(cfg);

  /* the port is taken by b */
  probe_init(&p, NULL, 0);
  cb = callbacks_for(&p);
  cfg = ml_test_config("cb-dup");
  CHECK_OK(ml_memberlist_local_node(b, &self));
  CHECK_OK(ml_config_set_bind_port(cfg, ml_node_port(self)));
  ml_node_free(self);
  s = ml_memberlist_create(&ml, NULL, cfg, &cb);
  printf("create on a taken port: %s: %s\n", ml_status_str(s), ml_last_error());
  CHECK(s != ML_OK && ml == NULL);
  CHECK(strlen(ml_last_error()) > 0);
  CHECK(p.freed == 1);
  ml_config_free(cfg);

  /* a config the protocol refuses as a whole: metadata over the limit set afterwards */
  probe_init(&p, NULL, 0);
  cb = callbacks_for(&p);
  cfg = ml_test_config("cb-meta");
  memset(meta, 1, sizeof meta);
  CHECK_OK(ml_config_set_meta(cfg, meta, sizeof meta));
  CHECK_OK(ml_config_set_meta_max_size(cfg, 10));
  s = ml_memberlist_create(&ml, NULL, cfg, &cb);
  printf("create with meta over meta_max_size: %s: %s\n", ml_status_str(s), ml_last_error());
  CHECK(s != ML_OK && ml == NULL);
  CHECK(p.freed == 1);
  ml_config_free(cfg);

  SECTION("a newer caller's callbacks (higher version) are refused with ML_E_VERSION");
  probe_init(&p, NULL, 0);
  cb = callbacks_for(&p);
  cb.version = ML_CALLBACKS_VERSION + 5;
  cfg = ml_test_config("cb-newer");
  ml = NULL;
  s = ml_memberlist_create(&ml, NULL, cfg, &cb);
  printf("create with callbacks version %u: %s: %s\n", cb.version, ml_status_str(s), ml_last_error());
  CHECK(s == ML_E_VERSION && ml == NULL);
  CHECK(strstr(ml_last_error(), "version") != NULL);
  CHECK(get_int(&p, &p.events) == 0); /* nothing was delivered, not even its own join */
  ml_config_free(cfg);
  CHECK(p.freed == 1);

  SECTION("NULL callbacks are allowed");
  cfg = ml_test_config("cb-none");
  ml = NULL;
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, NULL));
  ml_config_free(cfg);
  ml_memberlist_destroy(ml);
}

static void check_logs(void) {
  probe p, q;
  ml_memberlist *ml, *quiet;
  ml_config *cfg;
  ml_callbacks cb;
  char addr[64];
  const char *addrs[2];
  SECTION("log lines: level filter, NUL-terminated at len");
  probe_init(&p, NULL, 0);
  p.log_min = ML_LOG_DEBUG;
  cfg = ml_test_config("cb-log");
  CHECK_OK(ml_config_set_log_level(cfg, ML_LOG_DEBUG));
  cb = callbacks_for(&p);
  ml = NULL;
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, &cb));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);

  probe_init(&q, NULL, 0);
  cfg = ml_test_config("cb-quiet");
  CHECK_OK(ml_config_set_log_level(cfg, ML_LOG_OFF));
  cb = callbacks_for(&q);
  quiet = NULL;
  CHECK_OK(ml_memberlist_create(&quiet, NULL, cfg, &cb));
  ml_config_free(cfg);
  REQUIRE(quiet != NULL);

  /* something to log about: failed joins */
  addrs[0] = "127.0.0.1:1";
  CHECK(ml_memberlist_join(ml, addrs, 1, NULL) != ML_OK);
  CHECK(ml_memberlist_join(quiet, addrs, 1, NULL) != ML_OK);
  ml_test_address_of(ml, addr, sizeof addr);
  addrs[1] = addr;
  CHECK_OK(ml_memberlist_join(quiet, addrs, 2, NULL));
  ml_memberlist_destroy(quiet);
  ml_memberlist_destroy(ml);
  printf("debug-level node logged %d lines; the ML_LOG_OFF node %d\n", p.log_lines, q.log_lines);
  CHECK(p.log_bad_level == 0);
  CHECK(p.log_bad_len == 0);
  CHECK(q.log_lines == 0);
}

static void check_explicit_runtime(void) {
  ml_runtime *rt = NULL;
  probe p1, p2;
  ml_memberlist *m1, *m2;
  int ok;
  SECTION("an explicit runtime shared by two memberlists, freed while they still run");
  CHECK_OK(ml_runtime_create(&rt, 1));
  REQUIRE(rt != NULL);
  probe_init(&p1, NULL, 0);
  probe_init(&p2, NULL, 0);
  m1 = create("rt-1", &p1, rt);
  m2 = create("rt-2", &p2, rt);
  ml_runtime_free(rt); /* the memberlists keep it alive */
  join(m2, m1);
  WAIT_UNTIL(ok, t_num_members(m1) == 2 && t_num_members(m2) == 2);
  CHECK(ok);
  ml_memberlist_destroy(m1);
  ml_memberlist_destroy(m2);
  CHECK(p1.freed == 1 && p2.freed == 1);
}

int main(void) {
  probe pb;
  ml_memberlist *b;
  probe_init(&pb, NULL, 0);
  b = create("cb-b", &pb, NULL);
  check_reentrancy(b);
  check_destroy_from_callback(b);
  check_destroy_during_join(b);
  check_failed_creates(b);
  ml_memberlist_destroy(b);
  CHECK(pb.freed == 1);
  check_logs();
  check_explicit_runtime();
  return ml_test_finish("capi_callbacks");
}
