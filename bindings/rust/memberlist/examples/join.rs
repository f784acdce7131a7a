//! Starts a node on loopback and joins the given seeds (or prints its address to be a seed).
//!     cargo run --example join -- NAME [SEED_ADDR...]
use libmemberlist::{Config, Handlers, LogLevel, Memberlist};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "rust-example".into());
    let seeds: Vec<String> = args.collect();
    let config = Config::local()?.with_name(&name)?.with_bind_addr("127.0.0.1")?.with_bind_port(0)?;
    let handlers = Handlers::new()
        .on_event(|ev| println!("event: {:?} {} {} {:?}", ev.kind, ev.node.name, ev.node.address, ev.node.state))
        .on_log(|level, msg| if level >= LogLevel::Warn { eprintln!("[{level:?}] {msg}") });
    let ml = Memberlist::create(&config, handlers)?;
    println!("{} listening on {}", name, ml.local_node()?.address);
    if !seeds.is_empty() {
        println!("joined {} seed(s)", ml.join(&seeds)?);
    }
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1)); // a demo: show the view once a second
        let names: Vec<String> = ml.members()?.into_iter().map(|n| n.name).collect();
        println!("members ({}): {:?}, health {}", ml.num_members()?, names, ml.health_score()?);
    }
    ml.leave(Duration::from_secs(2))?;
    Ok(())
}
