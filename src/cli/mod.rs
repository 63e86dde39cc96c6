//! One module per subcommand; each exposes its clap arguments and an async
//! `run` returning the process's exit code.

pub(crate) mod agent;
pub(crate) mod bench;
pub(crate) mod bench_allocator;
pub(crate) mod bench_failover;
pub(crate) mod bench_plot;
pub(crate) mod kill;
pub(crate) mod local;
pub(crate) mod logs;
pub(crate) mod master;
pub(crate) mod ps;
pub(crate) mod reserve;
pub(crate) mod run;
pub(crate) mod sim;

/// `--master` and `--leader-wait`, shared by the commands that call the
/// operator API.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct MasterAddrs {
    /// Master address(es), `host:port`, comma-separated: the leader among them is used (a master
    /// that is not the leader names it, and the command follows).
    #[arg(long = "master", env = "AGORA_MASTER", default_value = agora_agent::DEFAULT_MASTER, value_delimiter = ',')]
    pub(crate) masters: Vec<String>,
    /// How long to wait for a leader when the masters answer that none is elected yet.
    #[arg(long, env = "AGORA_LEADER_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) leader_wait: std::time::Duration,
}
