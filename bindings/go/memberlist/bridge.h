/* C side of the cgo bridge: the callback trampolines handed to libmemberlist. Kept out of the
 * Go files because a file with //export may only declare C functions in its preamble. */
#ifndef MEMBERLIST_GO_BRIDGE_H
#define MEMBERLIST_GO_BRIDGE_H

#include <stdint.h>
#include <memberlist.h>

/* Fills *cb with the Go trampolines; user_data carries a cgo.Handle (never a Go pointer). */
void ml_go_callbacks(ml_callbacks *cb, uintptr_t handle, int with_events, int with_log);

/* Benchmark support: calls cb->on_event n times from a new (non-Go) thread, the way the
 * library's callback thread does; returns the elapsed nanoseconds. */
uint64_t ml_go_bench_fire(const ml_callbacks *cb, const ml_node *node, uint32_t n);

#endif
