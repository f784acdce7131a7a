//! Real-socket tests on loopback: a small cluster, callbacks, errors. Waits poll with generous
//! deadlines (the machine may be loaded), never fixed sleeps.
use libmemberlist::{Config, ErrorKind, Event, EventKind, Handlers, Memberlist, NodeState};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{self, ThreadId};
use std::time::Duration;

mod common;
use common::{fast_config, wait_until};

/// Events seen by one node, with the thread each arrived on.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Event, ThreadId)>>>);

impl Recorder {
    fn handlers(&self) -> Handlers {
        let me = self.clone();
        Handlers::new().on_event(move |ev| me.0.lock().unwrap().push((ev, thread::current().id())))
    }
    fn has(&self, kind: EventKind, name: &str, state: NodeState) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(e, _)| e.kind == kind && e.node.name == name && e.node.state == state)
    }
    fn threads(&self) -> Vec<ThreadId> {
        self.0.lock().unwrap().iter().map(|(_, t)| *t).collect()
    }
}

fn names(ml: &Memberlist) -> BTreeSet<String> {
    ml.members().unwrap().into_iter().map(|n| n.name).collect()
}

#[test]
fn three_node_cluster_join_meta_leave_and_failure() {
    let (ra, rb, rc) = (Recorder::default(), Recorder::default(), Recorder::default());
    let a_cfg = fast_config("rust-a").with_meta(b"role=seed").unwrap();
    let a = Memberlist::create(&a_cfg, ra.handlers()).expect("create a");
    let b = Memberlist::create(&fast_config("rust-b"), rb.handlers()).expect("create b");
    let c = Memberlist::create(&fast_config("rust-c"), rc.handlers()).expect("create c");

    let seed = a.local_node().unwrap();
    assert_eq!(seed.host, "127.0.0.1");
    assert_ne!(seed.port, 0, "port 0 resolves to the bound port");
    assert_eq!(b.join(&[seed.address.as_str()]).expect("b joins"), 1);
    assert_eq!(c.join(&[seed.address.as_str()]).expect("c joins"), 1);

    let all: BTreeSet<String> = ["rust-a", "rust-b", "rust-c"].map(String::from).into();
    wait_until("three members everywhere", || {
        [&a, &b, &c].iter().all(|m| m.num_members().unwrap() == 3 && names(m) == all)
    });
    // Metadata given at create travels with a's alive messages.
    let a_seen_by_c = c.members().unwrap().into_iter().find(|n| n.name == "rust-a").unwrap();
    assert_eq!(a_seen_by_c.meta, b"role=seed");
    assert_eq!(a_seen_by_c.state, NodeState::Alive);
    assert!(ra.has(EventKind::Join, "rust-a", NodeState::Alive), "local join event at create");
    assert!(rb.has(EventKind::Join, "rust-c", NodeState::Alive));

    // Callbacks run on library threads, never on the caller's.
    let me = thread::current().id();
    assert!(ra.threads().iter().chain(rb.threads().iter()).all(|t| *t != me));

    // A graceful leave is seen as left...
    c.leave(Duration::from_secs(10)).expect("c leaves");
    wait_until("a sees c left", || ra.has(EventKind::Leave, "rust-c", NodeState::Left));
    drop(c);
    // ... a node that just disappears is detected as dead.
    drop(b);
    wait_until("a sees b dead", || ra.has(EventKind::Leave, "rust-b", NodeState::Dead));
    wait_until("a alone", || a.num_members().unwrap() == 1);
    assert_eq!(a.health_score().unwrap() >= 0, true);
}

#[test]
fn ping_reports_rtt_and_unknown_names() {
    let a = Memberlist::create(&fast_config("rust-ping-a"), Handlers::new()).unwrap();
    let b = Memberlist::create(&fast_config("rust-ping-b"), Handlers::new()).unwrap();
    b.join(&[a.local_node().unwrap().address]).unwrap();
    wait_until("a knows b", || a.num_members().unwrap() == 2);
    let rtt = a.ping("rust-ping-b").expect("ping b");
    assert!(rtt < Duration::from_secs(5));
    let err = a.ping("nobody").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Keeps the deliberate panics below from filling the output with backtraces.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
            if !msg.starts_with("deliberate panic") {
                default(info);
            }
        }));
    });
}

#[test]
fn panicking_callbacks_do_not_abort() {
    quiet_deliberate_panics();
    let calls = Arc::new(AtomicUsize::new(0));
    let (ce, cl) = (calls.clone(), calls.clone());
    let handlers = Handlers::new()
        .on_event(move |_| {
            ce.fetch_add(1, Ordering::SeqCst);
            panic!("deliberate panic in on_event");
        })
        .on_log(move |_, _| {
            cl.fetch_add(1, Ordering::SeqCst);
            panic!("deliberate panic in on_log");
        });
    let cfg = fast_config("rust-panic").with_log_level(libmemberlist::LogLevel::Debug).unwrap();
    let a = Memberlist::create(&cfg, handlers).unwrap();
    let b = Memberlist::create(&fast_config("rust-panic-peer"), Handlers::new()).unwrap();
    b.join(&[a.local_node().unwrap().address]).unwrap();
    wait_until("panicking callbacks ran", || calls.load(Ordering::SeqCst) >= 2);
    wait_until("cluster still works", || a.num_members().unwrap() == 2 && b.num_members().unwrap() == 2);
}

#[test]
fn calls_from_inside_a_callback() {
    // Non-blocking calls work from a callback; blocking ones on the same memberlist are refused.
    let me: Arc<OnceLock<Weak<Memberlist>>> = Arc::default();
    let seen: Arc<Mutex<Vec<(usize, Option<ErrorKind>)>>> = Arc::default();
    let (me2, seen2) = (me.clone(), seen.clone());
    let handlers = Handlers::new().on_event(move |ev| {
        if ev.kind != EventKind::Join || ev.node.name != "rust-cb-peer" {
            return;
        }
        if let Some(ml) = me2.get().and_then(Weak::upgrade) {
            let leave = ml.leave(Duration::from_millis(10)).err().map(|e| e.kind());
            seen2.lock().unwrap().push((ml.members().unwrap().len(), leave));
        }
    });
    let a = Arc::new(Memberlist::create(&fast_config("rust-cb"), handlers).unwrap());
    me.set(Arc::downgrade(&a)).unwrap();
    let b = Memberlist::create(&fast_config("rust-cb-peer"), Handlers::new()).unwrap();
    b.join(&[a.local_node().unwrap().address]).unwrap();
    wait_until("callback ran", || !seen.lock().unwrap().is_empty());
    let (members, leave) = seen.lock().unwrap()[0];
    assert_eq!(members, 2);
    assert_eq!(leave, Some(ErrorKind::State));
}

struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn user_data_is_freed_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let flag = DropFlag(drops.clone());
    let ml = Memberlist::create(&fast_config("rust-free"), Handlers::new().on_event(move |_| {
        let _ = &flag;
    }))
    .unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(ml);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // A failed create frees the handlers too (the library calls user_data_free).
    let flag = DropFlag(drops.clone());
    let bad = fast_config("rust-free-bad").with_bind_addr("192.0.2.1").unwrap(); // not local
    let err = Memberlist::create(&bad, Handlers::new().on_event(move |_| {
        let _ = &flag;
    }))
    .err()
    .expect("binding a foreign address fails");
    assert!(!err.message().is_empty());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn config_setters_refuse_bad_values() {
    let err = Config::local().unwrap().with_protocol_version(99).err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(!err.message().is_empty(), "the library names the knob");

    let mut cfg = Config::lan().unwrap();
    assert_eq!(cfg.set_name("").unwrap_err().kind(), ErrorKind::Invalid);
    assert_eq!(cfg.set_name("a\0b").unwrap_err().kind(), ErrorKind::Invalid);
    assert_eq!(cfg.set_meta(&[0u8; 100_000]).unwrap_err().kind(), ErrorKind::TooLarge);
    assert_eq!(cfg.set_bind_addr("not an address").unwrap_err().kind(), ErrorKind::Invalid);

    // Accepted values read back; presets differ as the reference's do.
    cfg.set_probe_interval(Duration::from_millis(1234)).unwrap();
    assert_eq!(cfg.probe_interval(), Duration::from_millis(1234));
    cfg.set_name("named").unwrap();
    assert_eq!(cfg.name(), "named");
    assert_eq!(cfg.clone().name(), "named");
    assert!(Config::wan().unwrap().probe_interval() > Config::local().unwrap().probe_interval());
}

#[test]
fn library_is_not_older_than_the_header() {
    let (major, minor, _) = libmemberlist::library_version();
    assert!((major, minor) >= (libmemberlist_sys::ML_VERSION_MAJOR, libmemberlist_sys::ML_VERSION_MINOR));
}
