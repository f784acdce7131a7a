/* Veto hooks and conflicts through the C ABI on loopback clusters: a notify_merge veto (on
 * the responder, then on the joiner) makes the join fail with ML_E_REJECTED and the hook's
 * reason, and the vetoing side's push/pull merges nothing; a notify_alive veto keeps a node out of one
 * member's view while the others see it; two nodes with the same name raise on_conflict; a
 * destroy called inside a hook is deferred and completes after it. */
#define _POSIX_C_SOURCE 200809L
#include "ml_rec.h"

static int has_member(rec *r, const char *name) {
  ml_node_list *list = NULL;
  size_t i;
  int found = 0;
  if (ml_memberlist_members(r->ml, &list) != ML_OK) return 0;
  for (i = 0; i < ml_node_list_len(list); ++i)
    if (strcmp(ml_node_name(ml_node_list_get(list, i)), name) == 0) found = 1;
  ml_node_list_free(list);
  return found;
}

static void check_merge_veto(void) {
  rec v, w, x;
  const char *msg;
  SECTION("responder vetoes: the join fails with ML_E_REJECTED and the reason; nobody merges");
  rec_init(&v, "veto-responder");
  rec_init(&w, "joiner");
  v.veto_merge = 1;
  snprintf(v.veto_reason, sizeof v.veto_reason, "closed club");
  rec_start(&v, ml_test_config(v.name));
  rec_start(&w, ml_test_config(w.name));
  CHECK(rec_join(&w, &v) == ML_E_REJECTED);
  msg = ml_memberlist_last_error(w.ml);
  printf("join error: %s\n", msg);
  CHECK(strstr(msg, "closed club") != NULL);
  CHECK(REC_GET(&v, merge_calls) >= 1);
  CHECK(REC_GET(&v, merge_peers_seen) >= 1); /* the hook saw the joiner's node list */
  CHECK(t_num_members(v.ml) == 1);
  CHECK(t_num_members(w.ml) == 1);
  CHECK(REC_GET(&w, merges_join) == 0 && REC_GET(&v, merges_join) == 0); /* no state merged */

  SECTION("joiner vetoes: its join fails and it merges nothing");
  rec_init(&x, "veto-joiner");
  x.veto_merge = 1; /* no reason given: a default message names the hook */
  rec_start(&x, ml_test_config(x.name));
  CHECK(rec_join(&x, &w) == ML_E_REJECTED);
  msg = ml_memberlist_last_error(x.ml);
  printf("join error: %s\n", msg);
  CHECK(strstr(msg, "notify_merge") != NULL);
  /* Its push/pull merged nothing (the responder, whose hook agreed, did merge the joiner, as
   * in the reference, and may gossip to it already: no membership check here). */
  CHECK(REC_GET(&x, merges_join) == 0);
  rec_stop(&x);
  rec_stop(&w);
  rec_stop(&v);
}

static void check_alive_veto(void) {
  rec a, b, out;
  int ok;
  SECTION("notify_alive veto keeps a node out of one member's view");
  rec_init(&a, "keeper");
  rec_init(&b, "host");
  rec_init(&out, "outcast");
  snprintf(a.veto_alive, sizeof a.veto_alive, "outcast");
  rec_start(&a, ml_test_config(a.name));
  rec_start(&b, ml_test_config(b.name));
  rec_start(&out, ml_test_config(out.name));
  CHECK_OK(rec_join(&b, &a));
  WAIT_UNTIL(ok, t_num_members(a.ml) == 2);
  CHECK(ok);
  CHECK_OK(rec_join(&out, &b));
  WAIT_UNTIL(ok, has_member(&b, "outcast") && has_member(&out, "keeper"));
  CHECK(ok);
  /* The keeper hears about the outcast again and again (gossip, push/pull) and refuses. */
  WAIT_UNTIL(ok, REC_GET(&a, alive_vetoed) >= 3);
  CHECK(ok);
  CHECK(!has_member(&a, "outcast"));
  CHECK(has_member(&b, "outcast"));
  CHECK(t_num_members(a.ml) == 2);
  rec_stop(&out);
  rec_stop(&b);
  rec_stop(&a);
}

static void check_conflict(void) {
  rec a, t1, t2;
  int ok;
  char addr1[128], addr2[128];
  SECTION("a second node with a known name but another address is reported as a conflict");
  rec_init(&a, "observer");
  rec_init(&t1, "twin");
  rec_init(&t2, "twin");
  rec_start(&a, ml_test_config(a.name));
  rec_start(&t1, ml_test_config("twin"));
  rec_start(&t2, ml_test_config("twin"));
  ml_test_address_of(t1.ml, addr1, sizeof addr1);
  ml_test_address_of(t2.ml, addr2, sizeof addr2);
  CHECK_OK(rec_join(&t1, &a));
  WAIT_UNTIL(ok, has_member(&a, "twin"));
  CHECK(ok);
  rec_join(&t2, &a); /* its outcome does not matter: the observer keeps the first twin */
  WAIT_UNTIL(ok, REC_GET(&a, conflicts) >= 1);
  CHECK(ok);
  rec_lock(&a);
  printf("conflict: existing %s, other %s\n", a.conflict_existing, a.conflict_other);
  CHECK(strcmp(a.conflict_existing, addr1) == 0);
  CHECK(strcmp(a.conflict_other, addr2) == 0);
  rec_unlock(&a);
  rec_stop(&t2);
  rec_stop(&t1);
  rec_stop(&a);
}

static void check_destroy_in_hook(void) {
  rec host, guest;
  int ok;
  SECTION("ml_memberlist_destroy from inside a hook is deferred until the hook returns");
  rec_init(&host, "self-destroying");
  rec_init(&guest, "guest");
  host.destroy_in_hook = 1;
  rec_start(&host, ml_test_config(host.name));
  rec_start(&guest, ml_test_config(guest.name));
  rec_join(&guest, &host); /* the host hears of the guest, destroys itself in notify_alive */
  WAIT_UNTIL(ok, REC_GET(&host, freed) == 1);
  CHECK(ok);
  CHECK(REC_GET(&host, freed_when_destroy_returned) == 0);
  CHECK(REC_GET(&host, freed) == 1);
  rec_stop(&guest);
  CHECK(REC_GET(&guest, freed) == 1);
}

int main(void) {
  check_destroy_in_hook();
  check_merge_veto();
  check_alive_veto();
  check_conflict();
  return ml_test_finish("capi_hooks");
}
