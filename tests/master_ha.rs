//! Highly available masters as processes: `agora master --etcd ...` against
//! a real etcd (Debian's `etcd-server`; the tests fail if it is missing).

#![cfg(feature = "etcd")]
#![allow(clippy::disallowed_methods)] // black-box tests measure wall-clock time

mod common;
#[path = "../master/tests/support/etcd_server.rs"]
mod etcd_server;

use common::{Proc, agora, http_get, wait_timeout};
use etcd_server::EtcdServer;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The leader TTL of these clusters.
const TTL: &str = "2s";

/// Starts `agora master` in the cluster under `prefix`; returns it and its address.
fn start_ha_master(etcd: &EtcdServer, prefix: &str, id: &str) -> (Proc, SocketAddr) {
    let mut child = agora()
        .args(["master", "--listen", "127.0.0.1:0", "--allocation-interval", "20ms"])
        .args(["--master-id", id, "--etcd", &etcd.url, "--leader-ttl", TTL])
        .args(["--etcd-prefix", prefix])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("agora master starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("master prints its address");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("cannot find an address in {line:?}"));
    (proc, addr)
}

fn leads(addr: SocketAddr) -> bool {
    http_get(addr, "/health") == (200, "ok".to_owned())
}

/// Waits for one of `addrs` to lead; returns its index and how long it took.
fn wait_for_leader(addrs: &[SocketAddr], within: Duration) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        if let Some(i) = addrs.iter().position(|&addr| leads(addr)) {
            return (i, started.elapsed());
        }
        assert!(started.elapsed() < within, "no leader among {addrs:?} after {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_of_the_leader_elects_another_within_the_ttl() {
    let etcd = EtcdServer::start();
    let mut masters: Vec<(Proc, SocketAddr)> = (0..3)
        .map(|i| start_ha_master(&etcd, "/kill9", &format!("m{i}")))
        .collect();
    let addrs: Vec<SocketAddr> = masters.iter().map(|(_, addr)| *addr).collect();
    let (leader, _) = wait_for_leader(&addrs, Duration::from_secs(10));
    let others: Vec<SocketAddr> = addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, a)| *a)
        .collect();
    // A standby that is still connecting to etcd knows no leader yet.
    let expected = (200, format!("standby; leader: {}\n", addrs[leader]));
    for &standby in &others {
        let deadline = Instant::now() + Duration::from_secs(5);
        while http_get(standby, "/health") != expected {
            assert!(Instant::now() < deadline, "{standby} does not name the leader");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let (mut killed, _) = masters.remove(leader);
    killed.0.kill().expect("kill -9");
    let (_, took) = wait_for_leader(&others, Duration::from_secs(10));
    eprintln!("new leader {took:?} after kill -9 of the leader (TTL {TTL})");
    assert!(
        took < Duration::from_secs(4),
        "takeover took {took:?} with a TTL of {TTL}"
    );
    assert!(!others.iter().all(|&a| leads(a)), "exactly one leads");
}

#[test]
fn a_master_that_loses_its_leadership_exits_nonzero() {
    let etcd = EtcdServer::start();
    let (mut master, addr) = start_ha_master(&etcd, "/exit", "m0");
    wait_for_leader(&[addr], Duration::from_secs(10));
    // What a lease expiry does to the key, done by hand.
    assert_eq!(etcd.delete("/exit/leader"), 1);
    let status = wait_timeout(&mut master.0, Duration::from_secs(5)).expect("the deposed master exits");
    assert!(!status.success(), "a deposed master must exit nonzero, got {status}");
}
