/* Join errors (unreachable address, malformed address, partial success), ping RTT, unknown
 * ping target, health score, and calls after shutdown. */
#define _POSIX_C_SOURCE 200809L
#include "ml_test.h"

static ml_memberlist *create(const char *name) {
  ml_config *cfg = ml_test_config(name);
  ml_memberlist *ml = NULL;
  /* a short TCP timeout keeps the unreachable-address cases quick */
  if (ml_config_set_tcp_timeout_ms(cfg, 2000) != ML_OK) exit(1);
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, NULL));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  return ml;
}

int main(void) {
  ml_memberlist *a = create("join-a");
  ml_memberlist *b = create("join-b");
  char addr_a[64], named[96];
  const char *addrs[3];
  uint32_t joined = 99;
  ml_status s;
  uint64_t rtt = 0;
  int ok;

  ml_test_address_of(a, addr_a, sizeof addr_a);

  SECTION("unreachable address: an error with a message, joined = 0");
  addrs[0] = "127.0.0.1:1"; /* nothing listens on port 1 */
  s = ml_memberlist_join(b, addrs, 1, &joined);
  printf("join 127.0.0.1:1 -> %s: %s\n", ml_status_str(s), ml_memberlist_last_error(b));
  CHECK(s != ML_OK);
  CHECK(joined == 0);
  CHECK(strlen(ml_memberlist_last_error(b)) > 0);
  CHECK(t_num_members(b) == 1);

  SECTION("malformed address");
  addrs[0] = "[::1";
  joined = 99;
  s = ml_memberlist_join(b, addrs, 1, &joined);
  printf("join [::1 -> %s: %s\n", ml_status_str(s), ml_memberlist_last_error(b));
  CHECK(s != ML_OK && joined == 0);
  CHECK(strlen(ml_memberlist_last_error(b)) > 0);

  SECTION("partial success: one bad and one good address -> ML_OK, joined = 1");
  addrs[0] = "127.0.0.1:1";
  addrs[1] = addr_a;
  joined = 0;
  CHECK_OK(ml_memberlist_join(b, addrs, 2, &joined));
  CHECK(joined == 1);
  WAIT_UNTIL(ok, t_num_members(a) == 2 && t_num_members(b) == 2);
  CHECK(ok);

  SECTION("the name/ prefix form");
  snprintf(named, sizeof named, "join-a/%s", addr_a);
  addrs[0] = named;
  joined = 0;
  CHECK_OK(ml_memberlist_join(b, addrs, 1, &joined));
  CHECK(joined == 1);

  SECTION("ping: RTT of a member, ML_E_NOT_FOUND for an unknown name");
  CHECK_OK(ml_memberlist_ping(b, "join-a", &rtt));
  printf("ping join-a: %llu us\n", (unsigned long long)rtt);
  CHECK(rtt > 0 && rtt < 30000000ull);
  CHECK_OK(ml_memberlist_ping(a, "join-b", NULL)); /* rtt may be NULL */
  rtt = 5;
  CHECK(ml_memberlist_ping(b, "no-such-node", &rtt) == ML_E_NOT_FOUND);
  CHECK(strlen(ml_memberlist_last_error(b)) > 0);
  CHECK(rtt == 0);

  SECTION("health score within Lifeguard's range [0, awareness_max_multiplier - 1]");
  CHECK(t_health_score(a) >= 0 && t_health_score(a) <= 7);

  SECTION("after shutdown: blocking calls return ML_E_CLOSED, queries still answer");
  CHECK_OK(ml_memberlist_shutdown(b));
  CHECK_OK(ml_memberlist_shutdown(b));
  addrs[0] = addr_a;
  CHECK(ml_memberlist_join(b, addrs, 1, &joined) == ML_E_CLOSED);
  CHECK(strstr(ml_memberlist_last_error(b), "shut down") != NULL);
  CHECK(ml_memberlist_ping(b, "join-a", &rtt) == ML_E_CLOSED);
  CHECK(ml_memberlist_leave(b, 100) == ML_E_CLOSED);
  CHECK(t_num_members(b) >= 1);
  {
    ml_node *self = NULL;
    CHECK_OK(ml_memberlist_local_node(b, &self));
    ml_node_free(self);
  }

  ml_memberlist_destroy(b);
  ml_memberlist_destroy(a);
  return ml_test_finish("capi_join");
}
