//! The test brokers, from a test's side: whether one is there (a test whose broker is missing
//! fails under `CI=true` and skips with a message otherwise) and `scripts/brokers` to stop and
//! start one (shared by the broker test targets).

use std::time::Duration;

/// Whether `addr` (`host:port`) accepts a TCP connection within 2 s.
pub fn connects(addr: &str) -> bool {
    std::net::ToSocketAddrs::to_socket_addrs(addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// Whether broker `name` is reachable at `addr`; panics under `CI=true` when it is not,
/// else prints why the test is skipped.
#[allow(dead_code)] // not every target that includes this module uses it
pub fn reachable(name: &str, addr: &str) -> bool {
    let ok = connects(addr);
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} not reachable at {addr}; run scripts/brokers up");
    }
    if !ok {
        eprintln!("SKIPPED: {name} not reachable at {addr} (scripts/brokers up)");
    }
    ok
}

/// Runs `scripts/brokers <verb> <broker>` (e.g. `down kafka`); panics if it fails.
#[allow(dead_code)] // not every target that includes this module restarts brokers
pub fn script(verb: &str, broker: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/brokers");
    let status = std::process::Command::new(script)
        .args([verb, broker])
        .status()
        .expect("run scripts/brokers");
    assert!(status.success(), "scripts/brokers {verb} {broker} failed");
}
