#include "bridge.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "_cgo_export.h"

/* uintptr <-> void* conversions happen here, in C, so Go never turns an integer into a
 * pointer (go vet's unsafeptr check). Exported Go prototypes drop const. */
static void tramp_free(void *user_data) { goMemberlistFree((uintptr_t)user_data); }

static void tramp_event(void *user_data, uint32_t event, const ml_node *node) {
  goMemberlistEvent((uintptr_t)user_data, event, (ml_node *)node);
}

static void tramp_log(void *user_data, uint32_t level, const char *msg, size_t len) {
  goMemberlistLog((uintptr_t)user_data, level, (char *)msg, len);
}

void ml_go_callbacks(ml_callbacks *cb, uintptr_t handle, int with_events, int with_log) {
  memset(cb, 0, sizeof *cb); /* members a newer header appends stay NULL */
  cb->version = ML_CALLBACKS_VERSION;
  cb->user_data = (void *)handle;
  cb->user_data_free = tramp_free;
  cb->on_event = with_events ? tramp_event : NULL;
  cb->on_log = with_log ? tramp_log : NULL;
}

struct bench_args {
  const ml_callbacks *cb;
  const ml_node *node;
  uint32_t n;
  uint64_t ns;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *bench_thread(void *p) {
  struct bench_args *a = p;
  uint64_t start = now_ns();
  for (uint32_t i = 0; i < a->n; i++) a->cb->on_event(a->cb->user_data, ML_EVENT_UPDATE, a->node);
  a->ns = now_ns() - start;
  return NULL;
}

uint64_t ml_go_bench_fire(const ml_callbacks *cb, const ml_node *node, uint32_t n) {
  struct bench_args a = {cb, node, n, 0};
  pthread_t t;
  if (pthread_create(&t, NULL, bench_thread, &a) != 0) return 0;
  pthread_join(t, NULL);
  return a.ns;
}
