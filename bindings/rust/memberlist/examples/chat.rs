//! Starts a node on loopback, joins the given seeds, broadcasts a greeting, sends every other
//! member a reliable message and prints what it receives.
//!     cargo run --example chat -- NAME [SEED_ADDR...]
use libmemberlist::{Config, Handlers, Memberlist};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "rust-chat".into());
    let seeds: Vec<String> = args.collect();
    let config = Config::local()?.with_name(&name)?.with_bind_addr("127.0.0.1")?.with_bind_port(0)?;
    let meta = format!("chat-node {name}").into_bytes();
    let handlers = Handlers::new()
        .node_meta(move |_limit| meta.clone())
        .on_message(|msg| println!("message: {:?}", String::from_utf8_lossy(msg)))
        .on_broadcast(|b| println!("broadcast from {}: {:?}", b.origin, String::from_utf8_lossy(&b.data)))
        .on_broadcast_done(|id, outcome| println!("our broadcast {id}: {outcome:?}"));
    let ml = Memberlist::create(&config, handlers)?;
    println!("{} listening on {}", name, ml.local_node()?.address);
    if !seeds.is_empty() {
        ml.join(&seeds)?;
    }
    ml.queue_broadcast(None, format!("hello from {name}").as_bytes())?;
    for i in 0..5 {
        std::thread::sleep(Duration::from_secs(1)); // a demo: talk to everyone once a second
        for m in ml.members()?.into_iter().filter(|m| m.name != name) {
            if let Err(e) = ml.send_reliable(&m.name, format!("{name} says hi ({i})").as_bytes()) {
                eprintln!("send: {e}");
            }
        }
    }
    ml.leave(Duration::from_secs(2))?;
    Ok(())
}
