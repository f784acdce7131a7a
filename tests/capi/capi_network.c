/* 32 memberlists on one in-memory network (ml_network), no sockets, fast timers: they
 * converge; one destroyed without leaving is seen dead by all the others; a partition into
 * two groups is seen by both, and after the heal (automatic reconnect) and the crashed node's
 * restart at its old address all 32 are alive again; with 30% of datagrams lost on every link
 * the cluster is converged again once loss is back to 0. Also: a link's loss and delay
 * reach the wire (ping), an address cannot be used twice, argument checks. */
#include "ml_test.h"

#define N 32
#define GROUP_A 15 /* nodes 0..14 against 15..30 (31 is the crashed one) */

static ml_network *net;
static ml_memberlist *nodes[N];
static char addrs[N][32];
static char names[N][16];

static ml_config *network_config(int i) {
  ml_config *cfg = NULL;
  REQUIRE(ml_config_new_local(&cfg) == ML_OK);
  CHECK_OK(ml_config_set_name(cfg, names[i]));
  CHECK_OK(ml_config_set_network(cfg, net, addrs[i]));
  CHECK_OK(ml_config_set_probe_interval_ms(cfg, 200));
  CHECK_OK(ml_config_set_probe_timeout_ms(cfg, 100));
  CHECK_OK(ml_config_set_gossip_interval_ms(cfg, 50));
  CHECK_OK(ml_config_set_push_pull_interval_ms(cfg, 2000));
  CHECK_OK(ml_config_set_reconnect_interval_ms(cfg, 300));
  CHECK_OK(ml_config_set_log_level(cfg, ML_LOG_OFF));
  return cfg;
}

static void start(int i) {
  ml_config *cfg = network_config(i);
  ml_status s = ml_memberlist_create(&nodes[i], NULL, cfg, NULL);
  if (s != ML_OK) fprintf(stderr, "create %s: %s\n", names[i], ml_last_error());
  REQUIRE(s == ML_OK);
  ml_config_free(cfg);
}

static void join_first(int i) {
  const char *seed = addrs[0];
  uint32_t joined = 0;
  ml_status s = ml_memberlist_join(nodes[i], &seed, 1, &joined);
  if (s != ML_OK) fprintf(stderr, "join %s: %s\n", names[i], ml_memberlist_last_error(nodes[i]));
  CHECK(s == ML_OK && joined == 1);
}

/* Every live node in [from, to) counts `count` alive or suspect members. */
static int all_see(int from, int to, size_t count) {
  int i;
  for (i = from; i < to; ++i)
    if (nodes[i] && t_num_members(nodes[i]) != count) return 0;
  return 1;
}

static int is_member(ml_memberlist *ml, const char *name) {
  ml_node_list *list = NULL;
  size_t i;
  int found = 0;
  if (ml_memberlist_members(ml, &list) != ML_OK) return -1;
  for (i = 0; i < ml_node_list_len(list); ++i)
    if (strcmp(ml_node_name(ml_node_list_get(list, i)), name) == 0) found = 1;
  ml_node_list_free(list);
  return found;
}

/* A ping that answers, trying again until the deadline: under load one may miss the 100 ms
 * probe timeout. */
static int ping_ok(ml_memberlist *ml, const char *name, uint64_t *rtt) {
  int ok;
  WAIT_UNTIL(ok, ml_memberlist_ping(ml, name, rtt) == ML_OK);
  return ok;
}

int main(void) {
  int i, ok;
  double t0 = ml_test_now();

  SECTION("argument checks");
  CHECK(ml_network_create(NULL) == ML_E_INVALID);
  ml_network_destroy(NULL); /* harmless */
  REQUIRE(ml_network_create(&net) == ML_OK && net != NULL);
  {
    ml_config *cfg = NULL;
    const char *one = "10.0.0.1:7946";
    REQUIRE(ml_config_new_local(&cfg) == ML_OK);
    CHECK(ml_config_set_network(NULL, net, "10.0.0.1:7946") == ML_E_INVALID);
    CHECK(ml_config_set_network(cfg, net, NULL) == ML_E_INVALID);
    CHECK(ml_config_set_network(cfg, net, "10.0.0.1") == ML_E_INVALID);       /* no port */
    CHECK(ml_config_set_network(cfg, net, "0.0.0.0:7946") == ML_E_INVALID);  /* unspecified */
    CHECK(ml_config_set_network(cfg, net, "example.com:7946") == ML_E_INVALID); /* no DNS */
    CHECK(ml_config_set_network(cfg, NULL, NULL) == ML_OK); /* back to sockets */
    ml_config_free(cfg);
    CHECK(ml_network_set_default_link(NULL, 0, 0) == ML_E_INVALID);
    CHECK(ml_network_set_default_link(net, 1.5, 0) == ML_E_INVALID);
    CHECK(ml_network_set_default_link(net, -0.1, 0) == ML_E_INVALID);
    CHECK(ml_network_set_default_link(net, 0, 60001) == ML_E_INVALID);
    CHECK(ml_network_set_link(net, "10.0.0.1:7946", "nope", 0, 0) == ML_E_INVALID);
    CHECK(ml_network_partition(net, NULL, 1, &one, 1) == ML_E_INVALID);
    CHECK(ml_network_partition(net, &one, 1, NULL, 0) == ML_OK); /* an empty group cuts nothing */
    CHECK(ml_network_block(net, NULL, 1) == ML_E_INVALID);
    CHECK(ml_network_heal(NULL) == ML_E_INVALID);
    CHECK(ml_network_clear_links(NULL) == ML_E_INVALID);
  }

  for (i = 0; i < N; ++i) {
    snprintf(addrs[i], sizeof addrs[i], "10.0.0.%d:7946", i + 1);
    snprintf(names[i], sizeof names[i], "n%d", i);
  }

  SECTION("32 nodes converge");
  for (i = 0; i < N; ++i) start(i);
  {
    /* A second memberlist cannot take a live one's address. */
    ml_config *cfg = network_config(0);
    ml_memberlist *dup = NULL;
    CHECK_OK(ml_config_set_name(cfg, "dup"));
    CHECK(ml_memberlist_create(&dup, NULL, cfg, NULL) == ML_E_IO && dup == NULL);
    ml_config_free(cfg);
  }
  for (i = 1; i < N; ++i) join_first(i);
  WAIT_UNTIL(ok, all_see(0, N, N));
  CHECK(ok);
  printf("converged after %.1f s\n", ml_test_now() - t0);

  SECTION("a link's loss and delay");
  {
    uint64_t rtt = 0;
    CHECK(ping_ok(nodes[0], "n1", &rtt));
    /* n1's acks to n0 are lost: n0's ping gets no answer. */
    CHECK_OK(ml_network_set_link(net, addrs[1], addrs[0], 1.0, 0));
    CHECK(ml_memberlist_ping(nodes[0], "n1", &rtt) == ML_E_TIMEOUT);
    /* 15 ms each way instead (well within the 100 ms probe timeout): any answer takes at
     * least 30 ms. */
    CHECK_OK(ml_network_set_link(net, addrs[1], addrs[0], 0, 15));
    CHECK_OK(ml_network_set_link(net, addrs[0], addrs[1], 0, 15));
    rtt = 0;
    CHECK(ping_ok(nodes[0], "n1", &rtt));
    CHECK(rtt >= 30000);
    CHECK_OK(ml_network_clear_links(net));
    /* A blocked node is unreachable, and reachable again once unblocked. */
    CHECK_OK(ml_network_block(net, addrs[1], 1));
    CHECK(ml_memberlist_ping(nodes[0], "n1", &rtt) == ML_E_TIMEOUT);
    CHECK_OK(ml_network_block(net, addrs[1], 0));
    CHECK(ping_ok(nodes[0], "n1", &rtt));
  }

  SECTION("a crashed node is seen dead by the others");
  ml_memberlist_destroy(nodes[N - 1]); /* no leave */
  nodes[N - 1] = NULL;
  WAIT_UNTIL(ok, all_see(0, N - 1, N - 1));
  CHECK(ok);
  CHECK(is_member(nodes[0], "n31") == 0);
  CHECK(is_member(nodes[N - 2], "n31") == 0);
  printf("crash detected after %.1f s\n", ml_test_now() - t0);

  SECTION("a partition is seen by both sides, then heals");
  {
    const char *a[GROUP_A], *b[N - 1 - GROUP_A];
    for (i = 0; i < GROUP_A; ++i) a[i] = addrs[i];
    for (i = GROUP_A; i < N - 1; ++i) b[i - GROUP_A] = addrs[i];
    CHECK_OK(ml_network_partition(net, a, GROUP_A, b, N - 1 - GROUP_A));
  }
  WAIT_UNTIL(ok, all_see(0, GROUP_A, GROUP_A) && all_see(GROUP_A, N - 1, N - 1 - GROUP_A));
  CHECK(ok);
  CHECK(is_member(nodes[0], "n20") == 0);
  CHECK(is_member(nodes[20], "n0") == 0);
  printf("partition seen after %.1f s\n", ml_test_now() - t0);
  CHECK_OK(ml_network_heal(net));
  /* The crashed node comes back at its old address; the two sides find each other again
   * through reconnect_interval, with no join from here. */
  start(N - 1);
  join_first(N - 1);
  WAIT_UNTIL(ok, all_see(0, N, N));
  CHECK(ok);
  printf("healed after %.1f s\n", ml_test_now() - t0);

  SECTION("30% loss on every link, then none: converged");
  CHECK_OK(ml_network_set_default_link(net, 0.3, 0));
  {
    /* Long enough for many probes to lose pings and acks (the condition is the elapsed
     * time itself, not a synchronisation). */
    double until = ml_test_now() + 3.0;
    while (ml_test_now() < until) ml_test_sleep_ms(50);
  }
  CHECK(t_num_members(nodes[0]) > 1); /* a lossy network is not a partition */
  CHECK_OK(ml_network_set_default_link(net, 0, 0));
  WAIT_UNTIL(ok, all_see(0, N, N));
  CHECK(ok);
  printf("converged after the loss at %.1f s\n", ml_test_now() - t0);

  SECTION("destroy the network first, then the memberlists");
  ml_network_destroy(net);
  /* The memberlists still hold it: they keep talking. */
  {
    uint64_t rtt = 0;
    CHECK(ping_ok(nodes[0], "n5", &rtt));
  }
  for (i = 0; i < N; ++i) ml_memberlist_destroy(nodes[i]);
  printf("total %.1f s\n", ml_test_now() - t0);
  return ml_test_finish("capi_network");
}
