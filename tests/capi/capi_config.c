/* ml_config: the three presets, every setter/getter pair at both ends of its range, the
 * refusals (with a message naming the knob), strings, metadata, clone; label, keys and
 * allowed CIDRs (validated when added). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <unistd.h>

#include "ml_test.h"

typedef struct {
  const char *name;
  ml_status (*set)(ml_config *, uint32_t);
  uint32_t (*get)(const ml_config *);
  uint32_t lo, hi;        /* the documented range */
  uint32_t lan, wan, local; /* preset values (hashicorp/memberlist's Default*Config) */
} knob32;

#define K(n, lo, hi, lan, wan, local) \
  {#n, ml_config_set_##n, ml_config_get_##n, lo, hi, lan, wan, local}

static const knob32 knobs[] = {
    K(protocol_version, 1, 5, 2, 2, 2),
    K(tcp_timeout_ms, 1, 86400000, 10000, 30000, 1000),
    K(indirect_checks, 0, 64, 3, 3, 1),
    K(retransmit_mult, 1, 64, 4, 4, 2),
    K(suspicion_mult, 1, 64, 4, 6, 3),
    K(suspicion_max_timeout_mult, 1, 64, 6, 6, 6),
    K(push_pull_interval_ms, 0, 86400000, 30000, 60000, 15000),
    K(probe_interval_ms, 0, 86400000, 1000, 5000, 1000),
    K(probe_timeout_ms, 1, 86400000, 500, 3000, 200),
    K(disable_tcp_pings, 0, UINT32_MAX, 0, 0, 0),
    K(awareness_max_multiplier, 1, 64, 8, 8, 8),
    K(gossip_interval_ms, 0, 86400000, 200, 500, 100),
    K(gossip_nodes, 0, 1024, 3, 4, 3),
    K(gossip_to_the_dead_time_ms, 0, 86400000, 30000, 60000, 15000),
    K(udp_buffer_size, 95, 65507, 1400, 1400, 1400),
    K(dead_node_reclaim_time_ms, 0, 86400000, 0, 0, 0),
    K(handoff_queue_depth, 1, 1u << 20, 1024, 1024, 1024),
    K(meta_max_size, 0, 65535, 512, 512, 512),
    K(log_level, ML_LOG_TRACE, ML_LOG_OFF, ML_LOG_INFO, ML_LOG_INFO, ML_LOG_INFO),
    /* application data, security and bounds (defaults as the reference) */
    K(max_user_msg_size, 1, UINT32_MAX, 20u << 20, 20u << 20, 20u << 20),
    K(skip_inbound_label_check, 0, UINT32_MAX, 0, 0, 0),
    K(gossip_verify_incoming, 0, UINT32_MAX, 1, 1, 1),
    K(gossip_verify_outgoing, 0, UINT32_MAX, 1, 1, 1),
    K(enable_compression, 0, UINT32_MAX, 1, 1, 1),
    K(enable_checksum, 0, UINT32_MAX, 1, 1, 1),
    K(max_stream_size, 1024, UINT32_MAX, 20u << 20, 20u << 20, 20u << 20),
    K(max_push_pull_nodes, 1, UINT32_MAX, 1048576, 1048576, 1048576),
    K(max_decompressed_size, 1024, UINT32_MAX, 40u << 20, 40u << 20, 40u << 20),
    K(max_concurrent_streams, 1, 65535, 128, 128, 128),
    K(post_join_push_pulls, 0, 10, 3, 3, 3),
    K(max_broadcast_origins, 1, 1u << 24, 4096, 4096, 4096),
    K(max_replies_per_packet, 1, 255, 4, 4, 4),
    K(max_queued_broadcasts, 1, 1u << 24, 4096, 4096, 4096),
    K(max_queued_broadcast_bytes, 65536, UINT32_MAX, 4u << 20, 4u << 20, 4u << 20),
    K(max_repair_broadcasts, 0, 4096, 256, 256, 256),
    K(max_inbound_connections_per_source, 1, 65535, 32, 32, 32),
    K(max_inbound_stream_bytes, 1024, UINT32_MAX, 64u << 20, 64u << 20, 64u << 20),
    K(reconnect_interval_ms, 0, 86400000, 30000, 30000, 30000),
    K(reconnect_timeout_ms, 0, 86400000, 86400000, 86400000, 86400000),
    K(max_reconnect_members, 1, 1u << 24, 1024, 1024, 1024),
    K(reconnect_seeds, 0, UINT32_MAX, 1, 1, 1),
    K(event_queue, 0, UINT32_MAX, 0, 0, 0),
    K(wire_format, ML_WIRE_NATIVE, ML_WIRE_HASHICORP, ML_WIRE_NATIVE, ML_WIRE_NATIVE, ML_WIRE_NATIVE),
};

/* Knobs that are flags: any non-zero value reads back as 1. */
static int is_flag(const char *name) {
  static const char *const flags[] = {"disable_tcp_pings", "skip_inbound_label_check",
                                      "gossip_verify_incoming", "gossip_verify_outgoing",
                                      "enable_compression", "enable_checksum", "reconnect_seeds",
                                      "event_queue"};
  size_t i;
  for (i = 0; i < sizeof flags / sizeof flags[0]; ++i)
    if (strcmp(name, flags[i]) == 0) return 1;
  return 0;
}
#define NKNOBS (sizeof knobs / sizeof knobs[0])

static void check_presets(void) {
  ml_status (*ctor[3])(ml_config **) = {ml_config_new_lan, ml_config_new_wan, ml_config_new_local};
  const char *names[3] = {"lan", "wan", "local"};
  char host[256] = {0};
  size_t p, i;
  gethostname(host, sizeof host - 1);
  for (p = 0; p < 3; ++p) {
    ml_config *cfg = NULL;
    printf("-- preset %s\n", names[p]);
    CHECK_OK(ctor[p](&cfg));
    REQUIRE(cfg != NULL);
    for (i = 0; i < NKNOBS; ++i) {
      uint32_t want = p == 0 ? knobs[i].lan : p == 1 ? knobs[i].wan : knobs[i].local;
      uint32_t got = knobs[i].get(cfg);
      if (got != want) fprintf(stderr, "preset %s: %s is %u, expected %u\n", names[p], knobs[i].name, got, want);
      CHECK(got == want);
    }
    CHECK(ml_config_get_bind_port(cfg) == 7946);
    CHECK(ml_config_get_advertise_port(cfg) == 0);
    CHECK(strcmp(ml_config_get_bind_addr(cfg), "0.0.0.0") == 0);
    CHECK(strcmp(ml_config_get_advertise_addr(cfg), "") == 0);
    CHECK(strcmp(ml_config_get_name(cfg), host) == 0); /* default name: the host name */
    CHECK(ml_config_get_seed(cfg) == 0);
    CHECK(strcmp(ml_config_get_label(cfg), "") == 0);
    CHECK(ml_config_get_key_count(cfg) == 0);
    CHECK(ml_config_get_allowed_cidr_count(cfg) == 0);
    ml_config_free(cfg);
  }
}

static void check_ranges(void) {
  ml_config *cfg = NULL;
  size_t i;
  SECTION("every numeric knob: both ends accepted, one step outside refused");
  CHECK_OK(ml_config_new_lan(&cfg));
  for (i = 0; i < NKNOBS; ++i) {
    const knob32 *k = &knobs[i];
    uint32_t before;
    CHECK_OK(k->set(cfg, k->lo));
    CHECK(k->get(cfg) == k->lo);
    CHECK_OK(k->set(cfg, k->hi));
    /* flags read back as 0/1 */
    CHECK(k->get(cfg) == (is_flag(k->name) ? 1 : k->hi));
    before = k->get(cfg);
    if (k->lo > 0) {
      CHECK(k->set(cfg, k->lo - 1) == ML_E_INVALID);
      CHECK(strstr(ml_last_error(), k->name) != NULL); /* the message names the knob */
      CHECK(k->get(cfg) == before);                     /* a refusal changes nothing */
    }
    if (k->hi < UINT32_MAX) {
      CHECK(k->set(cfg, k->hi + 1) == ML_E_INVALID);
      CHECK(strstr(ml_last_error(), k->name) != NULL);
      CHECK(strstr(ml_last_error(), "range") != NULL);
      CHECK(k->get(cfg) == before);
    }
    CHECK(k->set(NULL, k->lo) == ML_E_INVALID);
    CHECK(k->get(NULL) == 0);
  }
  /* non-zero means "disabled" for the flag */
  CHECK_OK(ml_config_set_disable_tcp_pings(cfg, 7));
  CHECK(ml_config_get_disable_tcp_pings(cfg) == 1);

  SECTION("16- and 64-bit knobs");
  CHECK_OK(ml_config_set_bind_port(cfg, 0));
  CHECK(ml_config_get_bind_port(cfg) == 0);
  CHECK_OK(ml_config_set_bind_port(cfg, 65535));
  CHECK(ml_config_get_bind_port(cfg) == 65535);
  CHECK_OK(ml_config_set_advertise_port(cfg, 12345));
  CHECK(ml_config_get_advertise_port(cfg) == 12345);
  CHECK(ml_config_set_bind_port(NULL, 1) == ML_E_INVALID);
  CHECK(ml_config_set_advertise_port(NULL, 1) == ML_E_INVALID);
  CHECK_OK(ml_config_set_seed(cfg, UINT64_MAX));
  CHECK(ml_config_get_seed(cfg) == UINT64_MAX);
  CHECK_OK(ml_config_set_seed(cfg, 0));
  CHECK(ml_config_get_seed(cfg) == 0);
  CHECK(ml_config_set_seed(NULL, 1) == ML_E_INVALID);
  CHECK(ml_config_get_seed(NULL) == 0);
  ml_config_free(cfg);
}

static void check_strings(void) {
  ml_config *cfg = NULL, *copy = NULL;
  char long_name[300];
  uint8_t v = 9, mn = 9, mx = 9;
  const uint8_t meta[4] = {1, 2, 3, 4};
  uint8_t big[600];
  const uint8_t *got;
  size_t len = 99;

  SECTION("name");
  CHECK_OK(ml_config_new_local(&cfg));
  CHECK_OK(ml_config_set_name(cfg, "node-a"));
  CHECK(strcmp(ml_config_get_name(cfg), "node-a") == 0);
  CHECK(ml_config_set_name(cfg, "") == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "name") != NULL);
  CHECK(ml_config_set_name(cfg, NULL) == ML_E_INVALID);
  memset(long_name, 'x', sizeof long_name);
  long_name[255] = '\0';
  CHECK_OK(ml_config_set_name(cfg, long_name)); /* 255 bytes: the limit */
  long_name[255] = 'x';
  long_name[256] = '\0';
  CHECK(ml_config_set_name(cfg, long_name) == ML_E_INVALID);
  CHECK(strlen(ml_config_get_name(cfg)) == 255);
  CHECK_OK(ml_config_set_name(cfg, "node-a"));

  SECTION("bind and advertise addresses");
  CHECK_OK(ml_config_set_bind_addr(cfg, "127.0.0.1"));
  CHECK(strcmp(ml_config_get_bind_addr(cfg), "127.0.0.1") == 0);
  CHECK_OK(ml_config_set_bind_addr(cfg, "::1"));
  CHECK(strcmp(ml_config_get_bind_addr(cfg), "::1") == 0);
  CHECK(ml_config_set_bind_addr(cfg, "not-an-ip") == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "bind_addr") != NULL);
  CHECK(ml_config_set_bind_addr(cfg, "") == ML_E_INVALID);
  CHECK(ml_config_set_bind_addr(cfg, NULL) == ML_E_INVALID);
  CHECK(strcmp(ml_config_get_bind_addr(cfg), "::1") == 0);
  CHECK_OK(ml_config_set_advertise_addr(cfg, "10.1.2.3"));
  CHECK(strcmp(ml_config_get_advertise_addr(cfg), "10.1.2.3") == 0);
  CHECK_OK(ml_config_set_advertise_addr(cfg, ""));
  CHECK(strcmp(ml_config_get_advertise_addr(cfg), "") == 0);
  CHECK(ml_config_set_advertise_addr(cfg, "300.1.1.1") == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "advertise_addr") != NULL);

  SECTION("delegate protocol versions");
  CHECK_OK(ml_config_set_delegate_protocol(cfg, 2, 1, 3));
  ml_config_get_delegate_protocol(cfg, &v, &mn, &mx);
  CHECK(v == 2 && mn == 1 && mx == 3);
  CHECK(ml_config_set_delegate_protocol(cfg, 4, 1, 3) == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "delegate_protocol") != NULL);
  CHECK(ml_config_set_delegate_protocol(cfg, 1, 2, 1) == ML_E_INVALID);
  ml_config_get_delegate_protocol(cfg, &v, &mn, &mx);
  CHECK(v == 2 && mn == 1 && mx == 3);
  ml_config_get_delegate_protocol(cfg, NULL, NULL, NULL); /* NULL outputs are allowed */
  ml_config_get_delegate_protocol(NULL, &v, &mn, &mx);
  CHECK(v == 0 && mn == 0 && mx == 0);

  SECTION("per-node TCP ping opt-out");
  CHECK_OK(ml_config_disable_tcp_pings_for_node(cfg, "node-b"));
  CHECK_OK(ml_config_disable_tcp_pings_for_node(cfg, "node-c"));
  CHECK(ml_config_disable_tcp_pings_for_node(cfg, "") == ML_E_INVALID);
  CHECK(ml_config_disable_tcp_pings_for_node(cfg, NULL) == ML_E_INVALID);
  CHECK(ml_config_disable_tcp_pings_for_node(NULL, "x") == ML_E_INVALID);

  SECTION("metadata");
  got = ml_config_get_meta(cfg, &len);
  CHECK(len == 0);
  CHECK_OK(ml_config_set_meta(cfg, meta, sizeof meta));
  got = ml_config_get_meta(cfg, &len);
  CHECK(len == 4 && got != NULL && memcmp(got, meta, 4) == 0);
  memset(big, 7, sizeof big);
  CHECK(ml_config_set_meta(cfg, big, 513) == ML_E_TOO_LARGE); /* meta_max_size is 512 */
  CHECK(strstr(ml_last_error(), "meta") != NULL);
  CHECK_OK(ml_config_set_meta(cfg, big, 512));
  CHECK_OK(ml_config_set_meta_max_size(cfg, 600));
  CHECK_OK(ml_config_set_meta(cfg, big, 600));
  CHECK(ml_config_set_meta(cfg, NULL, 3) == ML_E_INVALID);
  CHECK_OK(ml_config_set_meta(cfg, meta, 2));
  CHECK_OK(ml_config_set_meta(cfg, NULL, 0));
  got = ml_config_get_meta(cfg, &len);
  CHECK(len == 0);
  CHECK_OK(ml_config_set_meta(cfg, meta, 3));
  CHECK(ml_config_get_meta(NULL, &len) == NULL && len == 0);
  CHECK(ml_config_get_meta(cfg, NULL) != NULL);

  SECTION("clone is a deep, independent copy");
  CHECK_OK(ml_config_set_probe_interval_ms(cfg, 1234));
  CHECK_OK(ml_config_clone(cfg, &copy));
  REQUIRE(copy != NULL);
  CHECK(ml_config_get_probe_interval_ms(copy) == 1234);
  CHECK(strcmp(ml_config_get_name(copy), "node-a") == 0);
  got = ml_config_get_meta(copy, &len);
  CHECK(len == 3 && memcmp(got, meta, 3) == 0);
  CHECK_OK(ml_config_set_name(copy, "node-z"));
  CHECK_OK(ml_config_set_probe_interval_ms(copy, 99));
  CHECK(strcmp(ml_config_get_name(cfg), "node-a") == 0);
  CHECK(ml_config_get_probe_interval_ms(cfg) == 1234);
  ml_config_free(copy);
  ml_config_free(cfg);
}

static void check_security(void) {
  ml_config *cfg = NULL, *copy = NULL;
  char long_label[300];
  uint8_t key[33];
  size_t n;

  SECTION("label");
  CHECK_OK(ml_config_new_lan(&cfg));
  CHECK_OK(ml_config_set_label(cfg, "cluster-a"));
  CHECK(strcmp(ml_config_get_label(cfg), "cluster-a") == 0);
  memset(long_label, 'l', sizeof long_label);
  long_label[255] = '\0';
  CHECK_OK(ml_config_set_label(cfg, long_label)); /* 255 bytes: the limit */
  long_label[255] = 'l';
  long_label[256] = '\0';
  CHECK(ml_config_set_label(cfg, long_label) == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "label") != NULL);
  CHECK(strlen(ml_config_get_label(cfg)) == 255);
  CHECK(ml_config_set_label(cfg, NULL) == ML_E_INVALID);
  CHECK(ml_config_set_label(NULL, "x") == ML_E_INVALID);
  CHECK_OK(ml_config_set_label(cfg, ""));
  CHECK(strcmp(ml_config_get_label(cfg), "") == 0);
  CHECK(strcmp(ml_config_get_label(NULL), "") == 0);

  SECTION("keys: 16, 24 or 32 bytes, validated when added");
  for (n = 0; n < sizeof key; ++n) key[n] = (uint8_t)n;
  CHECK_OK(ml_config_add_key(cfg, key, 16));
  CHECK_OK(ml_config_add_key(cfg, key, 24));
  CHECK_OK(ml_config_add_key(cfg, key, 32));
  CHECK(ml_config_get_key_count(cfg) == 3);
  CHECK_OK(ml_config_add_key(cfg, key, 16)); /* already installed: no-op */
  CHECK(ml_config_get_key_count(cfg) == 3);
  CHECK(ml_config_add_key(cfg, key, 15) == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "key") != NULL);
  CHECK(ml_config_add_key(cfg, key, 33) == ML_E_INVALID);
  CHECK(ml_config_add_key(cfg, key, 0) == ML_E_INVALID);
  CHECK(ml_config_add_key(cfg, NULL, 16) == ML_E_INVALID);
  CHECK(ml_config_add_key(NULL, key, 16) == ML_E_INVALID);
  CHECK(ml_config_get_key_count(cfg) == 3);
  CHECK(ml_config_get_key_count(NULL) == 0);

  SECTION("allowed CIDRs: validated when added, the message names the entry");
  CHECK_OK(ml_config_add_allowed_cidr(cfg, "10.0.0.0/8"));
  CHECK_OK(ml_config_add_allowed_cidr(cfg, "127.0.0.2/32"));
  CHECK_OK(ml_config_add_allowed_cidr(cfg, "fd00::/8"));
  CHECK_OK(ml_config_add_allowed_cidr(cfg, "::/0"));
  CHECK_OK(ml_config_add_allowed_cidr(cfg, "192.168.1.7")); /* one address: /32 */
  CHECK(ml_config_get_allowed_cidr_count(cfg) == 5);
  CHECK(ml_config_add_allowed_cidr(cfg, "10.0.0.0/33") == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "10.0.0.0/33") != NULL);
  CHECK(ml_config_add_allowed_cidr(cfg, "10.0.0.0/8x") == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "10.0.0.0/8x") != NULL);
  CHECK(ml_config_add_allowed_cidr(cfg, "bogus/8") == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "bogus/8") != NULL);
  CHECK(ml_config_add_allowed_cidr(cfg, "fd00::/129") == ML_E_INVALID);
  CHECK(ml_config_add_allowed_cidr(cfg, "10.0.0.0/-1") == ML_E_INVALID);
  CHECK(ml_config_add_allowed_cidr(cfg, "10.0.0.0/") == ML_E_INVALID);
  CHECK(ml_config_add_allowed_cidr(cfg, "/8") == ML_E_INVALID);
  CHECK(ml_config_add_allowed_cidr(cfg, "") == ML_E_INVALID);
  CHECK(ml_config_add_allowed_cidr(cfg, NULL) == ML_E_INVALID);
  CHECK(ml_config_add_allowed_cidr(NULL, "10.0.0.0/8") == ML_E_INVALID);
  CHECK(ml_config_get_allowed_cidr_count(cfg) == 5);
  CHECK(ml_config_get_allowed_cidr_count(NULL) == 0);

  SECTION("clone copies label, keys and CIDRs");
  CHECK_OK(ml_config_set_label(cfg, "cluster-b"));
  CHECK_OK(ml_config_clone(cfg, &copy));
  REQUIRE(copy != NULL);
  CHECK(strcmp(ml_config_get_label(copy), "cluster-b") == 0);
  CHECK(ml_config_get_key_count(copy) == 3);
  CHECK(ml_config_get_allowed_cidr_count(copy) == 5);
  CHECK_OK(ml_config_add_key(copy, key + 1, 16));
  CHECK(ml_config_get_key_count(copy) == 4);
  CHECK(ml_config_get_key_count(cfg) == 3);
  ml_config_free(copy);
  ml_config_free(cfg);
}

int main(void) {
  check_presets();
  check_ranges();
  check_strings();
  check_security();
  return ml_test_finish("capi_config");
}
