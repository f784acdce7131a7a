/* Tiny helpers shared by the C ABI tests (plain C99 + POSIX). Each test prints what it
 * checked and exits non-zero if any check failed. */
#ifndef ML_TEST_H
#define ML_TEST_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#endif
#if defined(__GNUC__)
#define ML_TEST_UNUSED __attribute__((unused))
#else
#define ML_TEST_UNUSED
#endif

#include <memberlist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int ml_test_failures = 0;
static int ml_test_checks = 0;

/* Records a failed check and goes on (the test's exit code reports it). */
#define CHECK(cond)                                                                    \
  do {                                                                                 \
    ++ml_test_checks;                                                                  \
    if (!(cond)) {                                                                     \
      ++ml_test_failures;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
    }                                                                                  \
  } while (0)

/* A check whose failure makes the rest of the test meaningless. `cond` is evaluated once:
 * it may have side effects (REQUIRE(pthread_create(...) == 0) once started two threads). */
#define REQUIRE(cond)                                                                  \
  do {                                                                                 \
    const int ml_test_ok_ = !!(cond);                                                  \
    CHECK(ml_test_ok_ && #cond);                                                       \
    if (!ml_test_ok_) {                                                                \
      fprintf(stderr, "aborting the test\n");                                          \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

/* An ml_* call that must succeed; prints the library's message otherwise. */
#define CHECK_OK(call)                                                                 \
  do {                                                                                 \
    ml_status ml_test_s_ = (call);                                                     \
    ++ml_test_checks;                                                                  \
    if (ml_test_s_ != ML_OK) {                                                         \
      ++ml_test_failures;                                                              \
      fprintf(stderr, "%s:%d: %s returned %d (%s): %s\n", __FILE__, __LINE__, #call,   \
              (int)ml_test_s_, ml_status_str(ml_test_s_), ml_last_error());            \
    }                                                                                  \
  } while (0)

#define SECTION(name) printf("-- %s\n", name)

/* Values through the status forms (docs/abi.md, "Errors"), for use inside expressions. On a
 * failure they answer a value the comparison that follows rejects (no CHECK here: callbacks
 * call them from library threads). */
ML_TEST_UNUSED static size_t t_num_members(ml_memberlist *ml) {
  size_t n = 0;
  return ml_memberlist_get_num_members(ml, &n) == ML_OK ? n : 0;
}
ML_TEST_UNUSED static size_t t_num_queued(ml_memberlist *ml) {
  size_t n = 0;
  return ml_memberlist_get_num_queued_broadcasts(ml, &n) == ML_OK ? n : (size_t)-1;
}
ML_TEST_UNUSED static int32_t t_health_score(ml_memberlist *ml) {
  int32_t score = 0;
  return ml_memberlist_get_health_score(ml, &score) == ML_OK ? score : -1;
}
ML_TEST_UNUSED static uint32_t t_node_state(const ml_node *node) {
  uint32_t state = 0;
  return ml_node_get_state(node, &state) == ML_OK ? state : 99;
}
ML_TEST_UNUSED static uint32_t t_metrics_kind(const ml_metrics *metrics, size_t index) {
  uint32_t kind = 0;
  return ml_metrics_get_kind(metrics, index, &kind) == ML_OK ? kind : 99;
}

static int ml_test_finish(const char *test) {
  printf("%s: %d checks, %d failed\n", test, ml_test_checks, ml_test_failures);
  return ml_test_failures == 0 ? 0 : 1;
}

ML_TEST_UNUSED static double ml_test_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

ML_TEST_UNUSED static void ml_test_sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

/* Generous deadline for anything that depends on the protocol on a loaded 2-core machine. */
#define ML_TEST_DEADLINE_S 30.0

/* Polls `cond` every 20 ms until it holds (ok = 1) or the deadline passes (ok = 0). */
#define WAIT_UNTIL(ok, cond)                                                           \
  do {                                                                                 \
    double ml_test_t0_ = ml_test_now();                                                \
    (ok) = 0;                                                                          \
    for (;;) {                                                                         \
      if (cond) {                                                                      \
        (ok) = 1;                                                                      \
        break;                                                                         \
      }                                                                                \
      if (ml_test_now() - ml_test_t0_ > ML_TEST_DEADLINE_S) break;                     \
      ml_test_sleep_ms(20);                                                            \
    }                                                                                  \
  } while (0)

#ifndef ML_TEST_NO_LINK /* capi_dlopen is not linked against the library */
/* A loopback config with fast timers: Local preset, 127.0.0.1, port chosen by the kernel. */
ML_TEST_UNUSED static ml_config *ml_test_config(const char *name) {
  ml_config *cfg = NULL;
  if (ml_config_new_local(&cfg) != ML_OK) {
    fprintf(stderr, "ml_config_new_local: %s\n", ml_last_error());
    exit(1);
  }
  if (ml_config_set_name(cfg, name) != ML_OK || ml_config_set_bind_addr(cfg, "127.0.0.1") != ML_OK ||
      ml_config_set_bind_port(cfg, 0) != ML_OK || ml_config_set_probe_interval_ms(cfg, 200) != ML_OK ||
      ml_config_set_probe_timeout_ms(cfg, 100) != ML_OK ||
      ml_config_set_gossip_interval_ms(cfg, 50) != ML_OK ||
      ml_config_set_push_pull_interval_ms(cfg, 2000) != ML_OK ||
      ml_config_set_log_level(cfg, ML_LOG_WARN) != ML_OK) {
    fprintf(stderr, "configuring %s: %s\n", name, ml_last_error());
    exit(1);
  }
  return cfg;
}

/* "127.0.0.1:port" of a memberlist, for joining it. */
ML_TEST_UNUSED static void ml_test_address_of(ml_memberlist *ml, char *buf, size_t cap) {
  ml_node *self = NULL;
  if (ml_memberlist_local_node(ml, &self) != ML_OK) {
    fprintf(stderr, "local_node: %s\n", ml_memberlist_last_error(ml));
    exit(1);
  }
  snprintf(buf, cap, "%s", ml_node_address(self));
  ml_node_free(self);
}
#endif

#endif
