"""Callbacks: the 3-node scenario through on_* functions, which run on library threads; an
exception in one is reported, never crossing into C; the ctypes trampolines stay alive while
the library may call them and are released after (GC stress)."""
import gc
import threading

import libmemberlist as ml
from conftest import fast_config, wait_for


class Recorder:
    def __init__(self):
        self.mu = threading.Lock()
        self.events, self.messages, self.broadcasts, self.done = [], [], [], []
        self.threads = set()

    def on_event(self, type_, node):
        with self.mu:
            self.events.append((type_, node.name, node.state, node.meta))
            self.threads.add(threading.get_ident())

    def on_message(self, data):
        with self.mu:
            self.messages.append(data)

    def on_broadcast(self, origin, name, data):
        with self.mu:
            self.broadcasts.append((origin, name, data))

    def on_broadcast_done(self, bid, outcome):
        with self.mu:
            self.done.append((bid, outcome))

    def kw(self):
        return dict(on_event=self.on_event, on_message=self.on_message,
                    on_broadcast=self.on_broadcast, on_broadcast_done=self.on_broadcast_done)

    def has(self, type_, name, state=None):
        with self.mu:
            return any(e[0] == type_ and e[1] == name and (state is None or e[2] == state)
                       for e in self.events)


def test_three_node_cluster_with_callbacks():
    ra, rb, rc = Recorder(), Recorder(), Recorder()
    with fast_config("pc-a", meta="role=seed") as ca, fast_config("pc-b") as cb, \
            fast_config("pc-c") as cc, ml.Memberlist(ca, **ra.kw()) as a, \
            ml.Memberlist(cb, **rb.kw()) as b, ml.Memberlist(cc, **rc.kw()) as c:
        seed = a.local_node().address
        assert b.join(seed) == 1 and c.join(seed) == 1
        wait_for("three members", lambda: all(m.num_members() == 3 for m in (a, b, c)))
        wait_for("c sees a with its metadata", lambda: any(
            e[1] == "pc-a" and e[3] == b"role=seed" for e in rc.events))
        wait_for("a sees b and c join", lambda: ra.has(ml.EventType.JOIN, "pc-b")
                 and ra.has(ml.EventType.JOIN, "pc-c"))
        with ra.mu:
            assert threading.get_ident() not in ra.threads, "a callback ran on the test's thread"
        b.set_meta("v2", timeout_ms=10000)
        wait_for("a sees b's update", lambda: any(
            e[0] == ml.EventType.UPDATE and e[1] == "pc-b" and e[3] == b"v2" for e in ra.events))
        # Probabilistic delivery: another broadcast once the last is done, until both have one.
        ids = []

        def seen(r):
            with r.mu:
                return any(o == "pc-b" and n == "greeting" and d.startswith(b"hello #")
                           for o, n, d in r.broadcasts)

        def broadcast_seen():
            if ids:
                with rb.mu:
                    if (ids[-1], ml.BroadcastOutcome.SETTLED) not in rb.done:
                        return False
                if seen(ra) and seen(rc):
                    return True
            ids.append(b.queue_broadcast(b"hello #%d" % (len(ids) + 1), name="greeting"))
            return False
        wait_for("a and c get the broadcast, b hears it done", broadcast_seen)
        c.send_reliable("pc-a", b"direct")
        wait_for("a gets the message", lambda: b"direct" in ra.messages)
        c.leave(10000)
        wait_for("a sees c left", lambda: ra.has(ml.EventType.LEAVE, "pc-c", ml.NodeState.LEFT))
        c.shutdown()
        b.shutdown()
        wait_for("a sees b dead", lambda: ra.has(ml.EventType.LEAVE, "pc-b", ml.NodeState.DEAD))
        assert a.callback_errors == 0


def test_exception_in_callback_is_reported():
    reported = []
    done = threading.Event()

    def boom(type_, node):
        raise RuntimeError("boom from " + node.name)

    def on_error(where, exc):
        reported.append((where, str(exc)))
        done.set()

    with fast_config("pc-raise") as cfg, \
            ml.Memberlist(cfg, on_event=boom, on_callback_error=on_error) as m:
        assert done.wait(30)
        assert reported[0] == ("on_event", "boom from pc-raise")
        assert m.callback_errors == 1
        assert m.num_members() == 1  # the library went on


def test_gc_stress():
    """Memberlists dropped without close() are destroyed by the collector; their trampolines
    are released only through user_data_free; a collection while callbacks run loses none."""
    baseline = len(ml._live_callbacks)
    counts = []
    for i in range(20):
        seen = []
        cfg = fast_config("pc-gc-%d" % i)
        m = ml.Memberlist(cfg, on_event=lambda t, n, seen=seen: seen.append(n.name),
                          on_message=lambda d: None)
        counts.append(seen)
        del m, cfg
        gc.collect()
    wait_for("every dropped memberlist released its callbacks",
             lambda: len(ml._live_callbacks) == baseline)

    # Callbacks keep working while the collector runs, with no reference to them but the
    # library's.
    got = []
    with fast_config("pc-gc-a") as ca, fast_config("pc-gc-b") as cb:
        a = ml.Memberlist(ca, on_message=lambda d: got.append(d))
        b = ml.Memberlist(cb)
        b.join(a.local_node().address)
        wait_for("joined", lambda: a.num_members() == 2)
        for i in range(200):
            b.send_reliable("pc-gc-a", b"%d" % i)
            if i % 20 == 0:
                gc.collect()
        wait_for("200 messages", lambda: len(got) == 200, lambda: gc.collect())
        assert sorted(int(x) for x in got) == list(range(200))
        b.close()
        a.close()
    assert len(ml._live_callbacks) == baseline
