//! Safe Rust API for libmemberlist: cluster membership and failure detection (SWIM gossip with
//! the Lifeguard extensions), a C++ implementation of hashicorp/memberlist behind a C ABI.
//!
//! ```no_run
//! use memberlist::{Config, Handlers, Memberlist};
//! let config = Config::local()?.with_name("a")?.with_bind_port(0)?;
//! let ml = Memberlist::create(&config, Handlers::new().on_event(|ev| println!("{ev:?}")))?;
//! ml.join(&["127.0.0.1:7946"])?;
//! # Ok::<(), memberlist::Error>(())
//! ```
//!
//! Threads: every [`Memberlist`] method may be called from any thread (the header promises
//! it), so `Memberlist` is `Send + Sync`. Callbacks run on a library thread, one at a time;
//! a panic inside one is caught and does not cross into C. [`Config`] is a plain value: `Send`,
//! not `Sync`.

use memberlist_sys as sys;
use std::ffi::{c_char, c_void, CStr, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;
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
    Invalid,
    NoMem,
    BufferTooSmall,
    NotFound,
    State,
    Closed,
    Callback,
    Protocol,
    Version,
    Timeout,
    Io,
    Rejected,
    TooLarge,
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
    Alive,
    Suspect,
    Dead,
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
    pub name: String,
    /// "host:port" ("[v6]:port" for IPv6).
    pub address: String,
    pub host: String,
    pub port: u16,
    pub meta: Vec<u8>,
    pub state: NodeState,
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
        let meta = if meta.is_null() || len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(meta, len).to_vec()
        };
        let mut versions = [0u8; 6];
        sys::ml_node_versions(node, versions.as_mut_ptr());
        Node {
            name: string_from(sys::ml_node_name(node)),
            address: string_from(sys::ml_node_address(node)),
            host: string_from(sys::ml_node_host(node)),
            port: sys::ml_node_port(node),
            meta,
            state: NodeState::from_raw(sys::ml_node_state(node)),
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
    pub kind: EventKind,
    pub node: Node,
}

/// Log levels (`ML_LOG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
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

// ---- configuration -----------------------------------------------------------------------

/// A configuration, starting from one of the reference's presets; copied at create.
pub struct Config {
    raw: NonNull<sys::ml_config>,
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
        Config::from_ctor(|out| unsafe { sys::ml_config_clone(self.raw.as_ptr(), out) })
            .expect("ml_config_clone failed (out of memory)")
    }
}

/// Defines `set_x(&mut self, v) -> Result<()>`, `with_x(self, v) -> Result<Self>` (builder)
/// and the getter `x(&self)` for knobs whose C type maps directly (`$conv`).
macro_rules! knobs {
    ($( $(#[$doc:meta])* $get:ident, $set:ident, $with:ident: $ty:ty => $cty:ty,
        $cset:ident, $cget:ident, to($v:ident) $to:expr, from($r:ident) $from:expr; )*) => {
        impl Config {$(
            $(#[$doc])*
            pub fn $set(&mut self, $v: $ty) -> Result<()> {
                let value: $cty = $to;
                check(unsafe { sys::$cset(self.raw.as_ptr(), value) })
            }
            $(#[$doc])*
            pub fn $with(mut self, $v: $ty) -> Result<Self> {
                self.$set($v)?;
                Ok(self)
            }
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
    tcp_timeout, set_tcp_timeout, with_tcp_timeout: Duration => u32,
        ml_config_set_tcp_timeout_ms, ml_config_get_tcp_timeout_ms,
        to(v) millis(v, "tcp_timeout")?, from(r) Duration::from_millis(r.into());
    indirect_checks, set_indirect_checks, with_indirect_checks: u32 => u32,
        ml_config_set_indirect_checks, ml_config_get_indirect_checks, to(v) v, from(r) r;
    retransmit_mult, set_retransmit_mult, with_retransmit_mult: u32 => u32,
        ml_config_set_retransmit_mult, ml_config_get_retransmit_mult, to(v) v, from(r) r;
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
    gossip_nodes, set_gossip_nodes, with_gossip_nodes: u32 => u32,
        ml_config_set_gossip_nodes, ml_config_get_gossip_nodes, to(v) v, from(r) r;
    gossip_to_the_dead_time, set_gossip_to_the_dead_time, with_gossip_to_the_dead_time:
        Duration => u32, ml_config_set_gossip_to_the_dead_time_ms,
        ml_config_get_gossip_to_the_dead_time_ms,
        to(v) millis(v, "gossip_to_the_dead_time")?, from(r) Duration::from_millis(r.into());
    /// Largest datagram the library builds.
    udp_buffer_size, set_udp_buffer_size, with_udp_buffer_size: u32 => u32,
        ml_config_set_udp_buffer_size, ml_config_get_udp_buffer_size, to(v) v, from(r) r;
    dead_node_reclaim_time, set_dead_node_reclaim_time, with_dead_node_reclaim_time:
        Duration => u32, ml_config_set_dead_node_reclaim_time_ms,
        ml_config_get_dead_node_reclaim_time_ms,
        to(v) millis(v, "dead_node_reclaim_time")?, from(r) Duration::from_millis(r.into());
    handoff_queue_depth, set_handoff_queue_depth, with_handoff_queue_depth: u32 => u32,
        ml_config_set_handoff_queue_depth, ml_config_get_handoff_queue_depth, to(v) v, from(r) r;
    meta_max_size, set_meta_max_size, with_meta_max_size: u32 => u32,
        ml_config_set_meta_max_size, ml_config_get_meta_max_size, to(v) v, from(r) r;
    /// Least severe level passed to the log callback.
    log_level, set_log_level, with_log_level: LogLevel => u32,
        ml_config_set_log_level, ml_config_get_log_level,
        to(v) v.to_raw(), from(r) LogLevel::from_raw(r);
    /// Seed of the protocol's randomness; 0 picks one at random.
    seed, set_seed, with_seed: u64 => u64,
        ml_config_set_seed, ml_config_get_seed, to(v) v, from(r) r;
}

/// Same for string knobs.
macro_rules! string_knobs {
    ($( $(#[$doc:meta])* $get:ident, $set:ident, $with:ident, $cset:ident, $cget:ident; )*) => {
        impl Config {$(
            $(#[$doc])*
            pub fn $set(&mut self, v: &str) -> Result<()> {
                let v = c_string(v, stringify!($get))?;
                check(unsafe { sys::$cset(self.raw.as_ptr(), v.as_ptr()) })
            }
            $(#[$doc])*
            pub fn $with(mut self, v: &str) -> Result<Self> {
                self.$set(v)?;
                Ok(self)
            }
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
}

impl Config {
    fn from_ctor(ctor: impl FnOnce(*mut *mut sys::ml_config) -> sys::ml_status) -> Result<Self> {
        check_library_version()?;
        let mut raw = ptr::null_mut();
        check(ctor(&mut raw))?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::ML_E_INTERNAL, "NULL config"))?;
        Ok(Config { raw })
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
    pub fn with_meta(mut self, meta: &[u8]) -> Result<Self> {
        self.set_meta(meta)?;
        Ok(self)
    }
    pub fn meta(&self) -> Vec<u8> {
        let mut len = 0usize;
        let p = unsafe { sys::ml_config_get_meta(self.raw.as_ptr(), &mut len) };
        if p.is_null() || len == 0 {
            Vec::new()
        } else {
            unsafe { std::slice::from_raw_parts(p, len) }.to_vec()
        }
    }
}

// ---- callbacks ---------------------------------------------------------------------------

type EventFn = Box<dyn Fn(Event) + Send + Sync + 'static>;
type LogFn = Box<dyn Fn(LogLevel, &str) + Send + Sync + 'static>;

/// The host's callbacks, given to [`Memberlist::create`]. They run on a library thread, one at
/// a time, in the order the events happened; calling non-blocking [`Memberlist`] methods from
/// them works. A panic is caught (and reported by the panic hook) instead of crossing into C.
#[derive(Default)]
pub struct Handlers {
    on_event: Option<EventFn>,
    on_log: Option<LogFn>,
}

impl Handlers {
    pub fn new() -> Self {
        Self::default()
    }
    /// Membership events (join, leave, update).
    pub fn on_event(mut self, f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }
    /// Log lines at or above the config's log level. Without one, WARN and above go to stderr.
    pub fn on_log(mut self, f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        self.on_log = Some(Box::new(f));
        self
    }

    /// The C table; user_data owns the boxed Handlers until user_data_free.
    fn into_raw(self) -> sys::ml_callbacks {
        let (has_event, has_log) = (self.on_event.is_some(), self.on_log.is_some());
        // Zeroed first: members a newer header appends stay NULL (all are pointers/Options).
        let mut cb: sys::ml_callbacks = unsafe { std::mem::zeroed() };
        cb.version = sys::ML_CALLBACKS_VERSION;
        cb.user_data = Box::into_raw(Box::new(self)) as *mut c_void;
        cb.user_data_free = Some(free_trampoline);
        cb.on_event = if has_event { Some(event_trampoline) } else { None };
        cb.on_log = if has_log { Some(log_trampoline) } else { None };
        cb
    }
}

unsafe extern "C" fn event_trampoline(user_data: *mut c_void, event: u32, node: *const sys::ml_node) {
    // Unwinding out of an extern "C" fn aborts: stop every panic here.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let handlers = &*(user_data as *const Handlers);
        if let (Some(f), false) = (&handlers.on_event, node.is_null()) {
            let kind = match event {
                sys::ML_EVENT_JOIN => EventKind::Join,
                sys::ML_EVENT_LEAVE => EventKind::Leave,
                sys::ML_EVENT_UPDATE => EventKind::Update,
                other => EventKind::Other(other),
            };
            f(Event { kind, node: Node::from_raw(node) });
        }
    }));
}

unsafe extern "C" fn log_trampoline(user_data: *mut c_void, level: u32, msg: *const c_char, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let handlers = &*(user_data as *const Handlers);
        if let (Some(f), false) = (&handlers.on_log, msg.is_null()) {
            let bytes = std::slice::from_raw_parts(msg as *const u8, len);
            f(LogLevel::from_raw(level), &String::from_utf8_lossy(bytes));
        }
    }));
}

unsafe extern "C" fn free_trampoline(user_data: *mut c_void) {
    // Dropping the closures may run arbitrary Drop code: keep it inside catch_unwind too.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(user_data as *mut Handlers))));
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
        check(unsafe { sys::ml_runtime_new(threads, &mut raw) })?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::ML_E_INTERNAL, "NULL runtime"))?;
        Ok(Runtime { raw })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        unsafe { sys::ml_runtime_free(self.raw.as_ptr()) }
    }
}

/// One cluster member. Dropping it shuts it down without leaving (peers will see it fail)
/// and frees it; call [`Memberlist::leave`] first for a graceful exit.
pub struct Memberlist {
    raw: NonNull<sys::ml_memberlist>,
}

// The header: "Every ml_memberlist function may be called from any thread, concurrently."
unsafe impl Send for Memberlist {}
unsafe impl Sync for Memberlist {}

impl Memberlist {
    /// Binds the sockets, starts the protocol and fires a Join event for the local node.
    /// Uses the process-wide default runtime.
    pub fn create(config: &Config, handlers: Handlers) -> Result<Self> {
        Self::create_raw(ptr::null_mut(), config, handlers)
    }

    /// Same as [`Memberlist::create`], on a runtime of the caller's.
    pub fn create_in(runtime: &Runtime, config: &Config, handlers: Handlers) -> Result<Self> {
        Self::create_raw(runtime.raw.as_ptr(), config, handlers)
    }

    fn create_raw(runtime: *mut sys::ml_runtime, config: &Config, handlers: Handlers) -> Result<Self> {
        check_library_version()?;
        let callbacks = handlers.into_raw();
        let mut raw = ptr::null_mut();
        // On failure the library has already called user_data_free: nothing to free here.
        check(unsafe { sys::ml_memberlist_create(&mut raw, runtime, config.raw.as_ptr(), &callbacks) })?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::ML_E_INTERNAL, "NULL memberlist"))?;
        Ok(Memberlist { raw })
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

    /// Joins a cluster through existing members ("host", "host:port", "[v6]:port", a DNS
    /// name, optionally prefixed "name/"). Returns how many were reached; fails only if none.
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
    pub fn num_members(&self) -> usize {
        unsafe { sys::ml_memberlist_num_members(self.ptr()) }
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
    pub fn health_score(&self) -> i32 {
        unsafe { sys::ml_memberlist_health_score(self.ptr()) }
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

    /// Stops the sockets and timers without leaving. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        self.check(unsafe { sys::ml_memberlist_shutdown(self.ptr()) })
    }
}

impl Drop for Memberlist {
    fn drop(&mut self) {
        // Waits for running callbacks, then calls user_data_free (drops the Handlers).
        unsafe { sys::ml_memberlist_destroy(self.ptr()) }
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
}
