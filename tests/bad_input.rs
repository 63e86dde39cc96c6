//! Every bad input gets its specific error, and the master's books stay
//! consistent afterwards.
#![allow(clippy::disallowed_methods)] // measures wall time: this is not a pure core

mod common;

use agora_proto::pb;
use common::*;
use std::time::Duration;
use tonic::Code;

const T: Duration = Duration::from_secs(5);

fn assert_status(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, needle: &str) {
    let status = result.expect_err("the call must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{:?} does not mention {needle:?}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_calls_are_refused_with_the_field_named() {
    let (_master, addr) = start_master(&[]);
    let mut client = pb::scheduler_client::SchedulerClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");

    let missing_info = client.subscribe(pb::SubscribeRequest { framework_info: None }).await;
    assert_status(missing_info, Code::InvalidArgument, "framework_info");

    let mut info = framework_info("f");
    info.roles = vec!["bad role".into()];
    let bad_role = client
        .subscribe(pb::SubscribeRequest {
            framework_info: Some(info),
        })
        .await;
    assert_status(bad_role, Code::InvalidArgument, "roles[0]");

    let no_id = client.revive(pb::ReviveRequest::default()).await;
    assert_status(no_id, Code::InvalidArgument, "framework_id");

    let unknown = client
        .decline(pb::DeclineRequest {
            framework_id: Some(pb::FrameworkId { value: "nobody".into() }),
            offer_ids: vec![pb::OfferId { value: "o".into() }],
            filters: None,
        })
        .await;
    assert_status(unknown, Code::NotFound, "nobody");

    let fw = RawFramework::subscribe(addr, framework_info("f")).await;
    let short_uuid = client
        .acknowledge(pb::AcknowledgeRequest {
            framework_id: Some(fw.id.clone()),
            agent_id: Some(pb::AgentId { value: "a".into() }),
            task_id: Some(pb::TaskId { value: "t".into() }),
            uuid: vec![1, 2, 3],
        })
        .await;
    assert_status(short_uuid, Code::InvalidArgument, "uuid");

    let ghost_agent = client
        .acknowledge(pb::AcknowledgeRequest {
            framework_id: Some(fw.id.clone()),
            agent_id: Some(pb::AgentId { value: "ghost".into() }),
            task_id: Some(pb::TaskId { value: "t".into() }),
            uuid: vec![0; 16],
        })
        .await;
    assert_status(ghost_agent, Code::NotFound, "ghost");

    let role_not_held = client
        .suppress(pb::SuppressRequest {
            framework_id: Some(fw.id.clone()),
            roles: vec!["other".into()],
        })
        .await;
    assert_status(role_not_held, Code::InvalidArgument, "other");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_launches_become_task_errors_and_leak_nothing() {
    let (_master, addr) = start_master(&[]);
    let _agents: Vec<Proc> = (0..2)
        .map(|_| start_agent(addr, "cpus:4;mem:4096;ports:[31000-31010]"))
        .collect();
    wait_for_agents(addr, 2).await;
    let mut fw = RawFramework::subscribe(addr, framework_info("f")).await;
    let mut offers = Vec::new();
    while offers.len() < 2 {
        offers.extend(fw.offers(T).await.expect("offers of both agents"));
    }
    let (o1, o2) = (offers[0].clone(), offers[1].clone());

    // A task field that does not validate: the whole call is refused.
    let mut nan = task("nan", &o1, "cpus:1;mem:32", "true");
    nan.resources[0].value = Some(pb::resource::Value::Scalar(f64::NAN));
    let refused = fw
        .client
        .accept(pb::AcceptRequest {
            framework_id: Some(fw.id.clone()),
            offer_ids: vec![o1.id.clone().expect("id")],
            operations: vec![pb::Operation {
                operation: Some(pb::operation::Operation::Launch(pb::LaunchOperation {
                    task_infos: vec![nan],
                })),
            }],
            filters: None,
        })
        .await;
    assert_status(
        refused,
        Code::InvalidArgument,
        "operations[0].launch.task_infos[0].resources",
    );

    // Offers on two agents in one ACCEPT.
    fw.launch(&[&o1, &o2], vec![task("two-agents", &o1, "cpus:1;mem:32", "true")], 0.0)
        .await;
    let update = fw.update(T).await.expect("an update");
    assert_eq!(update.state, pb::TaskState::TaskLost as i32, "{update:?}");
    assert_eq!(update.reason, pb::TaskReason::ReasonInvalidOffers as i32);
    assert!(update.message.contains("one agent"), "{}", update.message);

    // The offers came back; take fresh ones.
    let mut offers = Vec::new();
    while offers.len() < 2 {
        offers.extend(fw.offers(T).await.expect("re-offered"));
    }
    let o1 = offers[0].clone();
    fw.launch(
        &[&o1],
        vec![
            task("too-big", &o1, "cpus:5;mem:32", "sleep 60"),
            task("dup", &o1, "cpus:1;mem:32", "sleep 60"),
            task("dup", &o1, "cpus:1;mem:32", "sleep 60"),
            task("no-port", &o1, "cpus:1;mem:32;ports:[40000-40000]", "sleep 60"),
        ],
        0.0,
    )
    .await;
    let mut errors = Vec::new();
    while errors.len() < 3 {
        let u = fw.update(T).await.expect("updates for every bad task");
        if u.state == pb::TaskState::TaskError as i32 {
            errors.push(u);
        }
    }
    let message = |id: &str| {
        errors
            .iter()
            .find(|u| u.task_id.as_ref().is_some_and(|t| t.value == id))
            .map(|u| u.message.clone())
            .unwrap_or_default()
    };
    assert!(message("too-big").contains("more resources"), "{}", message("too-big"));
    assert_eq!(message("dup"), "Task ID 'dup' is already in use");
    assert!(message("no-port").contains("more resources"), "{}", message("no-port"));

    // Accepting the same offer again: stale.
    fw.launch(&[&o1], vec![task("stale", &o1, "cpus:1;mem:32", "true")], 0.0)
        .await;
    let stale = fw
        .next(T, |e| match e {
            pb::event::Event::Update(u) => u
                .status
                .filter(|s| s.task_id.as_ref().is_some_and(|t| t.value == "stale")),
            _ => None,
        })
        .await
        .expect("an update for the stale launch");
    assert_eq!(stale.state, pb::TaskState::TaskLost as i32);
    assert!(stale.message.contains("no longer valid"), "{}", stale.message);

    // The books balance: on every agent, allocated = offered + running tasks.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let state = state(addr).await;
    let mut total = agora_proto::Resources::new();
    for agent in &state.agents {
        let id = agent.id.clone().expect("id");
        let running: agora_proto::Resources = state
            .tasks
            .iter()
            .filter(|t| t.task.as_ref().and_then(|t| t.agent_id.as_ref()) == Some(&id))
            .filter(|t| t.state == pb::TaskState::TaskRunning as i32 || t.state == pb::TaskState::TaskStaging as i32)
            .map(|t| domain(&t.task.as_ref().expect("task").resources))
            .sum();
        assert_eq!(
            domain(&agent.allocated),
            domain(&agent.offered) + running,
            "agent {}",
            id.value
        );
        total += domain(&agent.total);
    }
    assert_eq!(domain(&state.total), total);
    assert_eq!(state.tasks.len(), 1, "only `dup` runs: {:?}", state.tasks);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_agent_registration_is_refused_with_a_reason() {
    let (_master, addr) = start_master(&[]);
    let mut client = pb::agent_link_client::AgentLinkClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut bad = pb::AgentInfo {
        hostname: "h".into(),
        resources: resources("cpus:1"),
        attributes: vec![],
    };
    bad.resources[0].value = Some(pb::resource::Value::Scalar(-1.0));
    tx.send(pb::AgentMessage {
        message: Some(pb::agent_message::Message::Register(pb::RegisterAgent {
            agent_info: Some(bad),
            agent_id: None,
            tasks: vec![],
        })),
    })
    .await
    .expect("send");
    let mut inbound = client
        .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("attach")
        .into_inner();
    let reply = tokio::time::timeout(T, inbound.message())
        .await
        .expect("a reply in time")
        .expect("stream")
        .expect("a message");
    let Some(pb::master_message::Message::Error(message)) = reply.message else {
        panic!("expected an error, got {reply:?}");
    };
    assert!(message.contains("register.agent_info.resources"), "{message}");
    assert!(state(addr).await.agents.is_empty());
}
