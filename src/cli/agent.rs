//! `agora agent`, and the agent flags `agora local` shares: resources
//! (detected unless given), the containerizer and its cgroups settings.

use crate::signal::shutdown_signal;
use agora_agent::detect::{detect_resources, with_overrides};
use agora_agent::{AgentConfig, ContainerizerKind};
use agora_proto::{Attributes, Resources};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// Master address(es), `host:port`, comma-separated, tried in turn; a master that is not the
    /// leader names it, and the agent registers there.
    #[arg(long = "master", env = "AGORA_MASTER", default_value = agora_agent::DEFAULT_MASTER, value_delimiter = ',')]
    masters: Vec<String>,
    /// Where the agent keeps its sandboxes (task stdout/stderr) and its checkpoint; created if missing.
    /// An agent restarted with the same work dir re-registers as the same agent and takes its
    /// still-running tasks back.
    #[arg(long, default_value = "/var/lib/agora/agent")]
    work_dir: PathBuf,
    /// If the checkpoint in the work dir is corrupt, move it aside and start as a new agent
    /// (its tasks are forgotten) instead of refusing to start.
    #[arg(long)]
    discard_corrupt_checkpoint: bool,
    #[command(flatten)]
    containers: ContainerArgs,
    /// Attributes: `rack:r1;zone:a`.
    #[arg(long, default_value = "")]
    attributes: Attributes,
    /// Hostname to report (default: this machine's).
    #[arg(long)]
    hostname: Option<String>,
    /// Seed of the agent's random choices (status update ids).
    #[arg(long)]
    seed: Option<u64>,
}

/// What an agent offers and how it runs tasks.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct ContainerArgs {
    /// Resources to offer, Mesos style: `cpus:4;mem:8GiB;disk:10GiB;ports:[31000-32000]`.
    /// Names not given are detected (cpus; memory less 1 GiB; the work dir's disk less 5 GiB; ports 31000-32000).
    #[arg(long)]
    pub(crate) resources: Option<Resources>,
    /// How tasks run: `cgroups` (limits enforced), `process` (no isolation) or `simulated`
    /// (no process; `sleep N` lasts N seconds). Default: the best this machine allows.
    #[arg(long)]
    pub(crate) containerizer: Option<ContainerizerKind>,
    /// The cgroup, under each controller's hierarchy, that holds the tasks' cgroups.
    #[arg(long, default_value = "agora")]
    pub(crate) cgroups_root: String,
    /// Do not cap a task's cpu time at its `cpus` (CFS quota); cpu shares still weigh it.
    #[arg(long)]
    pub(crate) no_cfs_quota: bool,
    /// The most processes and threads one task may have (cgroups pids controller; default 1024).
    #[arg(long)]
    pub(crate) pids_limit: Option<u64>,
}

impl ContainerArgs {
    /// Sets the containerizer (the best available unless given, printing
    /// why it fell back), its cgroups settings, and the resources to offer.
    pub(crate) fn apply(&self, config: &mut AgentConfig, work_dir: &Path) -> anyhow::Result<()> {
        config.containerizer = match self.containerizer {
            Some(kind) => kind,
            None => {
                let (kind, warning) = ContainerizerKind::best_available();
                if let Some(warning) = warning {
                    eprintln!("warning: {warning}");
                }
                kind
            }
        };
        config.cgroups.root = self.cgroups_root.clone();
        config.cgroups.cfs_quota = !self.no_cfs_quota;
        if let Some(limit) = self.pids_limit {
            config.cgroups.pids_limit = limit;
        }
        config.resources = self.resources(work_dir)?;
        Ok(())
    }

    /// Detected resources with the given ones in their place, by name.
    fn resources(&self, work_dir: &Path) -> anyhow::Result<Resources> {
        let given = self.resources.clone().unwrap_or_default();
        match detect_resources(work_dir) {
            Ok(detected) => Ok(with_overrides(&detected, &given)),
            // Nothing to detect if the flag names what matters.
            Err(e) if !given.cpus().is_zero() && !given.mem().is_zero() => {
                eprintln!("warning: {e}; offering only --resources {given}");
                Ok(given)
            }
            Err(e) => Err(e).context("cannot detect this machine's resources (give them with --resources)"),
        }
    }
}

/// Creates `dir` (and its parents) if missing.
pub(crate) fn create_work_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the work directory {}", dir.display()))
}

pub(crate) async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    create_work_dir(&args.work_dir)?;
    let mut config = AgentConfig::new(args.masters, Resources::new());
    config.work_dir = args.work_dir.clone();
    args.containers.apply(&mut config, &args.work_dir)?;
    config.attributes = args.attributes;
    config.hostname = args.hostname;
    config.seed = args.seed;
    config.checkpoint = true;
    config.discard_corrupt_checkpoint = args.discard_corrupt_checkpoint;
    eprintln!(
        "agora agent: {} containerizer, offering {}, work dir {}",
        config.containerizer,
        config.resources,
        args.work_dir.display()
    );
    agora_agent::run(config, shutdown_signal())
        .await
        .context("the agent stopped")?;
    Ok(ExitCode::SUCCESS)
}
