//! Mesos' v1 scheduler HTTP API on the master's port, black box: the
//! scenarios of Mesos' `src/tests/scheduler_http_api_tests.cpp` (status codes
//! for bad requests, stream ids, SUBSCRIBED then heartbeats, re-subscription)
//! and the calls' round trips, spoken by a client written from the
//! specification (`mesos_client`).

#![cfg(feature = "server")]

mod mesos_client;
mod support;

use mesos_client::{Connection, EventStream, Response, request, subscribe_call};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Agent, Framework, TestServer, agent_info, config, framework_info, soon};

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn server() -> TestServer {
    let mut config = config();
    config.master.heartbeat_interval = Duration::from_millis(100);
    TestServer::start_with(config).await
}

async fn post(server: &TestServer, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    request(server.addr, "POST", path, headers, body.to_string().as_bytes()).await
}

/// Subscribes a new framework; returns its stream, id and stream id.
async fn subscribe(server: &TestServer, extra: Value) -> (EventStream, String, String) {
    let mut stream = EventStream::subscribe(server.addr, &subscribe_call("mesos-fw", extra), &[])
        .await
        .unwrap_or_else(|r| panic!("SUBSCRIBE answered {} {}", r.status, r.text()));
    let subscribed = stream.next().await.expect("SUBSCRIBED");
    assert_eq!(subscribed["type"], "SUBSCRIBED", "{subscribed}");
    let id = subscribed["subscribed"]["framework_id"]["value"]
        .as_str()
        .expect("a framework id")
        .to_owned();
    let stream_id = stream.stream_id();
    (stream, id, stream_id)
}

#[tokio::test]
async fn subscribe_streams_subscribed_then_a_heartbeat_at_once_then_periodically() {
    let server = server().await;
    let mut stream = EventStream::subscribe(server.addr, &subscribe_call("fw", json!({})), &[])
        .await
        .expect("200");
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("Content-Type"), Some("application/json"));
    let stream_id = stream.stream_id();
    assert_eq!(stream_id.len(), 36, "a UUID: {stream_id}");

    let subscribed = stream.next().await.expect("SUBSCRIBED");
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    let body = &subscribed["subscribed"];
    assert!(body["framework_id"]["value"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(body["heartbeat_interval_seconds"], 0.1);
    assert_eq!(body["master_info"]["id"], "test");
    assert_eq!(body["master_info"]["port"], server.addr.port());

    assert_eq!(stream.next().await.expect("HEARTBEAT"), json!({"type": "HEARTBEAT"}));
    // Periodic: two more within a few intervals.
    for _ in 0..2 {
        assert_eq!(stream.next().await.expect("HEARTBEAT"), json!({"type": "HEARTBEAT"}));
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_stream_stays_open_when_the_request_says_connection_close() {
    let server = server().await;
    let call = subscribe_call("fw", json!({}));
    let mut stream = EventStream::subscribe(server.addr, &call, &[("Connection", "close")])
        .await
        .expect("200");
    for expected in ["SUBSCRIBED", "HEARTBEAT", "HEARTBEAT"] {
        assert_eq!(stream.next().await.expect("an event")["type"], expected);
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn methods_other_than_post_are_405_with_allow() {
    let server = server().await;
    let response = request(server.addr, "GET", "/api/v1/scheduler", &[], b"").await;
    assert_eq!(response.status, 405, "{}", response.text());
    assert_eq!(response.header("Allow"), Some("POST"));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_missing_content_type_is_400_and_a_wrong_one_415() {
    let server = server().await;
    let call = subscribe_call("fw", json!({}));
    let missing = post(&server, "/api/v1/scheduler", &[], &call).await;
    assert_eq!(missing.status, 400);
    assert!(missing.text().contains("Content-Type"), "{}", missing.text());
    for wrong in ["text/plain", "application/x-protobuf"] {
        let response = post(&server, "/api/v1/scheduler", &[("Content-Type", wrong)], &call).await;
        assert_eq!(response.status, 415, "{wrong}: {}", response.text());
        assert!(response.text().contains("application/json"), "{}", response.text());
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn subscribe_with_an_unacceptable_accept_is_406() {
    let server = server().await;
    let call = subscribe_call("fw", json!({}));
    let response = post(
        &server,
        "/api/v1/scheduler",
        &[JSON, ("Accept", "application/x-protobuf")],
        &call,
    )
    .await;
    assert_eq!(response.status, 406, "{}", response.text());
    // `*/*` is JSON.
    let ok = EventStream::subscribe(server.addr, &call, &[("Accept", "*/*")]).await;
    assert!(ok.is_ok());
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn malformed_calls_are_400_with_a_message() {
    let server = server().await;
    let not_json = request(server.addr, "POST", "/api/v1/scheduler", &[JSON], b"{nope").await;
    assert_eq!(not_json.status, 400);
    assert!(
        not_json.text().starts_with("Failed to convert JSON"),
        "{}",
        not_json.text()
    );

    let wrong_type = post(&server, "/api/v1/scheduler", &[JSON], &json!({"type": 7})).await;
    assert_eq!(wrong_type.status, 400);

    let no_subscribe = post(&server, "/api/v1/scheduler", &[JSON], &json!({"type": "SUBSCRIBE"})).await;
    assert_eq!(no_subscribe.status, 400);
    assert_eq!(
        no_subscribe.text(),
        "Failed to validate scheduler::Call: Expecting 'subscribe' to be present"
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn subscribe_with_a_stream_id_is_400() {
    let server = server().await;
    let call = subscribe_call("fw", json!({}));
    let response = EventStream::subscribe(server.addr, &call, &[("Mesos-Stream-Id", "x")])
        .await
        .err()
        .expect("refused");
    assert_eq!(response.status, 400);
    assert!(response.text().contains("Mesos-Stream-Id"), "{}", response.text());
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn calls_need_the_current_stream_id() {
    let server = server().await;
    let (_stream, id, stream_id) = subscribe(&server, json!({})).await;
    let revive = json!({"type": "REVIVE", "framework_id": {"value": id}});

    let missing = post(&server, "/api/v1/scheduler", &[JSON], &revive).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.text(),
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
    );

    let mut calls = Connection::open(server.addr).await;
    let wrong = calls.call("00000000-0000-4000-8000-000000000000", &revive).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.text().contains("didn't match"), "{}", wrong.text());

    // The same keep-alive connection serves the next call.
    let right = calls.call(&stream_id, &revive).await;
    assert_eq!(right.status, 202, "{}", right.text());
    assert!(right.body.is_empty());
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn calls_before_subscribing_are_refused() {
    let server = server().await;
    // A framework the master never saw: 400.
    let unknown = post(
        &server,
        "/api/v1/scheduler",
        &[JSON, ("Mesos-Stream-Id", "x")],
        &json!({"type": "REVIVE", "framework_id": {"value": "nobody"}}),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.text(), "Framework cannot be found");

    // A framework whose stream closed (kept for its failover timeout): 403.
    let (stream, id, stream_id) = subscribe(&server, json!({"failover_timeout": 60})).await;
    drop(stream);
    soon("the framework to be disconnected", async {
        loop {
            let state = server.state().await;
            if state
                .frameworks
                .iter()
                .any(|f| f.id.as_ref().is_some_and(|i| i.value == id) && !f.connected)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let revive = json!({"type": "REVIVE", "framework_id": {"value": id}});
    let response = Connection::open(server.addr).await.call(&stream_id, &revive).await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(response.text(), "Framework is not subscribed");

    // A framework subscribed over gRPC: 403 as well.
    let grpc = Framework::subscribe(&server, framework_info("grpc")).await;
    let response = Connection::open(server.addr)
        .await
        .call(
            "x",
            &json!({"type": "REVIVE", "framework_id": {"value": grpc.id.value}}),
        )
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(response.text(), "Framework is not connected via HTTP");
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn resubscription_replaces_the_old_stream() {
    let server = server().await;
    let (mut old, id, old_stream_id) = subscribe(&server, json!({"failover_timeout": 60})).await;
    let call = json!({
        "type": "SUBSCRIBE",
        "framework_id": {"value": id},
        "subscribe": {"framework_info": {"user": "nobody", "name": "mesos-fw", "id": {"value": id}, "failover_timeout": 60}}
    });
    let mut new = EventStream::subscribe(server.addr, &call, &[]).await.expect("200");
    let new_stream_id = new.stream_id();
    assert_ne!(new_stream_id, old_stream_id);
    let subscribed = new.next().await.expect("SUBSCRIBED");
    assert_eq!(subscribed["subscribed"]["framework_id"]["value"], id.as_str());

    // The old stream is closed by the master.
    assert!(soon("the old stream to end", old.ends()).await);

    let revive = json!({"type": "REVIVE", "framework_id": {"value": id}});
    let mut calls = Connection::open(server.addr).await;
    assert_eq!(calls.call(&old_stream_id, &revive).await.status, 400);
    assert_eq!(calls.call(&new_stream_id, &revive).await.status, 202);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_invalid_subscription_answers_200_then_an_error_event() {
    let server = server().await;
    let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "fw", "roles": ["bad role"]}}});
    let mut stream = EventStream::subscribe(server.addr, &call, &[]).await.expect("200");
    let error = stream.next().await.expect("ERROR");
    assert_eq!(error["type"], "ERROR");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("roles[0]")),
        "{error}"
    );
    assert!(stream.ends().await);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unsupported_calls_are_400_saying_so() {
    let server = server().await;
    let (_stream, id, stream_id) = subscribe(&server, json!({})).await;
    let mut calls = Connection::open(server.addr).await;
    let message = json!({"type": "MESSAGE", "framework_id": {"value": id},
        "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "aGk="}});
    let response = calls.call(&stream_id, &message).await;
    assert_eq!(response.status, 400);
    assert!(
        response.text().contains("Unsupported by Agora: MESSAGE"),
        "{}",
        response.text()
    );
    // REQUEST is accepted and ignored, as by Mesos' allocator.
    let request = json!({"type": "REQUEST", "framework_id": {"value": id}, "request": {"requests": []}});
    assert_eq!(calls.call(&stream_id, &request).await.status, 202);
    server.stop().await.expect("clean stop");
}

/// An agent registered over gRPC with 2 cpus and 256 MB.
async fn agent(server: &TestServer) -> (Agent, String) {
    let mut agent = Agent::attach(server).await;
    let id = agent.register(agent_info("host-1")).await;
    (agent, id.value)
}

#[tokio::test]
async fn offers_launch_updates_acknowledge_and_teardown() {
    use agora_proto::pb;
    use agora_proto::pb::agent_message::Message as A;
    use agora_proto::pb::master_message::Message as M;

    let server = server().await;
    let (mut agent, agent_id) = agent(&server).await;
    let (mut stream, id, stream_id) = subscribe(&server, json!({})).await;
    let mut calls = Connection::open(server.addr).await;

    let offers = stream.next_non_heartbeat().await.expect("OFFERS");
    assert_eq!(offers["type"], "OFFERS", "{offers}");
    let offer = &offers["offers"]["offers"][0];
    assert_eq!(offer["agent_id"]["value"], agent_id.as_str());
    assert_eq!(offer["framework_id"]["value"], id.as_str());
    assert_eq!(offer["hostname"], "host-1");
    let cpus = offer["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "cpus"))
        .expect("cpus offered");
    assert_eq!(cpus["type"], "SCALAR");
    assert!(cpus["scalar"]["value"].as_f64().is_some_and(|v| v > 0.0));

    // LAUNCH a task using the offer's own resource JSON for cpus.
    let accept = json!({
        "type": "ACCEPT", "framework_id": {"value": id},
        "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                "name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": agent_id},
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "allocation_info": cpus["allocation_info"]},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}
                ],
                "command": {"value": "sleep 1", "environment": {"variables": [{"name": "A", "value": "b"}]}}
            }]}}],
            "filters": {"refuse_seconds": 0}
        }
    });
    let response = calls.call(&stream_id, &accept).await;
    assert_eq!(response.status, 202, "{}", response.text());

    // The agent is told to run it, exactly as asked.
    let task = loop {
        match soon("RunTask", agent.next()).await {
            Some(M::RunTask(run)) => break run.task.expect("a task"),
            Some(_) => {}
            None => panic!("agent stream ended"),
        }
    };
    let command = task.command.expect("a command");
    assert_eq!(command.value, "sleep 1");
    assert_eq!(command.environment.get("A").map(String::as_str), Some("b"));

    // RUNNING from the agent reaches the framework with a uuid to acknowledge.
    let uuid = vec![7u8; 16];
    agent
        .send(A::StatusUpdate(pb::StatusUpdate {
            framework_id: Some(pb::FrameworkId { value: id.clone() }),
            status: Some(pb::TaskStatus {
                task_id: Some(pb::TaskId { value: "t1".into() }),
                state: pb::TaskState::TaskRunning as i32,
                source: pb::TaskSource::SourceAgent as i32,
                agent_id: Some(pb::AgentId {
                    value: agent_id.clone(),
                }),
                timestamp: 1.0,
                uuid: uuid.clone(),
                ..Default::default()
            }),
        }))
        .await;
    let update = loop {
        let event = stream.next_non_heartbeat().await.expect("UPDATE");
        if event["type"] == "UPDATE" {
            break event;
        }
    };
    let status = &update["update"]["status"];
    assert_eq!(status["task_id"]["value"], "t1");
    assert_eq!(status["state"], "TASK_RUNNING");
    assert_eq!(status["source"], "SOURCE_AGENT");
    assert_eq!(status["agent_id"]["value"], agent_id.as_str());
    assert_eq!(status["uuid"], "BwcHBwcHBwcHBwcHBwcHBw==");

    let ack = json!({"type": "ACKNOWLEDGE", "framework_id": {"value": id},
        "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
    assert_eq!(calls.call(&stream_id, &ack).await.status, 202);
    let acked = loop {
        match soon("the acknowledgement", agent.next()).await {
            Some(M::Acknowledge(ack)) => break ack,
            Some(_) => {}
            None => panic!("agent stream ended"),
        }
    };
    assert_eq!(acked.uuid, uuid);

    // Reconciliation answers without a uuid.
    let reconcile = json!({"type": "RECONCILE", "framework_id": {"value": id},
        "reconcile": {"tasks": [{"task_id": {"value": "t1"}}]}});
    assert_eq!(calls.call(&stream_id, &reconcile).await.status, 202);
    let answer = loop {
        let event = stream.next_non_heartbeat().await.expect("UPDATE");
        if event["type"] == "UPDATE" {
            break event;
        }
    };
    assert_eq!(answer["update"]["status"]["reason"], "REASON_RECONCILIATION");
    assert!(answer["update"]["status"].get("uuid").is_none(), "{answer}");

    // UPDATE_FRAMEWORK answers 200.
    let update_framework = json!({"type": "UPDATE_FRAMEWORK", "framework_id": {"value": id},
        "update_framework": {"framework_info": {"user": "nobody", "name": "renamed", "id": {"value": id}}}});
    let response = calls.call(&stream_id, &update_framework).await;
    assert_eq!(response.status, 200, "{}", response.text());

    // KILL is 202 and reaches the agent.
    let kill = json!({"type": "KILL", "framework_id": {"value": id}, "kill": {"task_id": {"value": "t1"}}});
    assert_eq!(calls.call(&stream_id, &kill).await.status, 202);

    // TEARDOWN is 202 and ends the stream.
    let teardown = json!({"type": "TEARDOWN", "framework_id": {"value": id}});
    assert_eq!(calls.call(&stream_id, &teardown).await.status, 202);
    assert!(soon("the stream to end", stream.ends()).await);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn decline_with_filters_suppress_and_revive() {
    let server = server().await;
    let (_agent, _agent_id) = agent(&server).await;
    let (mut stream, id, stream_id) = subscribe(&server, json!({})).await;
    let mut calls = Connection::open(server.addr).await;
    let offers = stream.next_non_heartbeat().await.expect("OFFERS");
    let offer_id = offers["offers"]["offers"][0]["id"].clone();
    let decline = json!({"type": "DECLINE", "framework_id": {"value": id},
        "decline": {"offer_ids": [offer_id], "filters": {"refuse_seconds": 3600}}});
    assert_eq!(calls.call(&stream_id, &decline).await.status, 202);
    let suppress = json!({"type": "SUPPRESS", "framework_id": {"value": id}, "suppress": {"roles": ["*"]}});
    assert_eq!(calls.call(&stream_id, &suppress).await.status, 202);
    // REVIVE clears the filter: the agent is offered again.
    let revive = json!({"type": "REVIVE", "framework_id": {"value": id}});
    assert_eq!(calls.call(&stream_id, &revive).await.status, 202);
    let again = stream.next_non_heartbeat().await.expect("OFFERS");
    assert_eq!(again["type"], "OFFERS", "{again}");
    // A role the framework does not hold: 400 naming it.
    let bad = json!({"type": "REVIVE", "framework_id": {"value": id}, "revive": {"roles": ["other"]}});
    let response = calls.call(&stream_id, &bad).await;
    assert_eq!(response.status, 400);
    assert!(response.text().contains("other"), "{}", response.text());
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn version_state_and_operator_calls_in_mesos_shape() {
    let server = server().await;
    let (_agent, agent_id) = agent(&server).await;
    let (mut stream, id, _stream_id) = subscribe(&server, json!({})).await;
    stream.next_non_heartbeat().await.expect("OFFERS");

    let version = request(server.addr, "GET", "/version", &[], b"").await;
    assert_eq!(version.status, 200);
    let version: Value = serde_json::from_slice(&version.body).expect("JSON");
    assert_eq!(version["version"], "1.11.0");

    let state = request(server.addr, "GET", "/master/state", &[], b"").await;
    assert_eq!(state.status, 200);
    let state: Value = serde_json::from_slice(&state.body).expect("JSON");
    assert_eq!(state["slaves"][0]["id"], agent_id.as_str());
    assert_eq!(state["slaves"][0]["hostname"], "host-1");
    assert!(
        state["slaves"][0]["resources"]["cpus"]
            .as_f64()
            .is_some_and(|c| c > 0.0)
    );
    assert_eq!(state["frameworks"][0]["id"], id.as_str());
    assert_eq!(state["frameworks"][0]["name"], "mesos-fw");
    assert_eq!(state["activated_slaves"], 1);
    // Ours stays at /state.
    let ours = request(server.addr, "GET", "/state", &[], b"").await;
    let ours: Value = serde_json::from_slice(&ours.body).expect("JSON");
    assert_eq!(ours["master_id"], "test");

    for (kind, key) in [
        ("GET_HEALTH", "get_health"),
        ("GET_VERSION", "get_version"),
        ("GET_STATE", "get_state"),
        ("GET_AGENTS", "get_agents"),
        ("GET_FRAMEWORKS", "get_frameworks"),
        ("GET_TASKS", "get_tasks"),
    ] {
        let response = post(&server, "/api/v1", &[JSON], &json!({ "type": kind })).await;
        assert_eq!(response.status, 200, "{kind}: {}", response.text());
        let body: Value = serde_json::from_slice(&response.body).expect("JSON");
        assert_eq!(body["type"], kind);
        assert!(body.get(key).is_some(), "{kind}: {body}");
    }
    let health = post(&server, "/api/v1", &[JSON], &json!({"type": "GET_HEALTH"})).await;
    let health: Value = serde_json::from_slice(&health.body).expect("JSON");
    assert_eq!(health["get_health"]["healthy"], true);
    let state = post(&server, "/api/v1", &[JSON], &json!({"type": "GET_STATE"})).await;
    let state: Value = serde_json::from_slice(&state.body).expect("JSON");
    assert_eq!(
        state["get_state"]["get_agents"]["agents"][0]["agent_info"]["id"]["value"],
        agent_id.as_str()
    );
    assert_eq!(
        state["get_state"]["get_frameworks"]["frameworks"][0]["framework_info"]["id"]["value"],
        id.as_str()
    );
    let unsupported = post(&server, "/api/v1", &[JSON], &json!({"type": "RESERVE_RESOURCES"})).await;
    assert_eq!(unsupported.status, 400);
    server.stop().await.expect("clean stop");
}

/// The next UPDATE event (heartbeats and offers skipped).
async fn next_update(stream: &mut EventStream) -> Value {
    loop {
        let event = stream.next().await.expect("an UPDATE");
        if event["type"] == "UPDATE" {
            return event["update"]["status"].clone();
        }
    }
}

#[tokio::test]
async fn stale_offers_and_invalid_tasks_are_accepted_then_reported_as_updates() {
    let server = server().await;
    let (_agent, agent_id) = agent(&server).await;
    let (mut stream, id, stream_id) = subscribe(&server, json!({})).await;
    let mut calls = Connection::open(server.addr).await;
    let offers = stream.next_non_heartbeat().await.expect("OFFERS");
    let offer_id = offers["offers"]["offers"][0]["id"].clone();
    let launch = |offer: &Value, task: &str, cpus: f64| {
        json!({"type": "ACCEPT", "framework_id": {"value": id}, "accept": {
            "offer_ids": [offer],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                "name": task, "task_id": {"value": task}, "agent_id": {"value": agent_id},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}],
                "command": {"value": "sleep 1"}}]}}]}})
    };

    // More than offered: 202, then TASK_ERROR naming the problem.
    let response = calls.call(&stream_id, &launch(&offer_id, "too-big", 64.0)).await;
    assert_eq!(response.status, 202, "{}", response.text());
    let status = next_update(&mut stream).await;
    assert_eq!(status["task_id"]["value"], "too-big");
    assert_eq!(status["state"], "TASK_ERROR");
    assert_eq!(status["reason"], "REASON_TASK_INVALID");
    assert_eq!(status["source"], "SOURCE_MASTER");

    // The same offer again (already used): 202, then TASK_LOST (not partition-aware).
    let response = calls.call(&stream_id, &launch(&offer_id, "stale", 0.1)).await;
    assert_eq!(response.status, 202);
    let status = next_update(&mut stream).await;
    assert_eq!(status["task_id"]["value"], "stale");
    assert_eq!(status["state"], "TASK_LOST");
    assert_eq!(status["reason"], "REASON_INVALID_OFFERS");
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn offers_are_rescinded_when_their_agent_disconnects_then_failure_when_it_is_lost() {
    let mut config = config();
    config.master.heartbeat_interval = Duration::from_millis(100);
    config.master.agent_ping_interval = Duration::from_millis(50);
    config.master.max_missed_pings = 2;
    let server = TestServer::start_with(config).await;
    let (agent, agent_id) = agent(&server).await;
    let (mut stream, _id, _stream_id) = subscribe(&server, json!({})).await;
    let offers = stream.next_non_heartbeat().await.expect("OFFERS");
    let offer_id = offers["offers"]["offers"][0]["id"].clone();
    drop(agent);
    let rescind = stream.next_non_heartbeat().await.expect("RESCIND");
    assert_eq!(rescind, json!({"type": "RESCIND", "rescind": {"offer_id": offer_id}}));
    let failure = stream.next_non_heartbeat().await.expect("FAILURE");
    assert_eq!(
        failure,
        json!({"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn reserve_and_unreserve_inside_accept() {
    let server = server().await;
    let (_agent, _agent_id) = agent(&server).await;
    let (mut stream, id, stream_id) = subscribe(&server, json!({"roles": ["web"]})).await;
    let mut calls = Connection::open(server.addr).await;
    let offers = stream.next_non_heartbeat().await.expect("OFFERS");
    let offer = &offers["offers"]["offers"][0];
    assert_eq!(offer["allocation_info"]["role"], "web");
    let reserved = json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1},
        "reservations": [{"type": "DYNAMIC", "role": "web", "principal": "ops"}]}]);
    let reserve = json!({"type": "ACCEPT", "framework_id": {"value": id}, "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "RESERVE", "reserve": {"resources": reserved}}],
        "filters": {"refuse_seconds": 0}}});
    assert_eq!(calls.call(&stream_id, &reserve).await.status, 202);

    // The next offer holds the reservation, in the v1 format.
    let again = stream.next_non_heartbeat().await.expect("OFFERS");
    let resources = again["offers"]["offers"][0]["resources"].clone();
    let reservation = resources
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["name"] == "cpus" && r.get("reservations").is_some())
        })
        .unwrap_or_else(|| panic!("no reserved cpus in {resources}"));
    assert_eq!(reservation["scalar"]["value"], 1.0);
    assert_eq!(reservation["reservations"][0]["role"], "web");

    // The framework echoes the offered resource back to UNRESERVE it.
    let unreserve = json!({"type": "ACCEPT", "framework_id": {"value": id}, "accept": {
        "offer_ids": [again["offers"]["offers"][0]["id"]],
        "operations": [{"type": "UNRESERVE", "unreserve": {"resources": [reservation]}}],
        "filters": {"refuse_seconds": 0}}});
    assert_eq!(calls.call(&stream_id, &unreserve).await.status, 202);
    let third = stream.next_non_heartbeat().await.expect("OFFERS");
    let still_reserved = third["offers"]["offers"][0]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r.get("reservations").is_some());
    assert!(!still_reserved, "{third}");
    server.stop().await.expect("clean stop");
}
