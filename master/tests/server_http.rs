//! The master server's plain HTTP endpoints, on the same port as gRPC.

#![cfg(feature = "server")]

mod support;

use agora_proto::pb;
use std::time::Duration;
use support::{Agent, Framework, TestServer, agent_info, framework_info, http_get, scalar, soon};

#[tokio::test]
async fn health_is_ok() {
    let server = TestServer::start().await;
    assert_eq!(http_get(server.addr, "/health").await, (200, "ok".to_owned()));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let server = TestServer::start().await;
    let (status, _) = http_get(server.addr, "/nope").await;
    assert_eq!(status, 404);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn state_is_the_cluster_as_json() {
    let server = TestServer::start().await;
    let framework = Framework::subscribe(&server, framework_info("fw")).await;
    let mut agent = Agent::attach(&server).await;
    let agent_id = agent.register(agent_info("host-1")).await;

    let (status, body) = http_get(server.addr, "/state").await;
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(state["master_id"], "test");
    assert_eq!(state["frameworks"][0]["id"], framework.id.value.as_str());
    assert_eq!(state["frameworks"][0]["connected"], true);
    assert_eq!(state["agents"][0]["id"], agent_id.value.as_str());
    assert_eq!(state["agents"][0]["status"], "active");
    assert_eq!(state["stats"]["subscriptions"], 1);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn metrics_export_counters_gauges_and_the_allocation_histogram() {
    let server = TestServer::start().await;
    let mut framework = Framework::subscribe(&server, framework_info("fw")).await;
    let mut agent = Agent::attach(&server).await;
    agent.register(agent_info("host-1")).await;
    framework.offers().await;

    let (status, body) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "agora_master_subscriptions_total 1",
        "agora_master_agent_registrations_total 1",
        "agora_master_offers_made_total 1",
        "agora_master_allocation_cycles_total",
        "agora_master_frameworks_removed_total 0",
        "agora_master_agents{status=\"active\"} 1",
        "agora_master_frameworks{connected=\"true\"} 1",
        "agora_master_tasks 0",
        "agora_master_outstanding_offers 1",
        "agora_master_allocation_cycle_seconds_bucket",
        "agora_master_allocation_cycle_seconds_count",
        "agora_master_offers_declined_total 0",
        "agora_master_offers_rescinded_total 0",
        "agora_master_active_filters 0",
        "agora_master_role_dominant_share{role=\"*\"} 1",
        "agora_master_role_weight{role=\"*\"} 1",
        &format!(
            "agora_master_framework_dominant_share{{framework_id=\"{}\"}} 1",
            framework.id.value
        ),
    ] {
        assert!(body.contains(expected), "{expected:?} missing from\n{body}");
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn each_server_has_its_own_metrics() {
    let busy = TestServer::start().await;
    let idle = TestServer::start().await;
    let _framework = Framework::subscribe(&busy, framework_info("fw")).await;
    soon("the busy server to count its subscription", async {
        while !http_get(busy.addr, "/metrics")
            .await
            .1
            .contains("agora_master_subscriptions_total 1")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let (_, body) = http_get(idle.addr, "/metrics").await;
    assert!(body.contains("agora_master_subscriptions_total 0"), "{body}");
    busy.stop().await.expect("clean stop");
    idle.stop().await.expect("clean stop");
}

#[tokio::test]
async fn metrics_show_quota_consumption_and_drop_roles_and_frameworks_that_are_gone() {
    let server = TestServer::start().await;
    let mut operator = server.operator().await;
    operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![pb::RoleQuota {
                role: "web".to_owned(),
                limit: vec![scalar("cpus", 3.0), scalar("mem", 2048.0)],
                guarantee: vec![scalar("cpus", 1.0)],
            }],
        })
        .await
        .expect("quota");
    let mut info = framework_info("web-fw");
    info.roles = vec!["web".to_owned()];
    let mut framework = Framework::subscribe(&server, info).await;
    let mut agent = Agent::attach(&server).await;
    agent.register(agent_info("host-1")).await;
    // The limit cuts the offer to 3 of the agent's 4 cpus.
    framework.offers().await;

    let (_, body) = http_get(server.addr, "/metrics").await;
    let framework_series = format!("framework_id=\"{}\"", framework.id.value);
    for expected in [
        "agora_master_role_quota_consumed{role=\"web\",resource=\"cpus\"} 3",
        "agora_master_role_quota_consumed{role=\"web\",resource=\"mem\"} 1024",
        "agora_master_role_quota_limit{role=\"web\",resource=\"cpus\"} 3",
        "agora_master_role_quota_limit{role=\"web\",resource=\"mem\"} 2048",
        "agora_master_role_quota_guarantee{role=\"web\",resource=\"cpus\"} 1",
        "agora_master_role_dominant_share{role=\"web\"} 1",
        "agora_master_role_weight{role=\"web\"} 1",
        &format!("agora_master_framework_dominant_share{{{framework_series}}} 1"),
    ] {
        assert!(body.contains(expected), "{expected:?} missing from\n{body}");
    }
    assert!(
        !body.contains("agora_master_role_quota_guarantee{role=\"web\",resource=\"mem\"}"),
        "mem has no guarantee:\n{body}"
    );

    // The framework leaves and the quota is removed: the role is no longer
    // in use, and its series and the framework's go at the next scrape.
    server
        .scheduler()
        .await
        .teardown(pb::TeardownRequest {
            framework_id: Some(framework.id.clone()),
        })
        .await
        .expect("teardown");
    operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![pb::RoleQuota {
                role: "web".to_owned(),
                limit: vec![],
                guarantee: vec![],
            }],
        })
        .await
        .expect("quota removed");
    let (_, body) = http_get(server.addr, "/metrics").await;
    assert!(!body.contains("role=\"web\""), "{body}");
    assert!(!body.contains(&framework_series), "{body}");
    // Series still in use stay.
    assert!(body.contains("agora_master_agents{status=\"active\"} 1"), "{body}");
    assert!(body.contains("agora_master_frameworks_removed_total 1"), "{body}");
    server.stop().await.expect("clean stop");
}
