//! The agent's configuration: where the masters are, what the agent offers,
//! and its timings. Pure data with defaults; the link reads it.

use crate::core::CoreConfig;
use crate::status_updates::RetryPolicy;
use agora_proto::masters::MasterAddr;
use agora_proto::{AgentInfo, Attributes, Resources};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The default master address.
pub const DEFAULT_MASTER: &str = "127.0.0.1:5050";

/// Which containerizer runs the tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ContainerizerKind {
    /// No process: tasks "run" on the agent's clock
    /// ([`SimulatedContainerizer`](crate::containerizer::SimulatedContainerizer)).
    #[default]
    Simulated,
    /// Real processes without isolation: a process group per task, its
    /// sandbox as working directory.
    Process,
    /// Real processes, each task in its own cgroup with cpu, memory and
    /// pids limits (cgroup v1 or v2).
    Cgroups,
}

impl ContainerizerKind {
    /// Every kind, for help texts.
    pub const ALL: &'static [Self] = &[Self::Simulated, Self::Process, Self::Cgroups];

    /// The name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Simulated => "simulated",
            Self::Process => "process",
            Self::Cgroups => "cgroups",
        }
    }

    /// The best real containerizer on this machine: [`Cgroups`](Self::Cgroups)
    /// when this process can create cgroups (it creates and removes a probe
    /// cgroup in each hierarchy), else [`Process`](Self::Process) with a
    /// warning that says why.
    pub fn best_available() -> (Self, Option<String>) {
        let probe = format!("agora-probe-{}", std::process::id());
        match crate::containerizer::cgroups::Hierarchy::detect().and_then(|h| h.probe_writable(&probe)) {
            Ok(()) => (Self::Cgroups, None),
            Err(error) => (
                Self::Process,
                Some(format!(
                    "cgroups are not usable ({error}); tasks run as plain processes without resource limits"
                )),
            ),
        }
    }
}

impl fmt::Display for ContainerizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContainerizerKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ConfigError::UnknownContainerizer(s.to_owned()))
    }
}

/// How long to wait between attempts to reach a master: `initial`, doubling
/// after each failure up to `max`, each wait scaled by a random factor in
/// `[1 - jitter, 1]` so that many agents do not reconnect in lockstep. The
/// wait resets once the agent is registered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReconnectBackoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// The fraction of each wait that is random, in `[0, 1]`.
    pub jitter: f64,
}

impl Default for ReconnectBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            jitter: 0.5,
        }
    }
}

impl ReconnectBackoff {
    /// The wait before attempt `failures + 1`, given `unit`, a random number
    /// in `[0, 1)`.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(failures.min(31)))
            .min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        base.mul_f64(1.0 - jitter)
    }
}

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No master address was given.
    #[error("no master address given")]
    NoMasters,
    /// A master address is malformed.
    #[error("invalid master address {address:?}: {reason}")]
    InvalidMasterAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A containerizer name that does not exist.
    #[error("unknown containerizer {0:?} (known: simulated, process, cgroups)")]
    UnknownContainerizer(String),
}

/// How the cgroups containerizer lays out and limits its cgroups.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CgroupsConfig {
    /// The cgroup under which every task's cgroup is made (`<root>/<framework>/<task>`).
    pub root: String,
    /// Whether to cap each task's CPU time at its `cpus` with a CFS quota
    /// (100 ms period); without it, `cpus` only weighs the shares.
    pub cfs_quota: bool,
    /// The most processes and threads a task may have at once.
    pub pids_limit: u64,
}

impl Default for CgroupsConfig {
    fn default() -> Self {
        Self {
            root: "agora".to_owned(),
            cfs_quota: true,
            pids_limit: 1024,
        }
    }
}

/// Everything the agent needs to run; build with [`AgentConfig::new`] and
/// adjust the public fields.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The masters to try, in turn: `host:port`, with or without `http://`.
    /// An entry may hold several addresses separated by commas.
    pub masters: Vec<String>,
    /// What the agent offers (`--resources`).
    pub resources: Resources,
    /// Its attributes (`--attributes rack:r1;zone:a`).
    pub attributes: Attributes,
    /// Its hostname; `None` detects it ([`detect_hostname`]).
    pub hostname: Option<String>,
    /// Where tasks run.
    pub containerizer: ContainerizerKind,
    /// The agent's directory: each task's sandbox (its working directory,
    /// stdout and stderr) is `sandboxes/<framework>/<task>` in it.
    pub work_dir: PathBuf,
    /// The cgroups containerizer's settings.
    pub cgroups: CgroupsConfig,
    /// How often the usage of running tasks is sent to the master.
    pub usage_interval: Duration,
    /// Waits between attempts to reach a master.
    pub reconnect: ReconnectBackoff,
    /// Time allowed to open a connection to a master.
    pub connect_timeout: Duration,
    /// When unacknowledged status updates are re-sent.
    pub status_retry: RetryPolicy,
    /// Kill grace period for tasks that set none.
    pub default_kill_grace: Duration,
    /// How long to wait for `Registered` after connecting.
    pub registration_timeout: Duration,
    /// Ping intervals without a message before the master is deemed dead.
    pub missed_pings: u32,
    /// Seed for status update uuids and reconnect jitter; `None` draws one.
    pub seed: Option<u64>,
    /// Whether the agent checkpoints its id, tasks and unacknowledged
    /// updates in `work_dir` and recovers them when it starts (see
    /// [`checkpoint`](crate::checkpoint)). Off by default for embedded
    /// agents (tests, `agora local`); `agora agent` turns it on.
    pub checkpoint: bool,
    /// Start as a new agent when the checkpoint is corrupt (it is moved
    /// aside to `<file>.corrupt`) instead of refusing to start.
    pub discard_corrupt_checkpoint: bool,
}

impl AgentConfig {
    /// An agent offering `resources` to the masters at `masters`, with the
    /// defaults for everything else.
    pub fn new(masters: impl IntoIterator<Item = impl Into<String>>, resources: Resources) -> Self {
        Self {
            masters: masters.into_iter().map(Into::into).collect(),
            resources,
            attributes: Attributes::default(),
            hostname: None,
            containerizer: ContainerizerKind::default(),
            work_dir: std::env::temp_dir().join("agora"),
            cgroups: CgroupsConfig::default(),
            usage_interval: Duration::from_secs(5),
            reconnect: ReconnectBackoff::default(),
            connect_timeout: Duration::from_secs(5),
            status_retry: RetryPolicy::default(),
            default_kill_grace: Duration::from_secs(3),
            registration_timeout: Duration::from_secs(15),
            missed_pings: 5,
            seed: None,
            checkpoint: false,
            discard_corrupt_checkpoint: false,
        }
    }

    /// The master addresses as URIs (`http://host:port`), in order.
    pub fn master_uris(&self) -> Result<Vec<String>, ConfigError> {
        let uris: Vec<String> = self
            .masters
            .iter()
            .flat_map(|entry| entry.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(master_uri)
            .collect::<Result<_, _>>()?;
        if uris.is_empty() {
            return Err(ConfigError::NoMasters);
        }
        Ok(uris)
    }

    /// What the agent reports about itself.
    pub fn agent_info(&self) -> AgentInfo {
        AgentInfo {
            hostname: self.hostname.clone().unwrap_or_else(detect_hostname),
            resources: self.resources.clone(),
            attributes: self.attributes.clone(),
        }
    }

    /// The core's share of the configuration.
    pub fn core_config(&self) -> CoreConfig {
        let mut core = CoreConfig::new(self.agent_info());
        core.status_retry = self.status_retry;
        core.default_kill_grace = self.default_kill_grace;
        core.registration_timeout = self.registration_timeout;
        core.missed_pings = self.missed_pings;
        core
    }
}

/// `host:port`, `host` (port 5050) or `http://host:port` as a URI, in the
/// form the SDK and the CLI use too, so that a leader named by a refusal is
/// recognised in the list.
fn master_uri(address: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidMasterAddress {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some((scheme, _)) = address.split_once("://")
        && scheme != "http"
    {
        return Err(invalid("only http:// is supported"));
    }
    MasterAddr::parse(address)
        .map(|master| master.uri())
        .ok_or_else(|| invalid("expected host:port"))
}

/// The machine's hostname: `/proc/sys/kernel/hostname`, else `$HOSTNAME`,
/// else `localhost`.
pub fn detect_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_addresses_become_uris() {
        let mut config = AgentConfig::new(
            [DEFAULT_MASTER, "http://m2:5050/", " m3:1, m4:2 "],
            Resources::default(),
        );
        assert_eq!(
            config.master_uris(),
            Ok(vec![
                "http://127.0.0.1:5050".to_owned(),
                "http://m2:5050".to_owned(),
                "http://m3:1".to_owned(),
                "http://m4:2".to_owned(),
            ])
        );
        config.masters = vec![" , ".to_owned()];
        assert_eq!(config.master_uris(), Err(ConfigError::NoMasters));
        config.masters = vec!["https://m:1".to_owned()];
        assert!(matches!(
            config.master_uris(),
            Err(ConfigError::InvalidMasterAddress { .. })
        ));
        config.masters = vec!["m:1/path".to_owned()];
        assert!(config.master_uris().is_err());
        config.masters = vec!["m".to_owned()];
        assert_eq!(config.master_uris(), Ok(vec!["http://m:5050".to_owned()]));
    }

    #[test]
    fn backoff_doubles_to_max_with_jitter() {
        let b = ReconnectBackoff::default();
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(800));
        assert_eq!(b.delay(10, 0.0), Duration::from_secs(10));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(10));
        assert_eq!(b.delay(0, 0.999_999), Duration::from_nanos(50_000_050));
        let none = ReconnectBackoff { jitter: 0.0, ..b };
        assert_eq!(none.delay(1, 0.7), Duration::from_millis(200));
    }

    #[test]
    fn containerizer_kinds_parse() {
        assert_eq!("Simulated".parse(), Ok(ContainerizerKind::Simulated));
        assert_eq!("cgroups".parse(), Ok(ContainerizerKind::Cgroups));
        assert_eq!(" process".parse(), Ok(ContainerizerKind::Process));
        assert_eq!(
            "docker".parse::<ContainerizerKind>(),
            Err(ConfigError::UnknownContainerizer("docker".to_owned()))
        );
        for kind in ContainerizerKind::ALL {
            assert_eq!(kind.to_string().parse(), Ok(*kind));
        }
    }

    #[test]
    fn hostname_is_detected() {
        assert!(!detect_hostname().is_empty());
        let mut config = AgentConfig::new([DEFAULT_MASTER], Resources::default());
        config.hostname = Some("h1".to_owned());
        assert_eq!(config.agent_info().hostname, "h1");
    }
}
