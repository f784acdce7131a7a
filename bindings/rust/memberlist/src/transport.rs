//! The host transport: the application carries the node's bytes instead of the library's own
//! UDP and TCP sockets (`ml_transport` in memberlist.h, "Host transport" in docs/abi.md).

use crate::{bytes_from, c_string, drop_payload, panic_message, string_from, sys, CallbackError, Error, Result};
use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// Carries a node's datagrams and stream messages over whatever the application likes (TCP
/// only, TLS, a message bus, an in-process queue), set with [`crate::Config::set_transport`].
/// The library keeps the timers, framing, encryption and the protocol; the transport moves
/// whole datagrams and whole stream messages, opaque bytes to deliver unchanged. It is the
/// shape of hashicorp/memberlist's `Transport` (as the Go binding's), adapted to Rust:
///
/// - `WriteTo` is [`Transport::send_packet`]; `DialTimeout` (a connection the library would
///   read and write) is [`Transport::send_stream`]: one message out, the peer's whole reply
///   back through a [`StreamCompletion`].
/// - `PacketCh` and `StreamCh` are the [`Inbound`] handle given to [`Transport::start`]: the
///   transport hands what it receives to [`Inbound::packet`] and [`Inbound::stream`].
/// - Addresses are the `"ip:port"` strings the nodes advertise. The `from` of a packet or
///   stream handed in must be the sender's advertised address, not the source port of a
///   connection: the library answers there. A transport over connections therefore sends
///   its own advertised address ([`Inbound::local_address`]) along with its bytes.
///
/// `send_packet` and `send_stream` run on library threads, several at once: they must not
/// block (queue the bytes, or start a thread, and return). Every method may be called from
/// any thread, hence `Send + Sync`. A panic in a method is caught at the boundary, counted by
/// [`crate::Memberlist::callback_errors`] and passed to
/// [`crate::Handlers::on_callback_error`]; it counts as a failed send.
///
/// One transport serves one [`crate::Memberlist`]: [`Transport::start`] is called once when
/// it is created, and [`Transport::shutdown`] once when it shuts down
/// ([`crate::Memberlist::shutdown`]) or is dropped (then after the library let go of it). [`crate::TcpOnlyTransport`] is an example.
pub trait Transport: Send + Sync {
    /// The memberlist was created: keep `inbound` and hand it what arrives from now on. An
    /// error fails [`crate::Memberlist::create`] with [`crate::ErrorKind::Io`]; then
    /// [`Transport::shutdown`] is not called (a transport that refuses because it already
    /// serves another memberlist keeps serving it).
    fn start(&self, inbound: Inbound) -> io::Result<()>;

    /// One datagram to `to` (`"ip:port"`). Must not block. `Ok` if it was taken (it may still
    /// be lost, as a UDP datagram may); an error counts as a dropped send.
    fn send_packet(&self, to: &str, data: &[u8]) -> io::Result<()>;

    /// One stream message to `to`: send `data`, wait for the peer's answer and complete
    /// `done` with it ([`StreamCompletion::reply`], [`StreamCompletion::no_reply`] when the
    /// peer closed the stream without one, [`StreamCompletion::fail`]). Must not block: do
    /// the work on a thread of the transport's and move `done` there. The library does not
    /// say whether the message expects a reply: wait for the peer's answer either way.
    /// Dropping `done` without completing it fails the stream, so a forgotten one is never
    /// leaked; the library bounds the wait by its `tcp_timeout` anyway.
    fn send_stream(&self, to: &str, data: &[u8], done: StreamCompletion);

    /// Stops the transport (its threads, listeners and connections). Called once, when the
    /// memberlist is shut down or dropped; sends that still arrive afterwards should fail.
    /// Drop the [`Inbound`] here: it holds the memberlist's glue, which holds this transport,
    /// so a transport that keeps it forever is never freed.
    fn shutdown(&self);
}

/// The handle a [`Transport`] uses to hand the memberlist what it received, given to
/// [`Transport::start`]. Cheap to clone, `Send + Sync`. It guards the memberlist: once that is
/// dropped, the calls fail with [`crate::ErrorKind::Closed`] and do nothing else, so a
/// transport thread that is still running then is harmless.
#[derive(Clone)]
pub struct Inbound {
    link: Arc<Link>,
}

impl Inbound {
    /// The address this node advertises (`"ip:port"`): what a transport over connections
    /// tells its peers as the sender of its bytes.
    pub fn local_address(&self) -> &str {
        self.link.address.get().map_or("", String::as_str)
    }

    /// A datagram received from `from` (the sender's advertised `"ip:port"`); copied. Fails
    /// with [`crate::ErrorKind::TooLarge`] over 65507 bytes, [`crate::ErrorKind::Invalid`] for
    /// a bad address and [`crate::ErrorKind::Closed`] after shutdown; otherwise it is handled
    /// as a UDP datagram (garbage is counted and dropped by the library).
    pub fn packet(&self, from: &str, data: &[u8]) -> Result<()> {
        let from = c_string(from, "from")?;
        let call = self.link.enter()?;
        call.check(unsafe { sys::ml_memberlist_transport_packet(call.ml, from.as_ptr(), data.as_ptr(), data.len()) })
    }

    /// A whole stream message received from `from` (the sender's advertised `"ip:port"`);
    /// copied. The library's answer goes to `reply` exactly once: with the reply bytes, or
    /// with `None` (close the peer's stream without a reply). When the call fails (bad
    /// address, too many streams waiting, closed), `reply` has already been answered `None`.
    pub fn stream(&self, from: &str, data: &[u8], reply: StreamReply) -> Result<()> {
        let from = c_string(from, "from")?;
        let call = self.link.enter()?;
        let token = self.link.add_pending(reply);
        let st = unsafe { sys::ml_memberlist_transport_stream(call.ml, from.as_ptr(), token, data.as_ptr(), data.len()) };
        let result = call.check(st);
        // Out of the guard before the host's reply function may run (it could drop the
        // memberlist, whose close waits for the guard).
        drop(call);
        if result.is_err() {
            // Refused: no stream_reply comes for it; drop answers None.
            drop(self.link.take_pending(token));
        }
        result
    }
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound").field("local_address", &self.local_address()).finish()
    }
}

type ReplyFn = Box<dyn FnOnce(Option<&[u8]>) + Send + 'static>;

/// Where the library's answer to an inbound stream goes ([`Inbound::stream`]): a function
/// called exactly once, with the reply or with `None` for no reply. Dropping a `StreamReply`
/// that was not answered answers `None` (so after the memberlist is dropped, every stream
/// still waiting is closed without a reply).
///
/// The function runs on a library thread (or where the `StreamReply` is dropped): it must not
/// block. Hand the bytes to the connection's own thread (a channel) and return. A panic in it
/// is caught.
pub struct StreamReply {
    f: Option<ReplyFn>,
}

impl StreamReply {
    /// Wraps the function that takes the answer.
    pub fn new(f: impl FnOnce(Option<&[u8]>) + Send + 'static) -> Self {
        StreamReply { f: Some(Box::new(f)) }
    }

    fn answer(&mut self, reply: Option<&[u8]>) {
        if let Some(f) = self.f.take() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || f(reply))) {
                drop_payload(payload);
            }
        }
    }
}

impl Drop for StreamReply {
    fn drop(&mut self) {
        self.answer(None);
    }
}

impl fmt::Debug for StreamReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReply").field("answered", &self.f.is_none()).finish()
    }
}

/// The outcome of one outgoing stream ([`Transport::send_stream`]), completed exactly once:
/// each method consumes it, and dropping it uncompleted fails the stream (as
/// [`StreamCompletion::fail`] with a connection error). Completing it after the library
/// stopped waiting (its `tcp_timeout` passed, or the memberlist was dropped) is harmless.
#[must_use = "dropping a StreamCompletion fails the stream"]
pub struct StreamCompletion {
    link: Arc<Link>,
    token: u64,
    expects_reply: bool,
    done: bool,
}

impl StreamCompletion {
    /// Whether the library waits for the peer's reply. When false (a reliable user message) the
    /// transport may close its stream once the bytes are delivered; completing it anyway is
    /// harmless.
    pub fn expects_reply(&self) -> bool {
        self.expects_reply
    }

    /// The peer answered with `reply` (empty if its answer was empty).
    pub fn reply(mut self, reply: &[u8]) {
        self.finish(sys::ML_OK as i32, reply);
    }

    /// The peer closed the stream without a reply (the library ignores that when the message
    /// needed none).
    pub fn no_reply(mut self) {
        self.finish(sys::ML_E_REJECTED, &[]);
    }

    /// The stream failed: an error of kind [`io::ErrorKind::TimedOut`] or
    /// [`io::ErrorKind::WouldBlock`] (what a socket read timeout gives) is a timeout, any
    /// other a failed connection.
    pub fn fail(mut self, err: &io::Error) {
        let status = match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => sys::ML_E_TIMEOUT,
            _ => sys::ML_E_IO,
        };
        self.finish(status, &[]);
    }

    fn finish(&mut self, status: sys::ml_status, reply: &[u8]) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        // ML_E_NOT_FOUND (the library stopped waiting) and a closed memberlist are harmless.
        if let Ok(call) = self.link.enter() {
            unsafe { sys::ml_memberlist_transport_stream_done(call.ml, self.token, status, reply.as_ptr(), reply.len()) };
        }
    }
}

impl Drop for StreamCompletion {
    fn drop(&mut self) {
        self.finish(sys::ML_E_IO, &[]);
    }
}

impl fmt::Debug for StreamCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCompletion").field("token", &self.token).finish()
    }
}

// ---- the glue ------------------------------------------------------------------------------

pub(crate) type ErrorHook = Arc<dyn Fn(CallbackError) + Send + Sync + 'static>;

/// The memberlist handle, guarded: injection calls run between `enter` and the guard's drop,
/// and `close` waits for those running, after which no call reaches the handle again (the
/// header forbids calls racing with or following ml_memberlist_destroy).
struct LinkState {
    ml: *mut sys::ml_memberlist,
    calls: usize,
    next_token: u64,
    /// Inbound streams handed to the library, waiting for stream_reply; None once drained.
    pending: Option<HashMap<u64, StreamReply>>,
}

// The pointer is only used between enter and exit, which close() waits for.
unsafe impl Send for LinkState {}

/// What the ml_transport's user_data points to: one per memberlist. The Handlers keep an
/// `Arc` of it, so it lives until the library frees them, after its last transport call.
pub(crate) struct Link {
    transport: Arc<dyn Transport>,
    /// The advertised address, known once the memberlist is created.
    address: OnceLock<String>,
    state: Mutex<LinkState>,
    idle: Condvar,
    stopped: AtomicBool,
    errors: Arc<AtomicU64>,
    on_error: Option<ErrorHook>,
}

/// A running injection call; its drop lets `close` go on.
struct Call<'a> {
    link: &'a Link,
    ml: *mut sys::ml_memberlist,
}

impl Call<'_> {
    fn check(&self, status: sys::ml_status) -> Result<()> {
        if status == sys::ML_OK as i32 {
            Ok(())
        } else {
            Err(Error::new(status, unsafe { string_from(sys::ml_memberlist_last_error(self.ml)) }))
        }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        let mut st = self.link.lock();
        st.calls -= 1;
        if st.calls == 0 {
            self.link.idle.notify_all();
        }
    }
}

impl Link {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        errors: Arc<AtomicU64>,
        on_error: Option<ErrorHook>,
    ) -> Self {
        Link {
            transport,
            address: OnceLock::new(),
            state: Mutex::new(LinkState { ml: std::ptr::null_mut(), calls: 0, next_token: 0, pending: Some(HashMap::new()) }),
            idle: Condvar::new(),
            stopped: AtomicBool::new(false),
            errors,
            on_error,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        // Nothing panics while holding it; recover anyway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The C table, user_data pointing at this link (None: a table that refuses everything,
    /// for validating an address in the config).
    pub(crate) fn table(link: Option<&Arc<Link>>) -> sys::ml_transport {
        sys::ml_transport {
            version: sys::ML_TRANSPORT_VERSION,
            user_data: link.map_or(std::ptr::null_mut(), |l| Arc::as_ptr(l) as *mut c_void),
            send_packet: Some(send_packet_trampoline),
            send_stream: None,
            stream_reply: Some(stream_reply_trampoline),
            send_stream_flags: Some(send_stream_trampoline),
        }
    }

    /// Points the link at its memberlist once created, and starts the transport.
    pub(crate) fn attach(self: &Arc<Self>, ml: *mut sys::ml_memberlist, address: String) -> Result<()> {
        let _ = self.address.set(address);
        self.lock().ml = ml;
        let inbound = Inbound { link: self.clone() };
        let err = match self.guard("Transport::start", || self.transport.start(inbound)) {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => Error::new(sys::ML_E_IO, format!("the transport did not start: {e}")),
            None => Error::new(sys::ML_E_IO, "the transport did not start: Transport::start panicked"),
        };
        // Not started: not ours to shut down.
        self.stopped.store(true, Ordering::SeqCst);
        Err(err)
    }

    fn enter(&self) -> Result<Call<'_>> {
        let mut st = self.lock();
        if st.ml.is_null() {
            return Err(Error::new(sys::ML_E_CLOSED, "the memberlist is closed"));
        }
        st.calls += 1;
        Ok(Call { link: self, ml: st.ml })
    }

    /// Before ml_memberlist_destroy: refuses new injection calls and waits for those running
    /// (they never block).
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.ml = std::ptr::null_mut();
        while st.calls > 0 {
            st = self.idle.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// After ml_memberlist_destroy: the streams still waiting are answered None, and the
    /// transport stops.
    pub(crate) fn finish(&self) {
        let pending = self.lock().pending.take();
        drop(pending);
        self.stop();
    }

    /// Transport::shutdown, once.
    pub(crate) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            self.guard("Transport::shutdown", || self.transport.shutdown());
        }
    }

    fn add_pending(&self, reply: StreamReply) -> u64 {
        let mut st = self.lock();
        st.next_token += 1;
        let token = st.next_token;
        match st.pending.as_mut() {
            Some(p) => {
                p.insert(token, reply);
            }
            None => {
                // Drained (destroy is under way): answer None outside the lock.
                drop(st);
                drop(reply);
            }
        }
        token
    }

    fn take_pending(&self, token: u64) -> Option<StreamReply> {
        self.lock().pending.as_mut().and_then(|p| p.remove(&token))
    }

    /// Runs a transport method; a panic stops here and is reported.
    fn guard<R>(&self, what: &'static str, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(payload) => {
                let message = panic_message(&*payload);
                drop_payload(payload);
                self.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(hook) = &self.on_error {
                    let err = CallbackError { callback: what, message };
                    if let Err(again) = catch_unwind(AssertUnwindSafe(|| hook(err))) {
                        drop_payload(again);
                    }
                }
                None
            }
        }
    }
}

unsafe extern "C" fn send_packet_trampoline(ud: *mut c_void, to: *const c_char, data: *const u8, len: usize) -> i32 {
    let Some(link) = (ud as *const Link).as_ref() else { return 1 };
    let to = string_from(to);
    match link.guard("Transport::send_packet", || link.transport.send_packet(&to, bytes_from(data, len))) {
        Some(Ok(())) => 0,
        _ => 1,
    }
}

unsafe extern "C" fn send_stream_trampoline(
    ud: *mut c_void,
    to: *const c_char,
    token: u64,
    data: *const u8,
    len: usize,
    flags: u32,
) -> i32 {
    if ud.is_null() {
        return 1; // refused: the library does not wait for the token
    }
    // user_data is a live Arc's pointer (the Handlers hold one): take another reference.
    Arc::increment_strong_count(ud as *const Link);
    let link = Arc::from_raw(ud as *const Link);
    let to = string_from(to);
    let expects_reply = flags & sys::ML_STREAM_EXPECTS_REPLY != 0;
    let done = StreamCompletion { link: link.clone(), token, expects_reply, done: false };
    // A panic drops `done` (a failed stream) unless the transport kept it to complete later.
    link.guard("Transport::send_stream", || link.transport.send_stream(&to, bytes_from(data, len), done));
    0
}

unsafe extern "C" fn stream_reply_trampoline(ud: *mut c_void, token: u64, reply: *const u8, len: usize, has_reply: u32) {
    let Some(link) = (ud as *const Link).as_ref() else { return };
    if let Some(mut r) = link.take_pending(token) {
        r.answer((has_reply != 0).then(|| bytes_from(reply, len)));
    }
}
