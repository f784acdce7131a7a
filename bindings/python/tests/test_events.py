"""The event queue (events=True): the 3-node scenario of the other bindings through polled
events, the event fd, overflow, asyncio."""
import asyncio
import queue
import select

import pytest

import libmemberlist as ml
from conftest import DEADLINE, fast_config, wait_for


class Seen:
    """Events taken from a memberlist so far."""

    def __init__(self, m):
        self.m = m
        self.events = []

    def pump(self, timeout=0.05):
        try:
            self.events.append(self.m.get(timeout))
        except queue.Empty:
            pass
        self.events += self.m.poll(64)

    def member(self, type_, name, state=None):
        return any(isinstance(e, ml.MemberEvent) and e.type == type_ and e.node.name == name
                   and (state is None or e.node.state == state) for e in self.events)

    def of(self, cls):
        return [e for e in self.events if isinstance(e, cls)]


def pump_all(*seen):
    def pump():
        for s in seen:
            s.pump(0.01)
    return pump


def test_layout_matches_c():
    rows = ml._n.layout_checks()
    assert rows, "no layout rows"
    assert [r for r in rows if r[1] != r[2]] == []


def test_three_node_cluster():
    with fast_config("py-a", meta=b"role=seed") as ca, fast_config("py-b") as cb, \
            fast_config("py-c") as cc, ml.Memberlist(ca, events=True) as a, \
            ml.Memberlist(cb, events=True) as b, ml.Memberlist(cc, events=True) as c:
        sa, sb, sc = Seen(a), Seen(b), Seen(c)
        pump = pump_all(sa, sb, sc)
        seed = a.local_node().address
        assert b.join([seed]) == 1
        assert c.join(seed) == 1
        wait_for("three members everywhere", lambda: all(
            sorted(n.name for n in m.members()) == ["py-a", "py-b", "py-c"] for m in (a, b, c)),
            pump)
        assert {n.name: n.meta for n in c.members()}["py-a"] == b"role=seed"
        wait_for("a's own join, then b and c", lambda: sa.member(ml.EventType.JOIN, "py-a")
                 and sa.member(ml.EventType.JOIN, "py-b") and sa.member(ml.EventType.JOIN, "py-c"),
                 pump)
        # The local node's join comes first.
        first = sa.events[0]
        assert isinstance(first, ml.MemberEvent) and first.node.name == "py-a"

        # Metadata: an update reaches the others as an UPDATE event.
        b.set_meta(b"v2", timeout_ms=10000)
        wait_for("a sees b's new metadata", lambda: any(
            isinstance(e, ml.MemberEvent) and e.type == ml.EventType.UPDATE
            and e.node.name == "py-b" and e.node.meta == b"v2" for e in sa.events), pump)

        # A broadcast reaches the others; its origin learns when it is done with it. Epidemic
        # delivery is probabilistic (a loaded machine may lose one): as the other bindings'
        # tests, queue another once the last is done, until both have one.
        ids = []

        def seen(s):
            return any(isinstance(e, ml.Broadcast) and e.origin == "py-b" and e.name == "topic"
                       and e.data.startswith(b"news #") for e in s.events)

        def broadcast_seen():
            if ids and ml.BroadcastDone(ids[-1], ml.BroadcastOutcome.SETTLED) not in sb.events:
                return False
            if ids and seen(sa) and seen(sc):
                return True
            ids.append(b.queue_broadcast(b"news #%d" % (len(ids) + 1), name="topic"))
            return False
        wait_for("the broadcast at a and c, and b's outcome", broadcast_seen, pump)

        # Messages, in the order sent over one reliable path each.
        for i in range(5):
            b.send_reliable("py-a", b"m%d" % i)
        wait_for("five messages at a", lambda: len(sa.of(ml.Message)) >= 5, pump)
        assert [m.data for m in sa.of(ml.Message)] == [b"m%d" % i for i in range(5)]

        # Leave, then a failure.
        c.leave(10000)
        wait_for("a sees c left", lambda: sa.member(ml.EventType.LEAVE, "py-c",
                                                    ml.NodeState.LEFT), pump)
        c.shutdown()
        b.shutdown()  # no leave: a must detect the failure
        wait_for("a sees b dead", lambda: sa.member(ml.EventType.LEAVE, "py-b",
                                                    ml.NodeState.DEAD), pump)
        wait_for("a alone", lambda: a.num_members() == 1, pump)
        # Shut-down nodes still answer queries from the last state, and events kept at
        # shutdown can still be polled.
        assert b.num_members() >= 1
        b.poll()
        with pytest.raises(ml.MemberlistError) as e:
            b.join(seed)
        assert e.value.status == ml.Status.CLOSED
        assert a.event_stats()[1] == 0


def test_event_fd_readable_and_reset():
    with fast_config("py-fd") as cfg, ml.Memberlist(cfg, events=True) as m:
        fd = m.event_fd()
        r, _, _ = select.select([fd], [], [], DEADLINE)
        assert r == [fd], "the local join should make the fd readable"
        evs = m.poll(64)
        assert isinstance(evs[0], ml.MemberEvent) and evs[0].node.name == "py-fd"
        assert select.select([fd], [], [], 0)[0] == [], "a poll that empties the queue resets it"
        m.queue_broadcast(b"x", name="k")
        m.queue_broadcast(b"y", name="k")  # replaces the first: an outcome event
        assert select.select([fd], [], [], DEADLINE)[0] == [fd]
        done = m.get(DEADLINE)
        assert isinstance(done, ml.BroadcastDone) and done.outcome == ml.BroadcastOutcome.REPLACED
        with pytest.raises(queue.Empty):
            m.get(0.05)


def test_overflow_is_counted():
    with fast_config("py-over", max_queued_callbacks=10) as cfg, \
            ml.Memberlist(cfg, events=True) as m:
        m.get(DEADLINE)  # the local join
        for _ in range(31):
            m.queue_broadcast(b"x", name="same")  # 30 REPLACED outcomes into 10 places
        assert m.event_stats() == (10, 20)
        assert len(m.poll(100)) == 10
        assert m.poll() == []


def test_asyncio_events():
    async def main(a, b):
        agen = a.aevents()
        seen = []
        b.join(a.local_node().address)

        async def until_b_joins():
            async for ev in agen:
                seen.append(ev)
                if isinstance(ev, ml.MemberEvent) and ev.node.name == "py-aio-b":
                    return
        await asyncio.wait_for(until_b_joins(), DEADLINE)
        await agen.aclose()
        return seen

    with fast_config("py-aio-a") as ca, fast_config("py-aio-b") as cb, \
            ml.Memberlist(ca, events=True) as a, ml.Memberlist(cb, events=True) as b:
        seen = asyncio.run(main(a, b))
        assert seen[0].node.name == "py-aio-a"
        assert seen[-1].type == ml.EventType.JOIN


def test_errors_carry_status_and_message():
    with fast_config("py-err") as cfg:
        with pytest.raises(ml.MemberlistError) as e:
            cfg.set(retransmit_mult=0)
        assert e.value.status == ml.Status.INVALID and "retransmit_mult" in e.value.message
        with pytest.raises(AttributeError):
            cfg.set(no_such_knob=1)
        with pytest.raises(ValueError):
            ml.Memberlist(cfg, events=True, on_event=print)
        with ml.Memberlist(cfg) as m:
            with pytest.raises(ml.MemberlistError) as e:
                m.event_fd()
            assert e.value.status == ml.Status.STATE
            with pytest.raises(ml.MemberlistError) as e:
                m.ping("nobody")
            assert e.value.status == ml.Status.NOT_FOUND
            with pytest.raises(ml.MemberlistError) as e:
                m.join("127.0.0.1:1")
            assert e.value.status == ml.Status.IO and "127.0.0.1:1" in e.value.message
        with pytest.raises(ml.MemberlistError) as e:
            m.num_members()
        assert e.value.status == ml.Status.CLOSED
