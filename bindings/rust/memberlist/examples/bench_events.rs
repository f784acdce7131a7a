//! Cost per event: pulled from the C event queue in batches of 64 against the callback path.
//! Both get the same events, metadata updates of the local node (`set_meta`), N of them,
//! produced before the timer starts; each event becomes an owned `Event` (the node copied).
//!     cargo run --release --offline --example bench_events -- [N]
//!
//! pull: the safe API has no poll of its own, so this part calls the C queue through
//! `libmemberlist-sys` (`ml_config_set_event_queue`, `ml_memberlist_poll_events`,
//! `ml_event_batch_get`) and copies each node as the binding's trampoline does. Timed: the
//! polls and the copies.
//! callback: the safe API's `on_event`, doing what `Handlers::event_channel()` does (send the
//! event to an mpsc channel). The callback holds the library's callback thread while the
//! events are produced; timed: from its release to the N-th callback (the library thread
//! taking each event off its queue, the trampoline, the node copy, the send).
//! channel: then the receiver of that channel drained with `try_recv`.
use libmemberlist::{Config, Event, EventKind, Handlers, Memberlist, Node, NodeState};
use libmemberlist_sys as sys;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn check(what: &str, st: sys::ml_status) -> Res<()> {
    if st == sys::ML_OK as sys::ml_status {
        Ok(())
    } else {
        Err(format!("{what}: status {st}").into())
    }
}

unsafe fn string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// The same copy as the binding's event trampoline (`Node::from_raw`, which is private).
unsafe fn copy_node(node: *const sys::ml_node) -> Node {
    let mut len = 0usize;
    let meta = sys::ml_node_meta(node, &mut len);
    let meta = if meta.is_null() || len == 0 {
        Vec::new()
    } else {
        std::slice::from_raw_parts(meta, len).to_vec()
    };
    let mut versions = [0u8; 6];
    sys::ml_node_versions(node, versions.as_mut_ptr());
    let mut state = sys::ML_STATE_DEAD;
    sys::ml_node_get_state(node, &mut state);
    Node {
        name: string(sys::ml_node_name(node)),
        address: string(sys::ml_node_address(node)),
        host: string(sys::ml_node_host(node)),
        port: sys::ml_node_port(node),
        meta,
        state: match state {
            sys::ML_STATE_ALIVE => NodeState::Alive,
            sys::ML_STATE_SUSPECT => NodeState::Suspect,
            sys::ML_STATE_DEAD => NodeState::Dead,
            sys::ML_STATE_LEFT => NodeState::Left,
            other => NodeState::Other(other),
        },
        incarnation: sys::ml_node_incarnation(node),
        versions,
    }
}

/// Pull: ns per event of `ml_memberlist_poll_events(64)` plus the copy into an `Event`.
fn pull(n: usize) -> Res<f64> {
    unsafe {
        let mut cfg = std::ptr::null_mut();
        check("config", sys::ml_config_new_local(&mut cfg))?;
        let name = CString::new("rust-bench-pull")?;
        let addr = CString::new("127.0.0.1")?;
        check("name", sys::ml_config_set_name(cfg, name.as_ptr()))?;
        check("bind_addr", sys::ml_config_set_bind_addr(cfg, addr.as_ptr()))?;
        check("bind_port", sys::ml_config_set_bind_port(cfg, 0))?;
        check("log_level", sys::ml_config_set_log_level(cfg, sys::ML_LOG_OFF))?;
        check("max_queued", sys::ml_config_set_max_queued_callbacks(cfg, 1 << 22))?;
        check("event_queue", sys::ml_config_set_event_queue(cfg, 1))?;
        let mut ml = std::ptr::null_mut();
        let st = sys::ml_memberlist_create(&mut ml, std::ptr::null_mut(), cfg, std::ptr::null());
        sys::ml_config_free(cfg);
        check("create", st)?;
        let mut batch = std::ptr::null_mut();
        check("batch", sys::ml_event_batch_create(&mut batch))?;
        let result = (|| -> Res<f64> {
            // The local join first.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let mut got = 0usize;
                check("poll", sys::ml_memberlist_poll_events(ml, batch, 1, &mut got))?;
                if got == 1 && (*sys::ml_event_batch_get(batch, 0)).type_ == sys::ML_EVENT_JOIN {
                    break;
                }
                if Instant::now() > deadline {
                    return Err("no local join event".into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            for i in 0..n {
                let meta = [i as u8, (i >> 8) as u8];
                check(
                    "set_meta",
                    sys::ml_memberlist_set_meta(ml, meta.as_ptr(), meta.len(), 1000),
                )?;
            }
            let mut queued = 0usize;
            check(
                "stats",
                sys::ml_memberlist_get_event_stats(ml, &mut queued, std::ptr::null_mut()),
            )?;
            if queued < n {
                return Err(format!("{queued} events queued, want {n}").into());
            }
            let start = Instant::now();
            let mut total = 0usize;
            while total < n {
                let mut count = 0usize;
                check(
                    "poll",
                    sys::ml_memberlist_poll_events(ml, batch, 64.min(n - total), &mut count),
                )?;
                for i in 0..count {
                    let e = &*sys::ml_event_batch_get(batch, i);
                    if e.kind != sys::ML_EVENT_KIND_MEMBER || e.type_ != sys::ML_EVENT_UPDATE {
                        return Err(format!("event kind {} type {}", e.kind, e.type_).into());
                    }
                    let ev = Event {
                        kind: EventKind::Update,
                        node: copy_node(e.node),
                    };
                    std::hint::black_box(&ev);
                }
                total += count;
            }
            Ok(start.elapsed().as_nanos() as f64 / n as f64)
        })();
        sys::ml_event_batch_free(batch);
        sys::ml_memberlist_destroy(ml);
        result
    }
}

/// Callback: ns per event from releasing the held callback thread to the N-th callback; then
/// ns per event to drain the channel the callback filled.
fn callback(n: usize) -> Res<(f64, f64)> {
    let open = Arc::new(AtomicBool::new(true));
    let gate = Arc::new((Mutex::new(()), Condvar::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None::<Instant>));
    let (tx, rx) = mpsc::channel();
    let handlers = {
        let (open, gate, count, last) = (open.clone(), gate.clone(), count.clone(), last.clone());
        Handlers::new().on_event(move |ev| {
            if !open.load(Ordering::Acquire) {
                let mut g = gate.0.lock().unwrap();
                while !open.load(Ordering::Acquire) {
                    g = gate.1.wait(g).unwrap();
                }
            }
            drop(tx.send(ev)); // as Handlers::event_channel()
            if count.fetch_add(1, Ordering::AcqRel) + 1 == n + 1 {
                *last.lock().unwrap() = Some(Instant::now());
                gate.1.notify_all();
            }
        })
    };
    let config = Config::local()?
        .with_name("rust-bench-cb")?
        .with_bind_addr("127.0.0.1")?
        .with_bind_port(0)?
        .with_log_level(libmemberlist::LogLevel::Off)?
        .with_max_queued_callbacks(1 << 22)?;
    let ml = Memberlist::create(&config, handlers)?;
    // The local join, then hold the callback thread while the updates are produced.
    rx.recv_timeout(Duration::from_secs(30))?;
    open.store(false, Ordering::Release);
    for i in 0..n {
        ml.set_meta(&[i as u8, (i >> 8) as u8], Duration::from_secs(1))?;
    }
    let start = {
        let _g = gate.0.lock().unwrap();
        open.store(true, Ordering::Release);
        gate.1.notify_all();
        Instant::now()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut g = gate.0.lock().unwrap();
    while last.lock().unwrap().is_none() {
        if Instant::now() > deadline {
            return Err(format!("{} of {} callbacks", count.load(Ordering::Acquire) - 1, n).into());
        }
        g = gate.1.wait_timeout(g, Duration::from_millis(100)).unwrap().0;
    }
    drop(g);
    let end = last.lock().unwrap().unwrap();
    let per_callback = (end - start).as_nanos() as f64 / n as f64;
    let start = Instant::now();
    let mut got = 0;
    while let Ok(ev) = rx.try_recv() {
        if ev.kind != EventKind::Update {
            return Err(format!("event {ev:?}").into());
        }
        got += 1;
    }
    let per_recv = start.elapsed().as_nanos() as f64 / n as f64;
    if got != n {
        return Err(format!("{got} events on the channel, want {n}").into());
    }
    drop(ml);
    Ok((per_callback, per_recv))
}

fn main() -> Res<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50_000);
    let per_pull = pull(n)?;
    let (per_cb, per_recv) = callback(n)?;
    println!("events: {n} (metadata updates of the local node)");
    println!("pulled in batches of 64 (C queue via libmemberlist-sys): {per_pull:.0} ns/event");
    println!("callback (library thread, on_event sending to a channel): {per_cb:.0} ns/event");
    println!("channel receiver drained afterwards (try_recv): {per_recv:.0} ns/event");
    println!("ratio callback/pull: {:.1}x", per_cb / per_pull);
    Ok(())
}
