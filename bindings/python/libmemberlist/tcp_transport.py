"""TcpTransport: an example ``Transport`` that carries everything over TCP, no UDP at all (for
networks that block UDP), optionally inside TLS (the standard ``ssl`` module). Standard library
only: ``socket`` and ``threading``.

Datagrams to a peer go over one long-lived connection per peer, in order, from a writer
thread; they are dropped when its queue is full or the peer cannot be reached (datagrams are
best effort). Each stream message gets a connection (and a thread) of its own: the message
goes out, the answer comes back (unless the library said it expects none).

On the wire every message is a frame: a kind byte (``P`` datagram, ``S`` stream), the
sender's advertised address (a length byte, then "ip:port"), a 4-byte big-endian length and
the bytes. A stream's answer is a byte (1 reply, 0 none), then with a reply its 4-byte length
and bytes; a connection closed before that byte also counts as no reply. (The same framing as
the Go binding's TCPTransport.) The library's bytes are already framed and, with a keyring,
encrypted: TLS adds transport security and peer authentication on top.
"""
import ipaddress
import queue
import socket
import struct
import threading
import time

from .transport import StreamResponder, Transport

__all__ = ["TcpTransport", "TransportClosed"]

_MAX_FRAME = 64 << 20  # the largest message accepted from a peer
_PEER_QUEUE = 256  # datagrams queued per peer before they are dropped
_PACKET_DIAL_TIMEOUT = 2.0  # seconds to connect and write a datagram connection
_REPLY_TIMEOUT = 10.0  # seconds to write a stream's answer (and for a TLS handshake)
_JOIN_TIMEOUT = 30.0  # seconds shutdown() waits for each of its threads


class TransportClosed(OSError):
    """Raised by TcpTransport's methods after ``shutdown()``."""


def _split(addr):
    """ "ip:port" or "[v6]:port" -> (ip, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError("address %r is not ip:port" % (addr,))
    return host.strip("[]"), int(port)


def _join(host, port):
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def _read(sock, n):
    """Exactly n bytes; EOFError if the peer closed first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return bytes(buf)


def _read_body(sock):
    (size,) = struct.unpack(">I", _read(sock, 4))
    if size > _MAX_FRAME:
        raise ValueError("a %d-byte message is over the limit" % size)
    return _read(sock, size)


def _shut(sock):
    """Wakes a thread blocked on sock and closes it (close alone does not wake recv)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Responder(StreamResponder):
    """An inbound stream's answer, handed to the connection's thread (never blocks)."""

    def __init__(self, transport):
        self._t = transport
        self.answered = False
        self.answer = None

    def _set(self, answer):
        with self._t._cv:
            if not self.answered:
                self.answered, self.answer = True, answer
                self._t._cv.notify_all()

    def reply(self, data):
        self._set(bytes(data))

    def close(self):
        self._set(None)


class TcpTransport(Transport):
    """A ``Transport`` over TCP only, optionally TLS. Listens on ``host``:``port`` at once
    (port 0: the kernel picks one, see ``address``) and serves after the Memberlist starts it.

    ``advertise``: the "ip:port" to advertise and put in frames, if not the listener's own
    address (required when listening on 0.0.0.0 or ::).

    ``server_ssl`` and ``client_ssl`` (``ssl.SSLContext``, both or neither) wrap every accepted
    and every dialed connection: e.g. a ``PROTOCOL_TLS_SERVER`` context with the node's
    certificate (and ``verify_mode = CERT_REQUIRED`` plus the CA, for mutual TLS) and a
    ``PROTOCOL_TLS_CLIENT`` context trusting the peers' CA (with the node's certificate for
    mutual TLS). The name checked is the peer's IP.

    One transport serves one Memberlist, which shuts it down when it shuts down or closes."""

    def __init__(self, host="127.0.0.1", port=0, *, advertise=None, server_ssl=None,
                 client_ssl=None):
        if (server_ssl is None) != (client_ssl is None):
            raise ValueError("give both server_ssl and client_ssl, or neither")
        self._server_ssl, self._client_ssl = server_ssl, client_ssl
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._ln = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._ln.bind((host, port))
            self._ln.listen(128)
        except BaseException:
            self._ln.close()
            raise
        self._address = _join(*self._ln.getsockname()[:2])
        self._advertise = advertise
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)  # a _Responder answered, or closed
        self._closed = False
        self._inbound = None
        self._peers = {}  # datagram queues by peer address
        self._conns = set()  # open sockets, shut by shutdown()
        self._threads = set()

    @property
    def address(self):
        """The "ip:port" the transport listens on."""
        return self._address

    @property
    def closed(self):
        """True after ``shutdown()``."""
        return self._closed

    def advertise_address(self):
        """``advertise`` if given, else the listener's address (which must be a specific IP)."""
        if self._advertise:
            return self._advertise
        if ipaddress.ip_address(_split(self._address)[0]).is_unspecified:
            raise ValueError("listening on all addresses: give TcpTransport an advertise address")
        return self._address

    def start(self, inbound):
        """Starts accepting connections; what they carry goes to ``inbound``."""
        with self._lock:
            if self._closed:
                raise TransportClosed("transport shut down")
            if self._inbound is not None:
                raise RuntimeError("a TcpTransport serves one Memberlist")
            self._inbound = inbound
            self._spawn(self._accept)

    # -- threads and sockets --

    def _spawn(self, target, *args):
        """Runs target on a tracked thread; call with self._lock held and not closed."""
        def run():
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(t)
        t = threading.Thread(target=run, name="TcpTransport " + target.__name__, daemon=True)
        self._threads.add(t)
        t.start()

    def _track(self, sock):
        """Registers an open socket; False (and closed) after shutdown."""
        with self._lock:
            if not self._closed:
                self._conns.add(sock)
                return True
        _shut(sock)
        return False

    def _drop(self, sock):
        with self._lock:
            self._conns.discard(sock)
        _shut(sock)

    def _dial(self, addr, timeout):
        host, port = _split(addr)
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._track(raw):
                raise TransportClosed("transport shut down")
            sock = raw
            if self._client_ssl is not None:
                sock = self._client_ssl.wrap_socket(raw, server_hostname=host)
                self._drop(raw)  # detached by wrap_socket: the TLS socket owns the descriptor
                if not self._track(sock):
                    raise TransportClosed("transport shut down")
            return sock
        except BaseException:
            self._drop(raw)
            raise

    def _frame(self, kind, data):
        me = (self._advertise or self._address).encode()
        return kind + bytes((len(me),)) + me + struct.pack(">I", len(data)) + data

    # -- datagrams --

    def send_packet(self, to, data):
        """Queues the datagram for ``to``'s connection and returns at once; raises
        ``TransportClosed`` after shutdown, ``OSError`` when the peer's queue is full."""
        frame = self._frame(b"P", data)
        with self._lock:
            if self._closed:
                raise TransportClosed("transport shut down")
            q = self._peers.get(to)
            if q is None:
                q = self._peers[to] = queue.SimpleQueue()
                self._spawn(self._writer, to, q)
            if q.qsize() >= _PEER_QUEUE:
                raise OSError("datagram queue to %s full" % to)
            q.put(frame)

    def _writer(self, to, q):
        """Sends to's datagrams over one connection, dialing again after a failure."""
        sock = None
        try:
            while True:
                frame = q.get()
                if frame is None:  # shutdown
                    return
                try:
                    if sock is None:
                        sock = self._dial(to, _PACKET_DIAL_TIMEOUT)
                    sock.sendall(frame)
                except OSError:  # lost, as a datagram may be
                    if sock is not None:
                        self._drop(sock)
                        sock = None
        finally:
            if sock is not None:
                self._drop(sock)

    # -- streams --

    def send_stream(self, to, data, completion):
        """Sends the stream message on a thread of its own, which completes ``completion``
        with the answer; raises ``TransportClosed`` after shutdown."""
        with self._lock:
            if self._closed:
                raise TransportClosed("transport shut down")
            self._spawn(self._stream_to, to, data, completion)

    def _stream_to(self, to, data, completion):
        deadline = time.monotonic() + completion.timeout

        def remaining():
            return max(0.001, deadline - time.monotonic())
        sock = None
        try:
            sock = self._dial(to, completion.timeout)
            sock.settimeout(remaining())
            sock.sendall(self._frame(b"S", data))
            if not completion.expects_reply:
                return  # delivered; the library waits for nothing more
            sock.settimeout(remaining())
            has = sock.recv(1)
            if has in (b"", b"\0"):  # closed without an answer, or "no reply"
                completion.no_reply()
            else:
                sock.settimeout(remaining())
                completion.reply(_read_body(sock))
        except BaseException as e:  # TimeoutError (socket.timeout) is a timeout
            completion.fail(e)
        finally:
            if sock is not None:
                self._drop(sock)

    # -- serving --

    def _accept(self):
        while True:
            try:
                conn, _ = self._ln.accept()
            except OSError:  # shut by shutdown()
                return
            with self._lock:
                if self._closed:
                    _shut(conn)
                    return
                self._conns.add(conn)
                self._spawn(self._serve, conn)

    def _serve(self, conn):
        """Reads a connection's frames: datagrams until it closes, or one stream message whose
        answer it then writes."""
        try:
            if self._server_ssl is not None:
                conn.settimeout(_REPLY_TIMEOUT)  # the handshake
                raw, conn = conn, self._server_ssl.wrap_socket(conn, server_side=True)
                self._drop(raw)
                if not self._track(conn):
                    return
            conn.settimeout(None)
            while True:
                kind = conn.recv(1)
                if kind not in (b"P", b"S"):  # closed, or garbage
                    return
                (n,) = _read(conn, 1)
                sender = _read(conn, n).decode()
                body = _read_body(conn)
                if kind == b"P":
                    self._inbound.packet(sender, body)
                    continue
                r = _Responder(self)
                self._inbound.stream(sender, body, r)
                with self._cv:
                    self._cv.wait_for(lambda: r.answered or self._closed)
                    if not r.answered:
                        return
                conn.settimeout(_REPLY_TIMEOUT)
                if r.answer is None:
                    conn.sendall(b"\0")
                else:
                    conn.sendall(b"\1" + struct.pack(">I", len(r.answer)) + r.answer)
                return
        except (OSError, ValueError, EOFError, UnicodeDecodeError):
            return  # broken, garbage, or shutdown()
        finally:
            self._drop(conn)

    def shutdown(self):
        """Closes the listener and every connection and waits for the transport's threads.
        Idempotent; the sends raise ``TransportClosed`` afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
            conns, self._conns = self._conns, set()
            peers = list(self._peers.values())
        for q in peers:
            q.put(None)
        _shut(self._ln)
        for c in conns:
            _shut(c)
        me = threading.current_thread()
        while True:
            with self._lock:
                threads = [t for t in self._threads if t is not me]
            if not threads:
                return
            for t in threads:
                t.join(_JOIN_TIMEOUT)
            if any(t.is_alive() for t in threads):
                return  # a thread stuck in a host callback: do not hang the caller
