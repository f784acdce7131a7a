#!/usr/bin/env python3
"""Cost per event in Python: pulled in batches from the event queue against a ctypes callback
on a library thread. Both receive the same events: the outcomes (BroadcastDone, REPLACED) of N
broadcasts queued under one name, each replacing the one before.

    MEMBERLIST_LIB_DIR=PREFIX/lib /usr/bin/python3 bindings/python/bench_events.py [N]

Pull: the events are produced first (timer stopped), then taken with poll(64) and turned
into BroadcastDone objects; the time per event is that of the polls alone.
Callback: the same production with on_broadcast_done set; the time per event is from the
first queue_broadcast to the last callback, less the production time measured in the pull
run (the callbacks run on a library thread, taking the GIL from the producing thread)."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libmemberlist as ml  # noqa: E402


def config(name):
    return ml.Config("local", name=name, bind_addr="127.0.0.1", bind_port=0,
                     log_level=ml.LogLevel.OFF, max_queued_callbacks=1 << 22)


def pull(n):
    with config("bench-pull") as cfg, ml.Memberlist(cfg, events=True) as m:
        m.get(30)  # the local join
        t0 = time.perf_counter()
        for _ in range(n + 1):
            m.queue_broadcast(b"x", name="same")
        produce = time.perf_counter() - t0
        got = 0
        t0 = time.perf_counter()
        while got < n:
            got += len(m.poll(64))
        return produce, time.perf_counter() - t0


def callback(n):
    done = threading.Event()
    count = [0]

    def on_done(bid, outcome):
        count[0] += 1
        if count[0] == n:
            done.set()
    with config("bench-cb") as cfg, ml.Memberlist(cfg, on_broadcast_done=on_done) as m:
        t0 = time.perf_counter()
        for _ in range(n + 1):
            m.queue_broadcast(b"x", name="same")
        if not done.wait(120):
            raise SystemExit("only %d callbacks" % count[0])
        return time.perf_counter() - t0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    produce, polled = pull(n)
    total = callback(n)
    per_pull = polled / n * 1e9
    per_cb = max(total - produce, 0) / n * 1e9
    print("events: %d; production %.0f ns/event" % (n, produce / n * 1e9))
    print("pulled in batches of 64: %.0f ns/event" % per_pull)
    print("callback (library thread, GIL): %.0f ns/event" % per_cb)
    print("ratio: %.1fx" % (per_cb / per_pull if per_pull else float("nan")))


if __name__ == "__main__":
    main()
