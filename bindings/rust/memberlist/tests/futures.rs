//! join_async, ping_async, leave_async: results, a call that returns before the operation
//! completes, the wake-up from a library thread, and completion with Closed when the
//! memberlist is shut down or dropped. Driven by a ten-line block_on: no executor crate.
mod common;
use common::{fast_config, DEADLINE};
use libmemberlist::{Completion, ErrorKind, Handlers, Memberlist};
use std::future::Future;
use std::net::TcpListener;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// Wakes the blocked thread; counts wake-ups and remembers the thread that woke it.
struct Unpark {
    thread: thread::Thread,
    wakes: AtomicUsize,
    by: Mutex<Option<thread::ThreadId>>,
}
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        *self.by.lock().unwrap() = Some(thread::current().id());
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

fn unpark() -> Arc<Unpark> {
    Arc::new(Unpark { thread: thread::current(), wakes: AtomicUsize::new(0), by: Mutex::new(None) })
}

/// Polls until ready, parked in between; fails the test after DEADLINE.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(unpark());
    let start = Instant::now();
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "the future did not complete within the deadline");
        thread::park_timeout(Duration::from_millis(100));
    }
}

/// A TCP port that accepts connections into its backlog and never answers: a join through
/// it waits its whole tcp_timeout.
fn black_hole() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

fn poll_once<T>(f: &mut Completion<T>, w: &Arc<Unpark>) -> Poll<libmemberlist::Result<T>> {
    let waker = Waker::from(w.clone());
    Pin::new(f).poll(&mut Context::from_waker(&waker))
}

#[test]
fn join_ping_leave_futures_give_results() {
    let a = Memberlist::create(&fast_config("fut-a"), Handlers::new()).unwrap();
    let b = Memberlist::create(&fast_config("fut-b"), Handlers::new()).unwrap();
    assert_eq!(block_on(b.join_async(&[a.local_node().unwrap().address]).unwrap()).unwrap(), 1);
    common::wait_until("two members", || a.num_members().unwrap() == 2);
    assert!(block_on(b.ping_async("fut-a").unwrap()).unwrap() > Duration::ZERO);
    let unknown = block_on(b.ping_async("nobody").unwrap()).unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert!(unknown.message().contains("nobody"), "{unknown}");
    block_on(b.leave_async(Duration::from_secs(5)).unwrap()).unwrap();
    common::wait_until("a sees b leave", || a.num_members().unwrap() == 1);
    b.shutdown().unwrap();
    // Refused at once, no future.
    assert_eq!(b.ping_async("fut-a").unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(a.join_async::<&str>(&[]).unwrap_err().kind(), ErrorKind::Invalid);
}

#[test]
fn the_caller_does_not_wait_and_a_library_thread_wakes_the_task() {
    let (_hole, addr) = black_hole();
    let config = fast_config("fut-wait").with_tcp_timeout(Duration::from_secs(120)).unwrap();
    let c = Memberlist::create(&config, Handlers::new()).unwrap();
    // Nothing answers for 120 s: each call must return while its join is still pending (a
    // blocking call would return only after its join timed out, and the poll be Ready).
    let w = unpark();
    let mut pending: Vec<Completion<usize>> = (0..10).map(|_| c.join_async(&[addr.as_str()]).unwrap()).collect();
    for f in pending.iter_mut() {
        assert!(poll_once(f, &w).is_pending(), "a join through a silent peer completed");
    }
    assert_eq!(w.wakes.load(Ordering::SeqCst), 0);
    // Dropping one future discards its result only.
    pending.pop();
    c.shutdown().unwrap();
    // Every future still holds `w`: the first done wakes it.
    common::wait_until("the library wakes the task", || w.wakes.load(Ordering::SeqCst) >= 1);
    for f in pending.iter_mut() {
        let result = block_on(f);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Closed);
    }
    let by = w.by.lock().unwrap().expect("woken");
    assert_ne!(by, thread::current().id(), "woken on the test's own thread");
}

#[test]
fn dropping_the_memberlist_completes_pending_futures() {
    let (_hole, addr) = black_hole();
    let config = fast_config("fut-drop").with_tcp_timeout(Duration::from_secs(120)).unwrap();
    let c = Memberlist::create(&config, Handlers::new()).unwrap();
    let mut f = c.join_async(&[addr]).unwrap();
    let w = unpark();
    assert!(poll_once(&mut f, &w).is_pending());
    drop(c); // returns only after every done ran
    assert!(f.is_done(), "drop returned before the operation completed");
    assert_eq!(block_on(f).unwrap_err().kind(), ErrorKind::Closed);
}
