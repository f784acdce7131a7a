//! Callbacks of a careless host: panics (even with a payload whose Drop panics), the error
//! hook and counter, shutdown with a backlog of slow callbacks, use after shutdown, and a
//! memberlist dropped from inside its own callback. Waits poll or block on the event itself.
use libmemberlist::{CallbackError, ErrorKind, EventKind, Handlers, Memberlist};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{fast_config, wait_until, DEADLINE};

/// Keeps the deliberate panics below from filling the output with backtraces.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let msg = p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()));
            if !msg.unwrap_or("deliberate panic").starts_with("deliberate panic") {
                default(info);
            }
        }));
    });
}

/// A panic payload whose Drop panics again.
struct PanickyPayload;
impl Drop for PanickyPayload {
    fn drop(&mut self) {
        panic!("deliberate panic in the payload's drop");
    }
}

const CHILD: &str = "MEMBERLIST_TEST_CHILD";

/// Runs one test of this binary in a child process (the test itself, with CHILD set), so that
/// an abort is seen as a failure instead of killing the whole suite.
fn run_in_child(test: &str) {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("running the child");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child died ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("child survived"), "child did not run the scenario:\n{stdout}\n{stderr}");
}

#[test]
fn panic_payload_with_panicking_drop_does_not_abort() {
    if std::env::var_os(CHILD).is_none() {
        return run_in_child("panic_payload_with_panicking_drop_does_not_abort");
    }
    quiet_deliberate_panics();
    // A notification (the local join event at create), the veto path (the joiner's
    // notify_merge) and the error hook itself all panic with such a payload.
    let handlers = || {
        Handlers::new()
            .on_event(|_| std::panic::panic_any(PanickyPayload))
            .on_callback_error(|_| std::panic::panic_any(PanickyPayload))
    };
    let a = Memberlist::create(&fast_config("rust-drop-a"), handlers()).expect("create a");
    let b = Memberlist::create(
        &fast_config("rust-drop-b"),
        handlers().notify_merge(|_| std::panic::panic_any(PanickyPayload)),
    )
    .expect("create b");
    let err = b.join(&[a.local_node().unwrap().address]).expect_err("a panicking notify_merge vetoes");
    assert!(err.message().contains("the hook panicked"), "{err}");
    // At least each node's own join event and b's veto (more events may follow).
    wait_until("the panics were caught", || a.callback_errors() >= 1 && b.callback_errors() >= 2);
    drop((a, b));
    println!("child survived");
}

#[test]
fn panics_reach_the_error_hook_and_the_counter() {
    quiet_deliberate_panics();
    let (tx, rx) = mpsc::channel::<CallbackError>();
    let tx = Mutex::new(tx);
    let a = Memberlist::create(
        &fast_config("rust-err-a"),
        Handlers::new()
            .on_message(|msg| panic!("deliberate panic in on_message: {}", String::from_utf8_lossy(msg)))
            .on_callback_error(move |e| tx.lock().unwrap().send(e).unwrap()),
    )
    .unwrap();
    let b = Memberlist::create(
        &fast_config("rust-err-b"),
        Handlers::new().notify_merge(|_| panic!("deliberate panic in notify_merge")),
    )
    .unwrap();
    assert_eq!(a.callback_errors(), 0);

    // The veto path: the join fails with the panic's message as the reason.
    let err = b.join(&[a.local_node().unwrap().address]).expect_err("vetoed");
    assert!(err.message().contains("deliberate panic in notify_merge"), "{err}");
    assert_eq!(b.callback_errors(), 1);

    // A notification: the hook gets which callback and the formatted message.
    let c = Memberlist::create(&fast_config("rust-err-c"), Handlers::new()).unwrap();
    c.join(&[a.local_node().unwrap().address]).expect("c joins");
    c.send_reliable("rust-err-a", b"boom").expect("send");
    let e = rx.recv_timeout(DEADLINE).expect("the error hook ran");
    assert_eq!(e.callback, "on_message");
    assert_eq!(e.message, "deliberate panic in on_message: boom");
    assert_eq!(e.to_string(), "memberlist callback on_message panicked: deliberate panic in on_message: boom");
    assert_eq!(a.callback_errors(), 1);
    assert!(rx.try_recv().is_err(), "one panic, one report");
}

#[test]
fn shutdown_does_not_wait_for_the_message_backlog() {
    const N: usize = 60;
    const SLOW: Duration = Duration::from_millis(50);
    let started = Arc::new(AtomicUsize::new(0));
    let after_shutdown = Arc::new(AtomicUsize::new(0));
    let shutdown_returned = Arc::new(AtomicBool::new(false));
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let gate_rx = Mutex::new(gate_rx);
    let (s, late, done) = (started.clone(), after_shutdown.clone(), shutdown_returned.clone());
    let receiver = Memberlist::create(
        &fast_config("rust-backlog-rx"),
        Handlers::new().on_message(move |_| {
            if done.load(Ordering::SeqCst) {
                late.fetch_add(1, Ordering::SeqCst);
            }
            // The first message holds the queue until every other one has arrived.
            if s.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = gate_rx.lock().unwrap().recv_timeout(DEADLINE);
            }
            thread::sleep(SLOW);
        }),
    )
    .unwrap();
    let sender = Memberlist::create(&fast_config("rust-backlog-tx"), Handlers::new()).unwrap();
    sender.join(&[receiver.local_node().unwrap().address]).unwrap();
    wait_until("the sender knows the receiver", || sender.num_members().unwrap() == 2);
    for i in 0..N {
        sender.send_reliable("rust-backlog-rx", format!("msg {i}").as_bytes()).expect("send");
    }
    // Every message was taken in by the library (it counts them as it queues them).
    wait_until("all messages queued", || {
        receiver.metrics().unwrap().iter().any(|m| m.name == "memberlist.user.messages.received" && m.value >= N as f64)
    });
    wait_until("the first callback holds the queue", || started.load(Ordering::SeqCst) >= 1);

    let t0 = Instant::now();
    gate_tx.send(()).unwrap();
    receiver.shutdown().expect("shutdown");
    let took = t0.elapsed();
    shutdown_returned.store(true, Ordering::SeqCst);
    let ran = started.load(Ordering::SeqCst);
    drop(receiver); // waits for a running callback: every start is counted after this

    // A wide bound: the backlog alone would take N * SLOW = 3 s.
    assert!(took < SLOW * N as u32 / 2, "shutdown took {took:?} with {ran} of {N} callbacks run");
    assert!(ran <= N / 2, "{ran} of {N} queued callbacks ran before shutdown returned");
    assert_eq!(after_shutdown.load(Ordering::SeqCst), 0, "a callback started after shutdown returned");
    assert_eq!(started.load(Ordering::SeqCst), ran, "a callback started after shutdown returned");
}

#[test]
fn after_shutdown_queries_answer_and_commands_fail_with_state() {
    let keys = [[7u8; 16], [8u8; 16], [9u8; 16]];
    let cfg = |name: &str| {
        keys.iter().fold(fast_config(name), |c, k| c.with_key(k).unwrap())
    };
    let a = Memberlist::create(&cfg("rust-after-a"), Handlers::new()).unwrap();
    let b = Memberlist::create(&cfg("rust-after-b"), Handlers::new()).unwrap();
    let b_addr = b.local_node().unwrap().address;
    a.join(&[b_addr.as_str()]).unwrap();
    wait_until("two members", || a.num_members().unwrap() == 2);

    a.shutdown().expect("shutdown");
    a.shutdown().expect("shutdown is idempotent");

    // Queries: the last state.
    assert_eq!(a.num_members().unwrap(), 2);
    assert_eq!(a.members().unwrap().len(), 2);
    assert_eq!(a.local_node().unwrap().name, "rust-after-a");
    assert!(a.health_score().unwrap() >= 0);
    assert!(!a.metrics().unwrap().is_empty());
    assert_eq!(a.keyring_keys().unwrap(), keys.map(|k| k.to_vec()));

    // Commands: Closed (ML_E_CLOSED: the memberlist is shut down).
    let t = Duration::from_millis(100);
    let results: Vec<(&str, libmemberlist::Result<()>)> = vec![
        ("join", a.join(&[b_addr.as_str()]).map(drop)),
        ("ping", a.ping("rust-after-b").map(drop)),
        ("leave", a.leave(t)),
        ("update_node", a.update_node(t)),
        ("set_meta", a.set_meta(b"m", t)),
        ("send_best_effort", a.send_best_effort("rust-after-b", b"x")),
        ("send_reliable", a.send_reliable("rust-after-b", b"x")),
        ("send_to_address", a.send_to_address(&b_addr, b"x")),
        ("queue_broadcast", a.queue_broadcast(None, b"x").map(drop)),
        ("keyring_add", a.keyring_add(&[10u8; 16])),
        ("keyring_use", a.keyring_use(&keys[1])),
        ("keyring_remove", a.keyring_remove(&keys[2])),
        ("set_gossip_verify", a.set_gossip_verify(true, true)),
    ];
    let wrong: Vec<String> = results
        .into_iter()
        .filter_map(|(what, r)| match r {
            Err(e) if e.kind() == ErrorKind::Closed => None,
            Err(e) => Some(format!("{what}: {e}")),
            Ok(()) => Some(format!("{what}: succeeded")),
        })
        .collect();
    assert!(wrong.is_empty(), "commands after shutdown must fail with Closed:\n{}", wrong.join("\n"));
}

struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropped_from_its_own_callback_frees_the_closures_after_it_returns() {
    // The callback owns the only Memberlist: dropping it there must not free the closure
    // that is still running (the library defers the destroy until the callback returns).
    let slot: Arc<Mutex<Option<Memberlist>>> = Arc::default();
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<usize>();
    let tx = Mutex::new(tx);
    let (flag, owner) = (DropFlag(drops.clone()), slot.clone());
    let handlers = Handlers::new().on_event(move |ev| {
        if ev.kind != EventKind::Join || ev.node.name != "rust-self-drop-peer" {
            return;
        }
        let ml = owner.lock().unwrap().take();
        drop(ml);
        // Still inside the callback: its captures must be alive.
        let freed = flag.0.load(Ordering::SeqCst);
        tx.lock().unwrap().send(freed).unwrap();
    });
    let a = Memberlist::create(&fast_config("rust-self-drop"), handlers).unwrap();
    let addr = a.local_node().unwrap().address;
    *slot.lock().unwrap() = Some(a);
    let peer = Memberlist::create(&fast_config("rust-self-drop-peer"), Handlers::new()).unwrap();
    // The join's answer may never come: `a` sees the peer (and drops itself) as soon as it has
    // merged the peer's state, which can be before its reply is written. The callback is what
    // this test checks, so the join's result is not.
    let _ = peer.join(&[addr.as_str()]);
    let freed_inside = rx.recv_timeout(DEADLINE).expect("the callback dropped the memberlist");
    assert_eq!(freed_inside, 0, "the closures were dropped while their callback ran");
    wait_until("the closures are dropped once the callback returned", || drops.load(Ordering::SeqCst) == 1);
    assert!(slot.lock().unwrap().is_none());
}
