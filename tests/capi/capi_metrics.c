/* Metrics through the C ABI on a 2-node loopback cluster: the snapshot's accessors, find by
 * name and labels, counters and timers that move as the cluster works, on_metric samples,
 * and the Prometheus text (every line a comment or `name{labels} value`). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdint.h>

#include "ml_rec.h"

static rec A, B;

/* The value of a metric (sum of its series over all labels; timers: their count). */
static double metric(ml_memberlist *ml, const char *name) {
  ml_metrics *m = NULL;
  double total = 0;
  size_t i;
  if (ml_memberlist_metrics(ml, &m) != ML_OK) return -1;
  for (i = 0; i < ml_metrics_len(m); ++i) {
    if (strcmp(ml_metrics_name(m, i), name) != 0) continue;
    if (t_metrics_kind(m, i) == ML_METRIC_TIMER) {
      uint64_t count = 0;
      ml_metrics_timer(m, i, &count, NULL, NULL, NULL);
      total += (double)count;
    } else {
      total += ml_metrics_value(m, i);
    }
  }
  ml_metrics_free(m);
  return total;
}

/* name="value"(,name="value")* or "". */
static int labels_well_formed(const char *s) {
  if (*s == '\0') return 1;
  for (;;) {
    if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
    while (isalnum((unsigned char)*s) || *s == '_') ++s;
    if (*s++ != '=' || *s++ != '"') return 0;
    while (*s && *s != '"') {
      if (*s == '\\' && s[1]) ++s;
      ++s;
    }
    if (*s++ != '"') return 0;
    if (*s == '\0') return 1;
    if (*s++ != ',') return 0;
  }
}

static void check_snapshot(void) {
  ml_metrics *m = NULL;
  size_t i, n, timers = 0;
  SECTION("snapshot accessors and find");
  CHECK_OK(ml_memberlist_metrics(A.ml, &m));
  REQUIRE(m != NULL);
  n = ml_metrics_len(m);
  CHECK(n > 0);
  for (i = 0; i < n; ++i) {
    const char *name = ml_metrics_name(m, i), *labels = ml_metrics_labels(m, i);
    uint32_t kind = t_metrics_kind(m, i);
    REQUIRE(name != NULL && labels != NULL);
    CHECK(strncmp(name, "memberlist.", 11) == 0);
    CHECK(kind <= ML_METRIC_TIMER);
    if (!labels_well_formed(labels)) fprintf(stderr, "bad labels: %s{%s}\n", name, labels);
    CHECK(labels_well_formed(labels));
    CHECK(ml_metrics_find(m, name, labels) <= i); /* this series or an identical earlier one */
    CHECK(ml_metrics_find(m, name, NULL) <= i);
    if (kind == ML_METRIC_TIMER) {
      uint64_t count = 0;
      double sum = -1, mn = -1, mx = -1;
      ml_metrics_timer(m, i, &count, &sum, &mn, &mx);
      CHECK(count > 0 && mn <= mx && sum >= mx - 1e-9 && sum == ml_metrics_value(m, i));
      timers++;
    } else {
      uint64_t count = 7;
      double sum = 7;
      ml_metrics_timer(m, i, &count, &sum, NULL, NULL); /* zeros for other kinds */
      CHECK(count == 0 && sum == 0);
    }
  }
  CHECK(timers > 0);
  CHECK(ml_metrics_find(m, "memberlist.no.such.metric", NULL) == SIZE_MAX);
  CHECK(ml_metrics_find(m, ml_metrics_name(m, 0), "no=\"such\"") == SIZE_MAX);
  CHECK(ml_metrics_find(m, NULL, NULL) == SIZE_MAX);
  CHECK(ml_metrics_name(m, n) == NULL && ml_metrics_labels(m, n) == NULL);
  CHECK(ml_metrics_value(m, n) == 0);
  ml_metrics_free(m);

  SECTION("refusals and NULL handles");
  CHECK(ml_memberlist_metrics(A.ml, NULL) == ML_E_INVALID);
  CHECK(strstr(ml_memberlist_last_error(A.ml), "out") != NULL);
  m = (ml_metrics *)1;
  CHECK(ml_memberlist_metrics(NULL, &m) == ML_E_INVALID);
  CHECK(ml_metrics_len(NULL) == 0 && ml_metrics_name(NULL, 0) == NULL);
  CHECK(ml_metrics_find(NULL, "x", NULL) == SIZE_MAX);
  ml_metrics_free(NULL);
}

static void check_moving(void) {
  double udp0, gossip0, sent0, recv0;
  int ok;
  SECTION("metrics move as the cluster works");
  udp0 = metric(A.ml, "memberlist.udp.sent");
  gossip0 = metric(A.ml, "memberlist.gossip");
  sent0 = metric(A.ml, "memberlist.user.messages.sent");
  recv0 = metric(B.ml, "memberlist.user.messages.received");
  CHECK(udp0 > 0 && gossip0 > 0);
  CHECK_OK(ml_memberlist_send_best_effort(A.ml, "node-b", (const uint8_t *)"count me", 8));
  WAIT_UNTIL(ok, metric(A.ml, "memberlist.udp.sent") > udp0 &&
                     metric(A.ml, "memberlist.gossip") > gossip0 &&
                     metric(A.ml, "memberlist.user.messages.sent") > sent0 &&
                     metric(B.ml, "memberlist.user.messages.received") > recv0);
  CHECK(ok);
  CHECK(metric(A.ml, "memberlist.msg.alive") >= 1);
  WAIT_UNTIL(ok, metric(A.ml, "memberlist.probeNode") > 0);
  CHECK(ok);
  SECTION("on_metric sees samples");
  CHECK(REC_GET(&A, metric_samples) > 0);
}

/* One exposition line: "# ..." or name{labels} value. */
static int prometheus_line_ok(const char *line, size_t len) {
  char buf[1024], *p, *end;
  if (len == 0 || len >= sizeof buf) return 0;
  memcpy(buf, line, len);
  buf[len] = '\0';
  if (buf[0] == '#') return 1;
  p = buf;
  if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':')) return 0;
  while (isalnum((unsigned char)*p) || *p == '_' || *p == ':') ++p;
  if (*p == '{') {
    char *close = strrchr(p, '}');
    if (!close) return 0;
    *close = '\0';
    if (!labels_well_formed(p + 1)) return 0;
    p = close + 1;
  }
  if (*p++ != ' ') return 0;
  if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0) return 1;
  strtod(p, &end);
  return end != p && *end == '\0';
}

static void check_prometheus(void) {
  char *text = NULL;
  size_t len = 0, lines = 0, bad = 0;
  const char *line, *nl;
  SECTION("Prometheus text: every line a comment or name{labels} value");
  CHECK_OK(ml_memberlist_prometheus(A.ml, &text, &len));
  REQUIRE(text != NULL);
  CHECK(strlen(text) == len);
  CHECK(strstr(text, "# TYPE memberlist_gossip") != NULL);
  CHECK(strstr(text, "memberlist_udp_sent") != NULL);
  for (line = text; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    if (!nl) nl = line + strlen(line) - 1; /* last line without newline */
    if (!prometheus_line_ok(line, (size_t)(nl - line))) {
      fprintf(stderr, "bad exposition line: %.*s\n", (int)(nl - line), line);
      bad++;
    }
    lines++;
    if (!*nl) break;
  }
  CHECK(lines > 5 && bad == 0);
  ml_string_free(text);
  text = NULL;
  CHECK_OK(ml_memberlist_prometheus(A.ml, &text, NULL)); /* len may be NULL */
  ml_string_free(text);
  ml_string_free(NULL);
  CHECK(ml_memberlist_prometheus(A.ml, NULL, &len) == ML_E_INVALID);
  CHECK(ml_memberlist_prometheus(NULL, &text, &len) == ML_E_INVALID && text == NULL);
}

int main(void) {
  int ok;
  rec_init(&A, "node-a");
  rec_init(&B, "node-b");
  rec_start(&A, ml_test_config("node-a"));
  rec_start(&B, ml_test_config("node-b"));
  CHECK_OK(rec_join(&B, &A));
  WAIT_UNTIL(ok, t_num_members(A.ml) == 2 && metric(A.ml, "memberlist.gossip") > 0 &&
                     metric(A.ml, "memberlist.udp.sent") > 0);
  CHECK(ok);
  check_snapshot();
  check_moving();
  check_prometheus();
  rec_stop(&B);
  rec_stop(&A);
  return ml_test_finish("capi_metrics");
}
