/* The TCP fallback ping knobs reach the protocol: when a node dies, a peer with TCP pings
 * enabled logs its failed fallback pings to it, while a peer that disabled them for that node
 * (ml_config_disable_tcp_pings_for_node) or for all nodes (ml_config_set_disable_tcp_pings)
 * never tries one. */
#include "ml_test.h"

#include <ctype.h>
#include <pthread.h>

typedef struct {
  pthread_mutex_t mu;
  int fallback_lines; /* log lines about a fallback (TCP) ping */
} counter;

static int contains_nocase(const char *s, const char *word) {
  size_t n = strlen(word), i, j;
  for (i = 0; s[i]; ++i) {
    for (j = 0; j < n && s[i + j] && tolower((unsigned char)s[i + j]) == word[j]; ++j) {
    }
    if (j == n) return 1;
  }
  return 0;
}

static void on_log(void *ud, uint32_t level, const char *msg, size_t len) {
  counter *c = (counter *)ud;
  (void)level;
  (void)len;
  if (contains_nocase(msg, "fallback")) {
    pthread_mutex_lock(&c->mu);
    c->fallback_lines++;
    pthread_mutex_unlock(&c->mu);
  }
}

static int lines(counter *c) {
  int n;
  pthread_mutex_lock(&c->mu);
  n = c->fallback_lines;
  pthread_mutex_unlock(&c->mu);
  return n;
}

static ml_memberlist *create(ml_config *cfg, counter *c) {
  ml_callbacks cb;
  ml_memberlist *ml = NULL;
  memset(&cb, 0, sizeof cb);
  cb.version = ML_CALLBACKS_VERSION;
  cb.user_data = c;
  cb.on_log = on_log;
  CHECK_OK(ml_config_set_log_level(cfg, ML_LOG_DEBUG));
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, &cb));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  return ml;
}

int main(void) {
  counter cn, cp, ca, cv;
  ml_config *cfg;
  ml_memberlist *normal, *per_node, *all_off, *victim;
  char addr[64];
  const char *addrs[1];
  int ok;

  pthread_mutex_init(&cn.mu, NULL);
  pthread_mutex_init(&cp.mu, NULL);
  pthread_mutex_init(&ca.mu, NULL);
  pthread_mutex_init(&cv.mu, NULL);
  cn.fallback_lines = cp.fallback_lines = ca.fallback_lines = cv.fallback_lines = 0;

  SECTION("three observers and a victim on loopback");
  normal = create(ml_test_config("tcp-normal"), &cn);
  cfg = ml_test_config("tcp-per-node");
  CHECK_OK(ml_config_disable_tcp_pings_for_node(cfg, "some-other-node"));
  CHECK_OK(ml_config_disable_tcp_pings_for_node(cfg, "tcp-victim"));
  per_node = create(cfg, &cp);
  cfg = ml_test_config("tcp-all-off");
  CHECK_OK(ml_config_set_disable_tcp_pings(cfg, 1));
  all_off = create(cfg, &ca);
  victim = create(ml_test_config("tcp-victim"), &cv);

  ml_test_address_of(normal, addr, sizeof addr);
  addrs[0] = addr;
  CHECK_OK(ml_memberlist_join(per_node, addrs, 1, NULL));
  CHECK_OK(ml_memberlist_join(all_off, addrs, 1, NULL));
  CHECK_OK(ml_memberlist_join(victim, addrs, 1, NULL));
  WAIT_UNTIL(ok, t_num_members(normal) == 4 && t_num_members(per_node) == 4 &&
                     t_num_members(all_off) == 4);
  REQUIRE(ok);

  SECTION("the victim dies; only the normal observer tries TCP fallback pings");
  ml_memberlist_destroy(victim);
  WAIT_UNTIL(ok, t_num_members(normal) == 3 && t_num_members(per_node) == 3 &&
                     t_num_members(all_off) == 3);
  CHECK(ok);
  /* the control: it shows the test can see fallback pings at all */
  WAIT_UNTIL(ok, lines(&cn) > 0);
  printf("fallback-ping log lines: normal %d, per-node opt-out %d, all disabled %d\n", lines(&cn),
         lines(&cp), lines(&ca));
  CHECK(lines(&cn) > 0);
  CHECK(lines(&cp) == 0);
  CHECK(lines(&ca) == 0);

  ml_memberlist_destroy(normal);
  ml_memberlist_destroy(per_node);
  ml_memberlist_destroy(all_off);
  return ml_test_finish("capi_tcp_ping");
}
