/* Versions, status strings, error messages that are never NULL, and NULL passed for every
 * pointer argument of every function: ML_E_INVALID (or a harmless default), never a crash. */
#include "ml_test.h"

#include <stdint.h>

static void check_versions(void) {
  uint32_t major = 99, minor = 99, patch = 99;
  char expect[32];
  SECTION("versions");
  ml_version(&major, &minor, &patch);
  CHECK(major == ML_VERSION_MAJOR && minor == ML_VERSION_MINOR && patch == ML_VERSION_PATCH);
  ml_version(NULL, NULL, NULL);
  snprintf(expect, sizeof expect, "%u.%u.%u", major, minor, patch);
  CHECK(strcmp(ml_version_string(), expect) == 0);
  CHECK(ml_abi_version() == ML_ABI_VERSION);
}

static void check_status_strings(void) {
  ml_status s;
  SECTION("status strings: static, never NULL, distinct for the known codes");
  for (s = ML_E_INTERNAL; s <= ML_OK; ++s) {
    ml_status t;
    const char *str = ml_status_str(s);
    CHECK(str != NULL && str[0] != '\0');
    for (t = ML_E_INTERNAL; t < s; ++t) CHECK(strcmp(str, ml_status_str(t)) != 0);
  }
  CHECK(strcmp(ml_status_str(ML_OK), "ok") == 0);
  CHECK(ml_status_str(-1000) != NULL);
  CHECK(ml_status_str(42) != NULL);
  CHECK(ml_status_str(INT32_MIN) != NULL);
  CHECK(ml_last_error() != NULL);
}

static void check_null_arguments(void) {
  ml_config *cfg = NULL;
  ml_node *node = (ml_node *)1;
  ml_node_list *list = (ml_node_list *)1;
  ml_memberlist *ml = (ml_memberlist *)1;
  ml_runtime *rt = (ml_runtime *)1;
  uint8_t versions[6] = {1, 1, 1, 1, 1, 1};
  uint32_t joined = 7;
  uint64_t rtt = 7;
  size_t len = 7;
  const char *addrs[1] = {"127.0.0.1:1"};

  SECTION("handle-less constructors with NULL out");
  CHECK(ml_config_new_lan(NULL) == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "out") != NULL);
  CHECK(ml_config_new_wan(NULL) == ML_E_INVALID);
  CHECK(ml_config_new_local(NULL) == ML_E_INVALID);
  CHECK(ml_config_clone(NULL, &cfg) == ML_E_INVALID && cfg == NULL);
  CHECK(strstr(ml_last_error(), "config") != NULL);
  CHECK(ml_config_clone(NULL, NULL) == ML_E_INVALID);
  CHECK(ml_runtime_create(NULL, 1) == ML_E_INVALID);
  CHECK(ml_runtime_create(&rt, 100000) == ML_E_INVALID && rt == NULL);
  CHECK(strstr(ml_last_error(), "threads") != NULL);

  SECTION("config setters and getters with a NULL config");
  CHECK(ml_config_set_name(NULL, "a") == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "config") != NULL);
  CHECK(ml_config_get_name(NULL) != NULL);
  CHECK(ml_config_set_bind_addr(NULL, "127.0.0.1") == ML_E_INVALID);
  CHECK(ml_config_get_bind_addr(NULL) != NULL);
  CHECK(ml_config_set_advertise_addr(NULL, "") == ML_E_INVALID);
  CHECK(ml_config_get_advertise_addr(NULL) != NULL);
  CHECK(ml_config_set_delegate_protocol(NULL, 0, 0, 0) == ML_E_INVALID);
  CHECK(ml_config_disable_tcp_pings_for_node(NULL, "a") == ML_E_INVALID);
  CHECK(ml_config_set_meta(NULL, NULL, 0) == ML_E_INVALID);
  CHECK(ml_config_get_meta(NULL, &len) == NULL && len == 0);
  CHECK(ml_config_get_probe_interval_ms(NULL) == 0);
  ml_config_free(NULL);

  SECTION("nodes and lists: NULL is harmless");
  CHECK(ml_node_name(NULL) != NULL);
  CHECK(ml_node_address(NULL) != NULL);
  CHECK(ml_node_host(NULL) != NULL);
  CHECK(ml_node_port(NULL) == 0);
  len = 7;
  CHECK(ml_node_meta(NULL, &len) == NULL && len == 0);
  CHECK(ml_node_meta(NULL, NULL) == NULL);
  CHECK(ml_node_incarnation(NULL) == 0);
  ml_node_versions(NULL, versions);
  CHECK(versions[0] == 0 && versions[5] == 0);
  ml_node_versions(NULL, NULL);
  CHECK(ml_node_copy(NULL, &node) == ML_E_INVALID && node == NULL);
  CHECK(strstr(ml_last_error(), "node") != NULL);
  CHECK(ml_node_copy(NULL, NULL) == ML_E_INVALID);
  ml_node_free(NULL);
  CHECK(ml_node_list_len(NULL) == 0);
  CHECK(ml_node_list_get(NULL, 0) == NULL);
  ml_node_list_free(NULL);
  (void)list;

  SECTION("memberlist functions with a NULL memberlist");
  CHECK(ml_memberlist_create(NULL, NULL, NULL, NULL) == ML_E_INVALID);
  CHECK(ml_memberlist_create(&ml, NULL, NULL, NULL) == ML_E_INVALID && ml == NULL);
  CHECK(strstr(ml_last_error(), "config") != NULL);
  ml_memberlist_destroy(NULL);
  CHECK(ml_memberlist_last_error(NULL) != NULL);
  CHECK(ml_memberlist_join(NULL, addrs, 1, &joined) == ML_E_INVALID && joined == 0);
  CHECK(strstr(ml_last_error(), "memberlist") != NULL);
  CHECK(ml_memberlist_members(NULL, &list) == ML_E_INVALID);
  CHECK(ml_memberlist_local_node(NULL, &node) == ML_E_INVALID);
  CHECK(ml_memberlist_ping(NULL, "a", &rtt) == ML_E_INVALID && rtt == 0);
  CHECK(ml_memberlist_leave(NULL, 10) == ML_E_INVALID);
  CHECK(ml_memberlist_shutdown(NULL) == ML_E_INVALID);
  ml_runtime_free(NULL);
}

/* NULL arguments on a live memberlist: the per-handle message names the argument. */
static void check_null_arguments_live(void) {
  ml_config *cfg = ml_test_config("errors-node");
  ml_memberlist *ml = NULL;
  const char *with_null[2] = {"127.0.0.1:1", NULL};
  uint32_t joined = 7;
  SECTION("NULL arguments on a live memberlist");
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, NULL));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  CHECK(ml_memberlist_last_error(ml) != NULL);
  CHECK(ml_memberlist_members(ml, NULL) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(ml), "out") != NULL);
  CHECK(ml_memberlist_local_node(ml, NULL) == ML_E_INVALID);
  CHECK(ml_memberlist_join(ml, NULL, 1, &joined) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(ml), "addresses") != NULL);
  CHECK(ml_memberlist_join(ml, with_null, 2, &joined) == ML_E_INVALID && joined == 0);
  CHECK(strstr(ml_memberlist_last_error(ml), "addresses[1]") != NULL);
  CHECK(ml_memberlist_join(ml, with_null, 0, NULL) == ML_E_INVALID);
  CHECK(ml_memberlist_ping(ml, NULL, NULL) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(ml), "node_name") != NULL);
  CHECK(t_num_members(ml) == 1);
  CHECK(ml_memberlist_get_num_members(ml, NULL) == ML_E_INVALID);
  CHECK(ml_memberlist_get_health_score(ml, NULL) == ML_E_INVALID);
  CHECK(ml_memberlist_get_num_queued_broadcasts(ml, NULL) == ML_E_INVALID);
  ml_memberlist_destroy(ml);
}

/* The status forms of the getters report misuse instead of answering a sentinel. */
static void check_status_forms(void) {
  size_t count = 7;
  int32_t score = 7;
  uint32_t state = 7, kind = 7;
  ml_metrics *metrics = NULL;
  ml_node *node = NULL;
  ml_memberlist *ml = NULL;
  ml_config *cfg = ml_test_config("forms-node");
  SECTION("status forms of the getters");
  CHECK(ml_memberlist_get_num_members(NULL, &count) == ML_E_INVALID && count == 0);
  CHECK(strstr(ml_last_error(), "memberlist") != NULL);
  CHECK(ml_memberlist_get_health_score(NULL, &score) == ML_E_INVALID && score == 0);
  count = 7;
  CHECK(ml_memberlist_get_num_queued_broadcasts(NULL, &count) == ML_E_INVALID && count == 0);
  CHECK(ml_node_get_state(NULL, &state) == ML_E_INVALID && state == ML_STATE_DEAD);
  CHECK(strstr(ml_last_error(), "node") != NULL);
  CHECK(ml_metrics_get_kind(NULL, 0, &kind) == ML_E_INVALID);
  CHECK_OK(ml_memberlist_create(&ml, NULL, cfg, NULL));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  CHECK_OK(ml_memberlist_get_num_members(ml, &count));
  CHECK(count == 1);
  CHECK_OK(ml_memberlist_get_health_score(ml, &score));
  CHECK(score >= 0);
  CHECK_OK(ml_memberlist_local_node(ml, &node));
  CHECK(ml_node_get_state(node, NULL) == ML_E_INVALID);
  CHECK_OK(ml_node_get_state(node, &state));
  CHECK(state == ML_STATE_ALIVE);
  CHECK_OK(ml_memberlist_metrics(ml, &metrics));
  REQUIRE(metrics != NULL);
  kind = 7;
  CHECK(ml_metrics_get_kind(metrics, ml_metrics_len(metrics), &kind) == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), "index") != NULL && kind == ML_METRIC_COUNTER);
  if (ml_metrics_len(metrics) > 0) {
    CHECK_OK(ml_metrics_get_kind(metrics, 0, &kind));
    CHECK(kind <= ML_METRIC_TIMER);
    CHECK(ml_metrics_get_kind(metrics, 0, NULL) == ML_E_INVALID);
  }
  ml_metrics_free(metrics);
  ml_node_free(node);
  CHECK_OK(ml_memberlist_shutdown(ml));
  /* After shutdown the queries answer from the last state. */
  CHECK_OK(ml_memberlist_get_num_members(ml, &count));
  CHECK(count == 1);
  CHECK_OK(ml_memberlist_get_num_queued_broadcasts(ml, &count));
  ml_memberlist_destroy(ml);
}

int main(void) {
  check_versions();
  check_status_strings();
  check_null_arguments();
  check_null_arguments_live();
  check_status_forms();
  return ml_test_finish("capi_errors");
}
