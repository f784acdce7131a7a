//! The host transport: clusters over TcpOnlyTransport (no socket of the library's own), a
//! transport that fails, and transport calls that come after the memberlist is gone. Waits
//! poll or block on the event with generous deadlines, never fixed sleeps.
use libmemberlist::{
    Broadcast, ErrorKind, EventKind, Handlers, Inbound, Memberlist, NodeState, StreamCompletion, StreamReply,
    TcpOnlyTransport, Transport,
};
use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{fast_config, wait_until, DEADLINE};

/// A TcpOnlyTransport that counts what the library hands it (to show the bytes went through
/// it) and how often it was started and shut down.
struct Counting {
    tcp: TcpOnlyTransport,
    packets: AtomicUsize,
    streams: AtomicUsize,
    one_way: AtomicUsize, // streams the library waits no reply for
    starts: AtomicUsize,
    shutdowns: AtomicUsize,
}

impl Transport for Counting {
    fn start(&self, inbound: Inbound) -> io::Result<()> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.tcp.start(inbound)
    }
    fn send_packet(&self, to: &str, data: &[u8]) -> io::Result<()> {
        self.packets.fetch_add(1, Ordering::SeqCst);
        self.tcp.send_packet(to, data)
    }
    fn send_stream(&self, to: &str, data: &[u8], done: StreamCompletion) {
        self.streams.fetch_add(1, Ordering::SeqCst);
        if !done.expects_reply() {
            self.one_way.fetch_add(1, Ordering::SeqCst);
        }
        self.tcp.send_stream(to, data, done)
    }
    fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.tcp.shutdown()
    }
}

/// Membership events, user messages and broadcasts one node saw.
struct Node {
    name: String,
    address: String,
    ml: Memberlist,
    transport: Arc<Counting>,
    events: Arc<Mutex<Vec<(EventKind, String, NodeState)>>>,
    messages: Receiver<Vec<u8>>,
    broadcasts: Receiver<Broadcast>,
}

impl Node {
    fn new(name: &str) -> Node {
        let tcp = TcpOnlyTransport::bind("127.0.0.1:0").expect("listen");
        let address = tcp.local_addr().to_string();
        let transport = Arc::new(Counting {
            tcp,
            packets: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            one_way: AtomicUsize::new(0),
            starts: AtomicUsize::new(0),
            shutdowns: AtomicUsize::new(0),
        });
        let config = fast_config(name).with_transport(transport.clone(), &address).expect("set_transport");
        let events = Arc::new(Mutex::new(Vec::new()));
        let (msg_tx, messages) = mpsc::channel();
        let (bc_tx, broadcasts) = mpsc::channel();
        let ev = events.clone();
        let handlers = Handlers::new()
            .on_event(move |e| ev.lock().unwrap().push((e.kind, e.node.name, e.node.state)))
            .on_message(move |m| drop(msg_tx.send(m.to_vec())))
            .on_broadcast(move |b| drop(bc_tx.send(b)));
        let ml = Memberlist::create(&config, handlers).expect("create");
        Node { name: name.to_string(), address, ml, transport, events, messages, broadcasts }
    }

    fn saw(&self, kind: EventKind, name: &str, state: NodeState) -> bool {
        self.events.lock().unwrap().iter().any(|(k, n, s)| *k == kind && n == name && *s == state)
    }

    fn names(&self) -> BTreeSet<String> {
        self.ml.members().unwrap().into_iter().map(|n| n.name).collect()
    }
}

/// Three nodes over TcpOnlyTransport, joined through the first and converged.
fn cluster(prefix: &str) -> [Node; 3] {
    let nodes = ["a", "b", "c"].map(|n| Node::new(&format!("{prefix}-{n}")));
    for n in &nodes[1..] {
        assert_eq!(n.ml.join(&[nodes[0].address.as_str()]).expect("join over the transport"), 1);
    }
    let all: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    wait_until("three members everywhere", || nodes.iter().all(|n| n.names() == all));
    nodes
}

/// Waits for `want` on `rx`, skipping anything else.
fn recv_matching<T>(rx: &Receiver<T>, what: &str, want: impl Fn(&T) -> bool) {
    let start = Instant::now();
    loop {
        let left = DEADLINE.checked_sub(start.elapsed()).unwrap_or_else(|| panic!("timed out waiting for {what}"));
        match rx.recv_timeout(left) {
            Ok(v) if want(&v) => return,
            Ok(_) => continue,
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

#[test]
fn three_nodes_join_message_broadcast_and_leave_over_tcp_only() {
    let [a, b, c] = cluster("tt");
    // The advertised address is the transport's, and every node's bytes went through it.
    assert_eq!(a.ml.local_node().unwrap().address, a.address);
    let b_seen_by_c = c.ml.members().unwrap().into_iter().find(|n| n.name == b.name).unwrap();
    assert_eq!(b_seen_by_c.address, b.address, "From is the sender's advertised address");
    for n in [&a, &b, &c] {
        assert_eq!(n.transport.starts.load(Ordering::SeqCst), 1);
        wait_until("datagrams through every transport", || n.transport.packets.load(Ordering::SeqCst) > 0);
    }

    // A reliable user message (a stream over the transport) between two nodes; the joins'
    // push/pulls waited for replies, the message waits for none, and the transport is told.
    assert_eq!(a.transport.one_way.load(Ordering::SeqCst), 0);
    a.ml.send_reliable(&b.name, b"hello b").expect("send_reliable");
    assert_eq!(a.transport.one_way.load(Ordering::SeqCst), 1, "send_reliable expects no reply");
    recv_matching(&b.messages, "b's message", |m| m == b"hello b");
    for n in [&a, &b, &c] {
        assert!(n.transport.streams.load(Ordering::SeqCst) > 0, "{} sent no stream", n.name);
    }

    // A broadcast reaches the others.
    c.ml.queue_broadcast(None, b"news from c").expect("queue_broadcast");
    for n in [&a, &b] {
        recv_matching(&n.broadcasts, "the broadcast", |x| x.data == b"news from c" && x.origin == c.name);
    }

    // A graceful leave is seen as left by the others.
    b.ml.leave(Duration::from_secs(10)).expect("leave");
    for n in [&a, &c] {
        wait_until("b seen left", || n.saw(EventKind::Leave, &b.name, NodeState::Left));
    }
    assert_eq!(b.transport.shutdowns.load(Ordering::SeqCst), 0);
    drop(b.ml);
    assert_eq!(b.transport.shutdowns.load(Ordering::SeqCst), 1, "dropping shuts the transport down once");
}

#[test]
fn node_dropped_without_leaving_is_seen_dead() {
    let [a, b, c] = cluster("td");
    let (c_name, c_transport) = (c.name.clone(), c.transport.clone());
    drop(c.ml); // no leave; the transport stops with it
    assert_eq!(c_transport.shutdowns.load(Ordering::SeqCst), 1);
    // A stopped transport takes nothing more.
    assert!(c_transport.tcp.send_packet(&a.address, b"x").is_err());
    for n in [&a, &b] {
        wait_until("c seen dead", || n.saw(EventKind::Leave, &c_name, NodeState::Dead));
        wait_until("two members left", || n.ml.num_members().unwrap() == 2);
    }
}

#[test]
fn shutdown_stops_the_transport_once() {
    let n = Node::new("ts-a");
    n.ml.shutdown().expect("shutdown");
    assert_eq!(n.transport.shutdowns.load(Ordering::SeqCst), 1);
    drop(n.ml);
    assert_eq!(n.transport.shutdowns.load(Ordering::SeqCst), 1);
}

#[test]
fn a_transport_serves_one_memberlist() {
    let n = Node::new("tone-a");
    let config = fast_config("tone-b").with_transport(n.transport.clone(), &n.address).unwrap();
    let err = Memberlist::create(&config, Handlers::new()).err().expect("a second memberlist is refused");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("serves one memberlist"), "{err}");
    // The first one keeps its transport.
    assert_eq!(n.transport.shutdowns.load(Ordering::SeqCst), 0);
    assert_eq!(n.transport.starts.load(Ordering::SeqCst), 2);
}

#[test]
fn set_transport_refuses_a_bad_address() {
    let tcp: Arc<dyn Transport> = Arc::new(TcpOnlyTransport::bind("127.0.0.1:0").unwrap());
    let mut config = fast_config("tbad");
    let err = config.set_transport(tcp.clone(), "not an address").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(config.transport_address(), None);
    config.set_transport(tcp, "127.0.0.1:7946").unwrap();
    assert_eq!(config.transport_address(), Some("127.0.0.1:7946"));
    assert_eq!(config.clone().transport_address(), Some("127.0.0.1:7946"));
    config.clear_transport();
    assert_eq!(config.transport_address(), None);
}

/// How a broken transport handles a stream.
#[derive(Clone, Copy)]
enum Failure {
    /// send_packet and send_stream return errors.
    Errors,
    /// send_stream drops its completion without completing it.
    DropsCompletion,
    /// send_stream panics.
    Panics,
}

struct Broken(Failure);

impl Transport for Broken {
    fn start(&self, _: Inbound) -> io::Result<()> {
        Ok(())
    }
    fn send_packet(&self, to: &str, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("no route to {to}")))
    }
    fn send_stream(&self, to: &str, _: &[u8], done: StreamCompletion) {
        match self.0 {
            Failure::Errors => done.fail(&io::Error::new(io::ErrorKind::ConnectionRefused, format!("no route to {to}"))),
            Failure::DropsCompletion => drop(done),
            Failure::Panics => panic!("deliberate panic: the transport broke"),
        }
    }
    fn shutdown(&self) {}
}

/// Keeps the deliberate panic below from filling the output with a backtrace.
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
fn failing_transport_fails_the_join_with_a_clear_error() {
    quiet_deliberate_panics();
    for (i, failure) in [Failure::Errors, Failure::DropsCompletion, Failure::Panics].into_iter().enumerate() {
        let (err_tx, errs) = mpsc::channel();
        let config = fast_config(&format!("tfail-{i}"))
            .with_transport(Arc::new(Broken(failure)), &format!("127.0.0.1:{}", 17000 + i))
            .unwrap();
        let handlers = Handlers::new().on_callback_error(move |e| drop(err_tx.send(e)));
        let ml = Memberlist::create(&config, handlers).expect("create");
        let err = ml.join(&["127.0.0.1:7"]).expect_err("the join cannot succeed");
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert!(err.message().contains("127.0.0.1:7"), "the error names the address: {err}");
        // Still usable, alone.
        assert_eq!(ml.num_members().unwrap(), 1);
        if let Failure::Panics = failure {
            let e = errs.recv_timeout(DEADLINE).expect("the panic reported");
            assert_eq!(e.callback, "Transport::send_stream");
            assert!(e.message.contains("the transport broke"));
            assert!(ml.callback_errors() >= 1);
        }
    }
}

/// Keeps what the library hands it, to use after the memberlist is gone.
#[derive(Default)]
struct Recording {
    inbound: Mutex<Option<Inbound>>,
    completions: Mutex<Vec<StreamCompletion>>,
    shutdowns: AtomicUsize,
}

impl Transport for Recording {
    fn start(&self, inbound: Inbound) -> io::Result<()> {
        *self.inbound.lock().unwrap() = Some(inbound);
        Ok(())
    }
    fn send_packet(&self, _: &str, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn send_stream(&self, _: &str, _: &[u8], done: StreamCompletion) {
        self.completions.lock().unwrap().push(done);
    }
    fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn transport_calls_after_the_memberlist_is_dropped_are_harmless() {
    let transport = Arc::new(Recording::default());
    let config = fast_config("tlate").with_transport(transport.clone(), "127.0.0.1:17100").unwrap();
    let ml = Memberlist::create(&config, Handlers::new()).expect("create");
    let inbound = transport.inbound.lock().unwrap().clone().expect("started");
    assert_eq!(inbound.local_address(), "127.0.0.1:17100");

    // An outgoing stream the transport never completes (the join waits for it).
    let _joining = ml.join_async(&["127.0.0.1:7"]).expect("join_async");
    wait_until("the join's stream", || !transport.completions.lock().unwrap().is_empty());
    // An inbound stream the library may or may not have answered before the drop.
    let answers = Arc::new(AtomicUsize::new(0));
    let seen = answers.clone();
    let first = inbound.stream("127.0.0.1:17101", b"not a memberlist message", StreamReply::new(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    assert!(first.is_ok(), "{first:?}");

    drop(ml);
    assert_eq!(transport.shutdowns.load(Ordering::SeqCst), 1);
    // The inbound stream was answered exactly once (by the library or, at the drop, None).
    wait_until("the inbound stream answered", || answers.load(Ordering::SeqCst) >= 1);
    assert_eq!(answers.load(Ordering::SeqCst), 1);

    // Everything the transport still holds is inert now.
    for done in transport.completions.lock().unwrap().drain(..) {
        done.reply(b"late reply");
    }
    let err = inbound.packet("127.0.0.1:17101", b"late datagram").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    let (tx, rx) = mpsc::channel();
    let err = inbound
        .stream("127.0.0.1:17101", b"late stream", StreamReply::new(move |r| drop(tx.send(r.map(<[u8]>::to_vec)))))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(rx.try_recv(), Ok(None), "a refused stream is answered without a reply, at once");
}

#[test]
fn an_unanswered_stream_reply_answers_none_when_dropped() {
    let (tx, rx) = mpsc::channel();
    let reply = StreamReply::new(move |r| drop(tx.send(r.map(<[u8]>::to_vec))));
    drop(reply);
    assert_eq!(rx.try_recv(), Ok(None));
    assert!(rx.try_recv().is_err(), "answered once");
}

#[test]
fn a_reply_function_may_drop_the_memberlist() {
    // A refused inbound stream is answered inside Inbound::stream; the answer dropping the
    // memberlist must not wait on the call it runs in.
    let transport = Arc::new(Recording::default());
    let config = fast_config("treply-drop").with_transport(transport.clone(), "127.0.0.1:17200").unwrap();
    let ml = Arc::new(Mutex::new(Some(Memberlist::create(&config, Handlers::new()).expect("create"))));
    let inbound = transport.inbound.lock().unwrap().clone().expect("started");
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let owner = ml.clone();
        let reply = StreamReply::new(move |r| {
            assert!(r.is_none());
            drop(owner.lock().unwrap().take());
        });
        let err = inbound.stream("not an address", b"x", reply).unwrap_err();
        drop(done_tx.send((err.kind(), ml.lock().unwrap().is_none())));
    });
    let (kind, dropped) = done.recv_timeout(DEADLINE).expect("Inbound::stream returned");
    assert_eq!(kind, ErrorKind::Invalid);
    assert!(dropped, "the reply function dropped the memberlist");
    assert_eq!(transport.shutdowns.load(Ordering::SeqCst), 1);
}
