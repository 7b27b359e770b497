//! `amon workers` and `amon worker-config`: the remote workers and their
//! shared tuning.

use amon_proto::v1::{
    GetWorkerConfigRequest, ListWorkersRequest, SetWorkerConfigRequest, WorkerConfig,
};
use clap::{Args, Subcommand};
use prost_types::FieldMask;

use super::{missing, show, show_list};
use crate::{
    client::{Ctx, UsageError},
    json,
    mask::MaskBuilder,
    parse, table,
};

/// `amon workers`.
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Only workers whose stream is open now.
    #[arg(long)]
    pub connected: bool,
}

/// Runs `amon workers`.
pub async fn list(ctx: &Ctx, args: WorkersArgs) -> anyhow::Result<()> {
    let response = ctx
        .workers()
        .list_workers(ListWorkersRequest {
            connected_only: args.connected,
        })
        .await?
        .into_inner();
    let workers = response.workers;
    show_list(
        ctx,
        workers.iter().map(json::worker).collect(),
        "workers",
        || table::workers(&workers),
    )
}

/// Tuning values shared by all workers.
#[derive(Debug, Subcommand)]
pub enum WorkerConfigCmd {
    /// Show the values in force.
    Get,
    /// Change values; connected workers get them at once.
    Set(SetArgs),
}

/// `amon worker-config set`. Durations: 90, 90s, 1.5s, 2m, 250ms, 1h.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// A running execution whose worker is silent this long is reaped.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub stale_window: Option<prost_types::Duration>,
    /// How often workers send heartbeats.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub heartbeat_interval: Option<prost_types::Duration>,
    /// Time between SIGTERM and SIGKILL when stopping a run.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub cancel_grace: Option<prost_types::Duration>,
    /// Largest log chunk a worker sends, in bytes.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(i32).range(1..))]
    pub log_chunk_bytes: Option<i32>,
}

/// Runs `amon worker-config …`.
pub async fn config(ctx: &Ctx, cmd: WorkerConfigCmd) -> anyhow::Result<()> {
    let config = match cmd {
        WorkerConfigCmd::Get => {
            ctx.workers()
                .get_worker_config(GetWorkerConfigRequest {})
                .await?
                .into_inner()
                .config
        }
        WorkerConfigCmd::Set(args) => {
            let (config, update_mask) = set_request(&args)?;
            ctx.workers()
                .set_worker_config(SetWorkerConfigRequest {
                    config: Some(config),
                    update_mask: Some(update_mask),
                })
                .await?
                .into_inner()
                .config
        }
    };
    let config = config.ok_or_else(|| missing("worker config"))?;
    show(
        ctx,
        || json::worker_config(&config),
        || table::worker_config(&config),
    )
}

/// The config and mask `set` sends: exactly the values given.
fn set_request(args: &SetArgs) -> Result<(WorkerConfig, FieldMask), UsageError> {
    let mut config = WorkerConfig::default();
    let mut mask = MaskBuilder::new();
    mask.set("stale_window", args.stale_window, |v| {
        config.stale_window = Some(v)
    });
    mask.set("heartbeat_interval", args.heartbeat_interval, |v| {
        config.heartbeat_interval = Some(v)
    });
    mask.set("cancel_grace", args.cancel_grace, |v| {
        config.cancel_grace = Some(v)
    });
    mask.set("log_chunk_bytes", args.log_chunk_bytes, |v| {
        config.log_chunk_bytes = v
    });
    if mask.is_empty() {
        return Err(UsageError(
            "nothing to set: give at least one value (see --help)".into(),
        ));
    }
    Ok((config, mask.build()))
}

#[cfg(test)]
mod tests {
    use super::{super::parse_subcommand, *};

    fn set(args: &[&str]) -> Result<(WorkerConfig, FieldMask), UsageError> {
        let mut argv = vec!["set"];
        argv.extend(args);
        match parse_subcommand("worker-config", &argv).unwrap() {
            WorkerConfigCmd::Set(args) => set_request(&args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_mask_names_exactly_the_values_given() {
        let (config, mask) = set(&["--stale-window", "3m", "--log-chunk-bytes", "1024"]).unwrap();
        assert_eq!(mask.paths, vec!["stale_window", "log_chunk_bytes"]);
        assert_eq!(config.stale_window.unwrap().seconds, 180);
        assert_eq!(config.log_chunk_bytes, 1024);
        assert_eq!(config.heartbeat_interval, None);
        assert!(set(&[]).is_err());
    }
}
