/* What include/memberlist.h promises about a few limits and hooks, on loopback nodes:
 * - ml_memberlist_send_best_effort (and send_to_address) take at most 64975 bytes (a
 *   65000-byte encoded message), whatever udp_buffer_size, the checksum or the label: one
 *   byte more is refused with ML_E_TOO_LARGE, a message at the limit is sent and arrives intact;
 * - the "name/" prefix of a join address must not be empty and is not compared with the
 *   name of the node that answers;
 * - notify_merge runs once on each side of a join and never for periodic push/pulls. */
#define _POSIX_C_SOURCE 200809L
#include "ml_rec.h"

#define BEST_EFFORT_LIMIT 64975 /* what the header documents */

static ml_config *limits_config(const char *name, uint32_t udp, uint32_t checksum, const char *label) {
  ml_config *cfg = ml_test_config(name);
  CHECK_OK(ml_config_set_udp_buffer_size(cfg, udp));
  CHECK_OK(ml_config_set_enable_checksum(cfg, checksum));
  CHECK_OK(ml_config_set_label(cfg, label));
  return cfg;
}

static int received(rec *r, size_t len, uint32_t hash) {
  int yes;
  rec_lock(r);
  yes = r->last_msg_len == len && r->last_msg_hash == hash;
  rec_unlock(r);
  return yes;
}

static void check_best_effort_limit(void) {
  rec a, b;
  uint8_t *msg;
  const size_t limit = BEST_EFFORT_LIMIT;
  size_t i;
  int j;
  uint32_t hash;
  char self_addr[128];
  double t0;
  int ok = 0;

  SECTION("best effort: 64975 bytes, one datagram of its own");
  msg = (uint8_t *)malloc(70000);
  REQUIRE(msg != NULL);
  for (i = 0; i < 70000; ++i) msg[i] = (uint8_t)(i * 31 + 7);
  rec_init(&a, "limits-a");
  rec_init(&b, "limits-b");
  rec_start(&a, limits_config(a.name, 1400, 1, ""));
  rec_start(&b, limits_config(b.name, 1400, 1, ""));
  CHECK_OK(rec_join(&b, &a));

  CHECK(ml_memberlist_send_best_effort(a.ml, "limits-b", msg, limit + 1) == ML_E_TOO_LARGE);
  printf("one byte over: %s\n", ml_memberlist_last_error(a.ml));
  CHECK(strstr(ml_memberlist_last_error(a.ml), "send_reliable") != NULL);
  /* At the limit: sent, and it arrives whole (UDP may drop one: resend until seen). */
  hash = rec_hash(msg, limit);
  t0 = ml_test_now();
  while (!(ok = received(&b, limit, hash)) && ml_test_now() - t0 < ML_TEST_DEADLINE_S) {
    CHECK_OK(ml_memberlist_send_best_effort(a.ml, "limits-b", msg, limit));
    for (j = 0; j < 50 && !received(&b, limit, hash); ++j) ml_test_sleep_ms(20);
  }
  CHECK(ok);

  SECTION("send_to_address has the same bound");
  ml_test_address_of(b.ml, self_addr, sizeof self_addr);
  CHECK(ml_memberlist_send_to_address(a.ml, self_addr, msg, limit + 1) == ML_E_TOO_LARGE);
  CHECK_OK(ml_memberlist_send_to_address(a.ml, self_addr, msg, limit));
  rec_stop(&b);
  rec_stop(&a);

  SECTION("the limit does not follow udp_buffer_size, the checksum or the label");
  {
    static const struct {
      uint32_t udp, checksum;
      const char *label;
    } cases[] = {{700, 0, "lbl"}, {100, 1, ""}, {9000, 1, "a-label"}, {65507, 0, ""}};
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
      rec c;
      printf("udp_buffer_size %u, checksum %u, label \"%s\"\n", cases[i].udp, cases[i].checksum,
             cases[i].label);
      rec_init(&c, "limits-c");
      rec_start(&c, limits_config(c.name, cases[i].udp, cases[i].checksum, cases[i].label));
      /* To itself: a member like any other. */
      CHECK(ml_memberlist_send_best_effort(c.ml, "limits-c", msg, limit + 1) == ML_E_TOO_LARGE);
      CHECK_OK(ml_memberlist_send_best_effort(c.ml, "limits-c", msg, limit));
      rec_stop(&c);
    }
  }
  free(msg);
}

static void check_join_name_prefix(void) {
  rec a, b;
  char addr[128], named[192];
  const char *list[1];
  uint32_t joined = 0;

  SECTION("join: the name/ prefix is not compared with the answering node's name");
  rec_init(&a, "prefix-a");
  rec_init(&b, "prefix-b");
  rec_start(&a, ml_test_config(a.name));
  rec_start(&b, ml_test_config(b.name));
  ml_test_address_of(a.ml, addr, sizeof addr);
  snprintf(named, sizeof named, "/%s", addr);
  list[0] = named;
  CHECK(ml_memberlist_join(b.ml, list, 1, &joined) == ML_E_INVALID); /* empty name */
  CHECK(joined == 0);
  CHECK(strstr(ml_memberlist_last_error(b.ml), "name") != NULL);
  snprintf(named, sizeof named, "not-prefix-a/%s", addr);
  CHECK_OK(ml_memberlist_join(b.ml, list, 1, &joined));
  CHECK(joined == 1);
  rec_stop(&b);
  rec_stop(&a);
}

static void check_notify_merge_on_joins_only(void) {
  rec a, b;
  int ok;

  SECTION("notify_merge: once on each side of a join, never for periodic push/pulls");
  rec_init(&a, "merge-a");
  rec_init(&b, "merge-b");
  snprintf(a.state, sizeof a.state, "state-a");
  snprintf(b.state, sizeof b.state, "state-b");
  rec_start(&a, ml_test_config(a.name));
  rec_start(&b, ml_test_config(b.name));
  CHECK_OK(rec_join(&b, &a));
  CHECK(REC_GET(&a, merge_calls) == 1); /* the member contacted, with the joiner's nodes */
  CHECK(REC_GET(&b, merge_calls) == 1); /* the joiner, with the member's answer */
  /* Post-join and periodic push/pulls merge state without asking the hook. */
  WAIT_UNTIL(ok, REC_GET(&a, merges_periodic) >= 2 && REC_GET(&b, merges_periodic) >= 2);
  CHECK(ok);
  CHECK(REC_GET(&a, merge_calls) == 1);
  CHECK(REC_GET(&b, merge_calls) == 1);
  rec_stop(&b);
  rec_stop(&a);
}

int main(void) {
  check_best_effort_limit();
  check_join_name_prefix();
  check_notify_merge_on_joins_only();
  return ml_test_finish("capi_limits");
}
