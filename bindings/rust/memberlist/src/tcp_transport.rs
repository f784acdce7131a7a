//! An example host transport over TCP only (std::net and threads).

use crate::{Inbound, StreamCompletion, StreamReply, Transport};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Largest message accepted from a peer.
const MAX_FRAME: usize = 64 << 20;
/// Datagrams queued per peer before they are dropped.
const PEER_QUEUE: usize = 256;
/// Connect and write timeout of the datagram connections.
const PACKET_TIMEOUT: Duration = Duration::from_secs(2);

/// An example [`Transport`] that carries everything over TCP, with no UDP at all (for networks
/// that block UDP), built on `std::net` and threads. Datagrams to a peer go over one
/// long-lived connection per peer, in order, and are dropped when its queue is full or the
/// peer cannot be reached (datagrams are best effort). Each stream message gets a connection
/// of its own: the message goes out, the reply (or a "no reply" mark) comes back.
///
/// On the wire every message is a frame: a kind byte (`b'P'` datagram, `b'S'` stream), the
/// sender's advertised address (a length byte, then `"ip:port"`: the connection's source
/// port is not it), a 4-byte big-endian length and the bytes. A stream's answer is a byte (1
/// reply, 0 none), then with a reply its 4-byte length and bytes. The library's bytes are
/// already framed and, with a keyring ([`crate::Config::add_key`]), encrypted and
/// authenticated.
///
/// There is no TLS: this crate uses only the standard library (the Go binding's
/// `TCPTransport` has it through crypto/tls). For TLS, implement [`Transport`] over a TLS
/// crate the same way, or rely on the keyring for confidentiality and integrity.
///
/// ```no_run
/// use libmemberlist::{Config, Handlers, Memberlist, TcpOnlyTransport};
/// use std::sync::Arc;
/// let transport = Arc::new(TcpOnlyTransport::bind("127.0.0.1:0").expect("listen"));
/// let address = transport.local_addr().to_string();
/// let config = Config::local()?.with_name("a")?.with_transport(transport, &address)?;
/// let ml = Memberlist::create(&config, Handlers::new())?;
/// ml.join(&["127.0.0.1:7946"])?;
/// # Ok::<(), libmemberlist::Error>(())
/// ```
pub struct TcpOnlyTransport {
    listener: TcpListener,
    local: SocketAddr,
    inner: Arc<Inner>,
}

/// What the transport's threads share.
struct Inner {
    state: Mutex<State>,
    /// Threads running; shutdown waits for zero.
    live: Mutex<usize>,
    idle: Condvar,
    /// The address put in our frames: the advertised one, known at start.
    sender: OnceLock<String>,
}

#[derive(Default)]
struct State {
    started: bool,
    closed: bool,
    /// Taken by shutdown (it holds the memberlist's glue, which holds this transport).
    inbound: Option<Inbound>,
    timeout: Duration,
    /// Datagram queues by peer address (each drained by a writer thread).
    peers: HashMap<String, SyncSender<Vec<u8>>>,
    /// Open connections, shut down by shutdown() to unblock their threads.
    conns: HashMap<u64, TcpStream>,
    /// Inbound streams waiting for the library's answer; shutdown answers them None.
    waiting: HashMap<u64, Sender<Option<Vec<u8>>>>,
    next_id: u64,
}

impl TcpOnlyTransport {
    /// Listens on `addr` (`"127.0.0.1:0"` lets the system pick a port). Nothing runs until a
    /// memberlist starts the transport.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        Ok(TcpOnlyTransport {
            listener,
            local,
            inner: Arc::new(Inner {
                state: Mutex::new(State { timeout: Duration::from_secs(10), ..State::default() }),
                live: Mutex::new(0),
                idle: Condvar::new(),
                sender: OnceLock::new(),
            }),
        })
    }

    /// How long an outgoing stream may take, connect to reply (default 10 s), and how long an
    /// inbound one waits for the library's answer. The library gives up on a stream after
    /// its own `tcp_timeout` anyway.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.inner.lock().timeout = timeout;
        self
    }

    /// The address the transport listens on: the one to give
    /// [`crate::Config::set_transport`] (unless it listens on all addresses).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address put in our frames: the advertised one once started.
    fn sender(&self) -> String {
        match self.inner.sender.get() {
            Some(a) => a.clone(),
            None => self.local.to_string(),
        }
    }

    fn frame(&self, kind: u8, body: &[u8]) -> Vec<u8> {
        let from = self.sender();
        let mut f = Vec::with_capacity(6 + from.len() + body.len());
        f.push(kind);
        f.push(from.len() as u8); // "[v6]:port" is at most 47 bytes
        f.extend_from_slice(from.as_bytes());
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(body);
        f
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed(&self) -> bool {
        self.lock().closed
    }

    /// Runs `f` on a thread that shutdown waits for.
    fn spawn(self: &Arc<Self>, f: impl FnOnce() + Send + 'static) {
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let inner = self.clone();
        let run = move || {
            // Counted down even if f panics.
            struct Done(Arc<Inner>);
            impl Drop for Done {
                fn drop(&mut self) {
                    let mut live = self.0.live.lock().unwrap_or_else(|p| p.into_inner());
                    *live -= 1;
                    if *live == 0 {
                        self.0.idle.notify_all();
                    }
                }
            }
            let _done = Done(inner);
            f();
        };
        if thread::Builder::new().name("ml-tcp-transport".into()).spawn(run).is_err() {
            // The closure (and its Done) was dropped: the count is already back.
        }
    }

    /// Registers an open connection (a clone, to shut it down); None after shutdown.
    fn track(&self, conn: &TcpStream) -> Option<u64> {
        let clone = conn.try_clone().ok()?;
        let mut st = self.lock();
        if st.closed {
            let _ = conn.shutdown(Shutdown::Both);
            return None;
        }
        st.next_id += 1;
        let id = st.next_id;
        st.conns.insert(id, clone);
        Some(id)
    }

    fn untrack(&self, id: u64) {
        if let Some(c) = self.lock().conns.remove(&id) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn accept(self: &Arc<Self>, listener: TcpListener) {
        for conn in listener.incoming() {
            if self.closed() {
                return;
            }
            let Ok(conn) = conn else { continue };
            let Some(id) = self.track(&conn) else { return };
            let inner = self.clone();
            self.spawn(move || {
                inner.serve(conn);
                inner.untrack(id);
            });
        }
    }

    /// Reads a connection's frames: datagrams until it closes, or one stream message whose
    /// answer then goes back on it.
    fn serve(&self, mut conn: TcpStream) {
        let Some(inbound) = self.lock().inbound.clone() else { return };
        while let Ok((kind, from, body)) = read_frame(&mut conn) {
            match kind {
                b'P' => {
                    // Refusals (garbage, too large, closed) are the library's to count.
                    let _ = inbound.packet(&from, &body);
                }
                b'S' => {
                    self.answer_stream(&inbound, conn, &from, &body);
                    return;
                }
                _ => return,
            }
        }
    }

    fn answer_stream(&self, inbound: &Inbound, mut conn: TcpStream, from: &str, body: &[u8]) {
        let (tx, rx) = mpsc::channel::<Option<Vec<u8>>>();
        let (id, timeout) = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.next_id += 1;
            let id = st.next_id;
            st.waiting.insert(id, tx.clone());
            (id, st.timeout)
        };
        // The reply function runs on a library thread: it only passes the bytes on.
        let reply = StreamReply::new(move |r| drop(tx.send(r.map(<[u8]>::to_vec))));
        // On failure the reply was answered None already. The library answers every stream
        // it took (dropping the memberlist answers the rest None; so does shutdown); the
        // timeout only bounds a library that would not.
        let _ = inbound.stream(from, body, reply);
        let answer = rx.recv_timeout(timeout).ok().flatten();
        self.lock().waiting.remove(&id);
        let mut out = Vec::new();
        match answer {
            Some(r) => {
                out.push(1);
                out.extend_from_slice(&(r.len() as u32).to_be_bytes());
                out.extend_from_slice(&r);
            }
            None => out.push(0),
        }
        let _ = conn.set_write_timeout(Some(PACKET_TIMEOUT));
        let _ = conn.write_all(&out);
    }

    /// Sends `addr`'s datagrams over one connection, connecting again after a failure.
    fn writer(&self, addr: &str, queue: mpsc::Receiver<Vec<u8>>) {
        let mut conn: Option<(TcpStream, u64)> = None;
        // Ends when shutdown drops the sender.
        while let Ok(frame) = queue.recv() {
            if conn.is_none() {
                let Ok(c) = connect(addr, PACKET_TIMEOUT) else { continue }; // lost, as a datagram may be
                let _ = c.set_write_timeout(Some(PACKET_TIMEOUT));
                let Some(id) = self.track(&c) else { return };
                conn = Some((c, id));
            }
            if let Some((c, id)) = &mut conn {
                if c.write_all(&frame).is_err() {
                    self.untrack(*id);
                    conn = None;
                }
            }
        }
        if let Some((_, id)) = conn {
            self.untrack(id);
        }
    }
}

fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let to: SocketAddr = addr
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} is not an ip:port")))?;
    TcpStream::connect_timeout(&to, timeout)
}

fn read_u32(r: &mut impl Read) -> io::Result<usize> {
    let mut n = [0u8; 4];
    r.read_exact(&mut n)?;
    let n = u32::from_be_bytes(n) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a {n}-byte message is over the limit")));
    }
    Ok(n)
}

fn read_body(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut body = vec![0u8; read_u32(r)?];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// One frame: kind, sender's address, body.
fn read_frame(r: &mut impl Read) -> io::Result<(u8, String, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head)?;
    let mut from = vec![0u8; head[1] as usize];
    r.read_exact(&mut from)?;
    let from = String::from_utf8(from).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "address not UTF-8"))?;
    Ok((head[0], from, read_body(r)?))
}

/// One outgoing stream: the frame out, the answer back.
fn stream_to(inner: &Inner, addr: &str, frame: &[u8], timeout: Duration) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + timeout;
    let mut conn = connect(addr, timeout)?;
    let id = inner
        .track(&conn)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the transport is shut down"))?;
    let result = (|| {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        conn.set_write_timeout(Some(left))?;
        conn.set_read_timeout(Some(left))?;
        conn.write_all(frame)?;
        let mut has = [0u8; 1];
        conn.read_exact(&mut has)?; // EOF before the mark: the connection failed
        if has[0] == 0 {
            return Ok(None);
        }
        read_body(&mut conn).map(Some)
    })();
    inner.untrack(id);
    result
}

impl Transport for TcpOnlyTransport {
    /// Starts accepting connections; fails if the transport already serves a memberlist.
    fn start(&self, inbound: Inbound) -> io::Result<()> {
        {
            let mut st = self.inner.lock();
            if st.started || st.closed {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "a TcpOnlyTransport serves one memberlist"));
            }
            st.started = true;
            let _ = self.inner.sender.set(inbound.local_address().to_string());
            st.inbound = Some(inbound);
        }
        let listener = self.listener.try_clone()?;
        let inner = self.inner.clone();
        self.inner.spawn(move || inner.accept(listener));
        Ok(())
    }

    /// Queues the datagram for `to`'s connection and returns at once.
    fn send_packet(&self, to: &str, data: &[u8]) -> io::Result<()> {
        let queue = {
            let mut st = self.inner.lock();
            if st.closed {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "the transport is shut down"));
            }
            match st.peers.get(to) {
                Some(q) => q.clone(),
                None => {
                    let (tx, rx) = mpsc::sync_channel(PEER_QUEUE);
                    st.peers.insert(to.to_string(), tx.clone());
                    let (inner, addr) = (self.inner.clone(), to.to_string());
                    self.inner.spawn(move || inner.writer(&addr, rx));
                    tx
                }
            }
        };
        queue.try_send(self.frame(b'P', data)).map_err(|e| match e {
            TrySendError::Full(_) => io::Error::new(io::ErrorKind::WouldBlock, format!("the datagram queue to {to} is full")),
            TrySendError::Disconnected(_) => io::Error::new(io::ErrorKind::NotConnected, "the transport is shut down"),
        })
    }

    /// Sends the message over a new connection on a thread of its own and completes `done`
    /// with the peer's answer.
    fn send_stream(&self, to: &str, data: &[u8], done: StreamCompletion) {
        if self.inner.closed() {
            return done.fail(&io::Error::new(io::ErrorKind::NotConnected, "the transport is shut down"));
        }
        let timeout = self.inner.lock().timeout;
        let (inner, addr, frame) = (self.inner.clone(), to.to_string(), self.frame(b'S', data));
        self.inner.spawn(move || match stream_to(&inner, &addr, &frame, timeout) {
            Ok(Some(reply)) => done.reply(&reply),
            Ok(None) => done.no_reply(),
            Err(e) => done.fail(&e),
        });
    }

    /// Closes the listener's loop and every connection, answers inbound streams still waiting
    /// without a reply, and waits for the transport's threads. Idempotent.
    fn shutdown(&self) {
        let (conns, waiting, inbound) = {
            let mut st = self.inner.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            st.peers.clear(); // the writers end
            (std::mem::take(&mut st.conns), std::mem::take(&mut st.waiting), st.inbound.take())
        };
        drop(inbound);
        for c in conns.values() {
            let _ = c.shutdown(Shutdown::Both);
        }
        for tx in waiting.values() {
            let _ = tx.send(None);
        }
        // Wake the accept loop, which then sees closed.
        let mut wake = self.local;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, PACKET_TIMEOUT);
        let mut live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
        while *live > 0 {
            live = self.inner.idle.wait(live).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for TcpOnlyTransport {
    fn drop(&mut self) {
        // Started but never shut down (no memberlist did): stop the threads.
        if self.inner.lock().started {
            self.shutdown();
        }
    }
}

impl std::fmt::Debug for TcpOnlyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpOnlyTransport").field("local_addr", &self.local).finish()
    }
}
