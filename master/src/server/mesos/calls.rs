//! Mesos v1 scheduler calls in JSON (`include/mesos/v1/scheduler/scheduler.proto`,
//! `mesos.proto`) → the domain's [`FrameworkCall`]s.
//!
//! The JSON is first read into the typed shapes below (field names as in the
//! protos, `null` meaning unset anywhere), then built into our own wire
//! messages (`pb::*`), whose `TryFrom` conversions do the validation the
//! gRPC API does. Errors name the field at fault with its JSON path
//! (`accept.operations[0].launch.task_infos[1].resources`).
//!
//! What Agora does not support (custom executors, containers with images,
//! fetcher URIs, health checks, persistent volumes, refined reservations,
//! operation feedback, framework messages, ...) is refused with a
//! [`CallError::Unsupported`] naming it, never silently dropped.

use agora_proto::{Call, FrameworkCall, FrameworkId, FrameworkInfo, ProtoError, StatusUuid, pb};
use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;

/// Why a call cannot be translated. All are answered `400 Bad Request`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// The body is not JSON, or not a `Call` (a field of the wrong type).
    #[error("Failed to convert JSON into Call protobuf: {0}")]
    Json(String),
    /// A field is missing or holds an invalid value.
    #[error("Failed to validate scheduler::Call: {0}")]
    Invalid(String),
    /// The call uses something Agora does not implement.
    #[error("Unsupported by Agora: {0}")]
    Unsupported(String),
}

impl From<ProtoError> for CallError {
    fn from(e: ProtoError) -> Self {
        Self::Invalid(e.to_string())
    }
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> CallError {
    CallError::Invalid(format!("field `{field}`: {reason}"))
}

fn unsupported(what: impl Into<String>) -> CallError {
    CallError::Unsupported(what.into())
}

/// A call as the HTTP layer needs it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MesosCall {
    /// SUBSCRIBE. The framework description, or why it is invalid: an
    /// invalid description still opens a stream, which then carries an ERROR
    /// event (as in Mesos).
    Subscribe(Result<FrameworkInfo, String>),
    /// A call the core handles.
    Call(FrameworkCall),
    /// REQUEST: accepted and ignored, as Mesos' default allocator does.
    Ignored(FrameworkId),
}

/// `null` or absent → the default; anything else as `T`.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A field Agora does not implement: present and not `null` is refused.
type Unimplemented = Option<serde_json::Value>;

fn refuse(field: &Unimplemented, what: &str) -> Result<(), CallError> {
    match field {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(_) => Err(unsupported(what.to_owned())),
    }
}

#[derive(Debug, Deserialize)]
struct Id {
    value: String,
}

#[derive(Debug, Deserialize)]
struct JsonCall {
    framework_id: Option<Id>,
    #[serde(rename = "type")]
    kind: Option<String>,
    subscribe: Option<Subscribe>,
    accept: Option<Accept>,
    decline: Option<Decline>,
    revive: Option<Roles>,
    suppress: Option<Roles>,
    kill: Option<Kill>,
    acknowledge: Option<Acknowledge>,
    reconcile: Option<Reconcile>,
    update_framework: Option<UpdateFramework>,
}

#[derive(Debug, Deserialize)]
struct Subscribe {
    framework_info: Option<JsonFrameworkInfo>,
    #[serde(default, deserialize_with = "nullable")]
    suppressed_roles: Vec<String>,
    offer_constraints: Unimplemented,
}

#[derive(Debug, Deserialize)]
struct JsonFrameworkInfo {
    #[serde(default, deserialize_with = "nullable")]
    user: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    id: Option<Id>,
    failover_timeout: Option<f64>,
    #[serde(default, deserialize_with = "nullable")]
    role: String,
    #[serde(default, deserialize_with = "nullable")]
    roles: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    hostname: String,
    #[serde(default, deserialize_with = "nullable")]
    capabilities: Vec<Capability>,
    offer_filters: Option<HashMap<String, OfferFilters>>,
    // Accepted and not used: `checkpoint` (agents keep no checkpoints yet),
    // `principal` (no authentication), `webui_url`, `labels`.
}

#[derive(Debug, Deserialize)]
struct Capability {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OfferFilters {
    min_allocatable_resources: Option<MinAllocatable>,
}

#[derive(Debug, Deserialize)]
struct MinAllocatable {
    #[serde(default, deserialize_with = "nullable")]
    quantities: Vec<Quantities>,
}

#[derive(Debug, Deserialize)]
struct Quantities {
    #[serde(default, deserialize_with = "nullable")]
    quantities: HashMap<String, ScalarValue>,
}

#[derive(Debug, Deserialize)]
struct ScalarValue {
    value: f64,
}

#[derive(Debug, Default, Deserialize)]
struct Filters {
    refuse_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Accept {
    #[serde(default, deserialize_with = "nullable")]
    offer_ids: Vec<Id>,
    #[serde(default, deserialize_with = "nullable")]
    operations: Vec<Operation>,
    filters: Option<Filters>,
}

#[derive(Debug, Deserialize)]
struct Decline {
    #[serde(default, deserialize_with = "nullable")]
    offer_ids: Vec<Id>,
    filters: Option<Filters>,
}

#[derive(Debug, Default, Deserialize)]
struct Roles {
    #[serde(default, deserialize_with = "nullable")]
    roles: Vec<String>,
    /// Deprecated single role.
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Kill {
    task_id: Option<Id>,
    agent_id: Option<Id>,
    kill_policy: Unimplemented,
}

#[derive(Debug, Deserialize)]
struct Acknowledge {
    agent_id: Option<Id>,
    task_id: Option<Id>,
    uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Reconcile {
    #[serde(default, deserialize_with = "nullable")]
    tasks: Vec<ReconcileTask>,
}

#[derive(Debug, Deserialize)]
struct ReconcileTask {
    task_id: Option<Id>,
    agent_id: Option<Id>,
}

#[derive(Debug, Deserialize)]
struct UpdateFramework {
    framework_info: Option<JsonFrameworkInfo>,
    #[serde(default, deserialize_with = "nullable")]
    suppressed_roles: Vec<String>,
    offer_constraints: Unimplemented,
}

#[derive(Debug, Deserialize)]
struct Operation {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Unimplemented,
    launch: Option<Launch>,
    reserve: Option<ResourcesOperation>,
    unreserve: Option<ResourcesOperation>,
}

#[derive(Debug, Deserialize)]
struct Launch {
    #[serde(default, deserialize_with = "nullable")]
    task_infos: Vec<TaskInfo>,
}

#[derive(Debug, Deserialize)]
struct ResourcesOperation {
    #[serde(default, deserialize_with = "nullable")]
    resources: Vec<Resource>,
}

#[derive(Debug, Deserialize)]
struct TaskInfo {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    task_id: Option<Id>,
    agent_id: Option<Id>,
    #[serde(default, deserialize_with = "nullable")]
    resources: Vec<Resource>,
    command: Option<Command>,
    kill_policy: Option<KillPolicy>,
    executor: Unimplemented,
    container: Option<Container>,
    health_check: Unimplemented,
    check: Unimplemented,
    max_completion_time: Unimplemented,
    limits: Unimplemented,
    // Accepted and not used: `labels`, `discovery`, `data` (the command
    // executor never reads it).
}

#[derive(Debug, Deserialize)]
struct Container {
    #[serde(rename = "type")]
    kind: Option<String>,
    docker: Unimplemented,
    mesos: Option<MesosContainer>,
    #[serde(default, deserialize_with = "nullable")]
    volumes: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct MesosContainer {
    image: Unimplemented,
}

#[derive(Debug, Deserialize)]
struct Command {
    value: Option<String>,
    shell: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    arguments: Vec<String>,
    environment: Option<Environment>,
    user: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    uris: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Environment {
    #[serde(default, deserialize_with = "nullable")]
    variables: Vec<Variable>,
}

#[derive(Debug, Deserialize)]
struct Variable {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
    secret: Unimplemented,
}

#[derive(Debug, Deserialize)]
struct KillPolicy {
    grace_period: Option<DurationInfo>,
}

#[derive(Debug, Deserialize)]
struct DurationInfo {
    #[serde(deserialize_with = "int64")]
    nanoseconds: i64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Resource {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    scalar: Option<ScalarValue>,
    ranges: Option<Ranges>,
    set: Option<Set>,
    /// Deprecated (pre reservation refinement): the role reserved for, `*` unreserved.
    role: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    reservations: Vec<Reservation>,
    disk: Unimplemented,
    revocable: Unimplemented,
    shared: Unimplemented,
    provider_id: Unimplemented,
    // Accepted and not used: `allocation_info` (Agora knows each offer's
    // role), `reservation` (the deprecated form's principal and labels).
}

#[derive(Debug, Deserialize)]
struct Ranges {
    #[serde(default, deserialize_with = "nullable")]
    range: Vec<Range>,
}

#[derive(Debug, Deserialize)]
struct Range {
    #[serde(deserialize_with = "int64")]
    begin: u64,
    #[serde(deserialize_with = "int64")]
    end: u64,
}

/// A 64-bit integer as a JSON number or, as the proto3 JSON mapping writes
/// it, a string of digits.
fn int64<'de, D: Deserializer<'de>, T: std::str::FromStr + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString<T> {
        Number(T),
        String(String),
    }
    match NumberOrString::<T>::deserialize(d)? {
        NumberOrString::Number(n) => Ok(n),
        NumberOrString::String(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer"))),
    }
}

#[derive(Debug, Deserialize)]
struct Set {
    #[serde(default, deserialize_with = "nullable")]
    item: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Reservation {
    role: Option<String>,
}

/// Parses and translates a call's JSON body.
pub(crate) fn parse(body: &[u8]) -> Result<MesosCall, CallError> {
    let call: JsonCall = serde_json::from_slice(body).map_err(|e| CallError::Json(e.to_string()))?;
    translate(call)
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, CallError> {
    value.ok_or_else(|| CallError::Invalid(format!("Expecting '{field}' to be present")))
}

fn framework_id(call: &JsonCall) -> Result<FrameworkId, CallError> {
    let id = required(call.framework_id.as_ref(), "framework_id")?;
    FrameworkId::new(id.value.clone()).map_err(|e| CallError::from(e.within("framework_id")))
}

fn translate(mut call: JsonCall) -> Result<MesosCall, CallError> {
    let kind = required(call.kind.take(), "type")?;
    if kind == "SUBSCRIBE" {
        return subscribe(call);
    }
    let framework_id = framework_id(&call)?;
    let wire_id = Some(pb::FrameworkId {
        value: framework_id.as_str().to_owned(),
    });
    let within = |field: &'static str| move |e: ProtoError| CallError::from(e.within(field));
    let domain = match kind.as_str() {
        "TEARDOWN" => Call::Teardown,
        "ACCEPT" => {
            let accept = required(call.accept.take(), "accept")?;
            let operations = accept
                .operations
                .into_iter()
                .enumerate()
                .map(|(i, op)| operation(op, &format!("accept.operations[{i}]")))
                .collect::<Result<_, _>>()?;
            let wire = pb::AcceptRequest {
                framework_id: wire_id,
                offer_ids: offer_ids(accept.offer_ids),
                operations,
                filters: accept.filters.map(filters),
            };
            FrameworkCall::try_from(wire).map_err(within("accept"))?.call
        }
        "DECLINE" => {
            let decline = required(call.decline.take(), "decline")?;
            let wire = pb::DeclineRequest {
                framework_id: wire_id,
                offer_ids: offer_ids(decline.offer_ids),
                filters: decline.filters.map(filters),
            };
            FrameworkCall::try_from(wire).map_err(within("decline"))?.call
        }
        "REVIVE" => {
            let roles = roles(call.revive.take().unwrap_or_default());
            let wire = pb::ReviveRequest {
                framework_id: wire_id,
                roles,
            };
            FrameworkCall::try_from(wire).map_err(within("revive"))?.call
        }
        "SUPPRESS" => {
            let roles = roles(call.suppress.take().unwrap_or_default());
            let wire = pb::SuppressRequest {
                framework_id: wire_id,
                roles,
            };
            FrameworkCall::try_from(wire).map_err(within("suppress"))?.call
        }
        "KILL" => {
            let kill = required(call.kill.take(), "kill")?;
            refuse(
                &kill.kill_policy,
                "kill.kill_policy (a KILL uses the task's own kill policy)",
            )?;
            let wire = pb::KillRequest {
                framework_id: wire_id,
                task_id: kill.task_id.map(task_id),
                agent_id: kill.agent_id.map(agent_id),
            };
            FrameworkCall::try_from(wire).map_err(within("kill"))?.call
        }
        "ACKNOWLEDGE" => {
            let ack = required(call.acknowledge.take(), "acknowledge")?;
            let uuid = required(ack.uuid, "acknowledge.uuid")?;
            let uuid = decode_uuid(&uuid).ok_or_else(|| CallError::Invalid("Not a valid UUID".to_owned()))?;
            let wire = pb::AcknowledgeRequest {
                framework_id: wire_id,
                agent_id: ack.agent_id.map(agent_id),
                task_id: ack.task_id.map(task_id),
                uuid: uuid.0.to_vec(),
            };
            FrameworkCall::try_from(wire).map_err(within("acknowledge"))?.call
        }
        "RECONCILE" => {
            let reconcile = call.reconcile.take().map(|r| r.tasks).unwrap_or_default();
            let wire = pb::ReconcileRequest {
                framework_id: wire_id,
                tasks: reconcile
                    .into_iter()
                    .map(|t| pb::ReconcileTask {
                        task_id: t.task_id.map(task_id),
                        agent_id: t.agent_id.map(agent_id),
                    })
                    .collect(),
            };
            FrameworkCall::try_from(wire).map_err(within("reconcile"))?.call
        }
        "UPDATE_FRAMEWORK" => {
            let update = required(call.update_framework.take(), "update_framework")?;
            refuse(&update.offer_constraints, "update_framework.offer_constraints")?;
            if !update.suppressed_roles.is_empty() {
                return Err(unsupported(
                    "update_framework.suppressed_roles (send SUPPRESS after UPDATE_FRAMEWORK)",
                ));
            }
            let info = required(update.framework_info, "update_framework.framework_info")?;
            let info = framework_info(info, "update_framework.framework_info")?;
            if info.id.as_ref() != Some(&framework_id) {
                return Err(CallError::Invalid(
                    "'framework_info.id' must be set and equal the call's 'framework_id'".to_owned(),
                ));
            }
            Call::UpdateFramework(info)
        }
        "REQUEST" => return Ok(MesosCall::Ignored(framework_id)),
        "MESSAGE" => {
            return Err(unsupported(
                "MESSAGE: Agora runs command tasks only and has no executors to send messages to",
            ));
        }
        "SHUTDOWN" => {
            return Err(unsupported(
                "SHUTDOWN: Agora has no custom executors; KILL the executor's tasks instead",
            ));
        }
        "ACCEPT_INVERSE_OFFERS" | "DECLINE_INVERSE_OFFERS" => {
            return Err(unsupported(format!(
                "{kind}: Agora sends no inverse offers (no maintenance)"
            )));
        }
        "ACKNOWLEDGE_OPERATION_STATUS" | "RECONCILE_OPERATIONS" => {
            return Err(unsupported(format!(
                "{kind}: Agora gives no operation feedback (operations carry no id)"
            )));
        }
        "UNKNOWN" => return Err(CallError::Invalid("Call type UNKNOWN".to_owned())),
        other => return Err(CallError::Json(format!("unknown call type {other:?}"))),
    };
    Ok(MesosCall::Call(FrameworkCall {
        framework_id,
        call: domain,
    }))
}

fn subscribe(mut call: JsonCall) -> Result<MesosCall, CallError> {
    let subscribe = required(call.subscribe.take(), "subscribe")?;
    let info = required(subscribe.framework_info, "subscribe.framework_info")?;
    // A re-subscription names its id twice; they must agree (Mesos' validation).
    let top = call.framework_id.as_ref().map(|id| id.value.as_str());
    let inner = info.id.as_ref().map(|id| id.value.as_str());
    if top.is_some() && top != inner {
        return Err(CallError::Invalid(
            "'framework_id' differs from 'subscribe.framework_info.id'".to_owned(),
        ));
    }
    let mut problems: Vec<String> = Vec::new();
    if !subscribe.suppressed_roles.is_empty() {
        problems.push("subscribe.suppressed_roles is not supported by Agora (send SUPPRESS after SUBSCRIBED)".into());
    }
    if refuse(&subscribe.offer_constraints, "").is_err() {
        problems.push("subscribe.offer_constraints is not supported by Agora".into());
    }
    let info = framework_info(info, "subscribe.framework_info").map_err(|e| e.to_string());
    Ok(MesosCall::Subscribe(match (problems.is_empty(), info) {
        (true, info) => info,
        (false, _) => Err(problems.join("; ")),
    }))
}

fn framework_info(info: JsonFrameworkInfo, field: &str) -> Result<FrameworkInfo, CallError> {
    let mut roles = info.roles;
    if roles.is_empty() && !info.role.is_empty() {
        roles.push(info.role);
    }
    let mut capabilities = Vec::new();
    for (i, capability) in info.capabilities.iter().enumerate() {
        match capability.kind.as_deref() {
            Some("PARTITION_AWARE") => capabilities.push(pb::FrameworkCapability::PartitionAware as i32),
            Some("TASK_KILLING_STATE") => capabilities.push(pb::FrameworkCapability::TaskKillingState as i32),
            // Behaviours Agora has anyway, or that change nothing here.
            Some(
                "MULTI_ROLE"
                | "RESERVATION_REFINEMENT"
                | "REGION_AWARE"
                | "GPU_RESOURCES"
                | "SHARED_RESOURCES"
                | "REVOCABLE_RESOURCES"
                | "AGENT_OPERATION_FEEDBACK",
            ) => {}
            Some(other) => {
                return Err(unsupported(format!("{field}.capabilities[{i}]: {other}")));
            }
            None => return Err(invalid(&format!("{field}.capabilities[{i}].type"), "is required")),
        }
    }
    let mut min_allocatable = HashMap::new();
    for (role, filters) in info.offer_filters.unwrap_or_default() {
        let quantities = filters
            .min_allocatable_resources
            .map(|m| m.quantities)
            .unwrap_or_default()
            .into_iter()
            .map(|q| pb::ResourceQuantity {
                resources: q
                    .quantities
                    .into_iter()
                    .map(|(name, v)| pb::Resource {
                        name,
                        value: Some(pb::resource::Value::Scalar(v.value)),
                        reservation: String::new(),
                    })
                    .collect(),
            })
            .collect();
        min_allocatable.insert(role, pb::MinAllocatable { quantities });
    }
    let wire = pb::FrameworkInfo {
        id: info.id.map(|id| pb::FrameworkId { value: id.value }),
        name: info.name,
        user: info.user,
        roles,
        failover_timeout_seconds: info.failover_timeout.unwrap_or(0.0),
        capabilities,
        hostname: info.hostname,
        offer_constraints: Vec::new(),
        min_allocatable: min_allocatable.into_iter().collect(),
    };
    FrameworkInfo::try_from(wire).map_err(|e| CallError::from(e.within(field)))
}

fn roles(roles: Roles) -> Vec<String> {
    let mut all = roles.roles;
    if let Some(role) = roles.role {
        all.push(role);
    }
    all
}

fn filters(f: Filters) -> pb::Filters {
    pb::Filters {
        refuse_seconds: f.refuse_seconds,
    }
}

fn offer_ids(ids: Vec<Id>) -> Vec<pb::OfferId> {
    ids.into_iter().map(|id| pb::OfferId { value: id.value }).collect()
}

fn task_id(id: Id) -> pb::TaskId {
    pb::TaskId { value: id.value }
}

fn agent_id(id: Id) -> pb::AgentId {
    pb::AgentId { value: id.value }
}

/// A status update's uuid: 16 bytes, base64 in JSON.
pub(crate) fn decode_uuid(text: &str) -> Option<StatusUuid> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    let raw: [u8; 16] = bytes.try_into().ok()?;
    Some(StatusUuid(raw))
}

fn operation(op: Operation, field: &str) -> Result<pb::Operation, CallError> {
    refuse(&op.id, &format!("{field}.id (operation feedback)"))?;
    let kind = required(op.kind, &format!("{field}.type"))?;
    let operation = match kind.as_str() {
        "LAUNCH" => {
            let launch = required(op.launch, &format!("{field}.launch"))?;
            let task_infos = launch
                .task_infos
                .into_iter()
                .enumerate()
                .map(|(i, t)| task_info(t, &format!("{field}.launch.task_infos[{i}]")))
                .collect::<Result<_, _>>()?;
            pb::operation::Operation::Launch(pb::LaunchOperation { task_infos })
        }
        "RESERVE" => {
            let reserve = required(op.reserve, &format!("{field}.reserve"))?;
            pb::operation::Operation::Reserve(pb::ReserveOperation {
                resources: resources(reserve.resources, &format!("{field}.reserve.resources"))?,
            })
        }
        "UNRESERVE" => {
            let unreserve = required(op.unreserve, &format!("{field}.unreserve"))?;
            pb::operation::Operation::Unreserve(pb::UnreserveOperation {
                resources: resources(unreserve.resources, &format!("{field}.unreserve.resources"))?,
            })
        }
        other => {
            return Err(unsupported(format!(
                "{field}.type {other}: Agora supports LAUNCH, RESERVE and UNRESERVE"
            )));
        }
    };
    Ok(pb::Operation {
        operation: Some(operation),
    })
}

fn task_info(t: TaskInfo, field: &str) -> Result<pb::TaskInfo, CallError> {
    refuse(&t.executor, &format!("{field}.executor (custom executors)"))?;
    refuse(&t.health_check, &format!("{field}.health_check"))?;
    refuse(&t.check, &format!("{field}.check"))?;
    refuse(&t.max_completion_time, &format!("{field}.max_completion_time"))?;
    refuse(&t.limits, &format!("{field}.limits"))?;
    if let Some(container) = &t.container {
        if !matches!(container.kind.as_deref(), None | Some("MESOS")) {
            return Err(unsupported(format!(
                "{field}.container.type {}: Agora runs tasks in its own containerizer",
                container.kind.as_deref().unwrap_or_default()
            )));
        }
        refuse(&container.docker, &format!("{field}.container.docker"))?;
        if let Some(mesos) = &container.mesos {
            refuse(
                &mesos.image,
                &format!("{field}.container.mesos.image (container images)"),
            )?;
        }
        if !container.volumes.is_empty() {
            return Err(unsupported(format!("{field}.container.volumes")));
        }
    }
    let command = t.command.map(|c| command(c, &format!("{field}.command"))).transpose()?;
    let kill_policy = t.kill_policy.and_then(|k| k.grace_period).map(|g| pb::KillPolicy {
        grace_period_seconds: g.nanoseconds as f64 / 1e9,
    });
    Ok(pb::TaskInfo {
        name: t.name,
        task_id: t.task_id.map(task_id),
        agent_id: t.agent_id.map(agent_id),
        resources: resources(t.resources, &format!("{field}.resources"))?,
        command,
        kill_policy,
    })
}

fn command(c: Command, field: &str) -> Result<pb::CommandInfo, CallError> {
    if !c.uris.is_empty() {
        return Err(unsupported(format!("{field}.uris (the fetcher)")));
    }
    let mut environment = HashMap::new();
    for (i, var) in c
        .environment
        .map(|e| e.variables)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let at = format!("{field}.environment.variables[{i}]");
        refuse(&var.secret, &format!("{at}.secret"))?;
        if !matches!(var.kind.as_deref(), None | Some("VALUE")) {
            return Err(unsupported(format!("{at}.type {}", var.kind.unwrap_or_default())));
        }
        if var.name.is_empty() {
            return Err(invalid(&format!("{at}.name"), "is required"));
        }
        environment.insert(var.name, var.value.unwrap_or_default());
    }
    let value = c.value.unwrap_or_default();
    // Mesos execs `value` with `arguments` as the argv; Agora execs
    // `arguments[0]`. Putting `value` there runs the same program (argv[0]
    // is then the program's path rather than the name the framework chose).
    let mut arguments = c.arguments;
    if c.shell == Some(false) {
        match arguments.first_mut() {
            Some(first) => first.clone_from(&value),
            None => arguments.push(value.clone()),
        }
    }
    Ok(pb::CommandInfo {
        value,
        shell: c.shell,
        arguments,
        environment,
        user: c.user.unwrap_or_default(),
    })
}

/// Mesos `Resource`s → our wire resources (validated later by `Resources::try_from`).
fn resources(list: Vec<Resource>, field: &str) -> Result<Vec<pb::Resource>, CallError> {
    list.into_iter()
        .enumerate()
        .map(|(i, r)| resource(r, &format!("{field}[{i}]")))
        .collect()
}

pub(crate) fn resource(r: Resource, field: &str) -> Result<pb::Resource, CallError> {
    refuse(&r.disk, &format!("{field}.disk (persistent volumes and disk sources)"))?;
    refuse(&r.revocable, &format!("{field}.revocable"))?;
    refuse(&r.shared, &format!("{field}.shared"))?;
    refuse(&r.provider_id, &format!("{field}.provider_id (resource providers)"))?;
    let kind = match r.kind.as_deref() {
        Some(kind) => kind,
        None if r.scalar.is_some() => "SCALAR",
        None if r.ranges.is_some() => "RANGES",
        None if r.set.is_some() => "SET",
        None => return Err(invalid(&format!("{field}.type"), "is required")),
    };
    let value = match kind {
        "SCALAR" => pb::resource::Value::Scalar(required(r.scalar, &format!("{field}.scalar"))?.value),
        "RANGES" => pb::resource::Value::Ranges(pb::Ranges {
            range: required(r.ranges, &format!("{field}.ranges"))?
                .range
                .into_iter()
                .map(|r| pb::Range {
                    begin: r.begin,
                    end: r.end,
                })
                .collect(),
        }),
        "SET" => pb::resource::Value::Set(pb::Set {
            item: required(r.set, &format!("{field}.set"))?.item,
        }),
        other => return Err(invalid(&format!("{field}.type"), format!("unknown type {other:?}"))),
    };
    let reservation = match r.reservations.as_slice() {
        [] => r.role.filter(|role| role != "*").unwrap_or_default(),
        [one] => required(one.role.clone(), &format!("{field}.reservations[0].role"))?,
        _ => {
            return Err(unsupported(format!(
                "{field}.reservations: refined (nested) reservations; Agora keeps one reservation per resource"
            )));
        }
    };
    Ok(pb::Resource {
        name: r.name,
        value: Some(value),
        reservation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{Operation as DomainOperation, Resources};
    use serde_json::json;
    use std::time::Duration;

    fn call(value: serde_json::Value) -> Result<MesosCall, CallError> {
        parse(value.to_string().as_bytes())
    }

    fn framework_call(value: serde_json::Value) -> Call {
        match call(value) {
            Ok(MesosCall::Call(c)) => c.call,
            other => panic!("expected a call, got {other:?}"),
        }
    }

    #[test]
    fn subscribe_reads_framework_info() {
        let parsed = call(json!({
            "type": "SUBSCRIBE",
            "subscribe": {"framework_info": {
                "user": "alice", "name": "fw", "roles": ["web"], "failover_timeout": 60,
                "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
                "checkpoint": true, "principal": "p", "labels": null
            }}
        }))
        .expect("valid");
        let MesosCall::Subscribe(Ok(info)) = parsed else {
            panic!("expected a subscription, got {parsed:?}")
        };
        assert_eq!(info.name, "fw");
        assert_eq!(info.user, "alice");
        assert_eq!(info.roles, vec!["web".to_owned()]);
        assert_eq!(info.failover_timeout, Duration::from_secs(60));
        assert!(info.has(agora_proto::Capability::PartitionAware));
        assert_eq!(info.id, None);
    }

    #[test]
    fn deprecated_role_is_used_when_roles_is_empty() {
        let parsed = call(
            json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "fw", "role": "batch"}}}),
        );
        let Ok(MesosCall::Subscribe(Ok(info))) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(info.roles, vec!["batch".to_owned()]);
    }

    #[test]
    fn an_invalid_framework_info_still_subscribes_to_report_an_error() {
        let parsed = call(json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": ""}}}));
        let Ok(MesosCall::Subscribe(Err(message))) = parsed else {
            panic!("{parsed:?}")
        };
        assert!(message.contains("name"), "{message}");
    }

    #[test]
    fn resubscription_ids_must_agree() {
        let err = call(json!({
            "type": "SUBSCRIBE", "framework_id": {"value": "a"},
            "subscribe": {"framework_info": {"user": "u", "name": "fw", "id": {"value": "b"}}}
        }))
        .expect_err("mismatch");
        assert!(matches!(err, CallError::Invalid(_)), "{err}");
    }

    #[test]
    fn missing_subscribe_is_a_validation_error() {
        assert_eq!(
            call(json!({"type": "SUBSCRIBE"})),
            Err(CallError::Invalid("Expecting 'subscribe' to be present".to_owned()))
        );
    }

    #[test]
    fn malformed_json_is_a_json_error() {
        assert!(matches!(parse(b"{not json"), Err(CallError::Json(_))));
        assert!(matches!(
            call(json!({"type": "DECLINE", "framework_id": {"value": "f"}, "decline": {"offer_ids": "o"}})),
            Err(CallError::Json(_))
        ));
    }

    #[test]
    fn calls_other_than_subscribe_need_a_framework_id() {
        assert_eq!(
            call(json!({"type": "TEARDOWN"})),
            Err(CallError::Invalid("Expecting 'framework_id' to be present".to_owned()))
        );
    }

    #[test]
    fn accept_launches_shell_and_argument_commands_with_environment_and_user() {
        let c = framework_call(json!({
            "type": "ACCEPT", "framework_id": {"value": "f"},
            "accept": {
                "offer_ids": [{"value": "o1"}],
                "filters": {"refuse_seconds": 30},
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
                    {"name": "a", "task_id": {"value": "t1"}, "agent_id": {"value": "ag"},
                     "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "allocation_info": {"role": "*"}},
                        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}}
                     ],
                     "command": {"value": "echo $X", "environment": {"variables": [{"name": "X", "value": "1"}]}, "user": "nobody"},
                     "labels": {"labels": []}},
                    {"name": "b", "task_id": {"value": "t2"}, "agent_id": {"value": "ag"},
                     "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
                     "command": {"shell": false, "value": "/bin/sleep", "arguments": ["sleep", "1"]},
                     "kill_policy": {"grace_period": {"nanoseconds": 2000000000}}}
                ]}}]
            }
        }));
        let Call::Accept {
            offer_ids,
            operations,
            filters,
        } = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(offer_ids[0].as_str(), "o1");
        assert_eq!(filters.refuse, Duration::from_secs(30));
        let [DomainOperation::Launch(tasks)] = operations.as_slice() else {
            panic!("{operations:?}")
        };
        assert_eq!(tasks[0].command.value, "echo $X");
        assert!(tasks[0].command.shell);
        assert_eq!(tasks[0].command.environment.get("X").map(String::as_str), Some("1"));
        assert_eq!(tasks[0].command.user.as_deref(), Some("nobody"));
        assert_eq!(
            tasks[0].resources,
            "cpus:0.5;ports:[31000-31001]".parse::<Resources>().expect("valid")
        );
        // Mesos' argument form: `value` is the executable, `arguments` the argv.
        assert!(!tasks[1].command.shell);
        assert_eq!(tasks[1].command.argv(), vec!["/bin/sleep".to_owned(), "1".to_owned()]);
        assert_eq!(tasks[1].command.value, "/bin/sleep");
        assert_eq!(tasks[1].kill_grace_period, Some(Duration::from_secs(2)));
    }

    #[test]
    fn int64_fields_may_be_strings() {
        let c = framework_call(json!({
            "type": "ACCEPT", "framework_id": {"value": "f"},
            "accept": {"offer_ids": [{"value": "o1"}], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
                {"name": "a", "task_id": {"value": "t"}, "agent_id": {"value": "ag"},
                 "resources": [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": "31000", "end": "31001"}]}}],
                 "command": {"value": "true"},
                 "kill_policy": {"grace_period": {"nanoseconds": "1000000000"}}}
            ]}}]}
        }));
        let Call::Accept { operations, .. } = c else {
            panic!("{c:?}")
        };
        let [DomainOperation::Launch(tasks)] = operations.as_slice() else {
            panic!("{operations:?}")
        };
        assert_eq!(
            tasks[0].resources,
            "ports:[31000-31001]".parse::<Resources>().expect("valid")
        );
        assert_eq!(tasks[0].kill_grace_period, Some(Duration::from_secs(1)));
    }

    #[test]
    fn reserve_and_unreserve_read_reservations_in_both_forms() {
        let c = framework_call(json!({
            "type": "ACCEPT", "framework_id": {"value": "f"},
            "accept": {"offer_ids": [{"value": "o1"}], "operations": [
                {"type": "RESERVE", "reserve": {"resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "reservations": [{"type": "DYNAMIC", "role": "ads", "principal": "p"}]}
                ]}},
                {"type": "UNRESERVE", "unreserve": {"resources": [
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}, "role": "ads", "reservation": {"principal": "p"}}
                ]}}
            ]}
        }));
        let Call::Accept { operations, .. } = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            operations,
            vec![
                DomainOperation::Reserve("cpus(ads):1".parse().expect("valid")),
                DomainOperation::Unreserve("mem(ads):64".parse().expect("valid")),
            ]
        );
    }

    #[test]
    fn unsupported_features_are_refused_by_name() {
        let launch = |task: serde_json::Value| {
            call(json!({
                "type": "ACCEPT", "framework_id": {"value": "f"},
                "accept": {"offer_ids": [{"value": "o"}], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}
            }))
        };
        let base = json!({"name": "a", "task_id": {"value": "t"}, "agent_id": {"value": "a"}, "resources": [], "command": {"value": "true"}});
        for (patch, expected) in [
            (json!({"executor": {"executor_id": {"value": "e"}}}), "executor"),
            (
                json!({"container": {"type": "DOCKER", "docker": {"image": "x"}}}),
                "container.type DOCKER",
            ),
            (json!({"health_check": {"type": "TCP"}}), "health_check"),
            (
                json!({"command": {"value": "true", "uris": [{"value": "http://x"}]}}),
                "command.uris",
            ),
        ] {
            let mut task = base.clone();
            for (k, v) in patch.as_object().expect("object") {
                task[k] = v.clone();
            }
            match launch(task) {
                Err(CallError::Unsupported(what)) => assert!(what.contains(expected), "{what}"),
                other => panic!("{expected}: {other:?}"),
            }
        }
        for kind in ["MESSAGE", "SHUTDOWN", "ACCEPT_INVERSE_OFFERS", "RECONCILE_OPERATIONS"] {
            assert!(
                matches!(
                    call(json!({"type": kind, "framework_id": {"value": "f"}})),
                    Err(CallError::Unsupported(_))
                ),
                "{kind}"
            );
        }
        let create = call(json!({
            "type": "ACCEPT", "framework_id": {"value": "f"},
            "accept": {"offer_ids": [{"value": "o"}], "operations": [{"type": "CREATE", "create": {"volumes": []}}]}
        }));
        assert!(matches!(create, Err(CallError::Unsupported(_))), "{create:?}");
    }

    #[test]
    fn invalid_tasks_name_the_field() {
        let err = call(json!({
            "type": "ACCEPT", "framework_id": {"value": "f"},
            "accept": {"offer_ids": [{"value": "o"}], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
                {"name": "a", "agent_id": {"value": "a"}, "resources": [], "command": {"value": "true"}}
            ]}}]}
        }))
        .expect_err("no task id");
        assert!(
            err.to_string()
                .contains("accept.operations[0].launch.task_infos[0].task_id"),
            "{err}"
        );
    }

    #[test]
    fn acknowledge_decodes_a_base64_uuid() {
        let c = framework_call(json!({
            "type": "ACKNOWLEDGE", "framework_id": {"value": "f"},
            "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAECAwQFBgcICQoLDA0ODw=="}
        }));
        let Call::Acknowledge { uuid, .. } = c else {
            panic!("{c:?}")
        };
        assert_eq!(uuid, StatusUuid(core::array::from_fn(|i| i as u8)));
        let err = call(json!({
            "type": "ACKNOWLEDGE", "framework_id": {"value": "f"},
            "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "not-a-uuid"}
        }))
        .expect_err("bad uuid");
        assert_eq!(err.to_string(), "Failed to validate scheduler::Call: Not a valid UUID");
    }

    #[test]
    fn revive_suppress_reconcile_kill_decline_and_teardown() {
        let f = |v: serde_json::Value| {
            let mut v = v;
            v["framework_id"] = json!({"value": "f"});
            framework_call(v)
        };
        assert_eq!(f(json!({"type": "REVIVE"})), Call::Revive { roles: vec![] });
        assert_eq!(
            f(json!({"type": "SUPPRESS", "suppress": {"roles": ["a"]}})),
            Call::Suppress {
                roles: vec!["a".into()]
            }
        );
        assert_eq!(
            f(json!({"type": "RECONCILE", "reconcile": {"tasks": []}})),
            Call::Reconcile { tasks: vec![] }
        );
        assert!(matches!(
            f(json!({"type": "KILL", "kill": {"task_id": {"value": "t"}}})),
            Call::Kill { agent_id: None, .. }
        ));
        assert!(matches!(
            f(
                json!({"type": "DECLINE", "decline": {"offer_ids": [{"value": "o"}], "filters": {"refuse_seconds": -1}}})
            ),
            Call::Decline { .. }
        ));
        assert_eq!(f(json!({"type": "TEARDOWN"})), Call::Teardown);
    }
}
