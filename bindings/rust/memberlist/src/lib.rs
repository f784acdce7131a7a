//! Safe Rust API for libmemberlist: cluster membership and failure detection (SWIM gossip with
//! the Lifeguard extensions), a C++ implementation of hashicorp/memberlist behind a C ABI.
//!
//! ```no_run
//! use libmemberlist::{Config, Handlers, Memberlist};
//! let config = Config::local()?.with_name("a")?.with_bind_port(0)?;
//! let ml = Memberlist::create(&config, Handlers::new().on_event(|ev| println!("{ev:?}")))?;
//! ml.join(&["127.0.0.1:7946"])?;
//! # Ok::<(), libmemberlist::Error>(())
//! ```
//!
//! Threads: every [`Memberlist`] method may be called from any thread (the header promises
//! it), so `Memberlist` is `Send + Sync`. [`Config`] is a plain value: `Send`, not `Sync`.
//! Callbacks, what they may call, what a panic in one does and what shutdown does to them:
//! see [`Handlers`].
//!
//! Host transport: [`Config::set_transport`] carries the node's bytes over a [`Transport`] of
//! the application's instead of the library's sockets; [`TcpOnlyTransport`] is an example.

#![deny(missing_docs)]

mod tcp_transport;
mod transport;
pub use tcp_transport::TcpOnlyTransport;
pub use transport::{Inbound, StreamCompletion, StreamReply, Transport};

use libmemberlist_sys as sys;
use std::any::Any;
use std::ffi::{c_char, c_void, CStr, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

// ---- errors ------------------------------------------------------------------------------

/// A failed library call: the status code and the library's detail message.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    status: i32,
    message: String,
}

/// The library's status codes (`ML_E_*`), for branching on a failure.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ML_E_INVALID`: a bad argument (out-of-range value, malformed address, ...).
    Invalid,
    /// `ML_E_NOMEM`: out of memory.
    NoMem,
    /// `ML_E_BUFFER_TOO_SMALL`: a buffer was too small (the crate sizes its own; rare).
    BufferTooSmall,
    /// `ML_E_NOT_FOUND`: no such node or item.
    NotFound,
    /// `ML_E_STATE`: not allowed now (left, shut down, or called from inside a callback).
    State,
    /// `ML_E_CLOSED`: the memberlist is shut down.
    Closed,
    /// `ML_E_CALLBACK`: reserved by the header; never returned.
    Callback,
    /// `ML_E_PROTOCOL`: a peer sent something malformed or unexpected.
    Protocol,
    /// `ML_E_VERSION`: an incompatible protocol or struct version.
    Version,
    /// `ML_E_TIMEOUT`: the operation did not complete in time.
    Timeout,
    /// `ML_E_IO`: a socket, bind or name resolution failure.
    Io,
    /// `ML_E_REJECTED`: refused by a rule or a hook.
    Rejected,
    /// `ML_E_TOO_LARGE`: a size limit was exceeded.
    TooLarge,
    /// `ML_E_INTERNAL`: a bug in the library.
    Internal,
    /// A status this crate does not know yet (a newer library).
    Other(i32),
}

impl Error {
    fn new(status: i32, message: impl Into<String>) -> Self {
        Error { status, message: message.into() }
    }
    /// The raw `ml_status` value (negative).
    pub fn status(&self) -> i32 {
        self.status
    }
    /// The status as an [`ErrorKind`], to branch on.
    ///
    /// ```
    /// use libmemberlist::{Config, ErrorKind};
    /// let err = Config::local()?.with_name("").err().expect("an empty name is refused");
    /// assert_eq!(err.kind(), ErrorKind::Invalid);
    /// # Ok::<(), libmemberlist::Error>(())
    /// ```
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind::*;
        match self.status {
            sys::ML_E_INVALID => Invalid,
            sys::ML_E_NOMEM => NoMem,
            sys::ML_E_BUFFER_TOO_SMALL => BufferTooSmall,
            sys::ML_E_NOT_FOUND => NotFound,
            sys::ML_E_STATE => State,
            sys::ML_E_CLOSED => Closed,
            sys::ML_E_CALLBACK => Callback,
            sys::ML_E_PROTOCOL => Protocol,
            sys::ML_E_VERSION => Version,
            sys::ML_E_TIMEOUT => Timeout,
            sys::ML_E_IO => Io,
            sys::ML_E_REJECTED => Rejected,
            sys::ML_E_TOO_LARGE => TooLarge,
            sys::ML_E_INTERNAL => Internal,
            other => Other(other),
        }
    }
    /// The detail message ("" if the library gave none).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The library's static name of the status ("invalid argument", ...).
    pub fn status_name(&self) -> String {
        unsafe { string_from(sys::ml_status_str(self.status)) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status_name(), self.status, self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind())
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for Error {}

/// The result of a library call.
pub type Result<T> = std::result::Result<T, Error>;

/// Copies a library string; NULL gives "".
unsafe fn string_from(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Status of a handle-less call; the message comes from the thread-local ml_last_error(),
/// read on the same thread right after the call.
fn check(status: sys::ml_status) -> Result<()> {
    if status == sys::ML_OK as i32 {
        Ok(())
    } else {
        Err(Error::new(status, unsafe { string_from(sys::ml_last_error()) }))
    }
}

fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(sys::ML_E_INVALID, format!("{what} contains a NUL byte")))
}

fn millis(d: Duration, what: &str) -> Result<u32> {
    u32::try_from(d.as_millis())
        .map_err(|_| Error::new(sys::ML_E_INVALID, format!("{what} does not fit in u32 milliseconds")))
}

/// Refuses a library older than the header these bindings were generated from, or with
/// another ABI major (checked once, before the first handle is made).
fn check_library_version() -> Result<()> {
    static CHECK: OnceLock<Result<()>> = OnceLock::new();
    CHECK
        .get_or_init(|| {
            let (mut major, mut minor, mut patch) = (0u32, 0u32, 0u32);
            let abi = unsafe {
                sys::ml_version(&mut major, &mut minor, &mut patch);
                sys::ml_abi_version()
            };
            let header = (sys::ML_VERSION_MAJOR, sys::ML_VERSION_MINOR);
            if abi != sys::ML_ABI_VERSION || (major, minor) < header {
                return Err(Error::new(
                    sys::ML_E_VERSION,
                    format!(
                        "libmemberlist {major}.{minor}.{patch} (ABI {abi}) is older than or incompatible \
                         with the bindings' header {}.{} (ABI {})",
                        header.0, header.1, sys::ML_ABI_VERSION
                    ),
                ));
            }
            Ok(())
        })
        .clone()
}

/// The loaded library's version as (major, minor, patch).
pub fn library_version() -> (u32, u32, u32) {
    let (mut a, mut b, mut c) = (0, 0, 0);
    unsafe { sys::ml_version(&mut a, &mut b, &mut c) };
    (a, b, c)
}

// ---- nodes and events --------------------------------------------------------------------

/// State of a node (`ML_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Answering probes.
    Alive,
    /// Missed its probes; others may still refute it within the suspicion timeout.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left gracefully.
    Left,
    /// A state this crate does not know yet.
    Other(u32),
}

impl NodeState {
    fn from_raw(v: u32) -> Self {
        match v {
            sys::ML_STATE_ALIVE => NodeState::Alive,
            sys::ML_STATE_SUSPECT => NodeState::Suspect,
            sys::ML_STATE_DEAD => NodeState::Dead,
            sys::ML_STATE_LEFT => NodeState::Left,
            other => NodeState::Other(other),
        }
    }
}

/// A copy of what is known about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's unique name in the cluster.
    pub name: String,
    /// "host:port" (`"[v6]:port"` for IPv6).
    pub address: String,
    /// The host part of `address`.
    pub host: String,
    /// The port part of `address`.
    pub port: u16,
    /// The node's metadata (set with [`Config::set_meta`] or [`Memberlist::set_meta`]).
    pub meta: Vec<u8>,
    /// Its state as the local node sees it.
    pub state: NodeState,
    /// Its incarnation number: raised by the node itself to refute a suspicion.
    pub incarnation: u32,
    /// Protocol min, max, current, delegate min, max, current.
    pub versions: [u8; 6],
}

impl Node {
    /// Copies a borrowed `ml_node`.
    ///
    /// # Safety
    /// `node` must be a valid node pointer for the duration of the call.
    unsafe fn from_raw(node: *const sys::ml_node) -> Node {
        let mut len = 0usize;
        let meta = sys::ml_node_meta(node, &mut len);
        let meta = bytes_from(meta, len).to_vec();
        let mut versions = [0u8; 6];
        sys::ml_node_versions(node, versions.as_mut_ptr());
        Node {
            name: string_from(sys::ml_node_name(node)),
            address: string_from(sys::ml_node_address(node)),
            host: string_from(sys::ml_node_host(node)),
            port: sys::ml_node_port(node),
            meta,
            state: {
                // Cannot fail on a valid node; DEAD is what it leaves on failure.
                let mut state = sys::ML_STATE_DEAD;
                sys::ml_node_get_state(node, &mut state);
                NodeState::from_raw(state)
            },
            incarnation: sys::ml_node_incarnation(node),
            versions,
        }
    }
}

/// Kind of a membership event (`ML_EVENT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A node joined (the local node too, at create).
    Join,
    /// A node left or failed: `node.state` tells [`NodeState::Left`] from [`NodeState::Dead`].
    Leave,
    /// A node updated its metadata.
    Update,
    /// An event this crate does not know yet.
    Other(u32),
}

/// A membership event delivered to [`Handlers::on_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The node it happened to, as it was then.
    pub node: Node,
}

/// Log levels (`ML_LOG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Everything, including each packet.
    Trace,
    /// Protocol decisions.
    Debug,
    /// Joins, leaves, failures.
    Info,
    /// Something is off but handled.
    Warn,
    /// Something failed.
    Error,
    /// No log lines at all.
    Off,
}

impl LogLevel {
    fn to_raw(self) -> u32 {
        match self {
            LogLevel::Trace => sys::ML_LOG_TRACE,
            LogLevel::Debug => sys::ML_LOG_DEBUG,
            LogLevel::Info => sys::ML_LOG_INFO,
            LogLevel::Warn => sys::ML_LOG_WARN,
            LogLevel::Error => sys::ML_LOG_ERROR,
            LogLevel::Off => sys::ML_LOG_OFF,
        }
    }
    fn from_raw(v: u32) -> Self {
        match v {
            sys::ML_LOG_TRACE => LogLevel::Trace,
            sys::ML_LOG_DEBUG => LogLevel::Debug,
            sys::ML_LOG_INFO => LogLevel::Info,
            sys::ML_LOG_WARN => LogLevel::Warn,
            sys::ML_LOG_ERROR => LogLevel::Error,
            _ => LogLevel::Off,
        }
    }
}

/// The protocol a node speaks on the wire (`ML_WIRE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// libmemberlist's own format (the default).
    Native,
    /// hashicorp/memberlist 0.2.2's own protocol, to join clusters of Go memberlist nodes;
    /// there, broadcasts go out as plain user messages (`ml_config_set_wire_format` in
    /// memberlist.h says what else differs).
    Hashicorp,
}

impl WireFormat {
    fn to_raw(self) -> u32 {
        match self {
            WireFormat::Native => sys::ML_WIRE_NATIVE,
            WireFormat::Hashicorp => sys::ML_WIRE_HASHICORP,
        }
    }
    fn from_raw(v: u32) -> Self {
        if v == sys::ML_WIRE_HASHICORP {
            WireFormat::Hashicorp
        } else {
            WireFormat::Native
        }
    }
}

// ---- configuration -----------------------------------------------------------------------

/// A configuration, starting from one of the reference's presets; copied at create.
///
/// Each knob has a setter (`set_x`), a builder form (`with_x`) and a getter (`x`):
/// ```
/// use libmemberlist::{Config, LogLevel};
/// use std::time::Duration;
/// let config = Config::lan()?
///     .with_name("node-a")?
///     .with_bind_port(0)?
///     .with_probe_interval(Duration::from_millis(500))?
///     .with_log_level(LogLevel::Warn)?;
/// assert_eq!(config.name(), "node-a");
/// assert_eq!(config.probe_interval(), Duration::from_millis(500));
/// # Ok::<(), libmemberlist::Error>(())
/// ```
pub struct Config {
    raw: NonNull<sys::ml_config>,
    /// The host transport and its address ([`Config::set_transport`]); each memberlist
    /// created from this config gets its own glue around it.
    transport: Option<(Arc<dyn Transport>, String)>,
}

// A config is a plain value: one thread at a time, so Send but not Sync.
unsafe impl Send for Config {}

impl Drop for Config {
    fn drop(&mut self) {
        unsafe { sys::ml_config_free(self.raw.as_ptr()) }
    }
}

impl Clone for Config {
    fn clone(&self) -> Self {
        let mut copy = Config::from_ctor(|out| unsafe { sys::ml_config_clone(self.raw.as_ptr(), out) })
            .expect("ml_config_clone failed (out of memory)");
        copy.transport = self.transport.clone();
        copy
    }
}

/// Defines `set_x(&mut self, v) -> Result<()>`, `with_x(self, v) -> Result<Self>` (builder)
/// and the getter `x(&self)` for knobs whose C type maps directly (`$conv`).
macro_rules! knobs {
    ($( $(#[$doc:meta])* $get:ident, $set:ident, $with:ident: $ty:ty => $cty:ty,
        $cset:ident, $cget:ident, to($v:ident) $to:expr, from($r:ident) $from:expr; )*) => {
        impl Config {$(
            #[doc = concat!("Sets `", stringify!($get), "`: ")]
            $(#[$doc])*
            #[doc = concat!("\n\nAn out-of-range value is an [`ErrorKind::Invalid`] error. C: `",
                            stringify!($cset), "`.")]
            pub fn $set(&mut self, $v: $ty) -> Result<()> {
                let value: $cty = $to;
                check(unsafe { sys::$cset(self.raw.as_ptr(), value) })
            }
            #[doc = concat!("Builder form of [`Config::", stringify!($set), "`]: ")]
            $(#[$doc])*
            pub fn $with(mut self, $v: $ty) -> Result<Self> {
                self.$set($v)?;
                Ok(self)
            }
            #[doc = concat!("The value [`Config::", stringify!($set), "`] sets: ")]
            $(#[$doc])*
            pub fn $get(&self) -> $ty {
                let $r = unsafe { sys::$cget(self.raw.as_ptr()) };
                $from
            }
        )*}
    };
}

knobs! {
    /// Port for UDP and TCP; 0 lets the system pick one.
    bind_port, set_bind_port, with_bind_port: u16 => u16,
        ml_config_set_bind_port, ml_config_get_bind_port, to(v) v, from(r) r;
    /// Port peers should use (0 = the bound port).
    advertise_port, set_advertise_port, with_advertise_port: u16 => u16,
        ml_config_set_advertise_port, ml_config_get_advertise_port, to(v) v, from(r) r;
    /// Protocol version spoken.
    protocol_version, set_protocol_version, with_protocol_version: u32 => u32,
        ml_config_set_protocol_version, ml_config_get_protocol_version, to(v) v, from(r) r;
    /// Timeout of a TCP connect and stream (push/pull, TCP ping, reliable message).
    tcp_timeout, set_tcp_timeout, with_tcp_timeout: Duration => u32,
        ml_config_set_tcp_timeout_ms, ml_config_get_tcp_timeout_ms,
        to(v) millis(v, "tcp_timeout")?, from(r) Duration::from_millis(r.into());
    /// Members asked to probe a node indirectly when a direct probe fails.
    indirect_checks, set_indirect_checks, with_indirect_checks: u32 => u32,
        ml_config_set_indirect_checks, ml_config_get_indirect_checks, to(v) v, from(r) r;
    /// Each gossiped message is sent retransmit_mult * log(N+1) times.
    retransmit_mult, set_retransmit_mult, with_retransmit_mult: u32 => u32,
        ml_config_set_retransmit_mult, ml_config_get_retransmit_mult, to(v) v, from(r) r;
    /// Suspicion timeout: suspicion_mult * log10(N) * probe_interval.
    suspicion_mult, set_suspicion_mult, with_suspicion_mult: u32 => u32,
        ml_config_set_suspicion_mult, ml_config_get_suspicion_mult, to(v) v, from(r) r;
    /// 1 turns off Lifeguard's suspicion acceleration.
    suspicion_max_timeout_mult, set_suspicion_max_timeout_mult, with_suspicion_max_timeout_mult:
        u32 => u32, ml_config_set_suspicion_max_timeout_mult,
        ml_config_get_suspicion_max_timeout_mult, to(v) v, from(r) r;
    /// Zero disables periodic push/pull.
    push_pull_interval, set_push_pull_interval, with_push_pull_interval: Duration => u32,
        ml_config_set_push_pull_interval_ms, ml_config_get_push_pull_interval_ms,
        to(v) millis(v, "push_pull_interval")?, from(r) Duration::from_millis(r.into());
    /// Zero disables probing.
    probe_interval, set_probe_interval, with_probe_interval: Duration => u32,
        ml_config_set_probe_interval_ms, ml_config_get_probe_interval_ms,
        to(v) millis(v, "probe_interval")?, from(r) Duration::from_millis(r.into());
    /// How long a direct probe waits for its ack before indirect probes start.
    probe_timeout, set_probe_timeout, with_probe_timeout: Duration => u32,
        ml_config_set_probe_timeout_ms, ml_config_get_probe_timeout_ms,
        to(v) millis(v, "probe_timeout")?, from(r) Duration::from_millis(r.into());
    /// Disables the TCP fallback ping for every node.
    disable_tcp_pings, set_disable_tcp_pings, with_disable_tcp_pings: bool => u32,
        ml_config_set_disable_tcp_pings, ml_config_get_disable_tcp_pings,
        to(v) u32::from(v), from(r) r != 0;
    /// 1 turns off Lifeguard's local health awareness.
    awareness_max_multiplier, set_awareness_max_multiplier, with_awareness_max_multiplier:
        u32 => u32, ml_config_set_awareness_max_multiplier,
        ml_config_get_awareness_max_multiplier, to(v) v, from(r) r;
    /// Zero disables gossip.
    gossip_interval, set_gossip_interval, with_gossip_interval: Duration => u32,
        ml_config_set_gossip_interval_ms, ml_config_get_gossip_interval_ms,
        to(v) millis(v, "gossip_interval")?, from(r) Duration::from_millis(r.into());
    /// Random members each gossip round sends to.
    gossip_nodes, set_gossip_nodes, with_gossip_nodes: u32 => u32,
        ml_config_set_gossip_nodes, ml_config_get_gossip_nodes, to(v) v, from(r) r;
    /// How long a dead node still receives gossip.
    gossip_to_the_dead_time, set_gossip_to_the_dead_time, with_gossip_to_the_dead_time:
        Duration => u32, ml_config_set_gossip_to_the_dead_time_ms,
        ml_config_get_gossip_to_the_dead_time_ms,
        to(v) millis(v, "gossip_to_the_dead_time")?, from(r) Duration::from_millis(r.into());
    /// Largest datagram the library builds.
    udp_buffer_size, set_udp_buffer_size, with_udp_buffer_size: u32 => u32,
        ml_config_set_udp_buffer_size, ml_config_get_udp_buffer_size, to(v) v, from(r) r;
    /// After this long a dead node's name may join from another address (zero: never).
    dead_node_reclaim_time, set_dead_node_reclaim_time, with_dead_node_reclaim_time:
        Duration => u32, ml_config_set_dead_node_reclaim_time_ms,
        ml_config_get_dead_node_reclaim_time_ms,
        to(v) millis(v, "dead_node_reclaim_time")?, from(r) Duration::from_millis(r.into());
    /// Inbound messages queued for processing; past it they are dropped.
    handoff_queue_depth, set_handoff_queue_depth, with_handoff_queue_depth: u32 => u32,
        ml_config_set_handoff_queue_depth, ml_config_get_handoff_queue_depth, to(v) v, from(r) r;
    /// Largest node metadata accepted, in bytes.
    meta_max_size, set_meta_max_size, with_meta_max_size: u32 => u32,
        ml_config_set_meta_max_size, ml_config_get_meta_max_size, to(v) v, from(r) r;
    /// Least severe level passed to the log callback.
    log_level, set_log_level, with_log_level: LogLevel => u32,
        ml_config_set_log_level, ml_config_get_log_level,
        to(v) v.to_raw(), from(r) LogLevel::from_raw(r);
    /// Seed of the protocol's randomness; 0 picks one at random.
    seed, set_seed, with_seed: u64 => u64,
        ml_config_set_seed, ml_config_get_seed, to(v) v, from(r) r;
    /// Extra push/pulls with random members shortly after a join (0 = hashicorp's behaviour).
    post_join_push_pulls, set_post_join_push_pulls, with_post_join_push_pulls: u32 => u32,
        ml_config_set_post_join_push_pulls, ml_config_get_post_join_push_pulls, to(v) v, from(r) r;
    /// Largest user message sent or accepted reliably over TCP.
    max_user_msg_size, set_max_user_msg_size, with_max_user_msg_size: u32 => u32,
        ml_config_set_max_user_msg_size, ml_config_get_max_user_msg_size, to(v) v, from(r) r;
    /// Largest stream message (push/pull state, reliable message) accepted.
    max_stream_size, set_max_stream_size, with_max_stream_size: u32 => u32,
        ml_config_set_max_stream_size, ml_config_get_max_stream_size, to(v) v, from(r) r;
    /// Most nodes accepted in one push/pull.
    max_push_pull_nodes, set_max_push_pull_nodes, with_max_push_pull_nodes: u32 => u32,
        ml_config_set_max_push_pull_nodes, ml_config_get_max_push_pull_nodes, to(v) v, from(r) r;
    /// Largest decompressed message.
    max_decompressed_size, set_max_decompressed_size, with_max_decompressed_size: u32 => u32,
        ml_config_set_max_decompressed_size, ml_config_get_max_decompressed_size,
        to(v) v, from(r) r;
    /// Most inbound streams handled at once.
    max_concurrent_streams, set_max_concurrent_streams, with_max_concurrent_streams: u32 => u32,
        ml_config_set_max_concurrent_streams, ml_config_get_max_concurrent_streams,
        to(v) v, from(r) r;
    /// Broadcast origins remembered for de-duplicating `on_broadcast` (1..16777216, default
    /// 4096); past it the least recently heard is forgotten.
    max_broadcast_origins, set_max_broadcast_origins, with_max_broadcast_origins: u32 => u32,
        ml_config_set_max_broadcast_origins, ml_config_get_max_broadcast_origins,
        to(v) v, from(r) r;
    /// Inbound TCP connections open at once, whatever they carry (1..65535, default 512); more
    /// are closed at once.
    max_inbound_connections, set_max_inbound_connections, with_max_inbound_connections:
        u32 => u32, ml_config_set_max_inbound_connections,
        ml_config_get_max_inbound_connections, to(v) v, from(r) r;
    /// Callbacks (events, notifications, metric samples) queued for delivery (1..16777216,
    /// default 65536); past it new ones are dropped and counted.
    max_queued_callbacks, set_max_queued_callbacks, with_max_queued_callbacks: u32 => u32,
        ml_config_set_max_queued_callbacks, ml_config_get_max_queued_callbacks,
        to(v) v, from(r) r;
    /// Log lines queued for the log callback (1..16777216, default 1024); past it they are
    /// dropped and counted, so that a log flood cannot crowd out events.
    max_queued_log_lines, set_max_queued_log_lines, with_max_queued_log_lines: u32 => u32,
        ml_config_set_max_queued_log_lines, ml_config_get_max_queued_log_lines,
        to(v) v, from(r) r;
    /// Replies (acks, indirect probes) one received datagram may cause (1..255, default 4);
    /// further ones are dropped, so that this node cannot be used as an amplifier.
    max_replies_per_packet, set_max_replies_per_packet, with_max_replies_per_packet:
        u32 => u32, ml_config_set_max_replies_per_packet,
        ml_config_get_max_replies_per_packet, to(v) v, from(r) r;
    /// Application broadcasts held for gossip, own and forwarded (1..16777216, default 4096);
    /// past it the most-transmitted are dropped first.
    max_queued_broadcasts, set_max_queued_broadcasts, with_max_queued_broadcasts: u32 => u32,
        ml_config_set_max_queued_broadcasts, ml_config_get_max_queued_broadcasts,
        to(v) v, from(r) r;
    /// Recent application broadcasts a push/pull lists and repairs, so that a member the
    /// epidemic missed still gets them (0..4096, default 256; 0: best effort only, no repair,
    /// and outcomes are `Delivered` instead of `Settled`).
    max_repair_broadcasts, set_max_repair_broadcasts, with_max_repair_broadcasts: u32 => u32,
        ml_config_set_max_repair_broadcasts, ml_config_get_max_repair_broadcasts,
        to(v) v, from(r) r;
    /// Bytes of application broadcasts held for gossip (65536..4294967295, default 4194304);
    /// past it the most-transmitted are dropped first.
    max_queued_broadcast_bytes, set_max_queued_broadcast_bytes,
        with_max_queued_broadcast_bytes: u32 => u32, ml_config_set_max_queued_broadcast_bytes,
        ml_config_get_max_queued_broadcast_bytes, to(v) v, from(r) r;
    /// Inbound traffic carries no label; this node's label is assumed.
    skip_inbound_label_check, set_skip_inbound_label_check, with_skip_inbound_label_check:
        bool => u32, ml_config_set_skip_inbound_label_check,
        ml_config_get_skip_inbound_label_check, to(v) u32::from(v), from(r) r != 0;
    /// With keys: refuse plaintext input (default true).
    gossip_verify_incoming, set_gossip_verify_incoming, with_gossip_verify_incoming: bool => u32,
        ml_config_set_gossip_verify_incoming, ml_config_get_gossip_verify_incoming,
        to(v) u32::from(v), from(r) r != 0;
    /// With keys: encrypt output (default true).
    gossip_verify_outgoing, set_gossip_verify_outgoing, with_gossip_verify_outgoing: bool => u32,
        ml_config_set_gossip_verify_outgoing, ml_config_get_gossip_verify_outgoing,
        to(v) u32::from(v), from(r) r != 0;
    /// Compress packets and streams when that makes them smaller (default true).
    enable_compression, set_enable_compression, with_enable_compression: bool => u32,
        ml_config_set_enable_compression, ml_config_get_enable_compression,
        to(v) u32::from(v), from(r) r != 0;
    /// CRC32 on every UDP packet (default true).
    enable_checksum, set_enable_checksum, with_enable_checksum: bool => u32,
        ml_config_set_enable_checksum, ml_config_get_enable_checksum,
        to(v) u32::from(v), from(r) r != 0;
    /// Inbound TCP connections from one IP address (1..65535, default 32), so that one
    /// source cannot hold every slot.
    max_inbound_connections_per_source, set_max_inbound_connections_per_source,
        with_max_inbound_connections_per_source: u32 => u32,
        ml_config_set_max_inbound_connections_per_source,
        ml_config_get_max_inbound_connections_per_source, to(v) v, from(r) r;
    /// Bytes of inbound stream bodies over 1 KiB read at once, as declared (1024..4294967295,
    /// default 64 MiB).
    max_inbound_stream_bytes, set_max_inbound_stream_bytes, with_max_inbound_stream_bytes:
        u32 => u32, ml_config_set_max_inbound_stream_bytes,
        ml_config_get_max_inbound_stream_bytes, to(v) v, from(r) r;
    /// Automatic reconnection to dead members every this long (default 30 s; zero: off).
    reconnect_interval, set_reconnect_interval, with_reconnect_interval: Duration => u32,
        ml_config_set_reconnect_interval_ms, ml_config_get_reconnect_interval_ms,
        to(v) millis(v, "reconnect_interval")?, from(r) Duration::from_millis(r.into());
    /// How long after its death a member is still tried (default a day).
    reconnect_timeout, set_reconnect_timeout, with_reconnect_timeout: Duration => u32,
        ml_config_set_reconnect_timeout_ms, ml_config_get_reconnect_timeout_ms,
        to(v) millis(v, "reconnect_timeout")?, from(r) Duration::from_millis(r.into());
    /// Dead members remembered for reconnection (1..16777216, default 1024).
    max_reconnect_members, set_max_reconnect_members, with_max_reconnect_members: u32 => u32,
        ml_config_set_max_reconnect_members, ml_config_get_max_reconnect_members,
        to(v) v, from(r) r;
    /// Also re-join the join() addresses while no other member is alive (default true).
    reconnect_seeds, set_reconnect_seeds, with_reconnect_seeds: bool => u32,
        ml_config_set_reconnect_seeds, ml_config_get_reconnect_seeds,
        to(v) u32::from(v), from(r) r != 0;
    /// The protocol on the wire (default `WireFormat::Native`); every node of a cluster must
    /// use the same one.
    wire_format, set_wire_format, with_wire_format: WireFormat => u32,
        ml_config_set_wire_format, ml_config_get_wire_format,
        to(v) v.to_raw(), from(r) WireFormat::from_raw(r);
}

/// Same for string knobs.
macro_rules! string_knobs {
    ($( $(#[$doc:meta])* $get:ident, $set:ident, $with:ident, $cset:ident, $cget:ident; )*) => {
        impl Config {$(
            #[doc = concat!("Sets `", stringify!($get), "`: ")]
            $(#[$doc])*
            #[doc = concat!("\n\nA value out of range or with a NUL byte is an ",
                            "[`ErrorKind::Invalid`] error. C: `", stringify!($cset), "`.")]
            pub fn $set(&mut self, v: &str) -> Result<()> {
                let v = c_string(v, stringify!($get))?;
                check(unsafe { sys::$cset(self.raw.as_ptr(), v.as_ptr()) })
            }
            #[doc = concat!("Builder form of [`Config::", stringify!($set), "`]: ")]
            $(#[$doc])*
            pub fn $with(mut self, v: &str) -> Result<Self> {
                self.$set(v)?;
                Ok(self)
            }
            #[doc = concat!("The value [`Config::", stringify!($set), "`] sets: ")]
            $(#[$doc])*
            pub fn $get(&self) -> String {
                unsafe { string_from(sys::$cget(self.raw.as_ptr())) }
            }
        )*}
    };
}

string_knobs! {
    /// Unique node name (1..255 bytes).
    name, set_name, with_name, ml_config_set_name, ml_config_get_name;
    /// IPv4 or IPv6 literal to bind UDP and TCP to.
    bind_addr, set_bind_addr, with_bind_addr, ml_config_set_bind_addr, ml_config_get_bind_addr;
    /// Address peers should use to reach this node ("" = derived from the bind address).
    advertise_addr, set_advertise_addr, with_advertise_addr, ml_config_set_advertise_addr,
        ml_config_get_advertise_addr;
    /// Cluster label (0..255 bytes), carried on every packet and stream.
    label, set_label, with_label, ml_config_set_label, ml_config_get_label;
}

impl Config {
    fn from_ctor(ctor: impl FnOnce(*mut *mut sys::ml_config) -> sys::ml_status) -> Result<Self> {
        check_library_version()?;
        let mut raw = ptr::null_mut();
        check(ctor(&mut raw))?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::ML_E_INTERNAL, "NULL config"))?;
        Ok(Config { raw, transport: None })
    }
    /// hashicorp/memberlist's DefaultLANConfig.
    pub fn lan() -> Result<Self> {
        Self::from_ctor(|out| unsafe { sys::ml_config_new_lan(out) })
    }
    /// DefaultWANConfig.
    pub fn wan() -> Result<Self> {
        Self::from_ctor(|out| unsafe { sys::ml_config_new_wan(out) })
    }
    /// DefaultLocalConfig: loopback, fast timers.
    pub fn local() -> Result<Self> {
        Self::from_ctor(|out| unsafe { sys::ml_config_new_local(out) })
    }

    /// Delegate protocol version, min and max carried in the version vector.
    pub fn set_delegate_protocol(&mut self, version: u8, min: u8, max: u8) -> Result<()> {
        check(unsafe { sys::ml_config_set_delegate_protocol(self.raw.as_ptr(), version, min, max) })
    }
    /// Builder form of [`Config::set_delegate_protocol`].
    pub fn with_delegate_protocol(mut self, version: u8, min: u8, max: u8) -> Result<Self> {
        self.set_delegate_protocol(version, min, max)?;
        Ok(self)
    }
    /// (version, min, max).
    pub fn delegate_protocol(&self) -> (u8, u8, u8) {
        let (mut v, mut lo, mut hi) = (0, 0, 0);
        unsafe { sys::ml_config_get_delegate_protocol(self.raw.as_ptr(), &mut v, &mut lo, &mut hi) };
        (v, lo, hi)
    }
    /// Disables the TCP fallback ping towards one node; may be called several times.
    pub fn disable_tcp_pings_for_node(&mut self, name: &str) -> Result<()> {
        let name = c_string(name, "node name")?;
        check(unsafe { sys::ml_config_disable_tcp_pings_for_node(self.raw.as_ptr(), name.as_ptr()) })
    }
    /// Metadata of the local node (Error with [`ErrorKind::TooLarge`] over the limit).
    pub fn set_meta(&mut self, meta: &[u8]) -> Result<()> {
        check(unsafe { sys::ml_config_set_meta(self.raw.as_ptr(), meta.as_ptr(), meta.len()) })
    }
    /// Builder form of [`Config::set_meta`].
    pub fn with_meta(mut self, meta: &[u8]) -> Result<Self> {
        self.set_meta(meta)?;
        Ok(self)
    }
    /// The metadata [`Config::set_meta`] set.
    pub fn meta(&self) -> Vec<u8> {
        let mut len = 0usize;
        let p = unsafe { sys::ml_config_get_meta(self.raw.as_ptr(), &mut len) };
        unsafe { bytes_from(p, len) }.to_vec()
    }
    /// Installs an AES-GCM key (16, 24 or 32 bytes); the first one is the primary and turns
    /// encryption on; every key is tried to decrypt.
    pub fn add_key(&mut self, key: &[u8]) -> Result<()> {
        check(unsafe { sys::ml_config_add_key(self.raw.as_ptr(), key.as_ptr(), key.len()) })
    }
    /// Builder form of [`Config::add_key`].
    pub fn with_key(mut self, key: &[u8]) -> Result<Self> {
        self.add_key(key)?;
        Ok(self)
    }
    /// How many keys [`Config::add_key`] installed (0: no encryption).
    pub fn key_count(&self) -> u32 {
        unsafe { sys::ml_config_get_key_count(self.raw.as_ptr()) }
    }
    /// Accepts nodes, packets and streams only from these CIDR ranges; may be called several
    /// times (none: everyone is accepted).
    pub fn add_allowed_cidr(&mut self, cidr: &str) -> Result<()> {
        let cidr = c_string(cidr, "cidr")?;
        check(unsafe { sys::ml_config_add_allowed_cidr(self.raw.as_ptr(), cidr.as_ptr()) })
    }
    /// Builder form of [`Config::add_allowed_cidr`].
    pub fn with_allowed_cidr(mut self, cidr: &str) -> Result<Self> {
        self.add_allowed_cidr(cidr)?;
        Ok(self)
    }
    /// How many ranges [`Config::add_allowed_cidr`] added (0: everyone is accepted).
    pub fn allowed_cidr_count(&self) -> u32 {
        unsafe { sys::ml_config_get_allowed_cidr_count(self.raw.as_ptr()) }
    }
    /// Memberlists created from this config carry their datagrams and streams over
    /// `transport` instead of binding sockets, advertising `address` (`"ip:port"`, a specific
    /// IP literal and a port; [`Config::set_advertise_addr`] and
    /// [`Config::set_advertise_port`] still override it). See [`Transport`]; one transport
    /// serves one memberlist, so give each its own. [`ErrorKind::Invalid`] for a bad address.
    /// C: `ml_config_set_transport`.
    ///
    /// ```no_run
    /// use libmemberlist::{Config, Handlers, Memberlist, TcpOnlyTransport};
    /// use std::sync::Arc;
    /// let transport = Arc::new(TcpOnlyTransport::bind("127.0.0.1:0").expect("listen"));
    /// let address = transport.local_addr().to_string();
    /// let config = Config::local()?.with_name("a")?.with_transport(transport, &address)?;
    /// let ml = Memberlist::create(&config, Handlers::new())?;
    /// # Ok::<(), libmemberlist::Error>(())
    /// ```
    pub fn set_transport(&mut self, transport: Arc<dyn Transport>, address: &str) -> Result<()> {
        let addr = c_string(address, "address")?;
        // Validates the address; create installs a table of its own for each memberlist (this
        // one's user_data is NULL and refuses every send).
        let table = transport::Link::table(None);
        check(unsafe { sys::ml_config_set_transport(self.raw.as_ptr(), &table, addr.as_ptr()) })?;
        self.transport = Some((transport, address.to_string()));
        Ok(())
    }
    /// Builder form of [`Config::set_transport`].
    pub fn with_transport(mut self, transport: Arc<dyn Transport>, address: &str) -> Result<Self> {
        self.set_transport(transport, address)?;
        Ok(self)
    }
    /// Goes back to the library's own sockets.
    pub fn clear_transport(&mut self) {
        // NULL is always accepted.
        unsafe { sys::ml_config_set_transport(self.raw.as_ptr(), ptr::null(), ptr::null()) };
        self.transport = None;
    }
    /// The address given to [`Config::set_transport`], if a transport is set.
    pub fn transport_address(&self) -> Option<&str> {
        self.transport.as_ref().map(|(_, a)| a.as_str())
    }
}

/// A borrowed C view as a slice (empty for NULL).
///
/// # Safety
/// `p` must point to `len` readable bytes for the returned lifetime.
unsafe fn bytes_from<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, len)
    }
}


// ---- callbacks ---------------------------------------------------------------------------

type EventFn = Box<dyn Fn(Event) + Send + Sync + 'static>;
type LogFn = Box<dyn Fn(LogLevel, &str) + Send + Sync + 'static>;
type BytesFn = Box<dyn Fn(usize) -> Vec<u8> + Send + Sync + 'static>;
type BroadcastsFn = Box<dyn Fn(usize, usize) -> Vec<Vec<u8>> + Send + Sync + 'static>;
type LocalStateFn = Box<dyn Fn(bool) -> Vec<u8> + Send + Sync + 'static>;
type MergeStateFn = Box<dyn Fn(&[u8], bool) + Send + Sync + 'static>;
type MergeFn = Box<dyn Fn(&[Node]) -> std::result::Result<(), String> + Send + Sync + 'static>;
type AliveFn = Box<dyn Fn(&Node) -> std::result::Result<(), String> + Send + Sync + 'static>;
type AckFn = Box<dyn Fn() -> Vec<u8> + Send + Sync + 'static>;
type MessageFn = Box<dyn Fn(&[u8]) + Send + Sync + 'static>;
type BroadcastFn = Box<dyn Fn(Broadcast) + Send + Sync + 'static>;
type DoneFn = Box<dyn Fn(u64, BroadcastOutcome) + Send + Sync + 'static>;
type ConflictFn = Box<dyn Fn(Node, Node) + Send + Sync + 'static>;
type PingFn = Box<dyn Fn(Node, Duration, &[u8]) + Send + Sync + 'static>;
type MetricFn = Box<dyn Fn(&str, MetricKind, f64) + Send + Sync + 'static>;
type CallbackErrorFn = transport::ErrorHook;

/// A callback that panicked, as passed to [`Handlers::on_callback_error`]. The panic was
/// caught where the callback returns to the library (unwinding into C would abort).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackError {
    /// The [`Handlers`] method that registered the callback: "on_event", "notify_merge", ...
    pub callback: &'static str,
    /// The panic message (`panic!`'s text, or a note if the payload was not a string).
    pub message: String,
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memberlist callback {} panicked: {}", self.callback, self.message)
    }
}

impl std::error::Error for CallbackError {}

/// A broadcast queued with [`Memberlist::queue_broadcast`] somewhere in the cluster, as
/// delivered (once) to [`Handlers::on_broadcast`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// Name of the node that queued it.
    pub origin: String,
    /// "" for unnamed broadcasts.
    pub name: String,
    /// The payload, as queued.
    pub data: Vec<u8>,
}

/// How a queued broadcast ended (`ML_BROADCAST_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BroadcastOutcome {
    /// Fully retransmitted.
    Delivered,
    /// A newer broadcast with the same name took its place.
    Replaced,
    /// Pruned, reset, or the memberlist shut down first.
    Dropped,
    /// Fully retransmitted, then kept for repair until its horizon passed: every member that
    /// could reach a node holding it for a push/pull meanwhile has it
    /// ([`Config::set_max_repair_broadcasts`]).
    Settled,
    /// An outcome this crate does not know yet.
    Other(u32),
}

impl BroadcastOutcome {
    fn from_raw(v: u32) -> Self {
        match v {
            sys::ML_BROADCAST_DELIVERED => BroadcastOutcome::Delivered,
            sys::ML_BROADCAST_REPLACED => BroadcastOutcome::Replaced,
            sys::ML_BROADCAST_DROPPED => BroadcastOutcome::Dropped,
            sys::ML_BROADCAST_SETTLED => BroadcastOutcome::Settled,
            other => BroadcastOutcome::Other(other),
        }
    }
}

/// Kind of a metric (`ML_METRIC_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A count that only grows.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Durations in milliseconds: count, sum, min, max.
    Timer,
    /// A kind this crate does not know yet.
    Other(u32),
}

impl MetricKind {
    fn from_raw(v: u32) -> Self {
        match v {
            sys::ML_METRIC_COUNTER => MetricKind::Counter,
            sys::ML_METRIC_GAUGE => MetricKind::Gauge,
            sys::ML_METRIC_TIMER => MetricKind::Timer,
            other => MetricKind::Other(other),
        }
    }
}

/// The host's callbacks, given to [`Memberlist::create`]. Every one is optional.
///
/// Notifications (`on_event`, `on_log`, `on_message`, `on_broadcast`, `on_broadcast_done`,
/// `on_conflict`, `on_ping_complete`, `on_metric`) run on a library thread, one at a time, in
/// the order things happened. Hooks (`node_meta`, `get_broadcasts`, `local_state`,
/// `merge_remote_state`, `notify_merge`, `notify_alive`, `ack_payload`) run synchronously
/// inside the protocol: keep them quick and never block in them.
///
/// What a callback may call on its own memberlist: the queries (`members`, `num_members`,
/// `local_node`, `health_score`, `metrics`, `keyring_keys`), `queue_broadcast` and
/// `send_best_effort` work; join, ping, leave, shutdown, update_node, set_meta and
/// send_reliable fail with [`ErrorKind::State`] instead of waiting on themselves. Dropping
/// the last owner of the [`Memberlist`] inside its own callback is allowed: the destroy is
/// deferred until the callback returns, and only then are these closures dropped.
///
/// A panic never crosses into C (that would abort the process): it is caught where the
/// callback returns, even when its payload's `Drop` panics again, counted by
/// [`Memberlist::callback_errors`] and passed to [`Handlers::on_callback_error`]. A
/// panicking `notify_merge`/`notify_alive` vetoes with the panic message as the reason; a
/// panicking hook that returns data gives none. (A crate built with `panic = "abort"`
/// aborts before anything can be caught.)
///
/// Shutdown ([`Memberlist::shutdown`], or dropping the `Memberlist`) does not wait for the
/// backlog: messages, ping completions, metric samples and log lines still queued are
/// discarded; membership events and broadcast outcomes queued before it are still delivered;
/// no callback starts after it returns. Dropping waits for a callback that is running, then
/// drops the closures exactly once.
#[derive(Default)]
pub struct Handlers {
    on_event: Option<EventFn>,
    on_log: Option<LogFn>,
    node_meta: Option<BytesFn>,
    get_broadcasts: Option<BroadcastsFn>,
    local_state: Option<LocalStateFn>,
    merge_remote_state: Option<MergeStateFn>,
    notify_merge: Option<MergeFn>,
    notify_alive: Option<AliveFn>,
    ack_payload: Option<AckFn>,
    on_message: Option<MessageFn>,
    on_broadcast: Option<BroadcastFn>,
    on_broadcast_done: Option<DoneFn>,
    on_conflict: Option<ConflictFn>,
    on_ping_complete: Option<PingFn>,
    on_metric: Option<MetricFn>,
    on_callback_error: Option<CallbackErrorFn>,
    /// Panics caught so far; shared with the Memberlist ([`Memberlist::callback_errors`]).
    errors: Arc<AtomicU64>,
    /// The host transport's glue, kept alive until the library frees the Handlers (after its
    /// last call into the transport).
    keep: Option<Arc<transport::Link>>,
}

impl Handlers {
    /// No handlers: the library's defaults (nothing is called back).
    pub fn new() -> Self {
        Self::default()
    }
    /// Membership events (join, leave, update).
    pub fn on_event(mut self, f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }
    /// Membership events on a channel instead of a callback: replaces any
    /// [`Handlers::on_event`] with one that sends each event, in order, to the returned
    /// receiver. The channel is unbounded, so the library's callback thread never waits on
    /// the receiver; once the receiver is dropped, events are discarded.
    ///
    /// ```
    /// use libmemberlist::{Config, EventKind, Handlers, Memberlist};
    /// use std::time::Duration;
    /// let (handlers, events) = Handlers::new().event_channel();
    /// let config = Config::local()?.with_name("doc-events")?.with_bind_port(0)?;
    /// let ml = Memberlist::create(&config, handlers)?;
    /// let first = events.recv_timeout(Duration::from_secs(30)).expect("the local join");
    /// assert_eq!((first.kind, first.node.name.as_str()), (EventKind::Join, "doc-events"));
    /// # drop(ml);
    /// # Ok::<(), libmemberlist::Error>(())
    /// ```
    pub fn event_channel(self) -> (Self, std::sync::mpsc::Receiver<Event>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (self.on_event(move |ev| drop(tx.send(ev))), rx)
    }
    /// Log lines at or above the config's log level. Without one, WARN and above go to stderr.
    pub fn on_log(mut self, f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        self.on_log = Some(Box::new(f));
        self
    }
    /// Metadata of the local node, at most `limit` bytes; asked at create and by
    /// [`Memberlist::update_node`]. Replaces the config's metadata.
    pub fn node_meta(mut self, f: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static) -> Self {
        self.node_meta = Some(Box::new(f));
        self
    }
    /// Messages to piggyback on a packet: `f(overhead, limit)`; each costs `overhead` bytes
    /// more than its length; those past the limit are dropped.
    pub fn get_broadcasts(mut self, f: impl Fn(usize, usize) -> Vec<Vec<u8>> + Send + Sync + 'static) -> Self {
        self.get_broadcasts = Some(Box::new(f));
        self
    }
    /// State sent in a push/pull (`true` while joining).
    pub fn local_state(mut self, f: impl Fn(bool) -> Vec<u8> + Send + Sync + 'static) -> Self {
        self.local_state = Some(Box::new(f));
        self
    }
    /// State a peer sent in a push/pull.
    pub fn merge_remote_state(mut self, f: impl Fn(&[u8], bool) + Send + Sync + 'static) -> Self {
        self.merge_remote_state = Some(Box::new(f));
        self
    }
    /// Before a join merges a peer's nodes: `Err(reason)` vetoes (the join fails with
    /// [`ErrorKind::Rejected`]).
    pub fn notify_merge(
        mut self,
        f: impl Fn(&[Node]) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.notify_merge = Some(Box::new(f));
        self
    }
    /// Before a node is let in or changed by an alive message: `Err(reason)` keeps it out.
    pub fn notify_alive(
        mut self,
        f: impl Fn(&Node) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.notify_alive = Some(Box::new(f));
        self
    }
    /// Payload attached to the acks this node sends.
    pub fn ack_payload(mut self, f: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> Self {
        self.ack_payload = Some(Box::new(f));
        self
    }
    /// A user message arrived (best effort, reliable or to an address).
    pub fn on_message(mut self, f: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        self.on_message = Some(Box::new(f));
        self
    }
    /// A broadcast queued somewhere with [`Memberlist::queue_broadcast`] arrived (once).
    pub fn on_broadcast(mut self, f: impl Fn(Broadcast) + Send + Sync + 'static) -> Self {
        self.on_broadcast = Some(Box::new(f));
        self
    }
    /// A broadcast this node queued is done: `f(id, outcome)`.
    pub fn on_broadcast_done(mut self, f: impl Fn(u64, BroadcastOutcome) + Send + Sync + 'static) -> Self {
        self.on_broadcast_done = Some(Box::new(f));
        self
    }
    /// A node with a known name but another address showed up (it was ignored):
    /// `f(existing, other)`.
    pub fn on_conflict(mut self, f: impl Fn(Node, Node) + Send + Sync + 'static) -> Self {
        self.on_conflict = Some(Box::new(f));
        self
    }
    /// A probe completed with a direct ack: `f(node, rtt, ack payload)`.
    pub fn on_ping_complete(mut self, f: impl Fn(Node, Duration, &[u8]) + Send + Sync + 'static) -> Self {
        self.on_ping_complete = Some(Box::new(f));
        self
    }
    /// Every metric sample as it is recorded (timers in milliseconds).
    pub fn on_metric(mut self, f: impl Fn(&str, MetricKind, f64) + Send + Sync + 'static) -> Self {
        self.on_metric = Some(Box::new(f));
        self
    }
    /// Another callback of this memberlist panicked: `f` runs on that callback's thread right
    /// after the panic was caught, under the same rules as the callback. A panic inside `f`
    /// is caught and ignored. [`Memberlist::callback_errors`] counts these with or without
    /// `f`; without it the panic shows only where the panic hook prints it (stderr).
    pub fn on_callback_error(mut self, f: impl Fn(CallbackError) + Send + Sync + 'static) -> Self {
        self.on_callback_error = Some(Arc::new(f));
        self
    }

    /// Counts a caught panic and hands it to the error hook, whose own panic stops here.
    fn report(&self, err: CallbackError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = &self.on_callback_error {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(err))) {
                drop_payload(payload);
            }
        }
    }

    /// The C table; user_data owns the boxed Handlers until user_data_free. Only the hooks
    /// the host set are installed (a NULL hook costs the library nothing).
    fn into_raw(self) -> sys::ml_callbacks {
        // Zeroed first: members a newer header appends stay NULL (all are pointers/Options).
        let mut cb: sys::ml_callbacks = unsafe { std::mem::zeroed() };
        cb.version = sys::ML_CALLBACKS_VERSION;
        cb.user_data_free = Some(free_trampoline);
        if self.on_event.is_some() {
            cb.on_event = Some(event_trampoline);
        }
        if self.on_log.is_some() {
            cb.on_log = Some(log_trampoline);
        }
        if self.node_meta.is_some() {
            cb.node_meta = Some(node_meta_trampoline);
        }
        if self.get_broadcasts.is_some() {
            cb.get_broadcasts = Some(get_broadcasts_trampoline);
        }
        if self.local_state.is_some() {
            cb.local_state = Some(local_state_trampoline);
        }
        if self.merge_remote_state.is_some() {
            cb.merge_remote_state = Some(merge_remote_state_trampoline);
        }
        if self.notify_merge.is_some() {
            cb.notify_merge = Some(notify_merge_trampoline);
        }
        if self.notify_alive.is_some() {
            cb.notify_alive = Some(notify_alive_trampoline);
        }
        if self.ack_payload.is_some() {
            cb.ack_payload = Some(ack_payload_trampoline);
        }
        if self.on_message.is_some() {
            cb.on_message = Some(message_trampoline);
        }
        if self.on_broadcast.is_some() {
            cb.on_broadcast = Some(broadcast_trampoline);
        }
        if self.on_broadcast_done.is_some() {
            cb.on_broadcast_done = Some(broadcast_done_trampoline);
        }
        if self.on_conflict.is_some() {
            cb.on_conflict = Some(conflict_trampoline);
        }
        if self.on_ping_complete.is_some() {
            cb.on_ping_complete = Some(ping_complete_trampoline);
        }
        if self.on_metric.is_some() {
            cb.on_metric = Some(metric_trampoline);
        }
        cb.user_data = Box::into_raw(Box::new(self)) as *mut c_void;
        cb
    }
}

/// The text of a panic payload (`panic!` makes a &str or a String).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(the panic payload is not a string)".to_string()
    }
}

/// Drops a caught panic's payload. Its Drop may panic again, and that panic must not unwind
/// into C either: it is caught, and its own payload is forgotten rather than risk a third.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Runs `f` with the Handlers behind user_data. A panic stops here (unwinding out of an
/// extern "C" fn aborts): it is reported (see [`Handlers::on_callback_error`]) and its
/// message returned as the error.
unsafe fn guarded<R>(
    user_data: *mut c_void,
    callback: &'static str,
    f: impl FnOnce(&Handlers) -> R,
) -> std::result::Result<R, String> {
    let handlers = &*(user_data as *const Handlers);
    catch_unwind(AssertUnwindSafe(|| f(handlers))).map_err(|payload| {
        let message = panic_message(&*payload);
        drop_payload(payload);
        handlers.report(CallbackError { callback, message: message.clone() });
        message
    })
}

/// `guarded` for callbacks that return nothing to the library.
unsafe fn notify(user_data: *mut c_void, callback: &'static str, f: impl FnOnce(&Handlers)) {
    let _ = guarded(user_data, callback, f);
}

unsafe fn append(out: *mut sys::ml_buffer, bytes: &[u8]) {
    if !bytes.is_empty() {
        sys::ml_buffer_append(out, bytes.as_ptr(), bytes.len());
    }
}

unsafe extern "C" fn event_trampoline(user_data: *mut c_void, event: u32, node: *const sys::ml_node) {
    notify(user_data, "on_event", |h| {
        if let (Some(f), false) = (&h.on_event, node.is_null()) {
            let kind = match event {
                sys::ML_EVENT_JOIN => EventKind::Join,
                sys::ML_EVENT_LEAVE => EventKind::Leave,
                sys::ML_EVENT_UPDATE => EventKind::Update,
                other => EventKind::Other(other),
            };
            f(Event { kind, node: Node::from_raw(node) });
        }
    })
}

unsafe extern "C" fn log_trampoline(user_data: *mut c_void, level: u32, msg: *const c_char, len: usize) {
    notify(user_data, "on_log", |h| {
        if let (Some(f), false) = (&h.on_log, msg.is_null()) {
            let bytes = bytes_from(msg as *const u8, len);
            f(LogLevel::from_raw(level), &String::from_utf8_lossy(bytes));
        }
    })
}

unsafe extern "C" fn node_meta_trampoline(user_data: *mut c_void, out: *mut sys::ml_buffer, limit: usize) {
    notify(user_data, "node_meta", |h| {
        if let Some(f) = &h.node_meta {
            append(out, &f(limit));
        }
    })
}

unsafe extern "C" fn get_broadcasts_trampoline(
    user_data: *mut c_void,
    sink: *mut sys::ml_message_sink,
    overhead: usize,
    limit: usize,
) {
    notify(user_data, "get_broadcasts", |h| {
        if let Some(f) = &h.get_broadcasts {
            for msg in f(overhead, limit) {
                if sys::ml_message_sink_add(sink, msg.as_ptr(), msg.len()) != sys::ML_OK as i32 {
                    break;
                }
            }
        }
    })
}

unsafe extern "C" fn local_state_trampoline(user_data: *mut c_void, join: u32, out: *mut sys::ml_buffer) {
    notify(user_data, "local_state", |h| {
        if let Some(f) = &h.local_state {
            append(out, &f(join != 0));
        }
    })
}

unsafe extern "C" fn merge_remote_state_trampoline(user_data: *mut c_void, data: *const u8, len: usize, join: u32) {
    notify(user_data, "merge_remote_state", |h| {
        if let Some(f) = &h.merge_remote_state {
            f(bytes_from(data, len), join != 0);
        }
    })
}

/// An admission hook's answer: Err vetoes with a reason; a panic vetoes too.
unsafe fn veto(
    user_data: *mut c_void,
    callback: &'static str,
    reason: *mut sys::ml_buffer,
    f: impl FnOnce(&Handlers) -> std::result::Result<(), String>,
) -> i32 {
    let answer = guarded(user_data, callback, f).unwrap_or_else(|panic| Err(format!("the hook panicked: {panic}")));
    match answer {
        Ok(()) => 0,
        Err(why) => {
            append(reason, why.as_bytes());
            1
        }
    }
}

unsafe extern "C" fn notify_merge_trampoline(
    user_data: *mut c_void,
    peers: *const sys::ml_node_list,
    reason: *mut sys::ml_buffer,
) -> i32 {
    veto(user_data, "notify_merge", reason, |h| match &h.notify_merge {
        Some(f) => f(&nodes_from_list(peers)),
        None => Ok(()),
    })
}

unsafe extern "C" fn notify_alive_trampoline(
    user_data: *mut c_void,
    peer: *const sys::ml_node,
    reason: *mut sys::ml_buffer,
) -> i32 {
    veto(user_data, "notify_alive", reason, |h| match (&h.notify_alive, peer.is_null()) {
        (Some(f), false) => f(&Node::from_raw(peer)),
        _ => Ok(()),
    })
}

unsafe extern "C" fn ack_payload_trampoline(user_data: *mut c_void, out: *mut sys::ml_buffer) {
    notify(user_data, "ack_payload", |h| {
        if let Some(f) = &h.ack_payload {
            append(out, &f());
        }
    })
}

unsafe extern "C" fn message_trampoline(user_data: *mut c_void, data: *const u8, len: usize) {
    notify(user_data, "on_message", |h| {
        if let Some(f) = &h.on_message {
            f(bytes_from(data, len));
        }
    })
}

unsafe extern "C" fn broadcast_trampoline(
    user_data: *mut c_void,
    origin: *const c_char,
    name: *const c_char,
    data: *const u8,
    len: usize,
) {
    notify(user_data, "on_broadcast", |h| {
        if let Some(f) = &h.on_broadcast {
            f(Broadcast { origin: string_from(origin), name: string_from(name), data: bytes_from(data, len).to_vec() });
        }
    })
}

unsafe extern "C" fn broadcast_done_trampoline(user_data: *mut c_void, id: u64, outcome: u32) {
    notify(user_data, "on_broadcast_done", |h| {
        if let Some(f) = &h.on_broadcast_done {
            f(id, BroadcastOutcome::from_raw(outcome));
        }
    })
}

unsafe extern "C" fn conflict_trampoline(user_data: *mut c_void, existing: *const sys::ml_node, other: *const sys::ml_node) {
    notify(user_data, "on_conflict", |h| {
        if let (Some(f), false, false) = (&h.on_conflict, existing.is_null(), other.is_null()) {
            f(Node::from_raw(existing), Node::from_raw(other));
        }
    })
}

unsafe extern "C" fn ping_complete_trampoline(
    user_data: *mut c_void,
    node: *const sys::ml_node,
    rtt_us: u64,
    payload: *const u8,
    len: usize,
) {
    notify(user_data, "on_ping_complete", |h| {
        if let (Some(f), false) = (&h.on_ping_complete, node.is_null()) {
            f(Node::from_raw(node), Duration::from_micros(rtt_us), bytes_from(payload, len));
        }
    })
}

unsafe extern "C" fn metric_trampoline(user_data: *mut c_void, name: *const c_char, kind: u32, value: f64) {
    notify(user_data, "on_metric", |h| {
        if let (Some(f), false) = (&h.on_metric, name.is_null()) {
            f(&CStr::from_ptr(name).to_string_lossy(), MetricKind::from_raw(kind), value);
        }
    })
}

unsafe extern "C" fn free_trampoline(user_data: *mut c_void) {
    // Dropping the closures may run arbitrary Drop code: keep it inside catch_unwind too.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(user_data as *mut Handlers)))) {
        drop_payload(payload);
    }
}

/// Copies a borrowed node list.
///
/// # Safety
/// `list` must be a valid node list for the duration of the call.
unsafe fn nodes_from_list(list: *const sys::ml_node_list) -> Vec<Node> {
    (0..sys::ml_node_list_len(list))
        .map(|i| sys::ml_node_list_get(list, i))
        .filter(|n| !n.is_null())
        .map(|n| Node::from_raw(n))
        .collect()
}

/// Copies a byte-string list (borrowed).
///
/// # Safety
/// `list` must be a valid list for the duration of the call.
unsafe fn bytes_list(list: *const sys::ml_bytes_list) -> Vec<Vec<u8>> {
    (0..sys::ml_bytes_list_len(list))
        .map(|i| {
            let mut len = 0usize;
            let p = sys::ml_bytes_list_get(list, i, &mut len);
            bytes_from(p, len).to_vec()
        })
        .collect()
}

/// One metric of a [`Memberlist::metrics`] snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// As hashicorp/memberlist: "memberlist.msg.alive", ...
    pub name: String,
    /// Prometheus form (`node_state="alive"`), "" if none.
    pub labels: String,
    /// Counter, gauge or timer.
    pub kind: MetricKind,
    /// Counter or gauge value; for timers the sum in milliseconds.
    pub value: f64,
    /// Timer summary (zeros for other kinds): how many durations were recorded.
    pub count: u64,
    /// Timer summary: their sum in milliseconds.
    pub sum_ms: f64,
    /// Timer summary: the shortest, in milliseconds.
    pub min_ms: f64,
    /// Timer summary: the longest, in milliseconds.
    pub max_ms: f64,
}

// ---- runtime and memberlist --------------------------------------------------------------

/// A pool of I/O threads that memberlists can share (see [`Memberlist::create_in`]).
pub struct Runtime {
    raw: NonNull<sys::ml_runtime>,
}

// The runtime lives until freed and every memberlist using it is destroyed; it has no
// methods besides free, which the library makes safe against memberlists still using it.
unsafe impl Send for Runtime {}
unsafe impl Sync for Runtime {}

impl Runtime {
    /// `threads` I/O threads (0 = the library default).
    pub fn new(threads: u32) -> Result<Self> {
        check_library_version()?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ml_runtime_create(&mut raw, threads) })?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::ML_E_INTERNAL, "NULL runtime"))?;
        Ok(Runtime { raw })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        unsafe { sys::ml_runtime_free(self.raw.as_ptr()) }
    }
}

// ---- futures -----------------------------------------------------------------------------

/// The outcome of [`Memberlist::join_async`], [`Memberlist::ping_async`] or
/// [`Memberlist::leave_async`], as a [`std::future::Future`] written by hand (no crate): the
/// library calls its `done` function exactly once on one of its threads, which stores the
/// result and wakes the task that last polled. It does not borrow the memberlist.
#[must_use = "the operation goes on anyway; the future only carries its result"]
pub struct Completion<T> {
    shared: Arc<std::sync::Mutex<Slot<T>>>,
}

struct Slot<T> {
    result: Option<Result<T>>,
    waker: Option<std::task::Waker>,
}

impl<T> Completion<T> {
    /// Calls `submit` with the user_data for `done` (a reference to the shared slot, which
    /// `done` takes back); if the library refuses, `done` never runs and the reference is
    /// dropped here.
    fn start(submit: impl FnOnce(*mut c_void) -> Result<()>) -> Result<Self> {
        let shared = Arc::new(std::sync::Mutex::new(Slot { result: None, waker: None }));
        let ud = Arc::into_raw(shared.clone()) as *mut c_void;
        if let Err(e) = submit(ud) {
            drop(unsafe { Arc::from_raw(ud as *const std::sync::Mutex<Slot<T>>) });
            return Err(e);
        }
        Ok(Completion { shared })
    }

    /// True once the result is in (a poll would return `Ready`).
    pub fn is_done(&self) -> bool {
        self.shared.lock().map(|s| s.result.is_some()).unwrap_or(true)
    }

    /// Runs on the library's completion thread.
    unsafe fn finish(ud: *mut c_void, result: Result<T>) {
        let shared = Arc::from_raw(ud as *const std::sync::Mutex<Slot<T>>);
        let waker = match shared.lock() {
            Ok(mut slot) => {
                slot.result = Some(result);
                slot.waker.take()
            }
            Err(_) => None,
        };
        // Outside the lock: a waker may poll at once. A panicking waker must not unwind
        // into the library.
        if let Some(w) = waker {
            let _ = catch_unwind(AssertUnwindSafe(|| w.wake()));
        }
    }
}

impl<T> std::future::Future for Completion<T> {
    type Output = Result<T>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<T>> {
        let mut slot = match self.shared.lock() {
            Ok(slot) => slot,
            Err(p) => p.into_inner(),
        };
        match slot.result.take() {
            Some(r) => std::task::Poll::Ready(r),
            None => {
                slot.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

impl<T> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion").field("done", &self.is_done()).finish()
    }
}

fn outcome<T>(status: sys::ml_status, message: *const c_char, value: T) -> Result<T> {
    if status == sys::ML_OK as i32 {
        Ok(value)
    } else {
        Err(Error::new(status, unsafe { string_from(message) }))
    }
}

unsafe extern "C" fn join_done(ud: *mut c_void, status: sys::ml_status, joined: u32, message: *const c_char) {
    Completion::<usize>::finish(ud, outcome(status, message, joined as usize));
}

unsafe extern "C" fn ping_done(ud: *mut c_void, status: sys::ml_status, rtt_us: u64, message: *const c_char) {
    Completion::<Duration>::finish(ud, outcome(status, message, Duration::from_micros(rtt_us)));
}

unsafe extern "C" fn leave_done(ud: *mut c_void, status: sys::ml_status, message: *const c_char) {
    Completion::<()>::finish(ud, outcome(status, message, ()));
}

/// One cluster member. Dropping it shuts it down without leaving (peers will see it fail)
/// and frees it; call [`Memberlist::leave`] first for a graceful exit.
pub struct Memberlist {
    raw: NonNull<sys::ml_memberlist>,
    /// The Handlers' count of caught panics.
    errors: Arc<AtomicU64>,
    /// The host transport's glue ([`Config::set_transport`]).
    link: Option<Arc<transport::Link>>,
}

// The header: "Every ml_memberlist function may be called from any thread, concurrently."
unsafe impl Send for Memberlist {}
unsafe impl Sync for Memberlist {}

impl Memberlist {
    /// Binds the sockets, starts the protocol and fires a Join event for the local node.
    /// Uses the process-wide default runtime.
    ///
    /// ```
    /// use libmemberlist::{Config, Handlers, Memberlist};
    /// let config = Config::local()?.with_name("doc-create")?.with_bind_port(0)?;
    /// let ml = Memberlist::create(&config, Handlers::new())?;
    /// assert_eq!(ml.num_members()?, 1);
    /// assert_eq!(ml.local_node()?.name, "doc-create");
    /// # Ok::<(), libmemberlist::Error>(())
    /// ```
    pub fn create(config: &Config, handlers: Handlers) -> Result<Self> {
        Self::create_raw(ptr::null_mut(), config, handlers)
    }

    /// Same as [`Memberlist::create`], on a runtime of the caller's.
    pub fn create_in(runtime: &Runtime, config: &Config, handlers: Handlers) -> Result<Self> {
        Self::create_raw(runtime.raw.as_ptr(), config, handlers)
    }

    fn create_raw(runtime: *mut sys::ml_runtime, config: &Config, mut handlers: Handlers) -> Result<Self> {
        check_library_version()?;
        let errors = handlers.errors.clone();
        // With a host transport: a copy of the config whose table points at this
        // memberlist's own glue.
        let mut own_config = None;
        let link = match &config.transport {
            None => None,
            Some((t, address)) => {
                let link = Arc::new(transport::Link::new(t.clone(), errors.clone(), handlers.on_callback_error.clone()));
                let copy = config.clone();
                let addr = c_string(address, "address")?;
                let table = transport::Link::table(Some(&link));
                check(unsafe { sys::ml_config_set_transport(copy.raw.as_ptr(), &table, addr.as_ptr()) })?;
                own_config = Some(copy);
                handlers.keep = Some(link.clone());
                Some(link)
            }
        };
        let cfg = own_config.as_ref().unwrap_or(config);
        let callbacks = handlers.into_raw();
        let mut raw = ptr::null_mut();
        // On failure the library has already called user_data_free: nothing to free here.
        check(unsafe { sys::ml_memberlist_create(&mut raw, runtime, cfg.raw.as_ptr(), &callbacks) })?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::ML_E_INTERNAL, "NULL memberlist"))?;
        let ml = Memberlist { raw, errors, link };
        if let Some(link) = &ml.link {
            // Dropping ml on failure destroys it and shuts the transport down.
            link.attach(ml.ptr(), ml.local_node()?.address)?;
        }
        Ok(ml)
    }

    /// How many of this memberlist's callbacks have panicked so far (each panic was caught
    /// and passed to [`Handlers::on_callback_error`] if set).
    pub fn callback_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn ptr(&self) -> *mut sys::ml_memberlist {
        self.raw.as_ptr()
    }

    /// Status of a call on this memberlist, with its per-handle message.
    fn check(&self, status: sys::ml_status) -> Result<()> {
        if status == sys::ML_OK as i32 {
            Ok(())
        } else {
            Err(Error::new(status, unsafe { string_from(sys::ml_memberlist_last_error(self.ptr())) }))
        }
    }

    /// Joins a cluster through existing members ("host", "host:port", `"[v6]:port"`, a DNS
    /// name, optionally prefixed "name/"). Returns how many were reached; fails only if none.
    ///
    /// ```
    /// use libmemberlist::{Config, Handlers, Memberlist};
    /// let a = Memberlist::create(&Config::local()?.with_name("doc-a")?.with_bind_port(0)?,
    ///                            Handlers::new())?;
    /// let b = Memberlist::create(&Config::local()?.with_name("doc-b")?.with_bind_port(0)?,
    ///                            Handlers::new())?;
    /// assert_eq!(b.join(&[a.local_node()?.address])?, 1);
    /// # Ok::<(), libmemberlist::Error>(())
    /// ```
    pub fn join<S: AsRef<str>>(&self, addresses: &[S]) -> Result<usize> {
        let owned = addresses
            .iter()
            .map(|a| c_string(a.as_ref(), "address"))
            .collect::<Result<Vec<_>>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let mut joined = 0u32;
        self.check(unsafe { sys::ml_memberlist_join(self.ptr(), ptrs.as_ptr(), ptrs.len(), &mut joined) })?;
        Ok(joined as usize)
    }

    /// The alive and suspect members, the local node included.
    pub fn members(&self) -> Result<Vec<Node>> {
        let mut list = ptr::null_mut();
        self.check(unsafe { sys::ml_memberlist_members(self.ptr(), &mut list) })?;
        unsafe {
            let nodes = (0..sys::ml_node_list_len(list))
                .map(|i| sys::ml_node_list_get(list, i))
                .filter(|n| !n.is_null())
                .map(|n| Node::from_raw(n))
                .collect();
            sys::ml_node_list_free(list);
            Ok(nodes)
        }
    }

    /// Number of alive and suspect members.
    pub fn num_members(&self) -> Result<usize> {
        let mut count = 0;
        self.check(unsafe { sys::ml_memberlist_get_num_members(self.ptr(), &mut count) })?;
        Ok(count)
    }

    /// The local node (its port is the one actually bound).
    pub fn local_node(&self) -> Result<Node> {
        let mut node = ptr::null_mut();
        self.check(unsafe { sys::ml_memberlist_local_node(self.ptr(), &mut node) })?;
        unsafe {
            let copy = Node::from_raw(node);
            sys::ml_node_free(node);
            Ok(copy)
        }
    }

    /// Lifeguard health score: 0 is healthy, higher means slow to process messages.
    pub fn health_score(&self) -> Result<i32> {
        let mut score = 0;
        self.check(unsafe { sys::ml_memberlist_get_health_score(self.ptr(), &mut score) })?;
        Ok(score)
    }

    /// Pings a member by name over UDP; returns the round-trip time.
    pub fn ping(&self, node_name: &str) -> Result<Duration> {
        let name = c_string(node_name, "node name")?;
        let mut rtt_us = 0u64;
        self.check(unsafe { sys::ml_memberlist_ping(self.ptr(), name.as_ptr(), &mut rtt_us) })?;
        Ok(Duration::from_micros(rtt_us))
    }

    /// Broadcasts that this node leaves and waits until that propagated or `timeout` passed
    /// ([`ErrorKind::Timeout`]; the leave still goes on).
    pub fn leave(&self, timeout: Duration) -> Result<()> {
        let ms = millis(timeout, "timeout")?;
        self.check(unsafe { sys::ml_memberlist_leave(self.ptr(), ms) })
    }

    /// [`Memberlist::join`] as a future that no thread waits for: the library runs the join on
    /// one of its own threads (`ml_memberlist_join_async`) and wakes the task when it is
    /// done. Any executor drives it, or none: it needs no runtime and no crate. Fails like
    /// `join`, and with [`ErrorKind::Closed`] if the memberlist is shut down or dropped
    /// first. Dropping the future does not stop the join; its result is then discarded.
    ///
    /// ```
    /// use libmemberlist::{Config, Handlers, Memberlist};
    /// # use std::{future::Future, pin::pin, sync::Arc, task::{Context, Poll, Wake, Waker}};
    /// # struct Unpark(std::thread::Thread);
    /// # impl Wake for Unpark { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// # fn block_on<F: Future>(f: F) -> F::Output {
    /// #     let mut f = pin!(f);
    /// #     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let a = Memberlist::create(&Config::local()?.with_name("doc-async-a")?.with_bind_port(0)?,
    ///                            Handlers::new())?;
    /// let b = Memberlist::create(&Config::local()?.with_name("doc-async-b")?.with_bind_port(0)?,
    ///                            Handlers::new())?;
    /// let joining = b.join_async(&[a.local_node()?.address])?; // returns at once
    /// assert_eq!(block_on(joining)?, 1);
    /// # Ok::<(), libmemberlist::Error>(())
    /// ```
    pub fn join_async<S: AsRef<str>>(&self, addresses: &[S]) -> Result<Completion<usize>> {
        let owned = addresses
            .iter()
            .map(|a| c_string(a.as_ref(), "address"))
            .collect::<Result<Vec<_>>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        // The library copies the addresses before it returns.
        Completion::start(|ud| unsafe {
            self.check(sys::ml_memberlist_join_async(self.ptr(), ptrs.as_ptr(), ptrs.len(), Some(join_done), ud))
        })
    }

    /// [`Memberlist::ping`] as a future (see [`Memberlist::join_async`]).
    pub fn ping_async(&self, node_name: &str) -> Result<Completion<Duration>> {
        let name = c_string(node_name, "node name")?;
        Completion::start(|ud| unsafe {
            self.check(sys::ml_memberlist_ping_async(self.ptr(), name.as_ptr(), Some(ping_done), ud))
        })
    }

    /// [`Memberlist::leave`] as a future (see [`Memberlist::join_async`]).
    pub fn leave_async(&self, timeout: Duration) -> Result<Completion<()>> {
        let ms = millis(timeout, "timeout")?;
        Completion::start(|ud| unsafe {
            self.check(sys::ml_memberlist_leave_async(self.ptr(), ms, Some(leave_done), ud))
        })
    }

    /// Stops the sockets and timers without leaving (peers will detect a failure). Idempotent.
    /// Queued notifications are dropped as [`Handlers`] says; no callback starts after it
    /// returns. Afterwards the queries (`members`, `num_members`, `local_node`,
    /// `health_score`, `metrics`, `keyring_keys`) answer from the last state, and commands
    /// (join, ping, leave, update_node, set_meta, send_*, queue_broadcast, keyring changes,
    /// set_gossip_verify) fail with [`ErrorKind::Closed`].
    pub fn shutdown(&self) -> Result<()> {
        self.check(unsafe { sys::ml_memberlist_shutdown(self.ptr()) })?;
        // The library hands the transport nothing that matters any more.
        if let Some(link) = &self.link {
            link.stop();
        }
        Ok(())
    }

    // -- metadata --

    /// Asks the `node_meta` hook again and announces the result; waits until it has
    /// propagated or `timeout` passed ([`ErrorKind::Timeout`]; the update still goes on).
    pub fn update_node(&self, timeout: Duration) -> Result<()> {
        let ms = millis(timeout, "timeout")?;
        self.check(unsafe { sys::ml_memberlist_update_node(self.ptr(), ms) })
    }

    /// Sets the local metadata and announces it, waiting as [`Memberlist::update_node`].
    pub fn set_meta(&self, meta: &[u8], timeout: Duration) -> Result<()> {
        let ms = millis(timeout, "timeout")?;
        self.check(unsafe { sys::ml_memberlist_set_meta(self.ptr(), meta.as_ptr(), meta.len(), ms) })
    }

    // -- user messages --

    /// One UDP datagram to a member ([`ErrorKind::TooLarge`] if it cannot fit one).
    pub fn send_best_effort(&self, node_name: &str, msg: &[u8]) -> Result<()> {
        let name = c_string(node_name, "node name")?;
        self.check(unsafe { sys::ml_memberlist_send_best_effort(self.ptr(), name.as_ptr(), msg.as_ptr(), msg.len()) })
    }

    /// Over a TCP stream to a member; returns once written.
    pub fn send_reliable(&self, node_name: &str, msg: &[u8]) -> Result<()> {
        let name = c_string(node_name, "node name")?;
        self.check(unsafe { sys::ml_memberlist_send_reliable(self.ptr(), name.as_ptr(), msg.as_ptr(), msg.len()) })
    }

    /// One UDP datagram to "host:port" (a member or not).
    pub fn send_to_address(&self, address: &str, msg: &[u8]) -> Result<()> {
        let address = c_string(address, "address")?;
        self.check(unsafe {
            sys::ml_memberlist_send_to_address(self.ptr(), address.as_ptr(), msg.as_ptr(), msg.len())
        })
    }

    // -- broadcasts --

    /// Queues a broadcast that every member delivers once through `on_broadcast`. A name
    /// makes a newer broadcast with that name replace the older one. Returns the id passed to
    /// `on_broadcast_done`.
    pub fn queue_broadcast(&self, name: Option<&str>, data: &[u8]) -> Result<u64> {
        let name = name.map(|n| c_string(n, "broadcast name")).transpose()?;
        let name_ptr = name.as_ref().map_or(ptr::null(), |n| n.as_ptr());
        let mut id = 0u64;
        self.check(unsafe {
            sys::ml_memberlist_queue_broadcast(self.ptr(), name_ptr, data.as_ptr(), data.len(), &mut id)
        })?;
        Ok(id)
    }

    /// Broadcasts this node is still retransmitting.
    pub fn num_queued_broadcasts(&self) -> Result<usize> {
        let mut count = 0;
        self.check(unsafe { sys::ml_memberlist_get_num_queued_broadcasts(self.ptr(), &mut count) })?;
        Ok(count)
    }

    // -- keyring --

    /// Installs a key (16, 24 or 32 bytes); the first one becomes the primary.
    pub fn keyring_add(&self, key: &[u8]) -> Result<()> {
        self.check(unsafe { sys::ml_memberlist_keyring_add(self.ptr(), key.as_ptr(), key.len()) })
    }
    /// Makes an installed key the primary.
    pub fn keyring_use(&self, key: &[u8]) -> Result<()> {
        self.check(unsafe { sys::ml_memberlist_keyring_use(self.ptr(), key.as_ptr(), key.len()) })
    }
    /// Removes a key (not the primary).
    pub fn keyring_remove(&self, key: &[u8]) -> Result<()> {
        self.check(unsafe { sys::ml_memberlist_keyring_remove(self.ptr(), key.as_ptr(), key.len()) })
    }
    /// The installed keys, primary first.
    pub fn keyring_keys(&self) -> Result<Vec<Vec<u8>>> {
        let mut list = ptr::null_mut();
        self.check(unsafe { sys::ml_memberlist_keyring_list(self.ptr(), &mut list) })?;
        unsafe {
            let keys = bytes_list(list);
            sys::ml_bytes_list_free(list);
            Ok(keys)
        }
    }
    /// Changes gossip_verify_incoming / gossip_verify_outgoing at run time.
    pub fn set_gossip_verify(&self, incoming: bool, outgoing: bool) -> Result<()> {
        self.check(unsafe { sys::ml_memberlist_set_gossip_verify(self.ptr(), u32::from(incoming), u32::from(outgoing)) })
    }

    // -- metrics --

    /// A snapshot of every metric.
    pub fn metrics(&self) -> Result<Vec<Metric>> {
        let mut snap = ptr::null_mut();
        self.check(unsafe { sys::ml_memberlist_metrics(self.ptr(), &mut snap) })?;
        unsafe {
            let out = (0..sys::ml_metrics_len(snap))
                .map(|i| {
                    // Cannot fail for an index below the length.
                    let mut kind = sys::ML_METRIC_COUNTER;
                    sys::ml_metrics_get_kind(snap, i, &mut kind);
                    let mut m = Metric {
                        name: string_from(sys::ml_metrics_name(snap, i)),
                        labels: string_from(sys::ml_metrics_labels(snap, i)),
                        kind: MetricKind::from_raw(kind),
                        value: sys::ml_metrics_value(snap, i),
                        count: 0,
                        sum_ms: 0.0,
                        min_ms: 0.0,
                        max_ms: 0.0,
                    };
                    sys::ml_metrics_timer(snap, i, &mut m.count, &mut m.sum_ms, &mut m.min_ms, &mut m.max_ms);
                    m
                })
                .collect();
            sys::ml_metrics_free(snap);
            Ok(out)
        }
    }

    /// Every metric as Prometheus text exposition.
    pub fn prometheus(&self) -> Result<String> {
        let mut text = ptr::null_mut();
        let mut len = 0usize;
        self.check(unsafe { sys::ml_memberlist_prometheus(self.ptr(), &mut text, &mut len) })?;
        unsafe {
            let s = String::from_utf8_lossy(bytes_from(text as *const u8, len)).into_owned();
            sys::ml_string_free(text);
            Ok(s)
        }
    }
}

impl Drop for Memberlist {
    fn drop(&mut self) {
        // No transport call reaches the handle from here on (they fail with Closed).
        if let Some(link) = &self.link {
            link.close();
        }
        // Waits for running callbacks, then calls user_data_free (drops the Handlers).
        unsafe { sys::ml_memberlist_destroy(self.ptr()) }
        // Inbound streams still waiting are answered None; the transport stops.
        if let Some(link) = &self.link {
            link.finish();
        }
    }
}

// ---- a transmit-limited queue of one's own ------------------------------------------------

type QueueDoneFn = Box<dyn FnOnce(BroadcastOutcome) + Send + 'static>;

/// A transmit-limited queue for hosts that build their own broadcasts (hashicorp's
/// TransmitLimitedQueue, as Serf uses): each message is handed out
/// `retransmit_mult * ceil(log10(n + 1))` times, least-transmitted first. One thread at a time
/// (`Send`, not `Sync`); dropping it drops the queued messages (their `done` runs with
/// [`BroadcastOutcome::Dropped`]).
pub struct BroadcastQueue {
    raw: NonNull<sys::ml_broadcast_queue>,
}

unsafe impl Send for BroadcastQueue {}

unsafe extern "C" fn queue_done_trampoline(user_data: *mut c_void, outcome: u32) {
    // Called exactly once per pushed message: the box is ours to take back.
    let done = Box::from_raw(user_data as *mut QueueDoneFn);
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || done(BroadcastOutcome::from_raw(outcome)))) {
        drop_payload(payload);
    }
}

impl BroadcastQueue {
    /// An empty queue; each message is handed out `retransmit_mult * ceil(log10(n + 1))`
    /// times, n as set by [`BroadcastQueue::set_num_nodes`].
    ///
    /// ```
    /// use libmemberlist::{BroadcastOutcome, BroadcastQueue};
    /// let mut queue = BroadcastQueue::new(1)?;
    /// queue.push(Some("key"), b"hello", None::<fn(BroadcastOutcome)>)?;
    /// assert_eq!(queue.get(2, 1400)?, vec![b"hello".to_vec()]);
    /// # Ok::<(), libmemberlist::Error>(())
    /// ```
    pub fn new(retransmit_mult: u32) -> Result<Self> {
        check_library_version()?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::ml_broadcast_queue_create(&mut raw, retransmit_mult) })?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::ML_E_INTERNAL, "NULL queue"))?;
        Ok(BroadcastQueue { raw })
    }
    /// The cluster size used for the retransmit limit (default 1).
    pub fn set_num_nodes(&mut self, n: u32) -> Result<()> {
        check(unsafe { sys::ml_broadcast_queue_set_num_nodes(self.raw.as_ptr(), n) })
    }
    /// Queues a message; a name replaces a queued message with that name. `done` runs once
    /// with the outcome when the message leaves the queue, inside the call that removes it.
    pub fn push(
        &mut self,
        name: Option<&str>,
        data: &[u8],
        done: Option<impl FnOnce(BroadcastOutcome) + Send + 'static>,
    ) -> Result<()> {
        let name = name.map(|n| c_string(n, "broadcast name")).transpose()?;
        let name_ptr = name.as_ref().map_or(ptr::null(), |n| n.as_ptr());
        let (cb, ud): (sys::ml_broadcast_done_fn, *mut c_void) = match done {
            Some(f) => {
                let boxed: Box<QueueDoneFn> = Box::new(Box::new(f));
                (Some(queue_done_trampoline), Box::into_raw(boxed) as *mut c_void)
            }
            None => (None, ptr::null_mut()),
        };
        let st = unsafe { sys::ml_broadcast_queue_push(self.raw.as_ptr(), name_ptr, data.as_ptr(), data.len(), cb, ud) };
        // A refused push never runs its callback and leaves the user data to us (docs/abi.md,
        // "Failed calls take nothing"): take the box back.
        if st != sys::ML_OK as i32 && !ud.is_null() {
            drop(unsafe { Box::from_raw(ud as *mut QueueDoneFn) });
        }
        check(st)
    }
    /// The messages that fit `limit` bytes, each counted with `overhead` extra bytes.
    pub fn get(&mut self, overhead: usize, limit: usize) -> Result<Vec<Vec<u8>>> {
        let mut list = ptr::null_mut();
        check(unsafe { sys::ml_broadcast_queue_get(self.raw.as_ptr(), overhead, limit, &mut list) })?;
        unsafe {
            let out = bytes_list(list);
            sys::ml_bytes_list_free(list);
            Ok(out)
        }
    }
    /// Messages in the queue.
    pub fn len(&self) -> usize {
        unsafe { sys::ml_broadcast_queue_len(self.raw.as_ptr()) }
    }
    /// No message in the queue.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Drops the most-transmitted messages until at most `max_retain` remain.
    pub fn prune(&mut self, max_retain: usize) -> Result<()> {
        check(unsafe { sys::ml_broadcast_queue_prune(self.raw.as_ptr(), max_retain) })
    }
    /// Drops every message.
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::ml_broadcast_queue_reset(self.raw.as_ptr()) })
    }
}

impl Drop for BroadcastQueue {
    fn drop(&mut self) {
        unsafe { sys::ml_broadcast_queue_free(self.raw.as_ptr()) }
    }
}

/// Support for the callback benchmark (`examples/bench_callback.rs`); not a stable API.
#[doc(hidden)]
pub mod bench {
    use super::*;

    /// Invokes the event trampoline `n` times from a new thread with `ml`'s local node, the
    /// way the library's callback thread does, and returns the time per callback.
    pub fn event_round_trip(ml: &Memberlist, handlers: Handlers, n: u32) -> Result<Duration> {
        let mut node = ptr::null_mut();
        ml.check(unsafe { sys::ml_memberlist_local_node(ml.ptr(), &mut node) })?;
        let table = handlers.into_raw();
        struct Raw(sys::ml_callbacks, *mut sys::ml_node);
        unsafe impl Send for Raw {}
        let raw = Raw(table, node);
        let elapsed = std::thread::spawn(move || {
            let raw = raw;
            let fire = raw.0.on_event.expect("an on_event handler");
            let start = std::time::Instant::now();
            for _ in 0..n {
                unsafe { fire(raw.0.user_data, sys::ML_EVENT_UPDATE, raw.1) };
            }
            let elapsed = start.elapsed();
            unsafe {
                (raw.0.user_data_free.unwrap())(raw.0.user_data);
                sys::ml_node_free(raw.1);
            }
            elapsed
        })
        .join()
        .expect("bench thread");
        Ok(elapsed / n.max(1))
    }

    /// Invokes the on_message trampoline `n` times from a new thread with a `size`-byte
    /// payload and returns the time per callback.
    pub fn message_round_trip(handlers: Handlers, size: usize, n: u32) -> Duration {
        let table = handlers.into_raw();
        struct Raw(sys::ml_callbacks);
        unsafe impl Send for Raw {}
        let raw = Raw(table);
        std::thread::spawn(move || {
            let raw = raw;
            let fire = raw.0.on_message.expect("an on_message handler");
            let payload = vec![0u8; size];
            let start = std::time::Instant::now();
            for _ in 0..n {
                unsafe { fire(raw.0.user_data, payload.as_ptr(), payload.len()) };
            }
            let elapsed = start.elapsed();
            unsafe { (raw.0.user_data_free.unwrap())(raw.0.user_data) };
            elapsed / n.max(1)
        })
        .join()
        .expect("bench thread")
    }
}

/// The README's example, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
