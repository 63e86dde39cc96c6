//! The domain → Mesos v1 JSON: events, offers, task statuses and resources,
//! with the field names of `scheduler.proto` and `mesos.proto`.

use agora_proto::{Attributes, Event, Offer, Resources, TaskStatus};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// The Mesos version Agora answers to, in `/version` and `master_info`:
/// clients parse it as dotted integers and enable features by it.
pub(crate) const MESOS_VERSION: &str = "1.11.0";

/// What SUBSCRIBED's `master_info` and the state endpoints say about the master.
#[derive(Clone, Debug)]
pub(crate) struct MasterInfo {
    /// The master's id.
    pub(crate) id: String,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl MasterInfo {
    /// Mesos' `MasterInfo`: `ip` is the IPv4 address as a uint32 in network
    /// byte order read on a little-endian host, as Mesos puts it on the wire.
    pub(crate) fn to_json(&self) -> Value {
        let ip = match self.addr.ip() {
            std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
            std::net::IpAddr::V6(_) => 0,
        };
        let host = self.addr.ip().to_string();
        json!({
            "id": self.id,
            "ip": ip,
            "port": self.addr.port(),
            "hostname": host,
            "pid": self.pid(),
            "version": MESOS_VERSION,
            "address": {"ip": host, "hostname": host, "port": self.addr.port()},
        })
    }

    /// A libprocess-style pid (`master@IP:PORT`), which some clients show.
    pub(crate) fn pid(&self) -> String {
        format!("master@{}", self.addr)
    }
}

/// `{"value": id}`.
pub(crate) fn id(value: &str) -> Value {
    json!({ "value": value })
}

/// One scheduler event.
pub(crate) fn event(event: &Event, master: &MasterInfo) -> Value {
    match event {
        Event::Subscribed {
            framework_id,
            heartbeat_interval,
            ..
        } => json!({
            "type": "SUBSCRIBED",
            "subscribed": {
                "framework_id": id(framework_id.as_str()),
                "heartbeat_interval_seconds": heartbeat_interval.as_secs_f64(),
                "master_info": master.to_json(),
            }
        }),
        Event::Offers(offers) => json!({
            "type": "OFFERS",
            "offers": {"offers": offers.iter().map(offer).collect::<Vec<_>>()}
        }),
        Event::Rescind(offer_id) => json!({
            "type": "RESCIND",
            "rescind": {"offer_id": id(offer_id.as_str())}
        }),
        Event::Update(status) => json!({
            "type": "UPDATE",
            "update": {"status": task_status(status)}
        }),
        Event::Failure { agent_id } => json!({
            "type": "FAILURE",
            "failure": {"agent_id": id(agent_id.as_str())}
        }),
        Event::Error(message) => json!({
            "type": "ERROR",
            "error": {"message": message}
        }),
        Event::Heartbeat => json!({ "type": "HEARTBEAT" }),
    }
}

/// An `Offer`.
pub(crate) fn offer(o: &Offer) -> Value {
    json!({
        "id": id(o.id.as_str()),
        "framework_id": id(o.framework_id.as_str()),
        "agent_id": id(o.agent_id.as_str()),
        "hostname": o.hostname,
        "resources": resources(&o.resources, Some(&o.role)),
        "attributes": attributes(&o.attributes),
        "executor_ids": [],
        "allocation_info": {"role": o.role},
    })
}

/// Agent attributes, all of type TEXT.
pub(crate) fn attributes(a: &Attributes) -> Value {
    Value::Array(
        a.0.iter()
            .map(|(name, value)| json!({"name": name, "type": "TEXT", "text": {"value": value}}))
            .collect(),
    )
}

/// A `TaskStatus`; `uuid` (base64) only when the update must be acknowledged.
pub(crate) fn task_status(s: &TaskStatus) -> Value {
    let mut out = Map::new();
    out.insert("task_id".into(), id(s.task_id.as_str()));
    out.insert("state".into(), s.state.as_str().into());
    if !s.message.is_empty() {
        out.insert("message".into(), s.message.clone().into());
    }
    if let Some(source) = s.source {
        out.insert("source".into(), source.as_str().into());
    }
    if let Some(reason) = s.reason {
        out.insert("reason".into(), reason.as_str().into());
    }
    if let Some(agent_id) = &s.agent_id {
        out.insert("agent_id".into(), id(agent_id.as_str()));
    }
    out.insert("timestamp".into(), s.timestamp.as_secs_f64().into());
    if let Some(uuid) = s.uuid {
        out.insert(
            "uuid".into(),
            base64::engine::general_purpose::STANDARD.encode(uuid.0).into(),
        );
    }
    if let Some(healthy) = s.healthy {
        out.insert("healthy".into(), healthy.into());
    }
    Value::Object(out)
}

/// `Resource`s, readable by clients of both formats: each has the deprecated
/// `role` (`*` when unreserved), reserved ones also the v1
/// `reservations: [{role}]`; with `allocated_to`, each carries
/// `allocation_info: {role}`, as offers to multi-role frameworks do.
pub(crate) fn resources(r: &Resources, allocated_to: Option<&str>) -> Value {
    let mut out = Vec::new();
    let mut push = |name: &str, role: Option<&str>, kind: &str, value: (&str, Value)| {
        let mut resource = Map::new();
        resource.insert("name".into(), name.into());
        resource.insert("type".into(), kind.into());
        resource.insert(value.0.into(), value.1);
        // `role` is the pre-refinement form older clients read (`*` when
        // unreserved); `reservations` the v1 form.
        resource.insert("role".into(), role.unwrap_or("*").into());
        if let Some(role) = role {
            resource.insert("reservations".into(), json!([{ "role": role }]));
        }
        if let Some(allocated) = allocated_to {
            resource.insert("allocation_info".into(), json!({ "role": allocated }));
        }
        out.push(Value::Object(resource));
    };
    for (key, value) in r.scalars() {
        push(
            &key.name,
            key.role(),
            "SCALAR",
            ("scalar", json!({"value": value.as_f64()})),
        );
    }
    for (key, ranges) in r.ranges() {
        let range: Vec<Value> = ranges.iter().map(|(b, e)| json!({"begin": b, "end": e})).collect();
        push(&key.name, key.role(), "RANGES", ("ranges", json!({ "range": range })));
    }
    for (key, items) in r.sets() {
        push(&key.name, key.role(), "SET", ("set", json!({ "item": items })));
    }
    Value::Array(out)
}

/// Resources as the legacy endpoints (`/master/state`) show them: one entry
/// per name, reservations added up (`{"cpus": 4, "ports": "[31000-32000]"}`).
pub(crate) fn legacy_resources(r: &Resources) -> Value {
    let mut out = Map::new();
    for name in r.scalar_names() {
        out.insert(name.to_owned(), r.scalar(name).as_f64().into());
    }
    for (key, _) in r.ranges() {
        out.entry(key.name.to_string())
            .or_insert_with(|| r.range_set(&key.name).to_string().into());
    }
    for (key, _) in r.sets() {
        out.entry(key.name.to_string()).or_insert_with(|| {
            let items: Vec<String> = r.item_set(&key.name).into_iter().collect();
            format!("{{{}}}", items.join(",")).into()
        });
    }
    for name in ["cpus", "mem", "disk", "gpus"] {
        out.entry(name).or_insert_with(|| 0.0.into());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{
        AgentId, FrameworkId, OfferId, StatusUuid, TaskId, TaskReason, TaskSource, TaskState, Timestamp,
    };
    use std::time::Duration;

    fn master() -> MasterInfo {
        MasterInfo {
            id: "m".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 5050)),
        }
    }

    #[test]
    fn subscribed_carries_the_framework_id_interval_and_master_info() {
        let e = event(
            &Event::Subscribed {
                framework_id: FrameworkId::new("f1").expect("valid"),
                heartbeat_interval: Duration::from_secs(15),
                master_id: "m".into(),
            },
            &master(),
        );
        assert_eq!(e["type"], "SUBSCRIBED");
        assert_eq!(e["subscribed"]["framework_id"]["value"], "f1");
        assert_eq!(e["subscribed"]["heartbeat_interval_seconds"], 15.0);
        assert_eq!(e["subscribed"]["master_info"]["port"], 5050);
        assert_eq!(e["subscribed"]["master_info"]["ip"], 16_777_343);
        assert_eq!(
            event(&Event::Heartbeat, &master()).to_string(),
            r#"{"type":"HEARTBEAT"}"#
        );
    }

    #[test]
    fn offers_use_mesos_resource_json() {
        let o = Offer {
            id: OfferId::new("o1").expect("valid"),
            framework_id: FrameworkId::new("f").expect("valid"),
            agent_id: AgentId::new("a").expect("valid"),
            hostname: "h".into(),
            resources: "cpus:2;mem(web):128;ports:[31000-31002,31005-31005]"
                .parse()
                .expect("valid"),
            attributes: "rack:r1".parse().expect("valid"),
            role: "web".into(),
        };
        let e = event(&Event::Offers(vec![o]), &master());
        let offer = &e["offers"]["offers"][0];
        assert_eq!(offer["id"]["value"], "o1");
        assert_eq!(offer["agent_id"]["value"], "a");
        assert_eq!(offer["allocation_info"]["role"], "web");
        assert_eq!(
            offer["attributes"][0],
            json!({"name": "rack", "type": "TEXT", "text": {"value": "r1"}})
        );
        let resources = offer["resources"].as_array().expect("array");
        assert!(resources.contains(&json!({
            "name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*", "allocation_info": {"role": "web"}
        })));
        assert!(resources.contains(&json!({
            "name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}, "role": "web",
            "reservations": [{"role": "web"}], "allocation_info": {"role": "web"}
        })));
        assert!(resources.contains(&json!({
            "name": "ports", "type": "RANGES",
            "ranges": {"range": [{"begin": 31000, "end": 31002}, {"begin": 31005, "end": 31005}]},
            "role": "*", "allocation_info": {"role": "web"}
        })));
    }

    #[test]
    fn updates_carry_a_base64_uuid_only_when_acknowledgeable() {
        let mut s = TaskStatus::new(
            TaskId::new("t").expect("valid"),
            TaskState::Running,
            Timestamp::from_micros(1_500_000),
        );
        s.agent_id = Some(AgentId::new("a").expect("valid"));
        s.source = Some(TaskSource::Agent);
        s.reason = Some(TaskReason::Reconciliation);
        let plain = task_status(&s);
        assert_eq!(plain["state"], "TASK_RUNNING");
        assert_eq!(plain["source"], "SOURCE_AGENT");
        assert_eq!(plain["reason"], "REASON_RECONCILIATION");
        assert_eq!(plain["timestamp"], 1.5);
        assert!(plain.get("uuid").is_none());
        s.uuid = Some(StatusUuid(core::array::from_fn(|i| i as u8)));
        let acked = task_status(&s);
        assert_eq!(acked["uuid"], "AAECAwQFBgcICQoLDA0ODw==");
        assert_eq!(
            super::super::calls::decode_uuid(acked["uuid"].as_str().expect("string")),
            s.uuid
        );
    }

    #[test]
    fn rescind_failure_and_error_shapes() {
        assert_eq!(
            event(&Event::Rescind(OfferId::new("o1").expect("valid")), &master()),
            json!({"type": "RESCIND", "rescind": {"offer_id": {"value": "o1"}}})
        );
        assert_eq!(
            event(
                &Event::Failure {
                    agent_id: AgentId::new("a1").expect("valid")
                },
                &master()
            ),
            json!({"type": "FAILURE", "failure": {"agent_id": {"value": "a1"}}})
        );
        assert_eq!(
            event(&Event::Error("gone".into()), &master()),
            json!({"type": "ERROR", "error": {"message": "gone"}})
        );
    }

    #[test]
    fn legacy_resources_are_one_entry_per_name() {
        let r: Resources = "cpus:2;cpus(web):1;mem:64;ports:[31000-32000]".parse().expect("valid");
        assert_eq!(
            legacy_resources(&r),
            json!({"cpus": 3.0, "mem": 64.0, "disk": 0.0, "gpus": 0.0, "ports": "[31000-32000]"})
        );
    }
}
