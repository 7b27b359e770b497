//! `amon events`: the audit trail of the board, listed or followed live.

use amon_proto::v1::{ListTaskEventsRequest, TaskEvent, WatchTaskEventsRequest};
use clap::Args;

use super::{Followed, until_ctrl_c};
use crate::{
    client::{Ctx, all_pages},
    json, output, resolve,
    table::{self, AgentNames},
};

/// `amon events`.
#[derive(Debug, Args)]
#[command(after_help = "\
Each event is one line: `ID TIME TYPE TASK ACTOR PAYLOAD-JSON`; with --json, one
JSON object per line (NDJSON), for the list and the live stream alike.
Follow from where a previous run stopped with `--after LAST_ID -f`.")]
pub struct EventsArgs {
    /// Only events of this task (id or id prefix).
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Only events after this event id.
    #[arg(long, value_name = "ID", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub after: i64,
    /// Keep streaming new events as they happen, until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

/// Runs `amon events`.
pub async fn run(ctx: &Ctx, args: EventsArgs) -> anyhow::Result<()> {
    let task_id = resolve::opt_task_id(ctx, args.task.as_deref())
        .await?
        .unwrap_or_default();
    let names = if ctx.json {
        AgentNames::new()
    } else {
        resolve::agent_names(ctx).await
    };
    if args.follow {
        return follow(ctx, task_id, args.after, &names).await;
    }

    let client = ctx.tasks();
    let events = all_pages(|page_token| {
        let mut client = client.clone();
        let task_id = task_id.clone();
        async move {
            let r = client
                .list_task_events(ListTaskEventsRequest {
                    page_size: 1000,
                    page_token,
                    task_id,
                })
                .await?
                .into_inner();
            Ok((r.events, r.next_page_token))
        }
    })
    .await?;
    // ListTaskEvents has no `after` filter: it is applied here.
    let events: Vec<_> = events.into_iter().filter(|e| e.id > args.after).collect();
    if events.is_empty() && !ctx.json {
        output::note("no events");
    }
    for event in &events {
        print_event(ctx, event, &names)?;
    }
    Ok(())
}

fn print_event(ctx: &Ctx, event: &TaskEvent, names: &AgentNames) -> std::io::Result<()> {
    if ctx.json {
        output::json_line(&json::event(event))
    } else {
        output::line(&table::event_line(event, names))
    }
}

/// Streams events until Ctrl-C (exit 0) or the stream fails (exit 1).
async fn follow(
    ctx: &Ctx,
    task_id: String,
    after_event_id: i64,
    names: &AgentNames,
) -> anyhow::Result<()> {
    let stream = ctx
        .tasks()
        .watch_task_events(WatchTaskEventsRequest {
            task_id,
            after_event_id,
        })
        .await?
        .into_inner();
    let followed = until_ctrl_c(stream, |response| match response.event {
        Some(event) => print_event(ctx, &event, names),
        None => Ok(()),
    })
    .await?;
    match followed {
        Followed::Interrupted => Ok(()),
        Followed::Closed => anyhow::bail!("the server closed the event stream"),
    }
}
