//! The etcd registry, leader election and standby masters, against a real
//! etcd (Debian's `etcd-server`; the tests fail if it is missing).

#![cfg(feature = "etcd")]
#![allow(clippy::disallowed_methods)] // black-box tests wait and measure in wall-clock time

#[path = "support/etcd_server.rs"]
mod etcd_server;
mod support;

use agora_master::server::election::{Election, ElectionConfig, Fence, Keys, Leadership};
use agora_master::server::registry::{Change, EtcdRegistry, EtcdRegistryConfig, Registry, RegistryError, Value};
use agora_master::server::{EtcdConfig, ServerError};
use agora_proto::pb;
use etcd_server::EtcdServer;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{TestServer, http_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The leader TTL in these tests: short, so takeovers are quick.
const TTL: Duration = Duration::from_secs(2);

fn put(key: &str, value: Value) -> Change {
    Change {
        key: key.to_owned(),
        value: Some(value),
    }
}

fn delete(key: &str) -> Change {
    Change {
        key: key.to_owned(),
        value: None,
    }
}

/// Waits (polling) for `check` to hold, failing after `within`.
async fn eventually<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Campaigns as `advertise` under `prefix` and waits to lead.
async fn elect(etcd: &EtcdServer, prefix: &str, advertise: &str) -> (Election, Fence) {
    let election = Election::start(ElectionConfig {
        endpoints: vec![etcd.url.clone()],
        keys: Keys::under(prefix),
        advertise: advertise.to_owned(),
        ttl: TTL,
    });
    let mut state = election.subscribe();
    let fence = eventually(&format!("{advertise} to lead"), Duration::from_secs(10), async || {
        let fence = state.borrow_and_update().fence();
        if fence.is_none() {
            let _ = tokio::time::timeout(Duration::from_millis(100), state.changed()).await;
        }
        fence
    })
    .await;
    (election, fence)
}

/// A registry fenced by a fixed fence (so a stale one reaches etcd).
fn registry(etcd: &EtcdServer, prefix: &str, fence: Fence, max_txn_ops: usize) -> EtcdRegistry {
    let mut config = EtcdRegistryConfig::new(vec![etcd.url.clone()], prefix);
    config.max_txn_ops = max_txn_ops;
    EtcdRegistry::new(config, move || Some(fence.clone())).expect("registry")
}

/// The registry blocks its caller: off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn raw_client(etcd: &EtcdServer) -> etcd_client::Client {
    etcd_client::Client::connect([etcd.url.as_str()], None)
        .await
        .expect("connect to etcd")
}

async fn count_prefix(client: &mut etcd_client::Client, prefix: &str) -> usize {
    client
        .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .expect("get")
        .kvs()
        .len()
}

fn entries(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_round_trip_and_a_batch_is_all_or_nothing() {
    let etcd = EtcdServer::start();
    let (_election, fence) = elect(&etcd, "/rt", "a:1").await;
    // A limit of 4 operations per transaction sends a batch of 10 through
    // the journal.
    let mut registry = registry(&etcd, "/rt", fence, 4);
    blocking(|| {
        assert!(registry.load().expect("load").is_empty());
        registry
            .apply(&[put("a", json!(1)), put("b", json!({"x": 2})), put("a", json!(3))])
            .expect("apply");
        registry.apply(&[delete("b")]).expect("apply");
        assert_eq!(registry.load().expect("load"), entries(&[("a", json!(3))]));
        let batch: Vec<Change> = (0..10).map(|i| put(&format!("agents/{i}"), json!(i))).collect();
        registry.apply(&batch).expect("a large batch");
        let loaded = registry.load().expect("load");
        assert_eq!(loaded.len(), 11);
        assert_eq!(loaded["agents/7"], json!(7));
    });
    let mut client = raw_client(&etcd).await;
    assert_eq!(
        count_prefix(&mut client, "/rt/registry-journal/").await,
        0,
        "journal cleared"
    );
    // One key per entry, JSON values.
    let stored = client.get("/rt/registry/agents/7", None).await.expect("get");
    assert_eq!(stored.kvs()[0].value(), b"7");

    // A batch whose journal was committed but not written out (the leader
    // died in between) is finished by the next load; one that was not
    // committed is dropped.
    client
        .put(
            "/rt/registry-journal/part/00000000",
            r#"{"changes":[["c",{"y":1}],["a",null]]}"#,
            None,
        )
        .await
        .expect("put");
    client
        .put("/rt/registry-journal/commit", r#"{"parts":1}"#, None)
        .await
        .expect("put");
    let loaded = blocking(|| registry.load().expect("load"));
    assert_eq!(loaded.get("c"), Some(&json!({"y": 1})));
    assert!(!loaded.contains_key("a"));
    assert_eq!(count_prefix(&mut client, "/rt/registry-journal/").await, 0);
    client
        .put("/rt/registry-journal/part/00000000", r#"{"changes":[["d",1]]}"#, None)
        .await
        .expect("put");
    let loaded = blocking(|| registry.load().expect("load"));
    assert!(!loaded.contains_key("d"), "an uncommitted batch is not applied");
    assert_eq!(count_prefix(&mut client, "/rt/registry-journal/").await, 0);

    // A value that is not JSON is reported with its key, not skipped.
    client.put("/rt/registry/bad", "{nope", None).await.expect("put");
    let error = blocking(|| registry.load()).expect_err("corrupt");
    assert!(
        matches!(&error, RegistryError::Corrupt { path, .. } if path.to_string_lossy() == "/rt/registry/bad"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_can_change_nothing() {
    let etcd = EtcdServer::start();
    let (a, fence_a) = elect(&etcd, "/dp", "a:1").await;
    let mut registry_a = registry(&etcd, "/dp", fence_a.clone(), 4);
    blocking(|| registry_a.apply(&[put("roles", json!({"w": 1}))])).expect("the leader writes");

    // A's key disappears (as when its lease expires) and B is elected.
    let mut client = raw_client(&etcd).await;
    client.delete("/dp/leader", None).await.expect("delete");
    let mut state_a = a.subscribe();
    eventually("A to notice", Duration::from_secs(5), async || {
        let lost = matches!(*state_a.borrow_and_update(), Leadership::Lost(_));
        lost.then_some(())
    })
    .await;
    let (_b, fence_b) = elect(&etcd, "/dp", "b:1").await;
    assert_ne!(fence_a, fence_b);

    // A does not know yet (its fence is fixed here): etcd refuses its writes,
    // small and journaled alike.
    blocking(|| {
        let small = registry_a.apply(&[put("roles", json!({"w": 2}))]);
        assert!(matches!(small, Err(RegistryError::Deposed)), "{small:?}");
        let batch: Vec<Change> = (0..10).map(|i| put(&format!("agents/{i}"), json!(i))).collect();
        let large = registry_a.apply(&batch);
        assert!(matches!(large, Err(RegistryError::Deposed)), "{large:?}");
    });
    let mut registry_b = registry(&etcd, "/dp", fence_b, 128);
    let loaded = blocking(|| registry_b.load().expect("load"));
    assert_eq!(loaded, entries(&[("roles", json!({"w": 1}))]));
    assert_eq!(count_prefix(&mut client, "/dp/registry-journal/").await, 0);
}

/// A master of the HA cluster under `prefix`, running in this process.
async fn start_ha(etcd: &EtcdServer, prefix: &str, id: &str) -> TestServer {
    let mut config = support::config();
    config.etcd = Some(EtcdConfig {
        leader_ttl: TTL,
        prefix: prefix.to_owned(),
        ..EtcdConfig::new(vec![etcd.url.clone()])
    });
    config.master.master_id = id.to_owned();
    TestServer::start_with(config).await
}

async fn leads(master: &TestServer) -> bool {
    http_get(master.addr, "/health").await == (200, "ok".to_owned())
}

/// Which of the two leads, once one does.
async fn leader_of(masters: &[TestServer; 2]) -> usize {
    eventually("a leader", Duration::from_secs(10), async || {
        for (i, master) in masters.iter().enumerate() {
            if leads(master).await {
                return Some(i);
            }
        }
        None
    })
    .await
}

/// A GET returning the status and the `Location` header.
async fn get_location(addr: SocketAddr, path: &str) -> (u16, Option<String>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let location = response
        .lines()
        .find_map(|line| {
            line.strip_prefix("location: ")
                .or_else(|| line.strip_prefix("Location: "))
        })
        .map(|l| l.trim().to_owned());
    (status, location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_master_leads_the_other_points_at_it_and_takes_over_with_the_registry() {
    let etcd = EtcdServer::start();
    let masters = [start_ha(&etcd, "/ha", "m0").await, start_ha(&etcd, "/ha", "m1").await];
    let leader = leader_of(&masters).await;
    let standby = 1 - leader;
    let leader_addr = masters[leader].addr.to_string();
    assert!(!leads(&masters[standby]).await, "exactly one leads");

    // The standby: /health names the leader (once it has looked), gRPC
    // names it too, HTTP redirects there.
    let expected = (200, format!("standby; leader: {leader_addr}\n"));
    eventually("the standby to name the leader", Duration::from_secs(5), async || {
        (http_get(masters[standby].addr, "/health").await == expected).then_some(())
    })
    .await;
    let refusal = masters[standby]
        .operator()
        .await
        .get_state(pb::GetStateRequest {})
        .await
        .expect_err("a standby refuses");
    assert_eq!(refusal.code(), tonic::Code::Unavailable);
    assert_eq!(
        agora_proto::leader::leader_hint(&refusal).as_deref(),
        Some(leader_addr.as_str())
    );
    for path in ["/master/state", "/api/v1/scheduler", "/state?x=1"] {
        assert_eq!(
            get_location(masters[standby].addr, path).await,
            (307, Some(format!("http://{leader_addr}{path}"))),
            "{path}"
        );
    }

    // The leader keeps an operator's weight in etcd.
    masters[leader]
        .operator()
        .await
        .update_weights(pb::UpdateWeightsRequest {
            weights: vec![pb::RoleWeight {
                role: "web".to_owned(),
                weight: 2.5,
            }],
        })
        .await
        .expect("weights");

    // The leader stops (resigning): the standby takes over at once and
    // restores the weight from the registry.
    let [first, second] = masters;
    let (old, new) = if leader == 0 { (first, second) } else { (second, first) };
    let stopped = Instant::now();
    old.stop().await.expect("a clean stop");
    eventually("the standby to lead", TTL + Duration::from_secs(2), async || {
        leads(&new).await.then_some(())
    })
    .await;
    eprintln!(
        "takeover after the leader stopped: {:?} (TTL {TTL:?})",
        stopped.elapsed()
    );
    let roles = new
        .operator()
        .await
        .get_roles(pb::GetRolesRequest {})
        .await
        .expect("roles")
        .into_inner()
        .roles;
    assert!(
        roles.iter().any(|r| r.role == "web" && (r.weight - 2.5).abs() < 1e-9),
        "{roles:?}"
    );
    new.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_key_is_lost_stops_serving_and_fails() {
    let etcd = EtcdServer::start();
    let masters = [
        start_ha(&etcd, "/lost", "m0").await,
        start_ha(&etcd, "/lost", "m1").await,
    ];
    let leader = leader_of(&masters).await;
    let [first, second] = masters;
    let (old, new) = if leader == 0 { (first, second) } else { (second, first) };
    let mut client = raw_client(&etcd).await;
    client.delete("/lost/leader", None).await.expect("delete");
    let result = old.stopped().await;
    assert!(matches!(result, Err(ServerError::Deposed(_))), "{result:?}");
    eventually("the other master to lead", Duration::from_secs(5), async || {
        leads(&new).await.then_some(())
    })
    .await;
    new.stop().await.expect("a clean stop");
}
