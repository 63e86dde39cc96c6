//! `agora reserve --agent ID RESOURCES` and `agora unreserve --agent ID
//! RESOURCES`: dynamic reservations through the operator API
//! (`ReserveResources`, `UnreserveResources`), as Mesos' RESERVE_RESOURCES
//! and UNRESERVE_RESOURCES.

use crate::cli::MasterAddrs;
use crate::client::Operator;
use agora_proto::{Resources, pb};
use anyhow::{Context, anyhow};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct ReservationArgs {
    #[command(flatten)]
    master: MasterAddrs,
    /// The agent's id (see `agora agents`).
    #[arg(long)]
    agent: String,
    /// The resources, each reserved for the one role, e.g. "cpus(ads):2;mem(ads):512".
    resources: String,
}

impl ReservationArgs {
    /// The request's fields: the agent id and the parsed resources.
    fn parse(&self) -> anyhow::Result<(pb::AgentId, Vec<pb::Resource>)> {
        let resources: Resources = self
            .resources
            .parse()
            .with_context(|| format!("invalid resources {:?}", self.resources))?;
        let agent_id = pb::AgentId {
            value: self.agent.clone(),
        };
        Ok((agent_id, resources.into()))
    }
}

/// `agora reserve`.
pub(crate) async fn reserve(args: ReservationArgs) -> anyhow::Result<ExitCode> {
    let (agent_id, resources) = args.parse()?;
    let mut operator = Operator::connect(&args.master).await?;
    let request = pb::ReserveResourcesRequest {
        agent_id: Some(agent_id),
        resources,
    };
    operator
        .call(|mut client| {
            let request = request.clone();
            async move { client.reserve_resources(request).await }
        })
        .await
        .map_err(|error| anyhow!("{error}"))?;
    eprintln!("reserved {} on agent {}", args.resources, args.agent);
    Ok(ExitCode::SUCCESS)
}

/// `agora unreserve`.
pub(crate) async fn unreserve(args: ReservationArgs) -> anyhow::Result<ExitCode> {
    let (agent_id, resources) = args.parse()?;
    let mut operator = Operator::connect(&args.master).await?;
    let request = pb::UnreserveResourcesRequest {
        agent_id: Some(agent_id),
        resources,
    };
    operator
        .call(|mut client| {
            let request = request.clone();
            async move { client.unreserve_resources(request).await }
        })
        .await
        .map_err(|error| anyhow!("{error}"))?;
    eprintln!("unreserved {} on agent {}", args.resources, args.agent);
    Ok(ExitCode::SUCCESS)
}
