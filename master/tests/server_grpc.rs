//! The master server's gRPC APIs over real sockets, with tonic clients as
//! frameworks, agents and operators would use them.

#![cfg(feature = "server")]

mod support;

use agora_master::server::{ServerConfig, registry};
use agora_proto::pb;
use pb::agent_message::Message as ToMaster;
use pb::cluster_event::Event as ClusterEvent;
use pb::event::Event;
use pb::master_message::Message as ToAgent;
use std::time::Duration;
use support::{Agent, Framework, TestServer, agent_info, framework_info, next_event, scalar, soon};
use tonic::Code;

#[tokio::test]
async fn subscribe_gets_subscribed_then_heartbeat() {
    let server = TestServer::start().await;
    let mut events = server
        .scheduler()
        .await
        .subscribe(pb::SubscribeRequest {
            framework_info: Some(framework_info("fw")),
        })
        .await
        .expect("subscribe")
        .into_inner();
    match next_event(&mut events).await {
        Event::Subscribed(s) => {
            assert!(s.framework_id.is_some_and(|id| !id.value.is_empty()));
            assert_eq!(s.master_id, "test");
            assert!(s.heartbeat_interval_seconds > 0.0);
        }
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    }
    assert!(matches!(next_event(&mut events).await, Event::Heartbeat(_)));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn subscribe_without_framework_info_is_invalid_argument() {
    let server = TestServer::start().await;
    let status = server
        .scheduler()
        .await
        .subscribe(pb::SubscribeRequest { framework_info: None })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("framework_info"), "{}", status.message());

    // A nested problem names the full path.
    let status = server
        .scheduler()
        .await
        .subscribe(pb::SubscribeRequest {
            framework_info: Some(framework_info("")),
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("framework_info.name"), "{}", status.message());
}

#[tokio::test]
async fn call_without_framework_id_is_invalid_argument() {
    let server = TestServer::start().await;
    let status = server
        .scheduler()
        .await
        .revive(pb::ReviveRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("framework_id"), "{}", status.message());
}

#[tokio::test]
async fn call_from_unknown_framework_is_not_found() {
    let server = TestServer::start().await;
    let status = server
        .scheduler()
        .await
        .revive(pb::ReviveRequest {
            framework_id: Some(pb::FrameworkId { value: "nobody".into() }),
            roles: vec![],
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("nobody"), "{}", status.message());
}

#[tokio::test]
async fn framework_is_offered_a_registered_agents_resources() {
    let server = TestServer::start().await;
    let mut framework = Framework::subscribe(&server, framework_info("fw")).await;
    let mut agent = Agent::attach(&server).await;
    let agent_id = agent.register(agent_info("host-1")).await;

    let offers = framework.offers().await;
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(offer.agent_id.as_ref(), Some(&agent_id));
    assert_eq!(offer.hostname, "host-1");
    for expected in [scalar("cpus", 4.0), scalar("mem", 1024.0)] {
        assert!(
            offer.resources.contains(&expected),
            "{expected:?} not in {:?}",
            offer.resources
        );
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn declined_then_accepted_offer_runs_a_task_on_the_agent() {
    let server = TestServer::start().await;
    let mut framework = Framework::subscribe(&server, framework_info("fw")).await;
    let mut agent = Agent::attach(&server).await;
    let agent_id = agent.register(agent_info("host-1")).await;
    let mut scheduler = server.scheduler().await;

    // Declined with no refusal time: offered again at the next allocation.
    let offer = framework.offers().await.remove(0);
    scheduler
        .decline(pb::DeclineRequest {
            framework_id: Some(framework.id.clone()),
            offer_ids: vec![offer.id.clone().expect("offer id")],
            filters: Some(pb::Filters {
                refuse_seconds: Some(0.0),
            }),
        })
        .await
        .expect("decline");

    let offer = framework.offers().await.remove(0);
    let task = pb::TaskInfo {
        name: "sleep".into(),
        task_id: Some(pb::TaskId { value: "t1".into() }),
        agent_id: Some(agent_id.clone()),
        resources: vec![scalar("cpus", 1.0), scalar("mem", 128.0)],
        command: Some(pb::CommandInfo {
            value: "sleep 1".into(),
            ..Default::default()
        }),
        kill_policy: None,
    };
    scheduler
        .accept(pb::AcceptRequest {
            framework_id: Some(framework.id.clone()),
            offer_ids: vec![offer.id.clone().expect("offer id")],
            operations: vec![pb::Operation {
                operation: Some(pb::operation::Operation::Launch(pb::LaunchOperation {
                    task_infos: vec![task],
                })),
            }],
            filters: None,
        })
        .await
        .expect("accept");

    match agent.next().await {
        Some(ToAgent::RunTask(run)) => {
            assert_eq!(run.framework_id.as_ref(), Some(&framework.id));
            assert_eq!(run.task.and_then(|t| t.task_id).map(|t| t.value).as_deref(), Some("t1"));
        }
        other => panic!("expected RunTask, got {other:?}"),
    }

    // The agent's status update reaches the framework, and its
    // acknowledgement reaches the agent.
    let uuid = vec![7u8; 16];
    agent
        .send(ToMaster::StatusUpdate(pb::StatusUpdate {
            framework_id: Some(framework.id.clone()),
            status: Some(pb::TaskStatus {
                task_id: Some(pb::TaskId { value: "t1".into() }),
                state: pb::TaskState::TaskRunning.into(),
                source: pb::TaskSource::SourceAgent.into(),
                uuid: uuid.clone(),
                timestamp: 1.0,
                ..Default::default()
            }),
        }))
        .await;
    let status = loop {
        match framework.next().await {
            Event::Update(update) => break update.status.expect("status"),
            Event::Offers(_) => continue,
            other => panic!("expected UPDATE, got {other:?}"),
        }
    };
    assert_eq!(status.state, i32::from(pb::TaskState::TaskRunning));
    assert_eq!(status.agent_id.as_ref(), Some(&agent_id));
    scheduler
        .acknowledge(pb::AcknowledgeRequest {
            framework_id: Some(framework.id.clone()),
            agent_id: Some(agent_id.clone()),
            task_id: Some(pb::TaskId { value: "t1".into() }),
            uuid: uuid.clone(),
        })
        .await
        .expect("acknowledge");
    match agent.next().await {
        Some(ToAgent::Acknowledge(ack)) => assert_eq!(ack.uuid, uuid),
        other => panic!("expected Acknowledge, got {other:?}"),
    }

    let state = server.state().await;
    assert_eq!(state.tasks.len(), 1);
    assert_eq!(state.tasks[0].state, i32::from(pb::TaskState::TaskRunning));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn malformed_agent_message_gets_an_error_and_the_stream_closes() {
    let server = TestServer::start().await;
    let mut agent = Agent::attach(&server).await;
    agent
        .send(ToMaster::Register(pb::RegisterAgent {
            agent_info: Some(pb::AgentInfo {
                hostname: String::new(),
                ..agent_info("x")
            }),
            agent_id: None,
            tasks: vec![],
        }))
        .await;
    match agent.next().await {
        Some(ToAgent::Error(message)) => {
            assert!(message.contains("register.agent_info.hostname"), "{message}");
        }
        other => panic!("expected an Error, got {other:?}"),
    }
    assert_eq!(agent.next().await, None, "the master closes the stream");

    // An empty message is malformed too.
    let mut agent = Agent::attach(&server).await;
    agent
        .outbound
        .send(pb::AgentMessage { message: None })
        .await
        .expect("open");
    match agent.next().await {
        Some(ToAgent::Error(message)) => assert!(message.contains("message"), "{message}"),
        other => panic!("expected an Error, got {other:?}"),
    }
    assert_eq!(agent.next().await, None);
    assert!(server.state().await.agents.is_empty());
}

#[tokio::test]
async fn dropping_the_event_stream_disconnects_the_framework() {
    let server = TestServer::start().await;
    let info = pb::FrameworkInfo {
        failover_timeout_seconds: 60.0,
        ..framework_info("fw")
    };
    let framework = Framework::subscribe(&server, info).await;
    let id = framework.id.clone();
    let connected = |state: &pb::ClusterState| {
        state
            .frameworks
            .iter()
            .find(|f| f.id.as_ref() == Some(&id))
            .map(|f| f.connected)
    };
    assert_eq!(connected(&server.state().await), Some(true));

    drop(framework);
    soon("the framework to be disconnected", async {
        while connected(&server.state().await) != Some(false) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // Calls from a disconnected framework are refused until it re-subscribes.
    let status = server
        .scheduler()
        .await
        .revive(pb::ReviveRequest {
            framework_id: Some(id.clone()),
            roles: vec![],
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::FailedPrecondition);
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn closing_the_agent_stream_disconnects_the_agent() {
    let server = TestServer::start().await;
    let mut agent = Agent::attach(&server).await;
    let agent_id = agent.register(agent_info("host-1")).await;
    let active = |state: &pb::ClusterState| {
        state
            .agents
            .iter()
            .find(|a| a.id.as_ref() == Some(&agent_id))
            .map(|a| a.active)
    };
    assert_eq!(active(&server.state().await), Some(true));
    drop(agent);
    soon("the agent to be disconnected", async {
        while active(&server.state().await) != Some(false) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn watchers_see_frameworks_agents_and_tasks_come_and_go() {
    let server = TestServer::start().await;
    let mut watch = server
        .operator()
        .await
        .watch_events(pb::WatchEventsRequest {})
        .await
        .expect("watch")
        .into_inner();
    let mut next = async || {
        soon("a cluster event", watch.message())
            .await
            .expect("watch failed")
            .expect("watch ended")
            .event
            .expect("event without a body")
    };

    let mut framework = Framework::subscribe(&server, framework_info("fw")).await;
    match next().await {
        ClusterEvent::FrameworkAdded(f) => {
            assert_eq!(f.id.as_ref(), Some(&framework.id));
            assert_eq!(f.info.map(|i| i.name).as_deref(), Some("fw"));
        }
        other => panic!("expected framework_added, got {other:?}"),
    }

    let mut agent = Agent::attach(&server).await;
    let agent_id = agent.register(agent_info("host-1")).await;
    match next().await {
        ClusterEvent::AgentAdded(a) => {
            assert_eq!(a.id.as_ref(), Some(&agent_id));
            assert_eq!(a.info.map(|i| i.hostname).as_deref(), Some("host-1"));
            assert!(a.total.contains(&scalar("cpus", 4.0)));
        }
        other => panic!("expected agent_added, got {other:?}"),
    }

    let offer = framework.offers().await.remove(0);
    let mut scheduler = server.scheduler().await;
    scheduler
        .accept(pb::AcceptRequest {
            framework_id: Some(framework.id.clone()),
            offer_ids: vec![offer.id.expect("offer id")],
            operations: vec![pb::Operation {
                operation: Some(pb::operation::Operation::Launch(pb::LaunchOperation {
                    task_infos: vec![pb::TaskInfo {
                        task_id: Some(pb::TaskId { value: "t1".into() }),
                        agent_id: Some(agent_id.clone()),
                        resources: vec![scalar("cpus", 1.0)],
                        command: Some(pb::CommandInfo {
                            value: "true".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                })),
            }],
            filters: None,
        })
        .await
        .expect("accept");
    match next().await {
        ClusterEvent::TaskUpdated(t) => {
            assert_eq!(t.state, i32::from(pb::TaskState::TaskStaging));
            assert_eq!(t.task.and_then(|t| t.task_id).map(|t| t.value).as_deref(), Some("t1"));
        }
        other => panic!("expected task_updated, got {other:?}"),
    }

    scheduler
        .teardown(pb::TeardownRequest {
            framework_id: Some(framework.id.clone()),
        })
        .await
        .expect("teardown");
    // The teardown kills the task (an update nobody receives: the framework
    // is gone) and removes the framework.
    loop {
        match next().await {
            ClusterEvent::FrameworkRemoved(id) => {
                assert_eq!(id, framework.id);
                break;
            }
            ClusterEvent::TaskUpdated(_) => continue,
            other => panic!("expected framework_removed, got {other:?}"),
        }
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_returns() {
    let server = TestServer::start().await;
    let mut framework = Framework::subscribe(&server, framework_info("fw")).await;
    let mut agent = Agent::attach(&server).await;
    agent.register(agent_info("host-1")).await;
    let mut watch = server
        .operator()
        .await
        .watch_events(pb::WatchEventsRequest {})
        .await
        .expect("watch")
        .into_inner();

    server.stop().await.expect("clean stop");

    // Every stream ends (cleanly or with an error, but it ends).
    soon("the event stream to end", async {
        while let Ok(Some(_)) = framework.events.message().await {}
    })
    .await;
    soon("the agent stream to end", async {
        while let Ok(Some(_)) = agent.inbound.message().await {}
    })
    .await;
    soon("the watch to end", async {
        while let Ok(Some(_)) = watch.message().await {}
    })
    .await;
}

#[tokio::test]
async fn weights_update_and_roles_read_back_over_grpc() {
    let server = TestServer::start().await;
    let mut info = framework_info("web-fw");
    info.roles = vec!["web".to_owned()];
    let framework = Framework::subscribe(&server, info).await;
    let mut operator = server.operator().await;

    let refused = operator
        .update_weights(pb::UpdateWeightsRequest {
            weights: vec![pb::RoleWeight {
                role: "web".to_owned(),
                weight: -1.0,
            }],
        })
        .await
        .expect_err("a negative weight is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("weights[0].weight"), "{}", refused.message());

    operator
        .update_weights(pb::UpdateWeightsRequest {
            weights: vec![
                pb::RoleWeight {
                    role: "web".to_owned(),
                    weight: 3.0,
                },
                pb::RoleWeight {
                    role: "batch".to_owned(),
                    weight: 0.5,
                },
            ],
        })
        .await
        .expect("valid weights");
    let roles = operator
        .get_roles(pb::GetRolesRequest {})
        .await
        .expect("get roles")
        .into_inner()
        .roles;
    let summary: Vec<(String, f64, Vec<pb::FrameworkId>)> =
        roles.into_iter().map(|r| (r.role, r.weight, r.frameworks)).collect();
    assert_eq!(
        summary,
        vec![
            ("batch".to_owned(), 0.5, vec![]),
            ("web".to_owned(), 3.0, vec![framework.id.clone()]),
        ]
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn quota_updates_and_roles_read_back_over_grpc() {
    let server = TestServer::start().await;
    let mut operator = server.operator().await;
    let scalar = |name: &str, value: f64| pb::Resource {
        name: name.to_owned(),
        value: Some(pb::resource::Value::Scalar(value)),
        reservation: String::new(),
    };
    let quota = |role: &str, limit: Vec<pb::Resource>| pb::RoleQuota {
        role: role.to_owned(),
        limit,
        guarantee: vec![],
    };

    let refused = operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![quota("web", vec![scalar("cpus", -1.0)])],
        })
        .await
        .expect_err("a negative limit is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("quotas[0].limit[0]"),
        "{}",
        refused.message()
    );

    operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![
                quota("web", vec![scalar("cpus", 10.0), scalar("mem", 4096.0)]),
                quota("batch", vec![scalar("gpus", 0.0)]),
            ],
        })
        .await
        .expect("valid quotas");
    assert_eq!(
        quotas(&mut operator).await,
        vec![
            ("batch".to_owned(), vec![scalar("gpus", 0.0)]),
            ("web".to_owned(), vec![scalar("cpus", 10.0), scalar("mem", 4096.0)]),
        ]
    );

    // A guarantee over the limit is refused, naming the field; one within
    // it shows in `GetRoles`.
    let refused = operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![pb::RoleQuota {
                role: "web".to_owned(),
                limit: vec![scalar("cpus", 10.0)],
                guarantee: vec![scalar("cpus", 12.0)],
            }],
        })
        .await
        .expect_err("a guarantee over the limit is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("quotas[0].guarantee"),
        "{}",
        refused.message()
    );
    operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![pb::RoleQuota {
                role: "gold".to_owned(),
                limit: vec![],
                guarantee: vec![scalar("cpus", 2.0)],
            }],
        })
        .await
        .expect("a guarantee alone");
    let roles = operator
        .get_roles(pb::GetRolesRequest {})
        .await
        .expect("roles")
        .into_inner()
        .roles;
    let gold = roles.iter().find(|r| r.role == "gold").expect("gold listed");
    assert_eq!(gold.guarantee, vec![scalar("cpus", 2.0)]);
    assert!(gold.quota.is_empty());
    operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![pb::RoleQuota {
                role: "gold".to_owned(),
                limit: vec![],
                guarantee: vec![],
            }],
        })
        .await
        .expect("removal");

    // An empty limit removes the quota; `web`, with no framework, weight,
    // allocation or reservation either, is then no longer listed.
    operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![quota("web", vec![])],
        })
        .await
        .expect("removal");
    assert_eq!(
        quotas(&mut operator).await,
        vec![("batch".to_owned(), vec![scalar("gpus", 0.0)])]
    );
    server.stop().await.expect("clean stop");
}

/// Every role's quota, as `GetRoles` shows it (but `gold`, which only had a guarantee).
async fn quotas(
    operator: &mut pb::operator_client::OperatorClient<tonic::transport::Channel>,
) -> Vec<(String, Vec<pb::Resource>)> {
    let roles = operator
        .get_roles(pb::GetRolesRequest {})
        .await
        .expect("get roles")
        .into_inner()
        .roles;
    roles
        .into_iter()
        .filter(|r| r.role != "gold")
        .map(|r| (r.role, r.quota))
        .collect()
}

#[tokio::test]
async fn operator_reservations_rescind_offers_and_errors_say_why() {
    let server = TestServer::start().await;
    let mut framework = Framework::subscribe(&server, framework_info("fw")).await;
    let mut agent = Agent::attach(&server).await;
    let agent_id = agent.register(agent_info("host-1")).await;
    let offer = framework.offers().await.remove(0);
    let mut operator = server.operator().await;
    let reserved = |name: &str, value: f64| pb::Resource {
        reservation: "ads".to_owned(),
        ..scalar(name, value)
    };

    // The whole agent is offered: reserving rescinds that offer first.
    operator
        .reserve_resources(pb::ReserveResourcesRequest {
            agent_id: Some(agent_id.clone()),
            resources: vec![reserved("cpus", 2.0), reserved("mem", 512.0)],
        })
        .await
        .expect("reserve");
    match framework.next().await {
        Event::Rescind(r) => assert_eq!(r.offer_id, offer.id),
        other => panic!("expected RESCIND, got {other:?}"),
    }
    // The `*` framework is offered only what is left unreserved.
    let offers = framework.offers().await;
    assert_eq!(offers[0].resources, vec![scalar("cpus", 2.0), scalar("mem", 512.0)]);
    let state = server.state().await;
    assert!(state.agents[0].total.contains(&reserved("cpus", 2.0)), "{state:?}");
    let roles = operator
        .get_roles(pb::GetRolesRequest {})
        .await
        .expect("roles")
        .into_inner()
        .roles;
    let ads = roles
        .iter()
        .find(|r| r.role == "ads")
        .expect("a reserved role is listed");
    assert_eq!(ads.reserved, vec![reserved("cpus", 2.0), reserved("mem", 512.0)]);

    let refused = operator
        .reserve_resources(pb::ReserveResourcesRequest {
            agent_id: Some(agent_id.clone()),
            resources: vec![reserved("cpus", 8.0)],
        })
        .await
        .expect_err("more than the agent has");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("cpus:8 must be free on the agent (not used by tasks), but only cpus:2 is"),
        "{}",
        refused.message()
    );
    let refused = operator
        .unreserve_resources(pb::UnreserveResourcesRequest {
            agent_id: Some(pb::AgentId {
                value: "nope".to_owned(),
            }),
            resources: vec![reserved("cpus", 1.0)],
        })
        .await
        .expect_err("unknown agent");
    assert_eq!(refused.code(), Code::NotFound);
    let refused = operator
        .reserve_resources(pb::ReserveResourcesRequest {
            agent_id: None,
            resources: vec![reserved("cpus", 1.0)],
        })
        .await
        .expect_err("no agent");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("agent_id"), "{}", refused.message());
    let refused = operator
        .reserve_resources(pb::ReserveResourcesRequest {
            agent_id: Some(agent_id.clone()),
            resources: vec![scalar("cpus", 1.0)],
        })
        .await
        .expect_err("no role");
    assert_eq!(refused.code(), Code::InvalidArgument);

    operator
        .unreserve_resources(pb::UnreserveResourcesRequest {
            agent_id: Some(agent_id.clone()),
            resources: vec![reserved("cpus", 2.0), reserved("mem", 512.0)],
        })
        .await
        .expect("unreserve");
    let state = server.state().await;
    assert_eq!(state.agents[0].total, vec![scalar("cpus", 4.0), scalar("mem", 1024.0)]);
    server.stop().await.expect("clean stop");
}

/// A fresh directory for a master's registry.
fn work_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("agora-grpc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Role weights and quotas, as `GetRoles` shows them.
async fn weights_and_quotas(server: &TestServer) -> Vec<(String, f64, Vec<pb::Resource>, Vec<pb::Resource>)> {
    let roles = server
        .operator()
        .await
        .get_roles(pb::GetRolesRequest {})
        .await
        .expect("get roles")
        .into_inner()
        .roles;
    roles
        .into_iter()
        .map(|r| (r.role, r.weight, r.quota, r.guarantee))
        .collect()
}

#[tokio::test]
async fn weights_and_quotas_survive_a_restart_with_the_same_work_dir() {
    let dir = work_dir("registry");
    let config = || ServerConfig {
        work_dir: Some(dir.clone()),
        ..support::config()
    };
    let server = TestServer::start_with(config()).await;
    let mut operator = server.operator().await;
    operator
        .update_weights(pb::UpdateWeightsRequest {
            weights: vec![pb::RoleWeight {
                role: "web".to_owned(),
                weight: 2.5,
            }],
        })
        .await
        .expect("weights");
    operator
        .update_quota(pb::UpdateQuotaRequest {
            quotas: vec![pb::RoleQuota {
                role: "eng/backend".to_owned(),
                limit: vec![scalar("cpus", 8.0)],
                guarantee: vec![scalar("cpus", 2.0)],
            }],
        })
        .await
        .expect("quota");
    let before = weights_and_quotas(&server).await;
    assert_eq!(before.len(), 2, "{before:?}");
    server.stop().await.expect("clean stop");

    let server = TestServer::start_with(config()).await;
    assert_eq!(weights_and_quotas(&server).await, before);

    // A registry that cannot be written: the change is refused and undone.
    let file = dir.join(registry::FILE_NAME);
    std::fs::remove_file(&file).expect("remove the registry file");
    std::fs::create_dir_all(file.join("in-the-way")).expect("a directory in its place");
    let refused = server
        .operator()
        .await
        .update_weights(pb::UpdateWeightsRequest {
            weights: vec![pb::RoleWeight {
                role: "web".to_owned(),
                weight: 4.0,
            }],
        })
        .await
        .expect_err("the registry cannot be written");
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(refused.message().contains("nothing changed"), "{}", refused.message());
    assert_eq!(weights_and_quotas(&server).await, before);
    server.stop().await.expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A master restarted on the same work dir recovers its registry: a
/// framework's failover timeout counts from its disconnection before the
/// restart, a dynamic reservation is back when its agent re-registers, and a
/// gone agent is still gone.
#[tokio::test]
#[allow(clippy::disallowed_methods)] // a black-box test of a real server measures real time
async fn a_restarted_master_keeps_failover_deadlines_reservations_and_gone_agents() {
    let dir = work_dir("recovery");
    let config = || {
        let mut config = ServerConfig {
            work_dir: Some(dir.clone()),
            ..support::config()
        };
        // An agent that stops answering is unreachable after 5 × 100 ms, gone 200 ms later.
        config.master.agent_ping_interval = Duration::from_millis(100);
        config.master.agent_unreachable_timeout = Duration::from_millis(200);
        config
    };
    let server = TestServer::start_with(config()).await;

    // An agent goes away for good.
    let mut gone = Agent::attach(&server).await;
    let gone_id = gone.register(agent_info("gone")).await;
    drop(gone);
    soon("the agent to be gone", async {
        while server
            .state()
            .await
            .agents
            .iter()
            .any(|a| a.id.as_ref() == Some(&gone_id))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // An agent with a reservation, and a framework that disconnects.
    let mut agent = Agent::attach(&server).await;
    let agent_id = agent.register(agent_info("kept")).await;
    let reserved = |name: &str, value: f64| pb::Resource {
        reservation: "ads".to_owned(),
        ..scalar(name, value)
    };
    server
        .operator()
        .await
        .reserve_resources(pb::ReserveResourcesRequest {
            agent_id: Some(agent_id.clone()),
            resources: vec![reserved("cpus", 1.0)],
        })
        .await
        .expect("reserve");
    let failover = Duration::from_millis(1500);
    let leaving = Framework::subscribe(
        &server,
        pb::FrameworkInfo {
            failover_timeout_seconds: failover.as_secs_f64(),
            ..framework_info("leaving")
        },
    )
    .await;
    let leaving_id = leaving.id.clone();
    drop(leaving);
    let disconnected = std::time::Instant::now();
    soon("the framework to be disconnected", async {
        while server.state().await.frameworks.iter().any(|f| f.connected) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // The master is down for two thirds of the failover timeout.
    server.stop().await.expect("clean stop");
    drop(agent);
    tokio::time::sleep(failover * 2 / 3).await;

    let server = TestServer::start_with(config()).await;
    let state = server.state().await;
    assert!(
        state
            .frameworks
            .iter()
            .any(|f| f.id.as_ref() == Some(&leaving_id) && !f.connected),
        "the framework is recovered, disconnected: {state:?}"
    );
    assert!(
        state
            .agents
            .iter()
            .any(|a| a.id.as_ref() == Some(&agent_id) && !a.active),
        "the agent is expected back: {state:?}"
    );
    assert!(!state.agents.iter().any(|a| a.id.as_ref() == Some(&gone_id)));

    // The agent comes back: its reservation is applied again.
    let mut agent = Agent::attach(&server).await;
    agent
        .send(ToMaster::Register(pb::RegisterAgent {
            agent_info: Some(agent_info("kept")),
            agent_id: Some(agent_id.clone()),
            tasks: vec![],
        }))
        .await;
    assert!(matches!(agent.next().await, Some(ToAgent::Registered(_))));
    let state = server.state().await;
    let total = &state
        .agents
        .iter()
        .find(|a| a.id.as_ref() == Some(&agent_id))
        .expect("the agent")
        .total;
    assert!(total.contains(&reserved("cpus", 1.0)), "{total:?}");
    assert!(total.contains(&scalar("cpus", 3.0)), "{total:?}");

    // A partition-aware framework asks about a task on the gone agent: GONE.
    let mut info = framework_info("asking");
    info.capabilities = vec![pb::FrameworkCapability::PartitionAware as i32];
    let mut asking = Framework::subscribe(&server, info).await;
    server
        .scheduler()
        .await
        .reconcile(pb::ReconcileRequest {
            framework_id: Some(asking.id.clone()),
            tasks: vec![pb::ReconcileTask {
                task_id: Some(pb::TaskId { value: "t".to_owned() }),
                agent_id: Some(gone_id.clone()),
            }],
        })
        .await
        .expect("reconcile");
    loop {
        if let Event::Update(update) = asking.next().await {
            let status = update.status.expect("a status");
            assert_eq!(status.state, pb::TaskState::TaskGone as i32, "{status:?}");
            break;
        }
    }

    // The leaving framework's timeout ran from its disconnection before the
    // restart, not from the restart.
    soon("the framework's failover timeout", async {
        while server
            .state()
            .await
            .frameworks
            .iter()
            .any(|f| f.id.as_ref() == Some(&leaving_id))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let removed_after = disconnected.elapsed();
    assert!(
        removed_after < failover + failover / 3,
        "removed {removed_after:?} after it disconnected (timeout {failover:?})"
    );
    assert!(removed_after >= failover, "removed too early: {removed_after:?}");
    server.stop().await.expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
