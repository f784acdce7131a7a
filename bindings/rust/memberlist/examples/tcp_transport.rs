//! Three nodes on loopback over the example host transport, TcpOnlyTransport (no UDP at all:
//! datagrams and streams over TCP). They join, converge, and print the members.
//!     cargo run --example tcp_transport
use libmemberlist::{Config, Handlers, LogLevel, Memberlist, TcpOnlyTransport};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn node(name: &str) -> Result<Memberlist, Box<dyn std::error::Error>> {
    // Each memberlist gets its own transport; it advertises the transport's address.
    let transport = Arc::new(TcpOnlyTransport::bind("127.0.0.1:0")?);
    let address = transport.local_addr().to_string();
    let config = Config::local()?.with_name(name)?.with_transport(transport, &address)?;
    let handlers = Handlers::new().on_log(|level, msg| {
        if level >= LogLevel::Warn {
            eprintln!("[{level:?}] {msg}")
        }
    });
    Ok(Memberlist::create(&config, handlers)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nodes = [node("tcp-a")?, node("tcp-b")?, node("tcp-c")?];
    let seed = nodes[0].local_node()?.address;
    for n in &nodes[1..] {
        n.join(&[seed.as_str()])?;
    }
    // Wait (with a generous deadline) until every node sees all three.
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|n| n.num_members().ok() != Some(3)) {
        if Instant::now() > deadline {
            return Err("the cluster did not converge within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in &nodes {
        let me = n.local_node()?;
        let mut members: Vec<String> =
            n.members()?.into_iter().map(|m| format!("{} {} {:?}", m.name, m.address, m.state)).collect();
        members.sort();
        println!("{} ({}) sees: {}", me.name, me.address, members.join(", "));
    }
    for n in &nodes {
        n.leave(Duration::from_secs(5))?;
    }
    Ok(())
}
