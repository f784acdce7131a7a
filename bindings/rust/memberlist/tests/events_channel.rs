//! Handlers::event_channel: every membership event arrives on the receiver, in order, and a
//! dropped receiver does not disturb the library.
mod common;
use common::{fast_config, DEADLINE};
use libmemberlist::{Event, EventKind, Handlers, Memberlist, NodeState};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// The next event, failing the test after DEADLINE.
fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(DEADLINE).expect("an event within the deadline")
}

#[test]
fn events_arrive_on_the_channel_in_order() {
    let (handlers, events) = Handlers::new().event_channel();
    let a = Memberlist::create(&fast_config("chan-a"), handlers).unwrap();
    let first = next(&events);
    assert_eq!((first.kind, first.node.name.as_str()), (EventKind::Join, "chan-a"));

    let b = Memberlist::create(&fast_config("chan-b"), Handlers::new()).unwrap();
    b.join(&[a.local_node().unwrap().address]).unwrap();
    let joined = next(&events);
    assert_eq!((joined.kind, joined.node.name.as_str()), (EventKind::Join, "chan-b"));

    b.leave(Duration::from_secs(5)).unwrap();
    let left = next(&events);
    assert_eq!((left.kind, left.node.name.as_str()), (EventKind::Leave, "chan-b"));
    assert_eq!(left.node.state, NodeState::Left);
    // Nothing was sent twice or out of order before the leave.
    assert!(events.try_recv().is_err(), "no event beyond join, join, leave");
}

#[test]
fn a_dropped_receiver_only_discards_events() {
    let (handlers, events) = Handlers::new().event_channel();
    drop(events);
    let a = Memberlist::create(&fast_config("drop-a"), handlers).unwrap();
    let b = Memberlist::create(&fast_config("drop-b"), Handlers::new()).unwrap();
    assert_eq!(b.join(&[a.local_node().unwrap().address]).unwrap(), 1);
    common::wait_until("a sees b", || a.num_members().unwrap() == 2);
    assert_eq!(a.callback_errors(), 0);
}
