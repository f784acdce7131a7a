"""Host transport: the 3-node scenario over TcpTransport (plain and TLS) with encryption on
top; a transport that fails its sends makes join fail with a clear error and nothing crash;
the glue's guarantees (each stream completed or answered exactly once, exceptions kept out of
C, nothing reaching a freed handle after close, the collector closing a dropped node)."""
import ctypes
import gc
import os
import shutil
import ssl
import subprocess
import sys
import threading

import pytest

import libmemberlist as ml
from libmemberlist import transport as mlt
from conftest import DEADLINE, fast_config, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"0123456789abcdef"  # the library's encryption on top of the transport


class Recorder:
    """What a node's callbacks saw, with a condition to wait on."""

    def __init__(self):
        self.cv = threading.Condition()
        self.events, self.messages, self.broadcasts, self.done = [], [], [], []

    def _add(self, lst, item):
        with self.cv:
            lst.append(item)
            self.cv.notify_all()

    def kw(self):
        return dict(on_event=lambda t, n: self._add(self.events, (t, n.name, n.state)),
                    on_message=lambda d: self._add(self.messages, d),
                    on_broadcast=lambda o, n, d: self._add(self.broadcasts, (o, n, d)),
                    on_broadcast_done=lambda i, o: self._add(self.done, (i, o)))

    def has(self, type_, name, state=None):
        with self.cv:
            return any(e[0] == type_ and e[1] == name and (state is None or e[2] == state)
                       for e in self.events)


class RecordingInbound:
    """Passes everything to the real Inbound and remembers the senders' addresses."""

    def __init__(self, inbound, senders):
        self.inbound, self.senders = inbound, senders

    def packet(self, from_addr, data):
        self.senders.add(from_addr)
        return self.inbound.packet(from_addr, data)

    def stream(self, from_addr, data, responder):
        self.senders.add(from_addr)
        return self.inbound.stream(from_addr, data, responder)


class CountingTransport(ml.TcpTransport):
    """Counts what the library hands the transport (the library binds no socket of its own
    with a transport) and records who the inbound bytes claim to come from."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.packets = self.streams = 0
        self.senders = set()
        self.expects_reply = set()

    def start(self, inbound):
        super().start(RecordingInbound(inbound, self.senders))

    def send_packet(self, to, data):
        self.packets += 1
        super().send_packet(to, data)

    def send_stream(self, to, data, completion):
        self.streams += 1
        self.expects_reply.add(completion.expects_reply)
        super().send_stream(to, data, completion)


def tls_contexts(tmp_path):
    """Mutual TLS with a self-signed certificate for 127.0.0.1 made by openssl."""
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=memberlist test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(cert)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cert)
    client.load_cert_chain(cert, key)
    return dict(server_ssl=server, client_ssl=client)


class Node:
    def __init__(self, name, **tls):
        self.name = name
        self.tr = CountingTransport(**tls)
        self.rec = Recorder()
        with fast_config(name) as cfg:
            cfg.add_key(KEY)
            self.errors = []
            self.m = ml.Memberlist(cfg, transport=self.tr, **self.rec.kw(),
                                   on_callback_error=lambda w, e: self.errors.append((w, e)))
        assert self.m.local_node().address == self.tr.address

    def close(self):
        self.m.close()
        self.tr.shutdown()  # harmless after the Memberlist's own


def until(rec, what, pred, retry=None):
    """Waits for pred() (under rec's condition), calling retry() about every second."""
    with rec.cv:
        for _ in range(int(DEADLINE)):
            if rec.cv.wait_for(pred, 1.0):
                return
            if retry is not None:
                retry()
    raise AssertionError("timed out waiting for " + what)


def run_cluster(prefix, **tls):
    nodes = []
    try:
        for x in "abc":
            nodes.append(Node(prefix + x, **tls))
        a, b, c = nodes
        seed = a.m.local_node().address
        assert b.m.join(seed) == 1
        assert c.m.join([seed]) == 1
        names = sorted(n.name for n in nodes)
        wait_for("three members everywhere", lambda: all(
            sorted(x.name for x in n.m.members()) == names for n in nodes))
        wait_for("c sees b join", lambda: c.rec.has(ml.EventType.JOIN, b.name))

        # A reliable message (a stream), a best-effort one (a datagram, resent until seen)
        # and a broadcast (gossip: another one once the last is done, until both have one).
        a.m.send_reliable(c.name, b"reliable a->c")
        until(c.rec, "the reliable message at c", lambda: b"reliable a->c" in c.rec.messages)
        a.m.send_best_effort(b.name, b"best effort a->b")
        until(b.rec, "the best-effort message at b",
              lambda: b"best effort a->b" in b.rec.messages,
              lambda: a.m.send_best_effort(b.name, b"best effort a->b"))
        ids = [b.m.queue_broadcast(b"news", name="topic")]

        def broadcast_seen():
            if all(any(x[2] == b"news" for x in n.rec.broadcasts) for n in (a, c)):
                return True
            if any(i == ids[-1] for i, _ in b.rec.done):
                ids.append(b.m.queue_broadcast(b"news", name="topic"))
            return False
        wait_for("the broadcast at a and c", broadcast_seen)

        # Every node's datagrams and streams went through its transport, and every inbound
        # message named its sender by the address it advertises (not a connection's port).
        wait_for("datagrams and streams through every transport",
                 lambda: all(n.tr.packets and n.tr.streams for n in nodes))
        advertised = {n.tr.address for n in nodes}
        for n in nodes:
            assert n.tr.senders and n.tr.senders <= advertised, n.tr.senders
        # Push/pull waits for a reply; a reliable message does not, which a library with
        # ML_TRANSPORT_VERSION_2 says (an older one does not: every stream expects one).
        assert True in set().union(*(n.tr.expects_reply for n in nodes))  # b's, c's joins
        assert (False in a.tr.expects_reply) == mlt._HAS_STREAM_FLAGS

        # Failure: c closes without leaving (its transport stops): a and b see it dead.
        c.m.close()
        assert c.tr.closed
        with pytest.raises(ml.TransportClosed):
            c.tr.send_packet(seed, b"x")
        wait_for("a and b see c dead", lambda: a.rec.has(ml.EventType.LEAVE, c.name,
                                                           ml.NodeState.DEAD)
                 and b.rec.has(ml.EventType.LEAVE, c.name, ml.NodeState.DEAD))

        # Leave: b leaves gracefully, a sees it left; b's shutdown stops its transport.
        b.m.leave(10000)
        wait_for("a sees b left", lambda: a.rec.has(ml.EventType.LEAVE, b.name,
                                                    ml.NodeState.LEFT))
        b.m.shutdown()
        assert b.tr.closed
        wait_for("a alone", lambda: a.m.num_members() == 1)
        for n in nodes:
            assert n.errors == [] and n.m.callback_errors == 0
    finally:
        for n in nodes:
            n.close()


def test_tcp_transport_cluster():
    run_cluster("tcp-")


def test_tls_transport_cluster(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a self-signed certificate")
    tls = tls_contexts(tmp_path)
    run_cluster("tls-", **tls)

    # The TLS is real: a node without it cannot join a node with it.
    nodes = [Node("tls-seed", **tls)]
    try:
        nodes.append(Node("tls-plain"))
        seed, plain = nodes
        with pytest.raises(ml.MemberlistError) as e:
            plain.m.join(seed.m.local_node().address)
        assert seed.m.local_node().address in e.value.message
        assert seed.m.num_members() == 1 and plain.m.num_members() == 1
    finally:
        for n in nodes:
            n.close()


# ---- the glue, with transports that carry nothing -------------------------------------------

class FakeTransport(ml.Transport):
    """Advertises 127.0.0.1:port (no socket), keeps the Inbound, and fails or keeps what it is
    asked to send, as ``how`` says."""

    def __init__(self, port, how="keep"):
        self.port, self.how = port, how
        self.inbound = None
        self.completions = []
        self.asked = threading.Event()
        self.shutdowns = 0

    def advertise_address(self):
        return "127.0.0.1:%d" % self.port

    def start(self, inbound):
        self.inbound = inbound

    def send_packet(self, to, data):
        if self.how == "raise":
            raise OSError("network down")

    def send_stream(self, to, data, completion):
        if self.how == "raise":
            raise OSError("network down")
        if self.how == "no-reply-then-raise":
            completion.no_reply()
            raise RuntimeError("raised after completing")
        if self.how == "keep":
            self.completions.append(completion)
        self.asked.set()  # "drop": the completion goes with this frame

    def shutdown(self):
        self.shutdowns += 1


def fake_node(name, transport, **knobs):
    errors = []
    with fast_config(name, **knobs) as cfg:
        m = ml.Memberlist(cfg, transport=transport,
                          on_callback_error=lambda w, e: errors.append((w, e)))
    return m, errors


class Answer(ml.StreamResponder):
    """Counts the answers an inbound stream got."""

    def __init__(self):
        self.calls = []
        self.answered = threading.Event()

    def reply(self, data):
        self.calls.append(("reply", data))
        self.answered.set()

    def close(self):
        self.calls.append(("close", None))
        self.answered.set()


def test_failing_send_fails_join_clearly():
    t = FakeTransport(17101, "raise")
    m, errors = fake_node("fake-raise", t)
    with m:
        with pytest.raises(ml.MemberlistError) as e:
            m.join("127.0.0.1:17999")
        assert e.value.status == ml.Status.IO
        assert "join failed" in e.value.message and "127.0.0.1:17999" in e.value.message
        # The exception was reported, never crossed into C, and the node goes on.
        assert [w for w, _ in errors] == ["transport.send_stream"]
        assert isinstance(errors[0][1], OSError) and m.callback_errors == 1
        assert m.num_members() == 1
        m.send_to_address("127.0.0.1:17999", b"x")  # send_packet raises: a dropped datagram
        wait_for("send_packet's error reported",
                 lambda: ("transport.send_packet" in [w for w, _ in errors]))
        wait_for("the library counted the dropped datagram", lambda: sum(
            v for (name, _), v in m.metrics().items() if name == "memberlist.udp.send_dropped") > 0)
    assert t.shutdowns == 1


def test_completion_before_raising_counts_once():
    """A transport that completes a stream and then raises has completed it: the peer's "no
    reply" (a rejection) is what join reports, not a refused connection."""
    m, errors = fake_node("fake-both", FakeTransport(17102, "no-reply-then-raise"))
    with m:
        with pytest.raises(ml.MemberlistError) as e:
            m.join("127.0.0.1:17999")
        assert e.value.status == ml.Status.REJECTED, e.value
        assert [w for w, _ in errors] == ["transport.send_stream"]


@pytest.mark.parametrize("complete,status", [
    (lambda c: c.no_reply(), (ml.Status.REJECTED,)),
    (lambda c: c.fail(ConnectionRefusedError()), (ml.Status.IO,)),
    # A timeout: join's status says so from ML_TRANSPORT_VERSION_2 on (IO saying "timed out"
    # before).
    (lambda c: c.fail(TimeoutError()), (ml.Status.TIMEOUT, ml.Status.IO)),
])
def test_completion_statuses(complete, status):
    t = FakeTransport(17103)
    m, _ = fake_node("fake-complete", t)
    with m:
        result = []
        th = threading.Thread(target=lambda: result.append(_join_error(m)))
        th.start()
        assert t.asked.wait(DEADLINE)
        c = t.completions[0]
        assert c.to == "127.0.0.1:17999" and c.timeout > 0 and not c.done
        assert c.expects_reply  # a join's push/pull waits for the peer's state
        assert complete(c) is True and c.done
        assert c.reply(b"late") is False and c.no_reply() is False  # exactly once
        th.join(DEADLINE)
        assert not th.is_alive()
        assert result[0].status in status and "127.0.0.1:17999" in result[0].message
        assert ("time" in result[0].message) == (ml.Status.TIMEOUT in status)


def _join_error(m):
    try:
        m.join("127.0.0.1:17999")
    except ml.MemberlistError as e:
        return e
    return None


def test_dropped_completion_fails_the_stream():
    """A completion the transport drops is collected and fails its stream: join returns long
    before the 10-minute tcp_timeout (it would hang the test otherwise)."""
    m, _ = fake_node("fake-drop", FakeTransport(17104, "drop"), tcp_timeout_ms=120000)
    with m:
        result = []
        th = threading.Thread(target=lambda: result.append(_join_error(m)), daemon=True)
        th.start()
        th.join(DEADLINE)
        assert not th.is_alive(), "join still waits for the dropped completion"
        assert result[0].status == ml.Status.IO


def test_inbound_garbage_answered_once():
    t = FakeTransport(17105)
    m, errors = fake_node("fake-garbage", t)
    answers = [Answer() for _ in range(3)]
    with m:
        inbound = t.inbound
        assert isinstance(inbound, ml.Inbound) and not inbound.closed
        assert inbound.packet("127.0.0.1:17998", b"not a memberlist datagram") is True
        assert inbound.packet("not an address", b"") is False
        assert inbound.packet("127.0.0.1:17998", b"x" * 70000) is False  # over 65507
        # Garbage the library takes and then refuses: answered without a reply.
        assert inbound.stream("127.0.0.1:17998", b"\xff\xffgarbage", answers[0]) is True
        assert answers[0].answered.wait(DEADLINE)
        # Refused at once: answered before stream() returns.
        assert inbound.stream("bad address", b"x", answers[1]) is False
        assert answers[1].calls == [("close", None)]
        assert m.num_members() == 1
    # After close: harmless, and still answered exactly once.
    assert inbound.closed
    assert inbound.stream("127.0.0.1:17998", b"x", answers[2]) is False
    for a in answers:
        assert a.calls == [("close", None)]
    assert errors == []


def test_transport_calls_after_close_are_harmless():
    """Everything a transport (or a late library call) may still do after the Memberlist
    closed reaches no freed handle: the Inbound, completions, and the C trampolines
    themselves with the stale user_data."""
    t = FakeTransport(17106)
    m, errors = fake_node("fake-late", t, tcp_timeout_ms=120000)
    th = threading.Thread(target=lambda: _join_error(m))
    th.start()
    assert t.asked.wait(DEADLINE)
    glue = m._transport
    token = glue.token

    # Hand bytes in from another thread while the Memberlist closes.
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            t.inbound.packet("127.0.0.1:17998", b"garbage")
    hammering = threading.Thread(target=hammer)
    hammering.start()
    # Completing the stream lets the join return, then close. The gate shuts before the
    # handle is destroyed: right after it, the Inbound refuses although the handle is live.
    t.completions[0].fail()
    th.join(DEADLINE)
    close_gate, at_gate = glue.close_gate, []

    def gate():
        close_gate()
        at_gate.append(t.inbound.packet("127.0.0.1:17998", b"garbage"))
    glue.close_gate = gate
    m.close()
    assert at_gate == [False]
    stop.set()
    hammering.join(DEADLINE)
    assert t.shutdowns == 1

    assert t.inbound.closed
    assert t.inbound.packet("127.0.0.1:17998", b"x") is False
    late = mlt.StreamCompletion(glue, 12345, "127.0.0.1:17999", 1.0)
    assert late.reply(b"x") is False
    a = Answer()
    assert t.inbound.stream("127.0.0.1:17998", b"x", a) is False and a.calls == [("close", None)]
    # The library's function pointers, called with the freed node's user_data.
    assert token not in mlt._live_transports
    buf = (ctypes.c_uint8 * 1)(0)
    assert glue.table.send_packet(token, b"127.0.0.1:1", buf, 1) != 0
    assert glue.table.send_stream(token, b"127.0.0.1:1", 7, buf, 1) != 0
    glue.table.stream_reply(token, 7, buf, 1, 1)  # nothing to answer: ignored
    assert errors == []
    m.close()  # idempotent


def test_collected_node_shuts_its_transport_down():
    """A Memberlist dropped without close() is closed by the collector: its transport shut
    down once and the glue released (the trampolines hold no reference to the node)."""
    baseline = len(mlt._live_transports)
    t = FakeTransport(17107)
    m, _ = fake_node("fake-gc", t)
    inbound = t.inbound
    del m
    gc.collect()
    wait_for("the dropped node closed", lambda: inbound.closed)
    assert t.shutdowns == 1
    assert len(mlt._live_transports) == baseline


def test_failed_create_leaves_the_transport_to_its_owner():
    baseline = len(mlt._live_transports)
    t = FakeTransport(17108)
    t.advertise_address = lambda: "0.0.0.0:17108"  # not a specific IP
    with pytest.raises(ml.MemberlistError) as e:
        fake_node("fake-bad", t)
    assert e.value.status == ml.Status.INVALID
    with pytest.raises(TypeError):
        with fast_config("fake-type") as cfg:
            ml.Memberlist(cfg, transport=object())

    class Refuses(FakeTransport):
        def start(self, inbound):
            raise RuntimeError("cannot start")
    r = Refuses(17109)
    with pytest.raises(RuntimeError):
        fake_node("fake-start", r)
    assert t.shutdowns == 0 and r.shutdowns == 0
    assert len(mlt._live_transports) == baseline


def test_tcp_transport_example_runs():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    run = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "examples",
                                                       "tcp_transport.py")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("tcp-a", "tcp-b", "tcp-c"):
        assert name in run.stdout
