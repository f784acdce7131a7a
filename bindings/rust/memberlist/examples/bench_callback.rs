//! Callback round-trip cost: a non-Rust-created thread path is identical in Rust, so a plain
//! thread calls the event trampoline the library would call (copying the node into an Event,
//! running the closure) N times; then the same with the on_message trampoline and a 64-byte
//! payload (copied into a slice the closure borrows).
//!     cargo run --release --example bench_callback -- [N]
use libmemberlist::{bench, Config, Handlers, Memberlist};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(200_000);
    let config = Config::local()?.with_name("rust-bench")?.with_bind_addr("127.0.0.1")?.with_bind_port(0)?;
    let ml = Memberlist::create(&config, Handlers::new())?;
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let per = bench::event_round_trip(&ml, Handlers::new().on_event(move |_| {
        c.fetch_add(1, Ordering::Relaxed);
    }), n)?;
    assert_eq!(count.load(Ordering::Relaxed), u64::from(n));
    println!("rust: {} ns per event callback ({} callbacks)", per.as_nanos(), n);
    let bytes = Arc::new(AtomicU64::new(0));
    let b = bytes.clone();
    let per = bench::message_round_trip(Handlers::new().on_message(move |m| {
        b.fetch_add(m.len() as u64, Ordering::Relaxed);
    }), 64, n);
    assert_eq!(bytes.load(Ordering::Relaxed), 64 * u64::from(n));
    println!("rust: {} ns per message callback, 64-byte payload ({} callbacks)", per.as_nanos(), n);
    Ok(())
}
