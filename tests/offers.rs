//! Offer behaviour over real sockets: decline filters and DRF fairness.
#![allow(clippy::disallowed_methods)] // measures wall time: this is not a pure core

mod common;

use agora_proto::pb;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn declined_agent_is_not_reoffered_before_its_filter_expires() {
    let (_master, addr) = start_master(&[]);
    let _agent = start_agent(addr, "cpus:4;mem:4096");
    wait_for_agents(addr, 1).await;
    let mut fw = RawFramework::subscribe(addr, framework_info("decliner")).await;
    let offers = fw.offers(Duration::from_secs(5)).await.expect("an offer");
    assert_eq!(offers.len(), 1);

    let declined_at = Instant::now();
    fw.decline(&offers[0], 1.0).await;
    let again = fw
        .offers(Duration::from_secs(5))
        .await
        .expect("re-offered after expiry");
    let waited = declined_at.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "re-offered after {waited:?}, before the 1 s filter expired"
    );
    assert!(waited < Duration::from_secs(3), "the filter held for {waited:?}");
    assert_eq!(again[0].agent_id, offers[0].agent_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn filter_of_one_framework_does_not_hold_back_another() {
    let (_master, addr) = start_master(&[]);
    let _agent = start_agent(addr, "cpus:4;mem:4096");
    wait_for_agents(addr, 1).await;
    let mut a = RawFramework::subscribe(addr, framework_info("a")).await;
    let offer = a.offers(Duration::from_secs(5)).await.expect("an offer")[0].clone();
    let mut b = RawFramework::subscribe(addr, framework_info("b")).await;
    a.decline(&offer, 3600.0).await;
    let to_b = b
        .offers(Duration::from_secs(2))
        .await
        .expect("b is offered what a declined");
    assert_eq!(to_b[0].agent_id, offer.agent_id);
}

/// Launches one `cpus:1` task per offer, giving the rest back unfiltered,
/// until the cluster is full; returns how many tasks it launched.
async fn greedy(mut fw: RawFramework, name: &'static str, stop: Instant) -> usize {
    let mut launched = 0;
    while Instant::now() < stop {
        let Some(offers) = fw.offers(Duration::from_millis(300)).await else {
            continue;
        };
        for offer in offers {
            if domain(&offer.resources).cpus() >= agora_proto::Scalar::from_units(1) {
                launched += 1;
                let t = task(&format!("{name}-{launched}"), &offer, "cpus:1;mem:256", "sleep 600");
                fw.launch(&[&offer], vec![t], 0.0).await;
            } else {
                fw.decline(&offer, 3600.0).await;
            }
        }
    }
    launched
}

#[tokio::test(flavor = "multi_thread")]
async fn two_equally_demanding_frameworks_converge_to_equal_dominant_shares() {
    let (_master, addr) = start_master(&[]);
    // Both frameworks subscribe before any agent exists. An offer holds all of
    // an agent's free resources (its detected disk too), and offered resources
    // count towards the holder's share, as in Mesos; so a framework that got
    // the whole cluster before the other subscribed keeps its head start until
    // tasks end, which these never do.
    let a = RawFramework::subscribe(addr, framework_info("a")).await;
    let b = RawFramework::subscribe(addr, framework_info("b")).await;
    // Tasks use exactly 1/8 of an agent's cpus and memory.
    let _agents: Vec<Proc> = (0..2).map(|_| start_agent(addr, "cpus:8;mem:2048")).collect();
    let stop = Instant::now() + Duration::from_secs(3);
    let (na, nb) = tokio::join!(greedy(a, "a", stop), greedy(b, "b", stop));
    assert_eq!(na + nb, 16, "the cluster (16 cpus) should be full: {na} + {nb}");
    assert!(na.abs_diff(nb) <= 1, "not fair: a ran {na} tasks, b ran {nb}");

    let state = state(addr).await;
    let shares: Vec<f64> = state.frameworks.iter().map(|f| f.dominant_share).collect();
    assert_eq!(shares.len(), 2);
    assert!(
        (shares[0] - shares[1]).abs() <= 1.0 / 16.0 + 1e-9,
        "dominant shares {shares:?}"
    );
    let _ = pb::GetStateRequest {};
}
