"""Host transport: the application carries the node's bytes (TLS, TCP only, a message bus, an
in-process queue) instead of the library's own UDP and TCP sockets.

Give ``Memberlist(config, transport=t)`` an object implementing ``Transport``. The library
keeps the timers, framing, encryption and the protocol; the transport only moves opaque bytes:

- datagrams out: ``Transport.send_packet(to, data)``; in: ``Inbound.packet(from_addr, data)``;
- stream messages out: ``Transport.send_stream(to, data, completion)``, completed once with
  the peer's reply (``StreamCompletion``); in: ``Inbound.stream(from_addr, data, responder)``,
  whose ``StreamResponder`` the binding answers exactly once.

Addresses are the "ip:port" strings the nodes advertise. The ``from_addr`` handed in must be
the sender's advertised address (the library answers there), not the source port of a
connection: a transport tells it in its own framing. ``TcpTransport`` is a complete example.
"""
import abc
import ctypes
import itertools
import sys
import threading
import traceback

from . import _native_g as _n
from ._lib import lib as _lib

__all__ = ["Transport", "Inbound", "StreamCompletion", "StreamResponder"]


class Transport(abc.ABC):
    """What the application implements to carry a memberlist's bytes (one transport serves
    one Memberlist).

    ``send_packet`` and ``send_stream`` are called on library threads, several at once; they
    must not block (queue the bytes and return) and must not close the Memberlist. An
    exception they raise is reported (``on_callback_error``, else stderr) and tells the library
    the send failed; it never reaches C."""

    @abc.abstractmethod
    def advertise_address(self):
        """The "ip:port" this node advertises (a specific IP, not 0.0.0.0); asked once, when
        the Memberlist is created. Raising makes the creation fail."""

    @abc.abstractmethod
    def start(self, inbound):
        """Called once, right after the Memberlist was created: from now on hand what arrives
        to ``inbound`` (an ``Inbound``). Raising makes the creation fail (the Memberlist is
        freed; the transport stays the caller's, not shut down)."""

    @abc.abstractmethod
    def send_packet(self, to, data):
        """Sends one datagram (bytes) to ``to``; best effort, it may be lost. Must not block.
        Raise to report it was not taken (counted as a dropped send)."""

    @abc.abstractmethod
    def send_stream(self, to, data, completion):
        """Sends one stream message (bytes) to ``to`` and completes ``completion`` (a
        ``StreamCompletion``) exactly once, later, from any thread: with the peer's reply, no
        reply (the peer closed without one), or a failure or timeout. Must not block: do the
        work on a thread of the transport's. The library does not say whether the message
        expects a reply: wait for the peer's answer either way. Raising (without completing)
        fails the stream at once, as a refused connection."""

    def shutdown(self):
        """Stops the transport; called once, when the Memberlist shuts down or closes (not
        when its creation failed: the transport stays the caller's then). The default does
        nothing."""


class StreamResponder(abc.ABC):
    """The answer channel of one inbound stream message, given to ``Inbound.stream`` by the
    transport. The binding calls exactly one of ``reply`` or ``close``, exactly once: when the
    library answers, when it refuses the message, or when the Memberlist closes (or is
    collected) first. They may be called on a library thread: they must not block (queue the
    answer for the connection's own thread)."""

    @abc.abstractmethod
    def reply(self, data):
        """Send ``data`` (bytes, maybe empty) back to the peer as its stream's reply."""

    @abc.abstractmethod
    def close(self):
        """Close the peer's stream without a reply (none was needed, or it was refused)."""


# Stream completion statuses for ml_memberlist_transport_stream_done.
_OK, _REJECTED, _TIMEOUT, _IO = _n.ML_OK, _n.ML_E_REJECTED, _n.ML_E_TIMEOUT, _n.ML_E_IO


class StreamCompletion:
    """Completes one outgoing stream message (``Transport.send_stream``). Call exactly one of
    ``reply``, ``no_reply`` or ``fail``, once, from any thread; later calls are ignored (they
    return False), and so are calls after the Memberlist closed. A completion dropped without
    an answer (garbage collected) fails the stream, so the library need not wait for its
    timeout."""

    def __init__(self, glue, token, to, timeout, expects_reply=True):
        self._glue = glue
        self._token = token
        self._lock = threading.Lock()
        self._done = False
        #: The peer's address ("ip:port").
        self.to = to
        #: Seconds the library waits for this stream (the config's tcp_timeout_ms): a
        #: transport's own deadline for dialing, writing and reading the reply.
        self.timeout = timeout
        #: False when the library said it waits for no reply to this message: the transport
        #: may close its stream once the bytes are delivered, and need not complete (doing so
        #: is harmless). True when it waits for one, or when the library does not say (a
        #: header before ML_TRANSPORT_VERSION_2): then wait for the peer's answer.
        self.expects_reply = expects_reply

    @property
    def done(self):
        """True once the stream was completed (or abandoned)."""
        return self._done

    def _claim(self):
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    def _complete(self, status, data=b""):
        return self._claim() and self._glue._stream_done(self._token, status, data)

    def reply(self, data=b""):
        """The peer answered with ``data`` (bytes, maybe empty). True if this completed it
        (False: completed before, or the Memberlist closed)."""
        return self._complete(_OK, bytes(data))

    def no_reply(self):
        """The peer closed the stream without a reply (the library ignores that when it needed
        none; otherwise it is a rejection). True if this completed it."""
        return self._complete(_REJECTED)

    def fail(self, error=None):
        """The stream failed: a ``TimeoutError`` (``socket.timeout``) is a timeout, anything
        else (or None) a failed connection. True if this completed it."""
        return self._complete(_TIMEOUT if isinstance(error, TimeoutError) else _IO)

    def __del__(self):
        try:
            self._complete(_IO)
        except BaseException:  # interpreter shutdown: nothing left to tell
            pass

    def __repr__(self):
        return "StreamCompletion(to=%r, done=%r)" % (self.to, self._done)


class Inbound:
    """Where a transport hands in what it received, given to ``Transport.start``. Safe from
    any thread; the calls copy the bytes and never block. After the Memberlist closed they do
    nothing and return False (a transport may still be delivering while it stops)."""

    def __init__(self, glue):
        self._glue = glue

    @property
    def closed(self):
        """True once the Memberlist closed: nothing handed in reaches it any more."""
        return self._glue._closed

    def packet(self, from_addr, data):
        """A datagram from ``from_addr`` (the sender's advertised "ip:port"). True if the
        library took it (it may still drop it later, as it drops garbage)."""
        return self._glue._packet(from_addr, bytes(data))

    def stream(self, from_addr, data, responder):
        """A whole stream message from ``from_addr``; ``responder`` (a ``StreamResponder``)
        gets the answer exactly once. True if the library took it; False if it refused it or
        the Memberlist closed, and then ``responder.close()`` was called already."""
        return self._glue._stream(from_addr, bytes(data), responder)


# ---- the glue between a Transport and the C ABI ---------------------------------------------

_TF = dict(_n.ml_transport._fields_)
# Transports the library may still call, by the user_data token it gets. The trampolines
# below are module-level, so the function pointers the library holds live as long as the
# module; a token no longer here (the Memberlist was freed) makes them a harmless no-op.
_live_transports = {}
_tokens = itertools.count(1)


def _glue_of(user_data):
    return _live_transports.get(user_data)


@_TF["send_packet"]
def _send_packet(user_data, to, data, n):
    try:
        glue = _glue_of(user_data)
        if glue is None:
            return 1
        try:
            glue.transport.send_packet(to.decode(), ctypes.string_at(data, n) if n else b"")
            return 0
        except BaseException as e:  # never unwind into C
            glue.report("send_packet", e)
            return 1
    except BaseException:
        return 1


def _start_stream(user_data, to, token, data, n, expects_reply):
    try:
        glue = _glue_of(user_data)
        if glue is None:
            return 1
        completion = StreamCompletion(glue, token, to.decode(), glue.timeout, expects_reply)
        try:
            glue.transport.send_stream(completion.to, ctypes.string_at(data, n) if n else b"",
                                       completion)
            return 0
        except BaseException as e:
            glue.report("send_stream", e)
            # Non-zero fails the stream, and the token must then not be completed; if the
            # transport completed it before raising, it was taken after all.
            return 1 if completion._claim() else 0
    except BaseException:
        return 1


@_TF["send_stream"]
def _send_stream(user_data, to, token, data, n):
    return _start_stream(user_data, to, token, data, n, True)


# Version 2 of the header says whether the library waits for a reply; with an older header
# (generated file) the binding only has send_stream and every stream expects one.
_HAS_STREAM_FLAGS = "send_stream_flags" in _TF
if _HAS_STREAM_FLAGS:
    @_TF["send_stream_flags"]
    def _send_stream_flags(user_data, to, token, data, n, flags):
        return _start_stream(user_data, to, token, data, n,
                             bool(flags & _n.ML_STREAM_EXPECTS_REPLY))


@_TF["stream_reply"]
def _stream_reply(user_data, token, data, n, has_reply):
    try:
        glue = _glue_of(user_data)
        if glue is not None:
            glue._answer(token, (ctypes.string_at(data, n) if n else b"") if has_reply else None)
    except BaseException:
        pass


class _Glue:
    """One Memberlist's transport state: the C table, the inbound streams waiting for an
    answer, and a gate that keeps host calls off the native handle once it is freed."""

    def __init__(self, transport, timeout, on_error):
        self.transport = transport
        self.timeout = timeout
        self.on_error = on_error
        self.errors = 0
        self.token = next(_tokens)
        self.table = _n.ml_transport()
        self.table.version = _n.ML_TRANSPORT_VERSION
        self.table.user_data = self.token
        self.table.send_packet = _send_packet
        self.table.send_stream = _send_stream
        self.table.stream_reply = _stream_reply
        if _HAS_STREAM_FLAGS:
            self.table.send_stream_flags = _send_stream_flags
        self.inbound = Inbound(self)
        self._cv = threading.Condition()
        self._ml = None
        self._calls = 0
        self._closed = False
        self._stopped = False
        self._responders = {}
        self._next_stream = itertools.count(1)
        _live_transports[self.token] = self

    def report(self, where, exc):
        self.errors += 1
        try:
            if self.on_error is not None:
                self.on_error("transport." + where, exc)
            else:
                print("libmemberlist: exception in transport.%s:" % where, file=sys.stderr)
                traceback.print_exception(exc, file=sys.stderr)
        except BaseException:
            pass

    # -- the gate: host calls use the native handle only between attach and close_gate --

    def attach(self, ml):
        with self._cv:
            self._ml = ml

    def _enter(self):
        with self._cv:
            if self._closed or self._ml is None:
                return None
            self._calls += 1
            return self._ml

    def _exit(self):
        with self._cv:
            self._calls -= 1
            if self._calls == 0:
                self._cv.notify_all()

    def close_gate(self):
        """No host call reaches the handle after this returns (it waits for those in flight,
        which never block)."""
        with self._cv:
            self._closed = True
            self._cv.wait_for(lambda: self._calls == 0)

    # -- host -> library --

    def _packet(self, from_addr, data):
        ml = self._enter()
        if ml is None:
            return False
        try:
            return _lib.ml_memberlist_transport_packet(ml, from_addr.encode(), data,
                                                       len(data)) == _n.ML_OK
        finally:
            self._exit()

    def _stream(self, from_addr, data, responder):
        token = next(self._next_stream)
        with self._cv:
            # Registered first: the library may answer before transport_stream returns.
            self._responders[token] = responder
        ml = self._enter()
        status = _n.ML_E_CLOSED
        if ml is not None:
            try:
                status = _lib.ml_memberlist_transport_stream(ml, from_addr.encode(), token, data,
                                                             len(data))
            finally:
                self._exit()
        if status != _n.ML_OK:  # refused: no stream_reply comes
            self._answer(token, None)
            return False
        return True

    def _stream_done(self, token, status, data):
        """Completes an outgoing stream; False once the Memberlist closed."""
        ml = self._enter()
        if ml is None:
            return False
        try:
            # ML_E_NOT_FOUND (the library stopped waiting) and ML_E_CLOSED are harmless.
            _lib.ml_memberlist_transport_stream_done(ml, token, status, data, len(data))
            return True
        finally:
            self._exit()

    # -- library -> host --

    def _answer(self, token, reply):
        """Answers inbound stream ``token`` (reply bytes, or None for none), once."""
        with self._cv:
            responder = self._responders.pop(token, None)
        if responder is None:
            return
        try:
            if reply is None:
                responder.close()
            else:
                responder.reply(reply)
        except BaseException as e:
            self.report("StreamResponder." + ("close" if reply is None else "reply"), e)

    # -- lifetime --

    def stop_transport(self):
        """Transport.shutdown(), once."""
        with self._cv:
            if self._stopped:
                return
            self._stopped = True
        try:
            self.transport.shutdown()
        except BaseException as e:
            self.report("shutdown", e)

    def release(self):
        """After ml_memberlist_destroy (or a failed create): no callback comes any more; the
        streams still waiting are closed without a reply."""
        with self._cv:
            self._closed = True
            self._ml = None
            pending = list(self._responders)
        _live_transports.pop(self.token, None)
        for token in pending:
            self._answer(token, None)
