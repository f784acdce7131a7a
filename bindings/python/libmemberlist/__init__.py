"""libmemberlist for Python: cluster membership and failure detection (SWIM gossip, a C++
implementation of hashicorp/memberlist), through ctypes and the standard library only.

    import libmemberlist as ml

    with ml.Config("local", name="a", bind_addr="127.0.0.1", bind_port=0) as cfg, \\
            ml.Memberlist(cfg, events=True) as a:
        for ev in a.events(timeout=1.0):
            print(ev)

Two ways to hear about the cluster:

- ``events=True``: the notifications are queued inside the library and taken by the host
  (``poll``, ``get``, ``events``, ``aevents`` for asyncio, or ``event_fd`` for any event
  loop). No Python code runs on a library thread.
- callbacks (``on_event=...``, ``on_message=...``): called on a library thread, one at a
  time, holding the GIL while they run. The binding keeps them alive until the library says
  it will not call them again.

Errors raise ``MemberlistError`` with the library's status (``Status``) and message.

``Memberlist(config, transport=t)`` carries the node's bytes over the application's own
``Transport`` (TLS, TCP only, ...) instead of the library's sockets; ``TcpTransport`` is an
example over TCP (optionally TLS) with the standard library only. See ``transport``.
"""
import asyncio
import collections
import ctypes
import enum
import itertools
import queue
import select
import sys
import threading
import traceback
from dataclasses import dataclass

from . import _native_g as _n
from ._lib import lib as _lib
from ._lib import path as library_path
from . import transport as _transport
from .tcp_transport import TcpTransport, TransportClosed
from .transport import Inbound, StreamCompletion, StreamResponder, Transport

__all__ = [
    "Config", "Memberlist", "MemberlistError", "Status", "NodeState", "EventType", "LogLevel",
    "BroadcastOutcome", "Node", "MemberEvent", "Message", "Broadcast", "BroadcastDone",
    "Conflict", "LogLine", "library_path", "version",
    "Transport", "Inbound", "StreamCompletion", "StreamResponder", "TcpTransport",
    "TransportClosed",
]


def _enum(name, prefix, strip=None):
    members = {k[len(strip or prefix):]: v for k, v in vars(_n).items() if k.startswith(prefix)}
    return enum.IntEnum(name, members)


Status = enum.IntEnum("Status", dict(
    [("OK", _n.ML_OK)] + [(k[5:], v) for k, v in vars(_n).items() if k.startswith("ML_E_")]))
NodeState = _enum("NodeState", "ML_STATE_")
EventType = enum.IntEnum("EventType", {"JOIN": _n.ML_EVENT_JOIN, "LEAVE": _n.ML_EVENT_LEAVE,
                                       "UPDATE": _n.ML_EVENT_UPDATE})
LogLevel = _enum("LogLevel", "ML_LOG_")
BroadcastOutcome = _enum("BroadcastOutcome", "ML_BROADCAST_")


def version():
    """The loaded library's version as a string ("0.1.0")."""
    return _lib.ml_version_string().decode()


class MemberlistError(Exception):
    """A call failed: ``status`` is a ``Status``, ``message`` the library's explanation."""

    def __init__(self, status, message):
        try:
            status = Status(status)
        except ValueError:
            pass
        super().__init__("%s: %s" % (getattr(status, "name", status), message))
        self.status = status
        self.message = message


def _check(status, ml=None):
    if status != _n.ML_OK:
        msg = _lib.ml_memberlist_last_error(ml) if ml else _lib.ml_last_error()
        raise MemberlistError(status, msg.decode(errors="replace"))


def _bytes(data):
    if isinstance(data, str):
        return data.encode()
    return bytes(data)


# ---- values --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    """A copy of what is known about a node."""
    name: str
    address: str  # "host:port"
    host: str
    port: int
    meta: bytes
    state: NodeState
    incarnation: int

    @classmethod
    def _from(cls, p):
        ln = ctypes.c_size_t()
        meta = _lib.ml_node_meta(p, ctypes.byref(ln))
        state = ctypes.c_uint32()
        _lib.ml_node_get_state(p, ctypes.byref(state))
        return cls(_lib.ml_node_name(p).decode(), _lib.ml_node_address(p).decode(),
                   _lib.ml_node_host(p).decode(), _lib.ml_node_port(p),
                   ctypes.string_at(meta, ln.value) if ln.value else b"",
                   NodeState(state.value), _lib.ml_node_incarnation(p))


@dataclass(frozen=True)
class MemberEvent:
    """A node joined, left or failed (LEAVE: see node.state), or updated its metadata."""
    type: EventType
    node: Node


@dataclass(frozen=True)
class Message:
    """A user message (best effort or reliable)."""
    data: bytes


@dataclass(frozen=True)
class Broadcast:
    """A broadcast queued on node ``origin`` arrived."""
    origin: str
    name: str
    data: bytes


@dataclass(frozen=True)
class BroadcastDone:
    """A broadcast this node queued left its queue."""
    id: int
    outcome: BroadcastOutcome


@dataclass(frozen=True)
class Conflict:
    """A node with a known name but another address showed up (it was ignored)."""
    existing: Node
    other: Node


@dataclass(frozen=True)
class LogLine:
    level: LogLevel
    text: str


def _data(ev):
    return ctypes.string_at(ev.data, ev.len) if ev.len else b""


def _event_from(ev):
    k = ev.kind
    if k == _n.ML_EVENT_KIND_MEMBER:
        return MemberEvent(EventType(ev.type), Node._from(ev.node))
    if k == _n.ML_EVENT_KIND_MESSAGE:
        return Message(_data(ev))
    if k == _n.ML_EVENT_KIND_BROADCAST:
        return Broadcast(ev.origin.decode(), ev.name.decode(), _data(ev))
    if k == _n.ML_EVENT_KIND_BROADCAST_DONE:
        return BroadcastDone(ev.id, BroadcastOutcome(ev.type))
    if k == _n.ML_EVENT_KIND_CONFLICT:
        return Conflict(Node._from(ev.node), Node._from(ev.other))
    if k == _n.ML_EVENT_KIND_LOG:
        return LogLine(LogLevel(ev.type), _data(ev).decode(errors="replace"))
    return None  # a kind newer than this package: skipped


# ---- configuration -------------------------------------------------------------------------

_STRING_KNOBS = {"name", "bind_addr", "advertise_addr", "label"}


class Config:
    """A configuration: a preset ("lan", "wan" or "local") and any knob of the C API by its
    name, e.g. ``Config("local", name="a", bind_port=0, probe_interval_ms=200)``. Copied by
    Memberlist, so one config may serve many."""

    def __init__(self, preset="lan", **knobs):
        ctor = {"lan": _lib.ml_config_new_lan, "wan": _lib.ml_config_new_wan,
                "local": _lib.ml_config_new_local}.get(preset)
        if ctor is None:
            raise ValueError("preset must be 'lan', 'wan' or 'local', not %r" % (preset,))
        self._cfg = ctypes.POINTER(_n.ml_config)()
        _check(ctor(ctypes.byref(self._cfg)))
        self.set(**knobs)

    def set(self, **knobs):
        """Sets knobs by name (``meta`` takes bytes, strings take str); returns self."""
        for name, value in knobs.items():
            if name == "meta":
                data = _bytes(value)
                _check(_lib.ml_config_set_meta(self._handle, data, len(data)))
                continue
            fn = getattr(_lib, "ml_config_set_" + name, None)
            if fn is None:
                raise AttributeError("no config knob %r" % name)
            if name in _STRING_KNOBS:
                value = _bytes(value)
            elif isinstance(value, bool):
                value = int(value)
            _check(fn(self._handle, value))
        return self

    def get(self, name):
        """A knob's value (str for the string knobs, bytes for meta, int otherwise)."""
        if name == "meta":
            ln = ctypes.c_size_t()
            p = _lib.ml_config_get_meta(self._handle, ctypes.byref(ln))
            return ctypes.string_at(p, ln.value) if ln.value else b""
        value = getattr(_lib, "ml_config_get_" + name)(self._handle)
        return value.decode() if isinstance(value, bytes) else value

    def add_key(self, key):
        key = _bytes(key)
        _check(_lib.ml_config_add_key(self._handle, key, len(key)))

    def add_allowed_cidr(self, cidr):
        _check(_lib.ml_config_add_allowed_cidr(self._handle, cidr.encode()))

    @property
    def _handle(self):
        if not self._cfg:
            raise MemberlistError(Status.INVALID, "config is closed")
        return self._cfg

    def close(self):
        if self._cfg:
            _lib.ml_config_free(self._cfg)
            self._cfg = ctypes.POINTER(_n.ml_config)()

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- callbacks -----------------------------------------------------------------------------

_CB = dict(_n.ml_callbacks._fields_)
# Callback sets the library may still call, by token (the user_data it gets): removed by
# user_data_free, which the library calls exactly once after the last callback. This keeps the
# ctypes function objects alive however the Python objects around them are collected.
_live_callbacks = {}
_tokens = itertools.count(1)


@_CB["user_data_free"]
def _user_data_free(token):
    _live_callbacks.pop(token, None)


class _Callbacks:
    """The host's functions and the ctypes trampolines that call them."""

    def __init__(self, on_event, on_message, on_broadcast, on_broadcast_done, on_log,
                 on_conflict, on_callback_error):
        self.on_callback_error = on_callback_error
        self.errors = 0
        self.table = _n.ml_callbacks()
        self.table.version = _n.ML_CALLBACKS_VERSION
        self.token = next(_tokens)
        self.table.user_data = self.token
        self.table.user_data_free = _user_data_free
        keep = []

        def install(field, user, convert):
            if user is None:
                return

            def trampoline(_ud, *args):
                try:
                    user(*convert(*args))
                except BaseException as e:  # never unwind into C
                    self._report(field, e)
            fn = _CB[field](trampoline)
            keep.append(fn)
            setattr(self.table, field, fn)

        install("on_event", on_event, lambda ev, node: (EventType(ev), Node._from(node)))
        install("on_message", on_message,
                lambda data, ln: (ctypes.string_at(data, ln) if ln else b"",))
        install("on_broadcast", on_broadcast,
                lambda origin, name, data, ln: (origin.decode(), name.decode(),
                                                ctypes.string_at(data, ln) if ln else b""))
        install("on_broadcast_done", on_broadcast_done,
                lambda bid, outcome: (bid, BroadcastOutcome(outcome)))
        install("on_log", on_log,
                lambda level, msg, ln: (LogLevel(level), msg.decode(errors="replace")))
        install("on_conflict", on_conflict, lambda a, b: (Node._from(a), Node._from(b)))
        _live_callbacks[self.token] = keep

    def _report(self, field, exc):
        self.errors += 1
        try:
            if self.on_callback_error is not None:
                self.on_callback_error(field, exc)
            else:
                print("libmemberlist: exception in %s callback:" % field, file=sys.stderr)
                traceback.print_exception(exc, file=sys.stderr)
        except BaseException:
            pass


# ---- the memberlist ------------------------------------------------------------------------

class Memberlist:
    """One cluster member. Binds its sockets and starts at creation; ``close()`` (or leaving
    the ``with`` block, or the collector) shuts it down and frees it.

    With ``events=True`` the notifications are queued for ``poll``/``get``/``events``/
    ``aevents`` (config knobs ``max_queued_callbacks`` and ``max_queued_log_lines`` bound the
    queue; beyond them new events are dropped and counted in ``event_stats()``). Otherwise the
    ``on_*`` functions given are called on a library thread.

    With ``transport`` (a ``Transport``), the node binds no socket: its datagrams and
    streams go through the transport, which advertises its own address
    (``Transport.advertise_address``; the config's bind address and port are not used).
    ``shutdown()`` and ``close()`` shut the transport down too; a failed creation leaves it to
    the caller. Exceptions in the transport's methods go to ``on_callback_error(where, exc)``
    (or stderr) and count in ``callback_errors``.

    Every method may be called from any thread. Waiting for events (``get``, ``events``,
    ``aevents``) must have stopped before ``close()``."""

    def __init__(self, config, *, events=False, transport=None, on_event=None,
                 on_message=None, on_broadcast=None, on_broadcast_done=None, on_log=None,
                 on_conflict=None, on_callback_error=None):
        self._ml = ctypes.POINTER(_n.ml_memberlist)()
        self._calls = 0
        self._closed = False
        self._cv = threading.Condition()
        self._poll_lock = threading.Lock()
        self._pending = collections.deque()
        self._batch = None
        self._cb = None
        self._transport = None
        callbacks = (on_event, on_message, on_broadcast, on_broadcast_done, on_log, on_conflict)
        if events and any(c is not None for c in callbacks):
            raise ValueError("events=True and on_* callbacks are exclusive")
        if transport is not None and not isinstance(transport, Transport):
            raise TypeError("transport must be a libmemberlist.Transport, not %s"
                            % type(transport).__name__)
        cfg, clone = config._handle, None
        if events or transport is not None:
            # The caller's config stays as it is: the queue and the transport go on a copy.
            clone = ctypes.POINTER(_n.ml_config)()
            _check(_lib.ml_config_clone(cfg, ctypes.byref(clone)))
            cfg = clone
        try:
            if events:
                _check(_lib.ml_config_set_event_queue(clone, 1))
            if transport is not None:
                address = transport.advertise_address()
                glue = _transport._Glue(transport, config.get("tcp_timeout_ms") / 1000.0,
                                        on_callback_error)
                self._transport = glue
                _check(_lib.ml_config_set_transport(clone, ctypes.byref(glue.table),
                                                    str(address).encode()))
            if events:
                _check(_lib.ml_memberlist_create(ctypes.byref(self._ml), None, cfg, None))
            else:
                self._cb = _Callbacks(*callbacks, on_callback_error)
                # On failure the library has called user_data_free already.
                _check(_lib.ml_memberlist_create(ctypes.byref(self._ml), None, cfg,
                                                 ctypes.byref(self._cb.table)))
        except BaseException:
            if self._transport is not None:
                self._transport.release()
                self._transport = None  # the caller's again: close() must not stop it
            raise
        finally:
            if clone is not None:
                _lib.ml_config_free(clone)
        if events:
            self._batch = ctypes.POINTER(_n.ml_event_batch)()
            _check(_lib.ml_event_batch_create(ctypes.byref(self._batch)))
        if self._transport is not None:
            self._transport.attach(self._ml)
            try:
                transport.start(self._transport.inbound)
            except BaseException:
                glue, self._transport = self._transport, None
                glue.close_gate()
                self.close()
                glue.release()
                raise

    # -- lifetime --

    def _enter(self):
        with self._cv:
            if self._closed:
                raise MemberlistError(Status.CLOSED, "memberlist is closed")
            self._calls += 1
        return self._ml

    def _exit(self):
        with self._cv:
            self._calls -= 1
            if self._calls == 0:
                self._cv.notify_all()

    def _call(self, name, *args):
        ml = self._enter()
        try:
            _check(getattr(_lib, name)(ml, *args), ml)
        finally:
            self._exit()

    def close(self):
        """Shuts down (without leaving) if needed and frees the memberlist, after the calls in
        flight on other threads return. Idempotent."""
        with self._cv:
            if self._closed or not self._ml:
                self._closed = True
                return
            self._closed = True
            self._cv.wait_for(lambda: self._calls == 0)
        glue = self._transport
        if glue is not None:
            glue.close_gate()  # what the transport hands in from now on is dropped
        _lib.ml_memberlist_destroy(self._ml)
        self._ml = ctypes.POINTER(_n.ml_memberlist)()
        if self._batch:
            _lib.ml_event_batch_free(self._batch)
            self._batch = None
        if glue is not None:
            glue.stop_transport()
            glue.release()

    def __del__(self):
        if getattr(self, "_ml", None):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def callback_errors(self):
        """Exceptions raised by this memberlist's callbacks (and its transport's methods) so
        far."""
        return ((self._cb.errors if self._cb else 0)
                + (self._transport.errors if self._transport else 0))

    # -- membership --

    def join(self, addresses):
        """Joins through existing members ("host:port", ...); returns how many were reached."""
        if isinstance(addresses, str):
            addresses = [addresses]
        arr = (ctypes.c_char_p * len(addresses))(*[a.encode() for a in addresses])
        joined = ctypes.c_uint32()
        self._call("ml_memberlist_join", arr, len(addresses), ctypes.byref(joined))
        return joined.value

    def members(self):
        lst = ctypes.POINTER(_n.ml_node_list)()
        self._call("ml_memberlist_members", ctypes.byref(lst))
        try:
            return [Node._from(_lib.ml_node_list_get(lst, i))
                    for i in range(_lib.ml_node_list_len(lst))]
        finally:
            _lib.ml_node_list_free(lst)

    def num_members(self):
        n = ctypes.c_size_t()
        self._call("ml_memberlist_get_num_members", ctypes.byref(n))
        return n.value

    def local_node(self):
        p = ctypes.POINTER(_n.ml_node)()
        self._call("ml_memberlist_local_node", ctypes.byref(p))
        try:
            return Node._from(p)
        finally:
            _lib.ml_node_free(p)

    def health_score(self):
        s = ctypes.c_int32()
        self._call("ml_memberlist_get_health_score", ctypes.byref(s))
        return s.value

    def ping(self, node_name):
        """Round-trip time in microseconds."""
        rtt = ctypes.c_uint64()
        self._call("ml_memberlist_ping", node_name.encode(), ctypes.byref(rtt))
        return rtt.value

    def leave(self, timeout_ms=0):
        self._call("ml_memberlist_leave", timeout_ms)

    def shutdown(self):
        """Stops the protocol without leaving (peers will see a failure), and the transport
        if there is one. Queries still answer from the last state; ``close()`` frees."""
        self._call("ml_memberlist_shutdown")
        if self._transport is not None:
            self._transport.stop_transport()

    def update_node(self, timeout_ms=0):
        self._call("ml_memberlist_update_node", timeout_ms)

    def set_meta(self, meta, timeout_ms=0):
        meta = _bytes(meta)
        self._call("ml_memberlist_set_meta", meta, len(meta), timeout_ms)

    # -- messages and broadcasts --

    def send_best_effort(self, node_name, data):
        data = _bytes(data)
        self._call("ml_memberlist_send_best_effort", node_name.encode(), data, len(data))

    def send_reliable(self, node_name, data):
        data = _bytes(data)
        self._call("ml_memberlist_send_reliable", node_name.encode(), data, len(data))

    def send_to_address(self, address, data):
        data = _bytes(data)
        self._call("ml_memberlist_send_to_address", address.encode(), data, len(data))

    def queue_broadcast(self, data, name=None):
        """Queues a broadcast for gossip; returns its id (see BroadcastDone)."""
        data = _bytes(data)
        bid = ctypes.c_uint64()
        self._call("ml_memberlist_queue_broadcast", name.encode() if name else None, data,
                   len(data), ctypes.byref(bid))
        return bid.value

    def num_queued_broadcasts(self):
        n = ctypes.c_size_t()
        self._call("ml_memberlist_get_num_queued_broadcasts", ctypes.byref(n))
        return n.value

    # -- metrics --

    def metrics(self):
        """{(name, labels): value} of the metrics recorded so far (timers: sum in ms)."""
        m = ctypes.POINTER(_n.ml_metrics)()
        self._call("ml_memberlist_metrics", ctypes.byref(m))
        try:
            return {(_lib.ml_metrics_name(m, i).decode(), _lib.ml_metrics_labels(m, i).decode()):
                    _lib.ml_metrics_value(m, i) for i in range(_lib.ml_metrics_len(m))}
        finally:
            _lib.ml_metrics_free(m)

    def prometheus(self):
        out, ln = ctypes.c_char_p(), ctypes.c_size_t()
        self._call("ml_memberlist_prometheus", ctypes.byref(out), ctypes.byref(ln))
        try:
            return ctypes.string_at(out, ln.value).decode()
        finally:
            _lib.ml_string_free(out)

    # -- events (events=True) --

    def event_fd(self):
        """A descriptor readable while events are queued (for select, selectors or an event
        loop's add_reader). Owned by the memberlist: do not read or close it."""
        fd = ctypes.c_int32()
        self._call("ml_memberlist_event_fd", ctypes.byref(fd))
        return fd.value

    def event_stats(self):
        """(events queued now, events dropped so far because the queue was full)."""
        queued, dropped = ctypes.c_size_t(), ctypes.c_uint64()
        self._call("ml_memberlist_get_event_stats", ctypes.byref(queued), ctypes.byref(dropped))
        return queued.value, dropped.value

    def poll(self, max_events=64):
        """Takes up to max_events queued events (a list, empty if none); never blocks."""
        with self._poll_lock:
            out = list(itertools.islice(self._drain_pending(), max_events))
            if len(out) < max_events:
                out += self._poll_native(max_events - len(out))
            return out

    def _drain_pending(self):
        while self._pending:
            yield self._pending.popleft()

    def _poll_native(self, max_events):
        count = ctypes.c_size_t()
        self._call("ml_memberlist_poll_events", self._batch, max_events, ctypes.byref(count))
        out = []
        for i in range(count.value):
            ev = _event_from(_lib.ml_event_batch_get(self._batch, i).contents)
            if ev is not None:
                out.append(ev)
        return out

    def wait(self, timeout=None):
        """Waits until events are queued or timeout (seconds; None: no limit); True if some are."""
        with self._poll_lock:
            if self._pending:
                return True
        r, _, _ = select.select([self.event_fd()], [], [], timeout)
        return bool(r)

    def get(self, timeout=None):
        """The next event, waiting up to timeout seconds (None: no limit); raises queue.Empty
        when none came, like queue.Queue.get."""
        while True:
            with self._poll_lock:
                if not self._pending:
                    self._pending.extend(self._poll_native(64))
                if self._pending:
                    return self._pending.popleft()
            if not self.wait(timeout):
                raise queue.Empty

    def events(self, timeout=None):
        """Iterates over events as they come; stops after timeout seconds without one (None:
        never)."""
        while True:
            try:
                yield self.get(timeout)
            except queue.Empty:
                return

    async def aevents(self):
        """Async iterator over events for asyncio, waiting on the event fd with the running
        loop's add_reader (no thread)."""
        loop = asyncio.get_running_loop()
        fd = self.event_fd()
        ready = asyncio.Event()
        loop.add_reader(fd, ready.set)
        try:
            while True:
                batch = self.poll(64)
                if not batch:
                    ready.clear()
                    batch = self.poll(64)  # an event may have come before the clear
                    if not batch:
                        await ready.wait()
                        continue
                for ev in batch:
                    yield ev
        finally:
            loop.remove_reader(fd)
