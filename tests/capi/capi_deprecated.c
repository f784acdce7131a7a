/* The deprecated 0.1 forms (docs/abi.md, "Rules every function follows") still work and
 * agree with the forms that replace them: ml_runtime_new, ml_broadcast_queue_new,
 * ml_memberlist_num_members, ml_memberlist_health_score, ml_memberlist_num_queued_broadcasts,
 * ml_node_state, ml_metrics_kind, with their old answers to misuse. */
#define ML_NO_DEPRECATION_WARNINGS /* this file calls them on purpose */
#include "ml_test.h"

int main(void) {
  ml_runtime *rt = NULL;
  ml_broadcast_queue *q = NULL;
  ml_memberlist *ml = NULL;
  ml_node *node = NULL;
  ml_metrics *metrics = NULL;
  ml_config *cfg = ml_test_config("deprecated-node");
  size_t count = 0, i, n;
  int32_t score = 0;
  uint32_t state = 0, kind = 0;

  SECTION("constructors with the out-parameter last");
  CHECK(ml_runtime_new(1, NULL) == ML_E_INVALID);
  CHECK(ml_runtime_new(100000, &rt) == ML_E_INVALID && rt == NULL);
  CHECK_OK(ml_runtime_new(1, &rt));
  REQUIRE(rt != NULL);
  CHECK(ml_broadcast_queue_new(0, &q) == ML_E_INVALID && q == NULL);
  CHECK_OK(ml_broadcast_queue_new(2, &q));
  REQUIRE(q != NULL);
  CHECK_OK(ml_broadcast_queue_push(q, NULL, (const uint8_t *)"x", 1, NULL, NULL));
  CHECK(ml_broadcast_queue_len(q) == 1);
  ml_broadcast_queue_free(q);

  SECTION("getters that answer a sentinel");
  CHECK(ml_memberlist_num_members(NULL) == 0);
  CHECK(ml_memberlist_health_score(NULL) == -1);
  CHECK(ml_memberlist_num_queued_broadcasts(NULL) == 0);
  CHECK(ml_node_state(NULL) == ML_STATE_DEAD);
  CHECK(ml_metrics_kind(NULL, 0) == ML_METRIC_COUNTER);
  CHECK_OK(ml_memberlist_create(&ml, rt, cfg, NULL));
  ml_config_free(cfg);
  REQUIRE(ml != NULL);
  CHECK_OK(ml_memberlist_get_num_members(ml, &count));
  CHECK(ml_memberlist_num_members(ml) == count && count == 1);
  CHECK_OK(ml_memberlist_get_health_score(ml, &score));
  CHECK(ml_memberlist_health_score(ml) >= 0);
  CHECK_OK(ml_memberlist_get_num_queued_broadcasts(ml, &count));
  CHECK(ml_memberlist_num_queued_broadcasts(ml) == count);
  CHECK_OK(ml_memberlist_local_node(ml, &node));
  CHECK_OK(ml_node_get_state(node, &state));
  CHECK(ml_node_state(node) == state && state == ML_STATE_ALIVE);
  CHECK_OK(ml_memberlist_metrics(ml, &metrics));
  n = ml_metrics_len(metrics);
  for (i = 0; i < n; ++i) {
    CHECK_OK(ml_metrics_get_kind(metrics, i, &kind));
    CHECK(ml_metrics_kind(metrics, i) == kind);
  }
  CHECK(ml_metrics_kind(metrics, n) == ML_METRIC_COUNTER);
  ml_metrics_free(metrics);
  ml_node_free(node);
  ml_memberlist_destroy(ml);
  ml_runtime_free(rt);
  return ml_test_finish("capi_deprecated");
}
