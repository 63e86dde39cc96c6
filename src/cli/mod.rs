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

/// `--master`, shared by every command that talks to a master.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct MasterAddrs {
    /// Master address(es), `host:port`, comma-separated; the first that answers is used.
    #[arg(long = "master", env = "AGORA_MASTER", default_value = agora_agent::DEFAULT_MASTER, value_delimiter = ',')]
    pub(crate) masters: Vec<String>,
}
