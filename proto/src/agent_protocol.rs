//! The agent protocol in the domain: what an agent tells the master
//! ([`AgentMessage`]) and what the master tells an agent ([`MasterMessage`])
//! over their one bidirectional stream.

use crate::error::{ProtoError, required};
use crate::ids::{AgentId, FrameworkId, TaskId, optional_id, required_id};
use crate::offer::AgentInfo;
use crate::pb;
use crate::sandbox::{FileChunk, SandboxFile, TaskUsage};
use crate::task::{StatusUuid, TaskInfo, TaskState, TaskStatus};
use crate::time::duration_from_secs;
use std::time::Duration;

/// A task an agent still runs, reported when it re-registers.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningTask {
    /// Whose task it is.
    pub framework_id: FrameworkId,
    /// The task as launched.
    pub task: TaskInfo,
    /// Its latest state on the agent.
    pub state: TaskState,
}

/// From an agent to the master.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentMessage {
    /// First message on every stream: register, or re-register with an id.
    Register {
        /// The agent's machine and resources.
        info: AgentInfo,
        /// The id the master gave it before, when re-registering.
        agent_id: Option<AgentId>,
        /// The tasks it still runs.
        tasks: Vec<RunningTask>,
    },
    /// A task's status changed; retried until acknowledged.
    StatusUpdate {
        /// Whose task it is.
        framework_id: FrameworkId,
        /// The status, with a uuid.
        status: TaskStatus,
    },
    /// An answer to [`MasterMessage::Ping`].
    Pong,
    /// An answer to [`MasterMessage::ReadFile`].
    FileData {
        /// The request answered.
        request_id: u64,
        /// The chunk, or why the file cannot be read.
        result: Result<FileChunk, String>,
    },
    /// Usage of the agent's running tasks.
    Usage(Vec<(FrameworkId, TaskId, TaskUsage)>),
}

/// From the master to an agent.
// RunTask dominates the size; messages are moved once, never stored in bulk,
// so boxing it would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum MasterMessage {
    /// The agent is (re-)registered under `agent_id`.
    Registered {
        /// Its id.
        agent_id: AgentId,
        /// How often the master pings it.
        ping_interval: Duration,
    },
    /// Run a task.
    RunTask {
        /// Whose task it is.
        framework_id: FrameworkId,
        /// The task.
        task: TaskInfo,
    },
    /// Kill a task.
    KillTask {
        /// Whose task it is.
        framework_id: FrameworkId,
        /// The task.
        task_id: TaskId,
    },
    /// The framework acknowledged a status update: stop retrying it.
    Acknowledge {
        /// Whose task it is.
        framework_id: FrameworkId,
        /// The task.
        task_id: TaskId,
        /// The update's uuid.
        uuid: StatusUuid,
    },
    /// The framework is gone: kill its tasks.
    ShutdownFramework {
        /// The framework.
        framework_id: FrameworkId,
    },
    /// Are you alive?
    Ping,
    /// Read part of a file in a task's sandbox; answered with [`AgentMessage::FileData`].
    ReadFile {
        /// Echoed in the answer.
        request_id: u64,
        /// Whose task it is.
        framework_id: FrameworkId,
        /// The task.
        task_id: TaskId,
        /// Which file.
        file: SandboxFile,
        /// Where to start.
        offset: u64,
        /// At most this many bytes.
        max_bytes: u64,
    },
    /// The master refuses the agent; the message says why.
    Error(String),
}

impl TryFrom<pb::AgentMessage> for AgentMessage {
    type Error = ProtoError;
    fn try_from(wire: pb::AgentMessage) -> Result<Self, ProtoError> {
        use pb::agent_message::Message as M;
        Ok(match required(wire.message, "message")? {
            M::Register(r) => Self::Register {
                info: AgentInfo::try_from(required(r.agent_info, "register.agent_info")?)
                    .map_err(|e| e.within("register.agent_info"))?,
                agent_id: optional_id(r.agent_id, "register.agent_id")?,
                tasks: r
                    .tasks
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| running_task(t).map_err(|e| e.within(&format!("register.tasks[{i}]"))))
                    .collect::<Result<_, _>>()?,
            },
            M::StatusUpdate(u) => Self::StatusUpdate {
                framework_id: required_id(u.framework_id, "status_update.framework_id")?,
                status: TaskStatus::try_from(required(u.status, "status_update.status")?)
                    .map_err(|e| e.within("status_update.status"))?,
            },
            M::Pong(_) => Self::Pong,
            M::FileData(d) => Self::FileData {
                request_id: d.request_id,
                result: if d.error.is_empty() {
                    Ok(FileChunk {
                        data: d.data,
                        offset: d.offset,
                        size: d.size,
                    })
                } else {
                    Err(d.error)
                },
            },
            M::Usage(u) => Self::Usage(
                u.tasks
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let field = format!("usage.tasks[{i}]");
                        Ok((
                            required_id(t.framework_id, "framework_id").map_err(|e| e.within(&field))?,
                            required_id(t.task_id, "task_id").map_err(|e| e.within(&field))?,
                            TaskUsage::try_from(required(t.usage, "usage").map_err(|e| e.within(&field))?)
                                .map_err(|e| e.within(&format!("{field}.usage")))?,
                        ))
                    })
                    .collect::<Result<_, ProtoError>>()?,
            ),
        })
    }
}

fn running_task(t: pb::RunningTask) -> Result<RunningTask, ProtoError> {
    Ok(RunningTask {
        framework_id: required_id(t.framework_id, "framework_id")?,
        task: TaskInfo::try_from(required(t.task, "task")?).map_err(|e| e.within("task"))?,
        state: TaskState::from_wire(t.state, "state")?.ok_or_else(|| ProtoError::missing("state"))?,
    })
}

impl From<AgentMessage> for pb::AgentMessage {
    fn from(m: AgentMessage) -> Self {
        use pb::agent_message::Message as M;
        let message = match m {
            AgentMessage::Register { info, agent_id, tasks } => M::Register(pb::RegisterAgent {
                agent_info: Some(info.into()),
                agent_id: agent_id.map(Into::into),
                tasks: tasks
                    .into_iter()
                    .map(|t| pb::RunningTask {
                        framework_id: Some(t.framework_id.into()),
                        task: Some(t.task.into()),
                        state: t.state.into(),
                    })
                    .collect(),
            }),
            AgentMessage::StatusUpdate { framework_id, status } => M::StatusUpdate(pb::StatusUpdate {
                framework_id: Some(framework_id.into()),
                status: Some(status.into()),
            }),
            AgentMessage::Pong => M::Pong(pb::Pong {}),
            AgentMessage::FileData { request_id, result } => M::FileData(match result {
                Ok(chunk) => pb::FileData {
                    request_id,
                    data: chunk.data,
                    offset: chunk.offset,
                    size: chunk.size,
                    error: String::new(),
                },
                Err(error) => pb::FileData {
                    request_id,
                    error,
                    ..Default::default()
                },
            }),
            AgentMessage::Usage(tasks) => M::Usage(pb::UsageReport {
                tasks: tasks
                    .into_iter()
                    .map(|(framework_id, task_id, usage)| pb::TaskUsageReport {
                        framework_id: Some(framework_id.into()),
                        task_id: Some(task_id.into()),
                        usage: Some(usage.into()),
                    })
                    .collect(),
            }),
        };
        Self { message: Some(message) }
    }
}

impl TryFrom<pb::MasterMessage> for MasterMessage {
    type Error = ProtoError;
    fn try_from(wire: pb::MasterMessage) -> Result<Self, ProtoError> {
        use pb::master_message::Message as M;
        Ok(match required(wire.message, "message")? {
            M::Registered(r) => Self::Registered {
                agent_id: required_id(r.agent_id, "registered.agent_id")?,
                ping_interval: duration_from_secs(r.ping_interval_seconds).ok_or_else(|| {
                    ProtoError::invalid(
                        "registered.ping_interval_seconds",
                        format!("{} is not a non-negative number of seconds", r.ping_interval_seconds),
                    )
                })?,
            },
            M::RunTask(r) => Self::RunTask {
                framework_id: required_id(r.framework_id, "run_task.framework_id")?,
                task: TaskInfo::try_from(required(r.task, "run_task.task")?).map_err(|e| e.within("run_task.task"))?,
            },
            M::KillTask(k) => Self::KillTask {
                framework_id: required_id(k.framework_id, "kill_task.framework_id")?,
                task_id: required_id(k.task_id, "kill_task.task_id")?,
            },
            M::Acknowledge(a) => Self::Acknowledge {
                framework_id: required_id(a.framework_id, "acknowledge.framework_id")?,
                task_id: required_id(a.task_id, "acknowledge.task_id")?,
                uuid: StatusUuid::try_from(a.uuid.as_slice()).map_err(|e| e.within("acknowledge"))?,
            },
            M::ShutdownFramework(s) => Self::ShutdownFramework {
                framework_id: required_id(s.framework_id, "shutdown_framework.framework_id")?,
            },
            M::Ping(_) => Self::Ping,
            M::Error(message) => Self::Error(message),
            M::ReadFile(r) => Self::ReadFile {
                request_id: r.request_id,
                framework_id: required_id(r.framework_id, "read_file.framework_id")?,
                task_id: required_id(r.task_id, "read_file.task_id")?,
                file: SandboxFile::from_wire(r.file, "read_file.file")?,
                offset: r.offset,
                max_bytes: r.max_bytes,
            },
        })
    }
}

impl From<MasterMessage> for pb::MasterMessage {
    fn from(m: MasterMessage) -> Self {
        use pb::master_message::Message as M;
        let message = match m {
            MasterMessage::Registered {
                agent_id,
                ping_interval,
            } => M::Registered(pb::AgentRegistered {
                agent_id: Some(agent_id.into()),
                ping_interval_seconds: ping_interval.as_secs_f64(),
            }),
            MasterMessage::RunTask { framework_id, task } => M::RunTask(pb::RunTask {
                framework_id: Some(framework_id.into()),
                task: Some(task.into()),
            }),
            MasterMessage::KillTask { framework_id, task_id } => M::KillTask(pb::KillTask {
                framework_id: Some(framework_id.into()),
                task_id: Some(task_id.into()),
            }),
            MasterMessage::Acknowledge {
                framework_id,
                task_id,
                uuid,
            } => M::Acknowledge(pb::AcknowledgeUpdate {
                framework_id: Some(framework_id.into()),
                task_id: Some(task_id.into()),
                uuid: uuid.0.to_vec(),
            }),
            MasterMessage::ShutdownFramework { framework_id } => M::ShutdownFramework(pb::ShutdownFramework {
                framework_id: Some(framework_id.into()),
            }),
            MasterMessage::Ping => M::Ping(pb::Ping {}),
            MasterMessage::Error(message) => M::Error(message),
            MasterMessage::ReadFile {
                request_id,
                framework_id,
                task_id,
                file,
                offset,
                max_bytes,
            } => M::ReadFile(pb::ReadFile {
                request_id,
                framework_id: Some(framework_id.into()),
                task_id: Some(task_id.into()),
                file: file.into(),
                offset,
                max_bytes,
            }),
        };
        Self { message: Some(message) }
    }
}
