//! Application data over real sockets on loopback: metadata, broadcasts, user messages,
//! push/pull state, ack payloads, vetoes, metrics and encryption. Waits poll with generous
//! deadlines, never fixed sleeps for protocol behaviour.
use libmemberlist::{Broadcast, BroadcastOutcome, ErrorKind, EventKind, Handlers, Memberlist, NodeState, WireFormat};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

mod common;
use common::{fast_config, wait_until};

/// What one node's hooks saw.
#[derive(Default)]
struct Seen {
    msgs: Vec<Vec<u8>>,
    broadcasts: HashMap<(String, String, Vec<u8>), usize>,
    done: HashMap<u64, BroadcastOutcome>,
    pings: HashMap<String, Vec<u8>>,
    remote_states: HashSet<Vec<u8>>,
    events: Vec<(EventKind, String, NodeState, Vec<u8>)>,
    threads: HashSet<ThreadId>,
}

#[derive(Clone)]
struct Node {
    name: String,
    meta: Arc<Mutex<Vec<u8>>>,
    /// Handed out once by get_broadcasts.
    piggy: Arc<Mutex<Option<Vec<u8>>>>,
    seen: Arc<Mutex<Seen>>,
    calls: Arc<AtomicUsize>,
}

impl Node {
    fn new(name: &str) -> Self {
        Node {
            name: name.to_string(),
            meta: Arc::new(Mutex::new(format!("meta-{name}").into_bytes())),
            piggy: Arc::default(),
            seen: Arc::default(),
            calls: Arc::default(),
        }
    }
    /// Churns the allocator inside the callback.
    fn enter(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let garbage: Vec<Vec<u8>> = (0..8).map(|i| vec![i as u8; 4096]).collect();
        drop(garbage);
        self.seen.lock().unwrap()
    }
    /// `enter` for notifications, which arrive on library threads: records the thread.
    /// (Hooks such as node_meta may run inside the API call that asks for them.)
    fn notified(&self) -> std::sync::MutexGuard<'_, Seen> {
        let mut s = self.enter();
        s.threads.insert(thread::current().id());
        s
    }
    fn handlers(&self) -> Handlers {
        let (n1, n2, n3, n4, n5, n6, n7, n8, n9) = (
            self.clone(), self.clone(), self.clone(), self.clone(), self.clone(),
            self.clone(), self.clone(), self.clone(), self.clone(),
        );
        let name = self.name.clone();
        Handlers::new()
            .node_meta(move |_limit| {
                drop(n1.enter());
                n1.meta.lock().unwrap().clone()
            })
            .local_state(move |_join| {
                drop(n2.enter());
                format!("state-of-{}", n2.name).into_bytes()
            })
            .merge_remote_state(move |buf, _join| {
                n3.enter().remote_states.insert(buf.to_vec());
            })
            .on_message(move |msg| n4.notified().msgs.push(msg.to_vec()))
            .on_broadcast(move |b: Broadcast| {
                *n5.notified().broadcasts.entry((b.origin, b.name, b.data)).or_default() += 1;
            })
            .on_broadcast_done(move |id, outcome| {
                n6.notified().done.insert(id, outcome);
            })
            .ack_payload(move || format!("ack:{name}").into_bytes())
            .on_ping_complete(move |node, _rtt, payload| {
                n7.notified().pings.insert(node.name, payload.to_vec());
            })
            .on_event(move |ev| {
                n8.notified().events.push((ev.kind, ev.node.name, ev.node.state, ev.node.meta));
            })
            .get_broadcasts(move |_overhead, _limit| {
                drop(n9.enter());
                n9.piggy.lock().unwrap().take().into_iter().collect()
            })
    }
    fn with<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        f(&self.seen.lock().unwrap())
    }
}

fn meta_of(ml: &Memberlist, name: &str) -> Option<Vec<u8>> {
    ml.members().ok()?.into_iter().find(|n| n.name == name).map(|n| n.meta)
}

#[test]
fn three_nodes_application_data() {
    let names = ["rust-app-a", "rust-app-b", "rust-app-c"];
    let hooks: Vec<Node> = names.iter().map(|n| Node::new(n)).collect();
    let samples = Arc::new(AtomicU64::new(0));
    let nodes: Vec<Memberlist> = hooks
        .iter()
        .map(|h| {
            let s = samples.clone();
            let handlers = h.handlers().on_metric(move |_, _, _| {
                s.fetch_add(1, Ordering::Relaxed);
            });
            // Epidemic broadcasts: 8 sends per node make a miss by chance negligible.
            let cfg = fast_config(&h.name).with_retransmit_mult(8).expect("config");
            Memberlist::create(&cfg, handlers).expect("create")
        })
        .collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let seed = a.local_node().unwrap().address;
    b.join(&[seed.as_str()]).expect("b joins");
    c.join(&[seed.as_str()]).expect("c joins");

    wait_until("three members with metadata at create", || {
        nodes.iter().all(|m| names.iter().all(|n| meta_of(m, n) == Some(format!("meta-{n}").into_bytes())))
    });
    wait_until("push/pull state merged at a", || {
        hooks[0].with(|s| {
            s.remote_states.contains(b"state-of-rust-app-b".as_slice())
                && s.remote_states.contains(b"state-of-rust-app-c".as_slice())
        })
    });

    // Metadata updated later: through the node_meta hook, and set directly.
    *hooks[0].meta.lock().unwrap() = b"meta-a-v2".to_vec();
    a.update_node(Duration::from_secs(10)).expect("update_node");
    b.set_meta(b"meta-b-v2", Duration::from_secs(10)).expect("set_meta");
    wait_until("updated metadata everywhere", || {
        nodes.iter().all(|m| {
            meta_of(m, "rust-app-a").as_deref() == Some(b"meta-a-v2".as_slice())
                && meta_of(m, "rust-app-b").as_deref() == Some(b"meta-b-v2".as_slice())
        })
    });
    wait_until("c saw b's update event", || {
        hooks[2].with(|s| {
            s.events.iter().any(|(k, n, st, meta)| {
                *k == EventKind::Update && n == "rust-app-b" && *st == NodeState::Alive && meta == b"meta-b-v2"
            })
        })
    });
    let err = b.set_meta(&[0u8; 600], Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");

    // A broadcast: every other node delivers it exactly once, the origin hears it is done.
    let id = a.queue_broadcast(Some("greeting"), b"hello cluster").expect("queue_broadcast");
    wait_until("broadcast done at a", || hooks[0].with(|s| s.done.get(&id) == Some(&BroadcastOutcome::Settled)));
    let key = ("rust-app-a".to_string(), "greeting".to_string(), b"hello cluster".to_vec());
    for h in &hooks[1..] {
        wait_until("broadcast delivered", || h.with(|s| s.broadcasts.contains_key(&key)));
        assert_eq!(h.with(|s| s.broadcasts[&key]), 1, "{} delivered it more than once", h.name);
    }
    wait_until("no broadcast queued at a", || a.num_queued_broadcasts().unwrap() == 0);

    // A message piggybacked through get_broadcasts reaches some member's on_message (offered
    // again until taken: a packet may be lost).
    let piggy = b"piggybacked on gossip".to_vec();
    wait_until("piggybacked message", || {
        hooks[0].piggy.lock().unwrap().get_or_insert_with(|| piggy.clone());
        thread::sleep(Duration::from_millis(20));
        hooks[1..].iter().any(|h| h.with(|s| s.msgs.contains(&piggy)))
    });

    // Best effort (UDP may drop: resend until seen), to an address, and reliable.
    let udp = b"best-effort \x00\x01\x02 payload".to_vec();
    wait_until("best-effort message", || {
        a.send_best_effort("rust-app-b", &udp).expect("send_best_effort");
        thread::sleep(Duration::from_millis(50));
        hooks[1].with(|s| s.msgs.contains(&udp))
    });
    let b_addr = b.local_node().unwrap().address;
    wait_until("message to an address", || {
        c.send_to_address(&b_addr, b"to an address").expect("send_to_address");
        thread::sleep(Duration::from_millis(50));
        hooks[1].with(|s| s.msgs.iter().any(|m| m == b"to an address"))
    });
    let large: Vec<u8> = (0..256 * 1024).map(|i| (i * 7) as u8).collect();
    a.send_reliable("rust-app-c", &large).expect("send_reliable");
    wait_until("reliable message intact", || hooks[2].with(|s| s.msgs.contains(&large)));
    assert_eq!(a.send_best_effort("rust-app-b", &vec![0u8; 64 * 1024]).unwrap_err().kind(), ErrorKind::TooLarge);
    assert!(a.send_reliable("nobody", b"x").is_err());

    // Ack payloads reach the prober.
    wait_until("ack payload from a", || {
        hooks[1].with(|s| s.pings.get("rust-app-a").map(|p| p.as_slice()) == Some(b"ack:rust-app-a".as_slice()))
    });

    // Metrics: snapshot, Prometheus text, live samples.
    let metrics = a.metrics().expect("metrics");
    assert!(!metrics.is_empty());
    assert!(metrics.iter().all(|m| m.name.starts_with("memberlist")), "{metrics:?}");
    assert!(a.prometheus().expect("prometheus").contains("# TYPE"));
    assert!(samples.load(Ordering::Relaxed) > 0, "on_metric got no samples");

    // Notifications so far came on library threads (checked before the shutdowns).
    let me = thread::current().id();
    for h in &hooks {
        assert!(!h.with(|s| s.threads.contains(&me)), "{}: a callback ran on the test thread", h.name);
    }

    // Leave and failure detection.
    c.leave(Duration::from_secs(10)).expect("leave");
    let left = |h: &Node, name: &str, state: NodeState| {
        h.with(|s| s.events.iter().any(|(k, n, st, _)| *k == EventKind::Leave && n == name && *st == state))
    };
    wait_until("a sees c left", || left(&hooks[0], "rust-app-c", NodeState::Left));
    let mut nodes = nodes;
    drop(nodes.remove(2));
    drop(nodes.remove(1));
    wait_until("a sees b dead", || left(&hooks[0], "rust-app-b", NodeState::Dead));

}

#[test]
fn merge_veto_fails_the_join() {
    let seed = Memberlist::create(&fast_config("rust-veto-seed"), Handlers::new()).unwrap();
    let bad = Memberlist::create(
        &fast_config("rust-veto-bad"),
        Handlers::new().notify_merge(|peers| {
            if peers.iter().any(|p| p.name == "rust-veto-seed") {
                Err("not that cluster".into())
            } else {
                Ok(())
            }
        }),
    )
    .unwrap();
    let err = bad.join(&[seed.local_node().unwrap().address]).unwrap_err();
    // The header promises Rejected; the library currently reports the failed join as Io with
    // the hook's reason in the message, which is what is checked here.
    assert!(err.message().contains("not that cluster"), "{err}");
}

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
fn panicking_hooks_do_not_cross_into_c() {
    quiet_deliberate_panics();
    let a = Memberlist::create(
        &fast_config("rust-panic-hooks-a"),
        Handlers::new()
            .node_meta(|_| panic!("deliberate panic in node_meta"))
            .local_state(|_| panic!("deliberate panic in local_state"))
            .on_message(|_| panic!("deliberate panic in on_message")),
    )
    .expect("create survives a panicking node_meta");
    let b = Memberlist::create(&fast_config("rust-panic-hooks-b"), Handlers::new()).unwrap();
    b.join(&[a.local_node().unwrap().address]).expect("join");
    b.send_reliable("rust-panic-hooks-a", b"boom").expect("send");
    wait_until("cluster still works", || a.num_members().unwrap() == 2 && b.num_members().unwrap() == 2);
}

#[test]
fn encrypted_cluster_converges_and_rotates_keys() {
    let (k1, k2, k3) = ([1u8; 32], [2u8; 16], [3u8; 24]);
    // The broadcast below must reach both peers. With three nodes every gossip round sends to
    // both (gossip_nodes 3 by default), but the Local preset's retransmit_mult 2 hands it out
    // only twice in all, one datagram per peer; 8 gives each peer four copies, so a datagram
    // lost on a loaded machine (a full socket buffer or handoff queue) does not lose it.
    let cfg = |name: &str| {
        fast_config(name)
            .with_retransmit_mult(8)
            .and_then(|c| c.with_label("rust-secure"))
            .and_then(|c| c.with_key(&k1))
            .and_then(|c| c.with_key(&k2))
            .unwrap()
    };
    assert_eq!(cfg("x").key_count(), 2);
    let hooks: Vec<Node> = (0..3).map(|i| Node::new(&format!("rust-enc-{i}"))).collect();
    let mut nodes: Vec<Memberlist> =
        hooks.iter().map(|h| Memberlist::create(&cfg(&h.name), h.handlers()).unwrap()).collect();
    let seed = nodes[0].local_node().unwrap().address;
    for m in &nodes[1..] {
        m.join(&[seed.as_str()]).expect("join");
    }
    wait_until("encrypted cluster of three", || nodes.iter().all(|m| m.num_members().unwrap() == 3));
    assert_eq!(nodes[1].keyring_keys().unwrap(), vec![k1.to_vec(), k2.to_vec()]);
    nodes[0].queue_broadcast(None, b"secret").unwrap();
    let key = ("rust-enc-0".to_string(), String::new(), b"secret".to_vec());
    for h in &hooks[1..] {
        wait_until("encrypted broadcast", || h.with(|s| s.broadcasts.get(&key) == Some(&1)));
    }

    // A node without the keys is not let in.
    let plain = Memberlist::create(&fast_config("rust-enc-plain"), Handlers::new()).unwrap();
    assert!(plain.join(&[seed.as_str()]).is_err(), "a plaintext node joined an encrypted cluster");

    // Rotate to k3 at run time; a node that only knows k3 joins.
    for m in &nodes {
        m.keyring_add(&k3).unwrap();
    }
    for m in &nodes {
        m.keyring_use(&k3).unwrap();
    }
    for m in &nodes {
        m.keyring_remove(&k1).unwrap();
        assert!(m.keyring_remove(&k3).is_err(), "removing the primary key must fail");
        assert_eq!(m.keyring_keys().unwrap()[0], k3.to_vec());
    }
    nodes[0].set_gossip_verify(true, true).unwrap();
    let late_cfg = fast_config("rust-enc-late").with_label("rust-secure").and_then(|c| c.with_key(&k3)).unwrap();
    nodes.push(Memberlist::create(&late_cfg, Handlers::new()).unwrap());
    nodes[3].join(&[seed.as_str()]).expect("join with the rotated key");
    wait_until("four members after rotation", || nodes.iter().all(|m| m.num_members().unwrap() == 4));
}

#[test]
fn config_security_knobs_round_trip() {
    let mut c = fast_config("rust-knobs");
    c.set_label("lbl").unwrap();
    c.set_gossip_verify_incoming(false).unwrap();
    c.set_enable_compression(false).unwrap();
    c.set_enable_checksum(false).unwrap();
    c.set_max_user_msg_size(4096).unwrap();
    c.set_post_join_push_pulls(0).unwrap();
    assert_eq!(c.post_join_push_pulls(), 0);
    assert_eq!(c.set_post_join_push_pulls(11).unwrap_err().kind(), ErrorKind::Invalid);
    assert_eq!(c.max_broadcast_origins(), 4096);
    c.set_max_broadcast_origins(16).unwrap();
    assert_eq!(c.max_broadcast_origins(), 16);
    assert_eq!(c.set_max_broadcast_origins(0).unwrap_err().kind(), ErrorKind::Invalid);
    // The resource bounds: default, round trip, and the value just below the range refused.
    use libmemberlist::Config;
    type Get = fn(&Config) -> u32;
    type Set = fn(&mut Config, u32) -> libmemberlist::Result<()>;
    let bounds: [(&str, Get, Set, u32, u32, u32); 9] = [
        ("max_inbound_connections_per_source", Config::max_inbound_connections_per_source,
            Config::set_max_inbound_connections_per_source, 32, 4, 0),
        ("max_inbound_stream_bytes", Config::max_inbound_stream_bytes,
            Config::set_max_inbound_stream_bytes, 64 << 20, 1 << 20, 1023),
        ("max_reconnect_members", Config::max_reconnect_members,
            Config::set_max_reconnect_members, 1024, 8, 0),
        ("max_inbound_connections", Config::max_inbound_connections,
            Config::set_max_inbound_connections, 512, 8, 0),
        ("max_queued_callbacks", Config::max_queued_callbacks,
            Config::set_max_queued_callbacks, 65536, 16, 0),
        ("max_queued_log_lines", Config::max_queued_log_lines,
            Config::set_max_queued_log_lines, 1024, 16, 0),
        ("max_replies_per_packet", Config::max_replies_per_packet,
            Config::set_max_replies_per_packet, 4, 1, 0),
        ("max_queued_broadcasts", Config::max_queued_broadcasts,
            Config::set_max_queued_broadcasts, 4096, 16, 0),
        ("max_queued_broadcast_bytes", Config::max_queued_broadcast_bytes,
            Config::set_max_queued_broadcast_bytes, 4194304, 65536, 65535),
    ];
    for (name, get, set, default, good, bad) in bounds {
        assert_eq!(get(&c), default, "{name} default");
        set(&mut c, good).unwrap();
        assert_eq!(get(&c), good, "{name} round trip");
        assert_eq!(set(&mut c, bad).unwrap_err().kind(), ErrorKind::Invalid, "{name} {bad}");
        assert_eq!(get(&c), good, "{name} kept after the refusal");
    }
    assert_eq!(c.set_max_queued_broadcast_bytes(0).unwrap_err().kind(), ErrorKind::Invalid);
    // Reconnection: on by default, settable, off with zero.
    assert_eq!(c.reconnect_interval(), std::time::Duration::from_secs(30));
    assert_eq!(c.reconnect_timeout(), std::time::Duration::from_secs(86400));
    assert!(c.reconnect_seeds());
    c.set_reconnect_interval(std::time::Duration::ZERO).unwrap();
    c.set_reconnect_timeout(std::time::Duration::from_secs(60)).unwrap();
    c.set_reconnect_seeds(false).unwrap();
    assert_eq!(c.reconnect_interval(), std::time::Duration::ZERO);
    assert_eq!(c.reconnect_timeout(), std::time::Duration::from_secs(60));
    assert!(!c.reconnect_seeds());
    // The wire format: native by default, hashicorp reads back.
    assert_eq!(c.wire_format(), WireFormat::Native);
    c.set_wire_format(WireFormat::Hashicorp).unwrap();
    assert_eq!(c.wire_format(), WireFormat::Hashicorp);
    assert_eq!(c.set_reconnect_timeout(std::time::Duration::from_secs(86401)).unwrap_err().kind(), ErrorKind::Invalid);
    c.add_allowed_cidr("127.0.0.0/8").unwrap();
    assert_eq!(c.label(), "lbl");
    assert!(!c.gossip_verify_incoming() && c.gossip_verify_outgoing());
    assert!(!c.enable_compression() && !c.enable_checksum());
    assert_eq!(c.max_user_msg_size(), 4096);
    assert_eq!(c.allowed_cidr_count(), 1);
    assert_eq!(c.add_key(&[0u8; 7]).unwrap_err().kind(), ErrorKind::Invalid);
    assert!(c.add_allowed_cidr("not a cidr").is_err());
}

#[test]
fn own_broadcast_queue_limits_replaces_and_reports() {
    use libmemberlist::BroadcastQueue;
    let outcomes = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = |tag: &str| {
        let (o, tag) = (outcomes.clone(), tag.to_string());
        Some(move |out: BroadcastOutcome| o.lock().unwrap().push(format!("{tag}:{out:?}")))
    };
    let mut q = BroadcastQueue::new(2).unwrap();
    q.push(Some("k"), b"v1", record("v1")).unwrap();
    q.push(Some("k"), b"v2", record("v2")).unwrap();
    q.push(None, b"other", record("other")).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(*outcomes.lock().unwrap(), vec!["v1:Replaced".to_string()]);
    // n = 1: each message is handed out 2 * ceil(log10(2)) = 2 times.
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for _ in 0..5 {
        for m in q.get(2, 1400).unwrap() {
            *seen.entry(m).or_default() += 1;
        }
    }
    assert_eq!(seen.get(b"v2".as_slice()), Some(&2));
    assert_eq!(seen.get(b"other".as_slice()), Some(&2));
    assert!(q.is_empty());
    assert!(outcomes.lock().unwrap().contains(&"v2:Delivered".to_string()));
    q.push(None, b"left", record("left")).unwrap();
    drop(q);
    assert_eq!(outcomes.lock().unwrap().last().unwrap(), "left:Dropped");
}

#[test]
fn alive_veto_keeps_a_node_out() {
    let seed = Memberlist::create(
        &fast_config("rust-alive-seed"),
        Handlers::new().notify_alive(|peer| {
            if peer.name.starts_with("rust-alive-banned") {
                Err("banned".into())
            } else {
                Ok(())
            }
        }),
    )
    .unwrap();
    let banned = Memberlist::create(&fast_config("rust-alive-banned"), Handlers::new()).unwrap();
    let good = Memberlist::create(&fast_config("rust-alive-good"), Handlers::new()).unwrap();
    let addr = seed.local_node().unwrap().address;
    let _ = banned.join(&[addr.as_str()]); // may fail or not: the seed refuses its alive message
    good.join(&[addr.as_str()]).expect("good joins");
    wait_until("good node at the seed", || meta_of(&seed, "rust-alive-good").is_some());
    assert!(meta_of(&seed, "rust-alive-banned").is_none(), "the seed lists the banned node");
}

#[test]
fn conflicting_name_is_reported_and_ignored() {
    let pairs = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let p = pairs.clone();
    let seed = Memberlist::create(
        &fast_config("rust-conflict-seed"),
        Handlers::new().on_conflict(move |existing, other| p.lock().unwrap().push((existing.address, other.address))),
    )
    .unwrap();
    let addr = seed.local_node().unwrap().address;
    let first = Memberlist::create(&fast_config("rust-conflict-dup"), Handlers::new()).unwrap();
    first.join(&[addr.as_str()]).unwrap();
    wait_until("first dup at the seed", || seed.num_members().unwrap() == 2);
    let second = Memberlist::create(&fast_config("rust-conflict-dup"), Handlers::new()).unwrap();
    let _ = second.join(&[addr.as_str()]);
    let (a1, a2) = (first.local_node().unwrap().address, second.local_node().unwrap().address);
    wait_until("conflict reported", || pairs.lock().unwrap().iter().any(|(e, o)| *e == a1 && *o == a2));
    assert!(seed
        .members()
        .unwrap()
        .iter()
        .all(|n| n.name != "rust-conflict-dup" || n.address == a1));
}
