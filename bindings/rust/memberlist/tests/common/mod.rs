//! Shared by the loopback test files: a fast local config and a polling wait.
#![allow(dead_code)]
use libmemberlist::Config;
use std::thread;
use std::time::{Duration, Instant};

/// Generous: the machine running the tests may be loaded.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The Local preset on 127.0.0.1, a kernel-chosen port and fast timers.
pub fn fast_config(name: &str) -> Config {
    Config::local()
        .and_then(|c| c.with_name(name))
        .and_then(|c| c.with_bind_addr("127.0.0.1"))
        .and_then(|c| c.with_bind_port(0))
        .and_then(|c| c.with_probe_interval(Duration::from_millis(200)))
        .and_then(|c| c.with_probe_timeout(Duration::from_millis(100)))
        .and_then(|c| c.with_gossip_interval(Duration::from_millis(50)))
        .and_then(|c| c.with_push_pull_interval(Duration::from_secs(2)))
        .expect("config")
}

/// Polls `cond` until it holds; fails the test after DEADLINE.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}
