//! Callbacks of a careless host: panics (even with a payload whose Drop panics), the error
//! hook and counter. Waits poll or block on the event itself.
use memberlist::{CallbackError, Handlers, Memberlist};
use std::process::Command;
use std::sync::{mpsc, Mutex};

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
    // A notification (the local join event at create), the veto path (notify_merge during a
    // join) and the error hook itself all panic with such a payload.
    let handlers = || {
        Handlers::new()
            .on_event(|_| std::panic::panic_any(PanickyPayload))
            .notify_merge(|_| std::panic::panic_any(PanickyPayload))
            .on_callback_error(|_| std::panic::panic_any(PanickyPayload))
    };
    let a = Memberlist::create(&fast_config("rust-drop-a"), handlers()).expect("create a");
    let b = Memberlist::create(&fast_config("rust-drop-b"), handlers()).expect("create b");
    let err = b.join(&[a.local_node().unwrap().address]).expect_err("a panicking notify_merge vetoes");
    assert!(err.message().contains("panicked"), "{err}");
    // Two join events and at least one notify_merge (the seed's, which vetoes first).
    wait_until("the panics were caught", || a.callback_errors() + b.callback_errors() >= 3);
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
