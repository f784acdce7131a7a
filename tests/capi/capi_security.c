/* Security through the C ABI on loopback: the run-time keyring (add/use/remove/list, the
 * primary cannot be removed), an encrypted pair converges and a node with a wrong key cannot
 * join, a key rotation keeps the pair talking, verify_incoming/outgoing = 0 lets an encrypted
 * node talk to a plaintext one, labels separate clusters, and a CIDR allow-list refuses a
 * node outside it (loopback has the whole 127/8); the push/pull bounds (nodes, stream size)
 * refuse a big cluster's state and max_user_msg_size a large reliable message. */
#define _POSIX_C_SOURCE 200809L
#include "ml_rec.h"

static const uint8_t K1[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t K2[24] = {21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
                               33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44};
static const uint8_t K3[32] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                               9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

/* The keyring's keys equal `want` (primary first). */
static int keys_are(ml_memberlist *ml, const uint8_t *const *want, const size_t *lens, size_t n) {
  ml_bytes_list *list = NULL;
  size_t i, len;
  int ok;
  if (ml_memberlist_keyring_list(ml, &list) != ML_OK) return 0;
  ok = ml_bytes_list_len(list) == n;
  for (i = 0; ok && i < n; ++i) {
    const uint8_t *k = ml_bytes_list_get(list, i, &len);
    ok = k && len == lens[i] && memcmp(k, want[i], len) == 0;
  }
  ml_bytes_list_free(list);
  return ok;
}

static ml_config *keyed(const char *name, const uint8_t *key, size_t len) {
  ml_config *cfg = ml_test_config(name);
  if (key) CHECK_OK(ml_config_add_key(cfg, key, len));
  return cfg;
}

static void check_keyring_api(void) {
  rec n;
  const uint8_t *k12[2] = {K1, K2}, *k21[2] = {K2, K1}, *k2[1] = {K2};
  const size_t l12[2] = {16, 24}, l21[2] = {24, 16}, l2[1] = {24};
  ml_bytes_list *list = (ml_bytes_list *)1;
  SECTION("keyring at run time: add, use, remove, list");
  rec_init(&n, "keys");
  rec_start(&n, ml_test_config(n.name));
  CHECK(keys_are(n.ml, NULL, NULL, 0));
  CHECK_OK(ml_memberlist_keyring_add(n.ml, K1, sizeof K1));
  CHECK_OK(ml_memberlist_keyring_add(n.ml, K2, sizeof K2));
  CHECK(keys_are(n.ml, k12, l12, 2));
  CHECK_OK(ml_memberlist_keyring_use(n.ml, K2, sizeof K2));
  CHECK(keys_are(n.ml, k21, l21, 2));
  CHECK(ml_memberlist_keyring_remove(n.ml, K2, sizeof K2) == ML_E_STATE); /* the primary */
  CHECK(strlen(ml_memberlist_last_error(n.ml)) > 0);
  CHECK(keys_are(n.ml, k21, l21, 2));
  CHECK_OK(ml_memberlist_keyring_remove(n.ml, K1, sizeof K1));
  CHECK(keys_are(n.ml, k2, l2, 1));
  CHECK(ml_memberlist_keyring_use(n.ml, K3, sizeof K3) == ML_E_NOT_FOUND);
  CHECK(ml_memberlist_keyring_add(n.ml, K3, 15) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(n.ml), "key") != NULL);
  CHECK(ml_memberlist_keyring_add(n.ml, NULL, 16) == ML_E_INVALID);
  CHECK(ml_memberlist_keyring_remove(n.ml, NULL, 16) == ML_E_INVALID);
  CHECK(ml_memberlist_keyring_list(n.ml, NULL) == ML_E_INVALID);
  CHECK(ml_memberlist_keyring_list(NULL, &list) == ML_E_INVALID);
  CHECK(ml_memberlist_keyring_add(NULL, K1, 16) == ML_E_INVALID);
  CHECK_OK(ml_memberlist_set_gossip_verify(n.ml, 0, 1));
  CHECK(ml_memberlist_set_gossip_verify(NULL, 1, 1) == ML_E_INVALID);
  CHECK(keys_are(n.ml, k2, l2, 1));
  rec_stop(&n);
}

static void check_encrypted_cluster(void) {
  rec e1, e2, bad, plain;
  int ok;
  const uint8_t *k3[1] = {K3};
  const size_t l3[1] = {32};
  SECTION("an encrypted pair converges");
  rec_init(&e1, "enc-1");
  rec_init(&e2, "enc-2");
  rec_init(&bad, "wrong-key");
  rec_init(&plain, "plaintext");
  rec_start(&e1, keyed(e1.name, K1, sizeof K1));
  rec_start(&e2, keyed(e2.name, K1, sizeof K1));
  CHECK_OK(rec_join(&e2, &e1));
  WAIT_UNTIL(ok, t_num_members(e1.ml) == 2 && t_num_members(e2.ml) == 2);
  CHECK(ok);

  SECTION("a node with a wrong key or no key cannot join");
  rec_start(&bad, keyed(bad.name, K2, sizeof K2));
  CHECK(rec_join(&bad, &e1) != ML_OK);
  printf("wrong key: %s\n", ml_memberlist_last_error(bad.ml));
  rec_start(&plain, keyed(plain.name, NULL, 0));
  CHECK(rec_join(&plain, &e1) != ML_OK);
  printf("no key: %s\n", ml_memberlist_last_error(plain.ml));
  CHECK(t_num_members(bad.ml) == 1 && t_num_members(plain.ml) == 1);
  CHECK(t_num_members(e1.ml) == 2);

  SECTION("key rotation at run time keeps the pair talking");
  CHECK_OK(ml_memberlist_keyring_add(e1.ml, K3, sizeof K3));
  CHECK_OK(ml_memberlist_keyring_add(e2.ml, K3, sizeof K3));
  CHECK_OK(ml_memberlist_keyring_use(e1.ml, K3, sizeof K3));
  CHECK_OK(ml_memberlist_keyring_use(e2.ml, K3, sizeof K3));
  CHECK_OK(ml_memberlist_keyring_remove(e1.ml, K1, sizeof K1));
  CHECK_OK(ml_memberlist_keyring_remove(e2.ml, K1, sizeof K1));
  CHECK(keys_are(e1.ml, k3, l3, 1) && keys_are(e2.ml, k3, l3, 1));
  CHECK_OK(ml_memberlist_send_reliable(e1.ml, "enc-2", (const uint8_t *)"rotated", 7));
  WAIT_UNTIL(ok, REC_GET(&e2, nmsgs) >= 1);
  CHECK(ok);
  rec_lock(&e2);
  CHECK(strcmp(e2.last_msg, "rotated") == 0);
  rec_unlock(&e2);
  CHECK(t_num_members(e1.ml) == 2);
  rec_stop(&plain);
  rec_stop(&bad);
  rec_stop(&e2);
  rec_stop(&e1);
}

static void check_verify_off(void) {
  rec mixed, plain;
  ml_config *cfg;
  int ok;
  SECTION("with verify incoming/outgoing 0 a keyed node talks to a plaintext one");
  rec_init(&mixed, "mixed");
  rec_init(&plain, "plain");
  cfg = keyed(mixed.name, K1, sizeof K1);
  CHECK_OK(ml_config_set_gossip_verify_incoming(cfg, 0));
  CHECK_OK(ml_config_set_gossip_verify_outgoing(cfg, 0));
  rec_start(&mixed, cfg);
  rec_start(&plain, ml_test_config(plain.name));
  CHECK_OK(rec_join(&plain, &mixed));
  WAIT_UNTIL(ok, t_num_members(mixed.ml) == 2 && t_num_members(plain.ml) == 2);
  CHECK(ok);
  rec_stop(&plain);
  rec_stop(&mixed);
}

static void check_labels(void) {
  rec b1, b2, green, none;
  ml_config *cfg;
  int ok;
  SECTION("labels separate clusters");
  rec_init(&b1, "blue-1");
  rec_init(&b2, "blue-2");
  rec_init(&green, "green-1");
  rec_init(&none, "unlabelled");
  cfg = ml_test_config(b1.name);
  CHECK_OK(ml_config_set_label(cfg, "blue"));
  rec_start(&b1, cfg);
  cfg = ml_test_config(b2.name);
  CHECK_OK(ml_config_set_label(cfg, "blue"));
  rec_start(&b2, cfg);
  cfg = ml_test_config(green.name);
  CHECK_OK(ml_config_set_label(cfg, "green"));
  rec_start(&green, cfg);
  rec_start(&none, ml_test_config(none.name));
  CHECK_OK(rec_join(&b2, &b1));
  WAIT_UNTIL(ok, t_num_members(b1.ml) == 2 && t_num_members(b2.ml) == 2);
  CHECK(ok);
  CHECK(rec_join(&green, &b1) != ML_OK);
  printf("other label: %s\n", ml_memberlist_last_error(green.ml));
  CHECK(rec_join(&none, &b1) != ML_OK);
  printf("no label: %s\n", ml_memberlist_last_error(none.ml));
  CHECK(t_num_members(b1.ml) == 2);
  CHECK(t_num_members(green.ml) == 1 && t_num_members(none.ml) == 1);
  rec_stop(&none);
  rec_stop(&green);
  rec_stop(&b2);
  rec_stop(&b1);
}

static void check_cidrs(void) {
  rec picky, outside, inside;
  ml_config *cfg;
  int ok;
  SECTION("a CIDR allow-list refuses a node outside it and accepts one inside");
  rec_init(&picky, "picky");
  rec_init(&outside, "outside");
  rec_init(&inside, "inside");
  cfg = ml_test_config(picky.name); /* binds 127.0.0.1 */
  CHECK_OK(ml_config_add_allowed_cidr(cfg, "127.0.0.2/32"));
  rec_start(&picky, cfg);
  rec_start(&outside, ml_test_config(outside.name)); /* 127.0.0.1: not allowed */
  cfg = ml_test_config(inside.name);
  CHECK_OK(ml_config_set_bind_addr(cfg, "127.0.0.2"));
  rec_start(&inside, cfg);
  CHECK(rec_join(&outside, &picky) != ML_OK);
  printf("outside: %s\n", ml_memberlist_last_error(outside.ml));
  CHECK_OK(rec_join(&inside, &picky));
  WAIT_UNTIL(ok, t_num_members(picky.ml) == 2);
  CHECK(ok);
  rec_lock(&picky);
  CHECK(rec_peer_of(&picky, "outside")->joins == 0);
  rec_unlock(&picky);
  CHECK(t_num_members(outside.ml) == 1);
  rec_stop(&inside);
  rec_stop(&outside);
  rec_stop(&picky);
}

/* Three members with 500 bytes of incompressible metadata each: a push/pull reply of theirs
 * holds 3 nodes and well over 1 KiB. */
static void start_heavy_cluster(rec *h) {
  uint8_t meta[500];
  size_t i, j;
  uint32_t x = 12345;
  int ok;
  const char *names[3] = {"heavy-1", "heavy-2", "heavy-3"};
  for (i = 0; i < 3; ++i) {
    ml_config *cfg = ml_test_config(names[i]);
    rec_init(&h[i], names[i]);
    for (j = 0; j < sizeof meta; ++j) {
      x = x * 1103515245u + 12345u;
      meta[j] = (uint8_t)(x >> 16);
    }
    CHECK_OK(ml_config_set_meta(cfg, meta, sizeof meta));
    rec_start(&h[i], cfg);
    if (i > 0) CHECK_OK(rec_join(&h[i], &h[0]));
  }
  WAIT_UNTIL(ok, t_num_members(h[0].ml) == 3);
  CHECK(ok);
}

static void check_bounds(void) {
  rec h[3], few, small, sender;
  ml_config *cfg;
  uint8_t msg[2000];
  SECTION("bounds: max_push_pull_nodes and max_stream_size refuse a big push/pull");
  start_heavy_cluster(h);
  rec_init(&few, "few-nodes");
  cfg = ml_test_config(few.name);
  CHECK_OK(ml_config_set_max_push_pull_nodes(cfg, 2));
  rec_start(&few, cfg);
  CHECK(rec_join(&few, &h[0]) != ML_OK);
  printf("max_push_pull_nodes 2: %s\n", ml_memberlist_last_error(few.ml));
  CHECK(strstr(ml_memberlist_last_error(few.ml), "max_push_nodes") != NULL);
  /* (No membership check: the responder merged the joiner and may gossip to it already.) */
  rec_init(&small, "small-streams");
  cfg = ml_test_config(small.name);
  CHECK_OK(ml_config_set_max_stream_size(cfg, 1024));
  rec_start(&small, cfg);
  CHECK(rec_join(&small, &h[0]) != ML_OK);
  printf("max_stream_size 1024: %s\n", ml_memberlist_last_error(small.ml));
  CHECK(strstr(ml_memberlist_last_error(small.ml), "1024") != NULL);

  SECTION("bounds: max_user_msg_size refuses a larger reliable message");
  rec_init(&sender, "sender");
  cfg = ml_test_config(sender.name);
  CHECK_OK(ml_config_set_max_user_msg_size(cfg, 1000));
  rec_start(&sender, cfg);
  CHECK_OK(rec_join(&sender, &h[0]));
  memset(msg, 'm', sizeof msg);
  CHECK(ml_memberlist_send_reliable(sender.ml, "heavy-1", msg, sizeof msg) == ML_E_TOO_LARGE);
  CHECK_OK(ml_memberlist_send_reliable(sender.ml, "heavy-1", msg, 1000));
  rec_stop(&sender);
  rec_stop(&small);
  rec_stop(&few);
  rec_stop(&h[2]);
  rec_stop(&h[1]);
  rec_stop(&h[0]);
}

int main(void) {
  check_keyring_api();
  check_bounds();
  check_encrypted_cluster();
  check_verify_off();
  check_labels();
  check_cidrs();
  return ml_test_finish("capi_security");
}
