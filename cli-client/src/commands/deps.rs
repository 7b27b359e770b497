//! `amon deps`: the dependency graph between tasks.

use std::collections::HashMap;

use amon_proto::v1::{
    AddDependencyRequest, ListDependenciesRequest, RemoveDependencyRequest, Task,
};
use clap::Subcommand;
use serde_json::json;

use super::{done, missing, show};
use crate::{client::Ctx, json, resolve, table};

/// Dependencies: a task waits until the tasks it depends on are done.
#[derive(Debug, Subcommand)]
pub enum DepsCmd {
    /// Make TASK wait for DEPENDS_ON (a cycle is refused).
    Add {
        /// The task that is to wait (id or id prefix).
        task: String,
        /// The task it is to wait for (id or id prefix).
        depends_on: String,
    },
    /// Remove the dependency of TASK on DEPENDS_ON.
    #[command(visible_alias = "remove")]
    Rm {
        /// The waiting task (id or id prefix).
        task: String,
        /// The task it waits for (id or id prefix).
        depends_on: String,
    },
    /// What TASK depends on, and what depends on it.
    #[command(visible_alias = "ls")]
    List {
        /// Task id or id prefix.
        task: String,
    },
}

/// Runs `amon deps …`.
pub async fn run(ctx: &Ctx, cmd: DepsCmd) -> anyhow::Result<()> {
    match cmd {
        DepsCmd::Add { task, depends_on } => {
            let task_id = resolve::task_id(ctx, &task).await?;
            let depends_on_task_id = resolve::task_id(ctx, &depends_on).await?;
            let response = ctx
                .tasks()
                .add_dependency(AddDependencyRequest {
                    task_id,
                    depends_on_task_id,
                })
                .await?
                .into_inner();
            let dependency = response.dependency.ok_or_else(|| missing("dependency"))?;
            show(
                ctx,
                || json::dependency(&dependency),
                || {
                    format!(
                        "{} now depends on {}",
                        dependency.task_id, dependency.depends_on_task_id
                    )
                },
            )
        }
        DepsCmd::Rm { task, depends_on } => {
            let task_id = resolve::task_id(ctx, &task).await?;
            let depends_on_task_id = resolve::task_id(ctx, &depends_on).await?;
            ctx.tasks()
                .remove_dependency(RemoveDependencyRequest {
                    task_id: task_id.clone(),
                    depends_on_task_id: depends_on_task_id.clone(),
                })
                .await?;
            done(
                ctx,
                &format!("{task_id} no longer depends on {depends_on_task_id}"),
            )
        }
        DepsCmd::List { task } => {
            let task_id = resolve::task_id(ctx, &task).await?;
            let response = ctx
                .tasks()
                .list_dependencies(ListDependenciesRequest {
                    task_id: task_id.clone(),
                })
                .await?
                .into_inner();
            if ctx.json {
                return show(
                    ctx,
                    || {
                        json!({
                            "dependencies": response.dependencies.iter().map(json::dependency).collect::<Vec<_>>(),
                            "dependents": response.dependents.iter().map(json::dependency).collect::<Vec<_>>(),
                        })
                    },
                    String::new,
                );
            }
            // For people: the related tasks with their status and title
            // (best effort: a task that cannot be read shows its id only).
            let mut related: HashMap<String, Option<Task>> = HashMap::new();
            let ids = response
                .dependencies
                .iter()
                .map(|d| &d.depends_on_task_id)
                .chain(response.dependents.iter().map(|d| &d.task_id));
            for id in ids {
                if !related.contains_key(id) {
                    let task = super::tasks::get(ctx, id).await.ok();
                    related.insert(id.clone(), task);
                }
            }
            let section = |title: &str, ids: Vec<&String>| {
                let mut text = format!("{title}:\n");
                if ids.is_empty() {
                    text.push_str("  (none)\n");
                }
                for id in ids {
                    let task = related.get(id).and_then(Option::as_ref);
                    text.push_str(&format!("  {}\n", table::task_line(id, task)));
                }
                text
            };
            let text = format!(
                "{}{}",
                section(
                    &format!("{} depends on", table::short_id(&task_id)),
                    response
                        .dependencies
                        .iter()
                        .map(|d| &d.depends_on_task_id)
                        .collect()
                ),
                section(
                    &format!("depending on {}", table::short_id(&task_id)),
                    response.dependents.iter().map(|d| &d.task_id).collect()
                ),
            );
            show(ctx, || json!(null), || text)
        }
    }
}
