//! `amon tasks`: the tasks of the board.

use amon_proto::v1::{
    CreateTaskRequest, DeleteTaskRequest, FinishTaskWorktreeRequest, GetBoardRequest,
    GetTaskRequest, ListTasksRequest, MoveTaskRequest, Task, TaskInputContext, TaskStatus,
    UpdateTaskRequest, WorktreeDisposal, WorktreeIsolation, move_task_request::Position,
};
use clap::{ArgGroup, Args, Subcommand, builder::PossibleValuesParser};
use prost_types::FieldMask;
use serde_json::Value;

use super::{apply_clears, done, finish_update, in_mask, missing, show, show_list};
use crate::{
    client::{Ctx, PAGE_SIZE, UsageError, all_pages},
    enums, json,
    mask::MaskBuilder,
    parse, resolve, table,
};

const TASK_HELP: &str = "\
TASK arguments accept a task id or a prefix of at least 4 characters (the board
and the tables show 8). AGENT arguments accept an id, an id prefix or a slug.

--arg k=v values are JSON when they parse as JSON (n=42, flag=true, opts='{\"a\":1}'),
otherwise strings (pattern=foo bar); quote a JSON-looking string as JSON: n='\"42\"'.";

/// Tasks: create, inspect, change and move the cards of the board.
#[derive(Debug, Subcommand)]
pub enum TasksCmd {
    /// Create a task at the bottom of its column.
    #[command(after_help = TASK_HELP)]
    Create(CreateArgs),
    /// Show one task.
    #[command(visible_alias = "show", after_help = TASK_HELP)]
    Get {
        /// Task id or id prefix.
        task: String,
    },
    /// List tasks, by column then position (every page).
    #[command(visible_alias = "ls", after_help = TASK_HELP)]
    List(ListArgs),
    /// Change a task: only the fields given are sent (a FieldMask).
    #[command(after_help = TASK_HELP)]
    Update(UpdateArgs),
    /// Delete a task with its dependencies, runs and events.
    #[command(visible_alias = "rm", after_help = TASK_HELP)]
    Delete {
        /// Task id or id prefix.
        task: String,
        /// First finish the task's git worktree: keep-branch or remove-branch
        /// (default: its worker removes it, keeping the branch, when it next starts).
        #[arg(long, value_name = "DISPOSAL", value_parser = PossibleValuesParser::new(["keep-branch", "remove-branch"]))]
        worktree: Option<String>,
        /// With --worktree: remove it even with uncommitted changes (lost).
        #[arg(long, requires = "worktree")]
        force: bool,
    },
    /// Finish a task's git worktree: remove it and keep its branch, or
    /// remove both (--remove-branch).
    #[command(after_help = TASK_HELP)]
    FinishWorktree {
        /// Task id or id prefix.
        task: String,
        /// Delete the branch too.
        #[arg(long)]
        remove_branch: bool,
        /// Remove it even with uncommitted changes (they are lost).
        #[arg(long)]
        force: bool,
    },
    /// Move a task to a column and/or a place in it (top by default).
    #[command(after_help = TASK_HELP)]
    Move(MoveArgs),
}

/// Fields shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct TaskFields {
    /// Longer description.
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    /// Priority from 1 (most urgent) to 5 (least); default 3.
    #[arg(long, short = 'p', value_name = "1-5", value_parser = clap::value_parser!(i32).range(1..=5))]
    pub priority: Option<i32>,
    /// Parent task (makes this a subtask).
    #[arg(long, value_name = "TASK")]
    pub parent: Option<String>,
    /// Agent assigned to the task.
    #[arg(long, value_name = "AGENT")]
    pub assignee: Option<String>,
    /// Board column.
    #[arg(long, value_parser = enums::parser::<TaskStatus>())]
    pub status: Option<TaskStatus>,
    /// Working directory for the task's runs.
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// Environment variable for the task's runs (repeat; on update, sets
    /// these and keeps the others: `--clear env` first to drop them).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse::env_pair)]
    pub env: Vec<(String, String)>,
    /// Default argument of the task's runs (repeat; on update, sets these
    /// and keeps the others: `--clear args` first to drop them).
    #[arg(long = "arg", value_name = "KEY=VALUE", value_parser = parse::key_json_value)]
    pub args: Vec<(String, Value)>,
    /// Text added to AI agents' prompts.
    #[arg(long, value_name = "TEXT")]
    pub prompt_additions: Option<String>,
    /// Run in a git worktree of the working directory's repository, on a
    /// branch of the task's own (worktree), or in the directory itself
    /// (none); default: the agent's choice.
    #[arg(long, value_name = "ISOLATION", value_parser = PossibleValuesParser::new(["worktree", "none"]))]
    pub isolation: Option<String>,
    /// With worktree isolation: the branch, tag or commit its worktree
    /// starts from (default: the repository's HEAD).
    #[arg(long, value_name = "REF")]
    pub base_ref: Option<String>,
    /// Due date: RFC 3339 (2024-05-01T17:00:00Z) or a date (2024-05-01).
    #[arg(long, value_name = "TIME", value_parser = parse::timestamp)]
    pub due: Option<prost_types::Timestamp>,
}

/// `amon tasks create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Title of the task.
    pub title: String,
    #[command(flatten)]
    pub fields: TaskFields,
}

/// `amon tasks list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks in this column.
    #[arg(long, value_parser = enums::parser::<TaskStatus>())]
    pub status: Option<TaskStatus>,
    /// Only tasks assigned to this agent.
    #[arg(long, value_name = "AGENT")]
    pub assignee: Option<String>,
    /// Only subtasks of this task.
    #[arg(long, value_name = "TASK")]
    pub parent: Option<String>,
}

/// Task fields `update --clear` can reset, named after their flags, with
/// their FieldMask paths.
const CLEARABLE: [(&str, &str); 8] = [
    ("description", "description"),
    ("parent", "parent_task_id"),
    ("assignee", "assignee_agent_id"),
    ("due", "due_at"),
    ("working-dir", "input_context"),
    ("env", "input_context"),
    ("args", "input_context"),
    ("prompt-additions", "input_context"),
];

/// `amon tasks update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Task id or id prefix.
    pub task: String,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub fields: TaskFields,
    /// Reset a field to empty (repeatable).
    #[arg(long, value_name = "FIELD", value_parser = PossibleValuesParser::new(CLEARABLE.map(|(name, _)| name)))]
    pub clear: Vec<String>,
}

/// `amon tasks move`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("position").args(["after", "before", "bottom"])))]
pub struct MoveArgs {
    /// Task id or id prefix.
    pub task: String,
    /// Target column (default: the task's own, to reorder it).
    #[arg(long, value_parser = enums::parser::<TaskStatus>())]
    pub to: Option<TaskStatus>,
    /// Place it right after this task of the target column.
    #[arg(long, value_name = "TASK")]
    pub after: Option<String>,
    /// Place it right before this task of the target column.
    #[arg(long, value_name = "TASK")]
    pub before: Option<String>,
    /// Place it at the bottom of the target column.
    #[arg(long)]
    pub bottom: bool,
}

/// Ids the task fields refer to, resolved.
#[derive(Debug, Default)]
struct Refs {
    parent: Option<String>,
    assignee: Option<String>,
}

async fn resolve_refs(ctx: &Ctx, fields: &TaskFields) -> anyhow::Result<Refs> {
    Ok(Refs {
        parent: resolve::opt_task_id(ctx, fields.parent.as_deref()).await?,
        assignee: match &fields.assignee {
            Some(agent) => Some(resolve::agent_id(ctx, agent).await?),
            None => None,
        },
    })
}

/// Runs `amon tasks …`.
pub async fn run(ctx: &Ctx, cmd: TasksCmd) -> anyhow::Result<()> {
    match cmd {
        TasksCmd::Create(args) => {
            let refs = resolve_refs(ctx, &args.fields).await?;
            let task = new_task(args, refs);
            let response = ctx
                .tasks()
                .create_task(CreateTaskRequest { task: Some(task) })
                .await?
                .into_inner();
            let task = response.task.ok_or_else(|| missing("task"))?;
            print_one(ctx, &task).await
        }
        TasksCmd::Get { task } => {
            let id = resolve::task_id(ctx, &task).await?;
            let task = get(ctx, &id).await?;
            print_one(ctx, &task).await
        }
        TasksCmd::List(args) => {
            let assignee = match &args.assignee {
                Some(agent) => resolve::agent_id(ctx, agent).await?,
                None => String::new(),
            };
            let parent = resolve::opt_task_id(ctx, args.parent.as_deref())
                .await?
                .unwrap_or_default();
            let status = args.status.map(|s| s as i32).unwrap_or_default();
            let client = ctx.tasks();
            let tasks = all_pages(|page_token| {
                let mut client = client.clone();
                let (assignee_agent_id, parent_task_id) = (assignee.clone(), parent.clone());
                async move {
                    let r = client
                        .list_tasks(ListTasksRequest {
                            page_size: PAGE_SIZE,
                            page_token,
                            status,
                            assignee_agent_id,
                            parent_task_id,
                        })
                        .await?
                        .into_inner();
                    Ok((r.tasks, r.next_page_token))
                }
            })
            .await?;
            let names = if ctx.json || tasks.is_empty() {
                Default::default()
            } else {
                resolve::agent_names(ctx).await
            };
            show_list(ctx, tasks.iter().map(json::task).collect(), "tasks", || {
                table::tasks(&tasks, &names)
            })
        }
        TasksCmd::Update(args) => {
            let id = resolve::task_id(ctx, &args.task).await?;
            let refs = resolve_refs(ctx, &args.fields).await?;
            let current = if touches_context(&args) {
                get(ctx, &id).await?.input_context
            } else {
                None
            };
            let (task, update_mask) = update_request(id, &args, refs, current)?;
            let response = ctx
                .tasks()
                .update_task(UpdateTaskRequest {
                    task: Some(task),
                    update_mask: Some(update_mask),
                })
                .await?
                .into_inner();
            let task = response.task.ok_or_else(|| missing("task"))?;
            print_one(ctx, &task).await
        }
        TasksCmd::Delete {
            task,
            worktree,
            force,
        } => {
            let id = resolve::task_id(ctx, &task).await?;
            let worktree = match worktree.as_deref() {
                Some("keep-branch") => WorktreeDisposal::KeepBranch,
                Some("remove-branch") => WorktreeDisposal::RemoveBranch,
                _ => WorktreeDisposal::Unspecified,
            };
            ctx.tasks()
                .delete_task(DeleteTaskRequest {
                    id: id.clone(),
                    worktree: worktree as i32,
                    force_worktree: force,
                })
                .await?;
            done(ctx, &format!("deleted task {id}"))
        }
        TasksCmd::FinishWorktree {
            task,
            remove_branch,
            force,
        } => {
            let id = resolve::task_id(ctx, &task).await?;
            let disposal = if remove_branch {
                WorktreeDisposal::RemoveBranch
            } else {
                WorktreeDisposal::KeepBranch
            };
            let finished = ctx
                .tasks()
                .finish_task_worktree(FinishTaskWorktreeRequest {
                    task_id: id.clone(),
                    disposal: disposal as i32,
                    force,
                })
                .await?
                .into_inner();
            let message = match (finished.worktree_removed, finished.branch_removed) {
                (true, true) => format!("removed the worktree and branch {}", finished.branch),
                (true, false) => format!("removed the worktree; kept branch {}", finished.branch),
                (false, true) => {
                    format!("the worktree was gone; removed branch {}", finished.branch)
                }
                (false, false) => format!("the worktree was gone; kept branch {}", finished.branch),
            };
            if ctx.json {
                crate::output::json(&serde_json::json!({
                    "worktree_removed": finished.worktree_removed,
                    "branch_removed": finished.branch_removed,
                    "branch": finished.branch,
                }))?;
                Ok(())
            } else {
                done(ctx, &message)
            }
        }
        TasksCmd::Move(args) => {
            let id = resolve::task_id(ctx, &args.task).await?;
            let status = match args.to {
                Some(status) => status as i32,
                None => get(ctx, &id).await?.status,
            };
            let position = if let Some(after) = &args.after {
                Some(Position::AfterTaskId(resolve::task_id(ctx, after).await?))
            } else if let Some(before) = &args.before {
                Some(Position::BeforeTaskId(resolve::task_id(ctx, before).await?))
            } else if args.bottom {
                bottom_of(ctx, status, &id)
                    .await?
                    .map(Position::AfterTaskId)
            } else {
                None
            };
            let response = ctx
                .tasks()
                .move_task(MoveTaskRequest {
                    id,
                    status,
                    position,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let task = response.task.ok_or_else(|| missing("task"))?;
            print_one(ctx, &task).await
        }
    }
}

/// One task by id.
pub async fn get(ctx: &Ctx, id: &str) -> anyhow::Result<Task> {
    ctx.tasks()
        .get_task(GetTaskRequest { id: id.to_string() })
        .await?
        .into_inner()
        .task
        .ok_or_else(|| missing("task"))
}

/// The last task of column `status` other than `moving`, if any.
async fn bottom_of(ctx: &Ctx, status: i32, moving: &str) -> anyhow::Result<Option<String>> {
    let board = ctx
        .tasks()
        .get_board(GetBoardRequest {})
        .await?
        .into_inner();
    Ok(board
        .columns
        .iter()
        .filter(|c| c.status == status)
        .flat_map(|c| c.tasks.iter())
        .rfind(|t| t.id != moving)
        .map(|t| t.id.clone()))
}

async fn print_one(ctx: &Ctx, task: &Task) -> anyhow::Result<()> {
    let names = if ctx.json || task.assignee_agent_id.is_none() {
        Default::default()
    } else {
        resolve::agent_names(ctx).await
    };
    show(ctx, || json::task(task), || table::task(task, &names))
}

/// The input context `fields` give, or `None` when they give none of it.
fn input_context(fields: &TaskFields) -> Option<TaskInputContext> {
    let context = TaskInputContext {
        working_dir: fields.working_dir.clone(),
        env_overrides: fields.env.iter().cloned().collect(),
        args: (!fields.args.is_empty()).then(|| json::pairs_to_struct(&fields.args)),
        prompt_additions: fields.prompt_additions.clone(),
        isolation: isolation(fields),
        base_ref: fields.base_ref.clone(),
    };
    (context != TaskInputContext::default()).then_some(context)
}

/// The wire value of `--isolation` (0: not given).
fn isolation(fields: &TaskFields) -> i32 {
    match fields.isolation.as_deref() {
        Some("worktree") => WorktreeIsolation::Worktree as i32,
        Some("none") => WorktreeIsolation::None as i32,
        _ => WorktreeIsolation::Unspecified as i32,
    }
}

/// The task `create` sends.
fn new_task(args: CreateArgs, refs: Refs) -> Task {
    let fields = &args.fields;
    Task {
        title: args.title.clone(),
        description: fields.description.clone(),
        priority: fields.priority,
        parent_task_id: refs.parent,
        assignee_agent_id: refs.assignee,
        status: fields.status.map(|s| s as i32).unwrap_or_default(),
        input_context: input_context(fields),
        due_at: fields.due,
        ..Default::default()
    }
}

/// `--clear` names of the input context's parts.
const CONTEXT_PARTS: [&str; 4] = ["working-dir", "env", "args", "prompt-additions"];

/// Whether `update` changes part of the input context (which the API
/// replaces as a whole: the current one must be read first).
fn touches_context(args: &UpdateArgs) -> bool {
    let f = &args.fields;
    f.working_dir.is_some()
        || !f.env.is_empty()
        || !f.args.is_empty()
        || f.prompt_additions.is_some()
        || f.isolation.is_some()
        || f.base_ref.is_some()
        || args
            .clear
            .iter()
            .any(|c| CONTEXT_PARTS.contains(&c.as_str()))
}

/// The task and mask `update` sends: exactly the fields given. The input
/// context is one field on the wire: its parts are applied to `current`
/// (the task's context as read before), `--clear` first, then the new
/// values; `--env` and `--arg` add to (or replace single entries of) what
/// is there.
fn update_request(
    id: String,
    args: &UpdateArgs,
    refs: Refs,
    current: Option<TaskInputContext>,
) -> Result<(Task, FieldMask), UsageError> {
    let fields = &args.fields;
    let mut task = Task {
        id,
        ..Default::default()
    };
    let mut mask = MaskBuilder::new();
    mask.set("title", args.title.clone(), |v| task.title = v);
    mask.set("description", fields.description.clone(), |v| {
        task.description = Some(v)
    });
    mask.set("priority", fields.priority, |v| task.priority = Some(v));
    mask.set("parent_task_id", refs.parent, |v| {
        task.parent_task_id = Some(v)
    });
    mask.set("assignee_agent_id", refs.assignee, |v| {
        task.assignee_agent_id = Some(v)
    });
    mask.set("status", fields.status, |v| task.status = v as i32);
    mask.set("due_at", fields.due, |v| task.due_at = Some(v));

    let mut context = current.unwrap_or_default();
    apply_clears(
        &CLEARABLE,
        &args.clear,
        &mut mask,
        |field, path, mask| match field {
            "working-dir" => fields.working_dir.is_some(),
            "prompt-additions" => fields.prompt_additions.is_some(),
            // Clearing then adding entries replaces the whole map.
            "env" | "args" => false,
            _ => in_mask(field, path, mask),
        },
        |field, path, mask| match field {
            "working-dir" => context.working_dir = None,
            "env" => context.env_overrides.clear(),
            "args" => context.args = None,
            "prompt-additions" => context.prompt_additions = None,
            _ => mask.add(path),
        },
    )?;
    if let Some(dir) = &fields.working_dir {
        context.working_dir = Some(dir.clone());
    }
    context.env_overrides.extend(fields.env.iter().cloned());
    if !fields.args.is_empty() {
        let mut merged = context
            .args
            .as_ref()
            .map(json::struct_to_json)
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        merged.extend(fields.args.iter().cloned());
        context.args = Some(json::map_to_struct(&merged));
    }
    if let Some(text) = &fields.prompt_additions {
        context.prompt_additions = Some(text.clone());
    }
    if fields.isolation.is_some() {
        context.isolation = isolation(fields);
    }
    if let Some(base) = &fields.base_ref {
        context.base_ref = Some(base.clone());
    }
    if touches_context(args) {
        task.input_context = Some(context);
        mask.add("input_context");
    }
    Ok((task, finish_update(mask)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{super::parse_subcommand, *};

    fn parse(args: &[&str]) -> Result<TasksCmd, clap::Error> {
        parse_subcommand("tasks", args)
    }

    #[test]
    fn create_builds_the_task() {
        let TasksCmd::Create(args) = parse(&[
            "create",
            "Write docs",
            "-p",
            "2",
            "--status",
            "in-progress",
            "--env",
            "RUST_LOG=debug",
            "--arg",
            "count=3",
            "--arg",
            "pattern=fn main",
            "--arg",
            r#"opts={"deep":[1]}"#,
            "--due",
            "2024-05-01",
        ])
        .unwrap() else {
            panic!()
        };
        let task = new_task(
            args,
            Refs {
                parent: None,
                assignee: Some("agent-1".into()),
            },
        );
        assert_eq!(task.title, "Write docs");
        assert_eq!(task.priority, Some(2));
        assert_eq!(task.status, TaskStatus::InProgress as i32);
        assert_eq!(task.assignee_agent_id.as_deref(), Some("agent-1"));
        assert_eq!(task.due_at.unwrap().seconds, 1_714_521_600);
        let context = task.input_context.unwrap();
        assert_eq!(context.env_overrides["RUST_LOG"], "debug");
        assert_eq!(
            json::opt_struct_to_json(context.args.as_ref()),
            json!({"count": 3, "pattern": "fn main", "opts": {"deep": [1]}})
        );
    }

    #[test]
    fn create_without_context_sends_none() {
        let TasksCmd::Create(args) = parse(&["create", "Plain"]).unwrap() else {
            panic!()
        };
        let task = new_task(args, Refs::default());
        assert_eq!(task.input_context, None);
        assert_eq!(task.status, 0);
        assert_eq!(task.priority, None);
    }

    fn update_with(
        args: &[&str],
        refs: Refs,
        current: Option<TaskInputContext>,
    ) -> Result<(Task, FieldMask), UsageError> {
        let mut argv = vec!["update", "abcd1234"];
        argv.extend(args);
        match parse(&argv).unwrap() {
            TasksCmd::Update(args) => update_request("task-1".into(), &args, refs, current),
            other => panic!("{other:?}"),
        }
    }

    fn update(args: &[&str], refs: Refs) -> Result<(Task, FieldMask), UsageError> {
        update_with(args, refs, None)
    }

    fn current_context() -> TaskInputContext {
        TaskInputContext {
            working_dir: Some("/old".into()),
            env_overrides: [
                ("KEEP".to_string(), "1".to_string()),
                ("A".into(), "old".into()),
            ]
            .into(),
            args: Some(json::pairs_to_struct(&[
                ("n".into(), json!(1)),
                ("m".into(), json!(2)),
            ])),
            prompt_additions: Some("be brief".into()),
            ..Default::default()
        }
    }

    #[test]
    fn update_mask_names_exactly_the_flags_given() {
        let (task, mask) = update(&["--title", "New", "-p", "1"], Refs::default()).unwrap();
        assert_eq!(mask.paths, vec!["title", "priority"]);
        assert_eq!(task.input_context, None);
        assert_eq!(task.id, "task-1");

        let (task, mask) = update(
            &["--status", "blocked", "--assignee", "git"],
            Refs {
                parent: None,
                assignee: Some("agent-1".into()),
            },
        )
        .unwrap();
        assert_eq!(mask.paths, vec!["assignee_agent_id", "status"]);
        assert_eq!(task.assignee_agent_id.as_deref(), Some("agent-1"));
        assert_eq!(task.status, TaskStatus::Blocked as i32);
    }

    #[test]
    fn update_changes_parts_of_the_input_context() {
        let (task, mask) = update_with(
            &["--working-dir", "/src", "--arg", "n=5", "--env", "A=new"],
            Refs::default(),
            Some(current_context()),
        )
        .unwrap();
        assert_eq!(mask.paths, vec!["input_context"]);
        let context = task.input_context.unwrap();
        assert_eq!(context.working_dir.as_deref(), Some("/src"));
        assert_eq!(context.env_overrides.len(), 2);
        assert_eq!(context.env_overrides["A"], "new");
        assert_eq!(context.env_overrides["KEEP"], "1");
        assert_eq!(
            json::opt_struct_to_json(context.args.as_ref()),
            json!({"n": 5, "m": 2})
        );
        assert_eq!(context.prompt_additions.as_deref(), Some("be brief"));
    }

    #[test]
    fn update_clears_fields() {
        let (task, mask) = update(
            &["--clear", "assignee", "--clear", "due", "--clear", "args"],
            Refs::default(),
        )
        .unwrap();
        assert_eq!(
            mask.paths,
            vec!["assignee_agent_id", "due_at", "input_context"]
        );
        assert_eq!(task.assignee_agent_id, None);
        assert_eq!(task.input_context.unwrap().args, None);
        assert!(update(&["--due", "2024-01-01", "--clear", "due"], Refs::default()).is_err());
        assert!(
            update(
                &["--working-dir", "/x", "--clear", "working-dir"],
                Refs::default()
            )
            .is_err()
        );
        assert!(update(&[], Refs::default()).is_err());

        // Clearing a map then adding entries replaces it.
        let (task, _) = update_with(
            &[
                "--clear",
                "env",
                "--env",
                "B=2",
                "--clear",
                "prompt-additions",
            ],
            Refs::default(),
            Some(current_context()),
        )
        .unwrap();
        let context = task.input_context.unwrap();
        assert_eq!(
            context.env_overrides,
            [("B".to_string(), "2".to_string())].into()
        );
        assert_eq!(context.prompt_additions, None);
        assert_eq!(context.working_dir.as_deref(), Some("/old"));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(parse(&["create", "x", "--priority", "6"]).is_err());
        assert!(parse(&["create", "x", "--status", "doing"]).is_err());
        assert!(parse(&["create", "x", "--arg", "novalue"]).is_err());
        assert!(parse(&["create", "x", "--env", "NOVALUE"]).is_err());
        assert!(parse(&["create", "x", "--due", "someday"]).is_err());
        assert!(parse(&["move", "t", "--after", "a", "--before", "b"]).is_err());
        assert!(parse(&["move", "t", "--after", "a", "--bottom"]).is_err());
        assert!(parse(&["update", "t", "--clear", "title"]).is_err());
    }
}
