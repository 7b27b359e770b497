//! Parallel AI agents on one repository (issue 18): a git worktree per task,
//! and the change each run made. A real server, real `amon-worker`
//! processes, the fake Claude CLI (`tests/fixtures/fake-claude`, told to
//! write and commit files), and real git repositories made here, on SQLite
//! and PostgreSQL. What a user sees: where each run worked, the recorded
//! numstat, the diff, the worktree's lifecycle, and the errors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use amon_proto::v1::{
    Agent, AgentMetadata, Capability, ContinueExecutionRequest, CreatePresetAgentRequest,
    DeleteTaskRequest, Execution, ExecutionStatus, FinishTaskWorktreeRequest,
    GetExecutionDiffRequest, MoveTaskRequest, Task, TaskInputContext, TaskStatus,
    UpdateAgentRequest, WorktreeDisposal, WorktreeIsolation,
};
use amon_tests::{
    api::{Api, strings},
    both_backends,
    db::TestDb,
    mcp::{connect, ok, refused},
    server::TestServer,
    worker::{TestWorker, unique_worker},
};
use anyhow::Result;
use serde_json::{Value, json};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `git -C dir args`, which must succeed; its output.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .output()
        .expect("running git");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

/// Whether `refs/heads/<branch>` exists in `repo`.
fn has_branch(repo: &Path, branch: &str) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
        .output()
        .expect("running git")
        .status
        .success()
}

/// A repository with one commit: `README` of two lines.
fn repository(parent: &Path, name: &str) -> PathBuf {
    let repo = parent.join(name);
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "line one\nline two\n").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    repo
}

struct Setup {
    server: TestServer,
    api: Api,
    worker: Option<TestWorker>,
    worker_id: String,
    /// Repositories, records of the fakes, the worker's HOME.
    scratch: tempfile::TempDir,
    agent: Agent,
    prompt: Capability,
}

impl Setup {
    async fn new(db: &TestDb) -> Self {
        let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
        let mut api = Api::new(server.channel().await);
        let worker_id = unique_worker("wt");
        let scratch = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(scratch.path().join("home")).unwrap();
        let response = api
            .agents
            .create_preset_agent(CreatePresetAgentRequest {
                preset: "claude".into(),
                binary_path: Some(fixture("fake-claude")),
                slug: Some("claude".into()),
                max_concurrent: Some(4),
                ..Default::default()
            })
            .await
            .expect("create preset agent")
            .into_inner();
        let mut setup = Self {
            server,
            api,
            worker: None,
            worker_id,
            scratch,
            agent: response.agent.unwrap(),
            prompt: response.capability.unwrap(),
        };
        setup.start_worker();
        setup
    }

    fn start_worker(&mut self) {
        let home = self.scratch.path().join("home");
        self.worker = Some(TestWorker::start(
            &self.server,
            &self.worker_id,
            2,
            &[("HOME", home.to_str().unwrap())],
        ));
    }

    fn worker_data_dir(&self) -> PathBuf {
        self.server.data_dir().join("workers").join(&self.worker_id)
    }

    /// Where the worker keeps `task`'s worktree.
    fn worktree_of(&self, task: &Task) -> PathBuf {
        self.worker_data_dir().join("worktrees").join(&task.id)
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(format!("{name}.jsonl"))
    }

    /// The runs the fake recorded under `name`, one JSON object each.
    fn recorded(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.record_path(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("record line is JSON"))
            .collect()
    }

    /// A task working in `dir` whose runs append their prompt to `file`
    /// (and commit it, with `commit`), recording under `record`.
    async fn task(
        &mut self,
        title: &str,
        dir: &Path,
        isolation: WorktreeIsolation,
        file: &str,
        commit: bool,
        base_ref: Option<&str>,
    ) -> Task {
        let mut env = vec![
            ("FAKE_CLI_WRITE".to_string(), file.to_string()),
            (
                "FAKE_CLI_RECORD".to_string(),
                self.record_path(title).to_string_lossy().into_owned(),
            ),
            // Slow enough for two runs to overlap.
            ("FAKE_CLI_DELAY".to_string(), "0.2".to_string()),
        ];
        if commit {
            env.push(("FAKE_CLI_COMMIT".into(), format!("{title}: change")));
        }
        self.api
            .task(Task {
                title: title.into(),
                input_context: Some(TaskInputContext {
                    working_dir: Some(dir.to_string_lossy().into_owned()),
                    env_overrides: env.into_iter().collect(),
                    isolation: isolation as i32,
                    base_ref: base_ref.map(str::to_owned),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
    }

    async fn start(&mut self, task: &Task) -> Execution {
        self.api.run(task, &self.prompt.clone(), json!({}), 0).await
    }

    async fn wait_end(&mut self, id: &str) -> Execution {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let execution = self.api.execution(id).await;
            if matches!(
                execution.status(),
                ExecutionStatus::Succeeded
                    | ExecutionStatus::Failed
                    | ExecutionStatus::Cancelled
                    | ExecutionStatus::TimedOut
            ) {
                return execution;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution {id} still {:?}",
                execution.status()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn run_to_end(&mut self, task: &Task) -> Execution {
        let execution = self.start(task).await;
        self.wait_end(&execution.id).await
    }

    async fn diff(&mut self, execution: &Execution) -> Result<(String, bool), tonic::Status> {
        self.api
            .executions
            .get_execution_diff(GetExecutionDiffRequest {
                execution_id: execution.id.clone(),
                max_bytes: 0,
            })
            .await
            .map(|r| {
                let r = r.into_inner();
                (String::from_utf8_lossy(&r.diff).into_owned(), r.truncated)
            })
    }

    async fn finish(
        &mut self,
        task: &Task,
        disposal: WorktreeDisposal,
        force: bool,
    ) -> Result<amon_proto::v1::FinishTaskWorktreeResponse, tonic::Status> {
        self.api
            .tasks
            .finish_task_worktree(FinishTaskWorktreeRequest {
                task_id: task.id.clone(),
                disposal: disposal as i32,
                force,
            })
            .await
            .map(|r| r.into_inner())
    }
}

/// Waits (up to [`WAIT`]) until `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {WAIT:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn cwd_files(record: &Value) -> Vec<String> {
    record["cwd_files"]
        .as_array()
        .expect("cwd_files recorded")
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

/// The lines of a unified diff that add to or remove from files (not the
/// `+++`/`---` headers), as numstat counts them.
fn changed_lines(diff: &str) -> (i32, i32) {
    let lines = diff
        .lines()
        .filter(|l| !l.starts_with("+++") && !l.starts_with("---"));
    let (mut added, mut removed) = (0, 0);
    for line in lines {
        if line.starts_with('+') {
            added += 1;
        } else if line.starts_with('-') {
            removed += 1;
        }
    }
    (added, removed)
}

/// Two runs of two tasks on one repository at once: each writes a file in
/// its own worktree and neither sees the other's; the base repository's
/// working tree is untouched; each run's numstat and diff are what it
/// wrote; a continuation finds the first run's file.
async fn two_runs_on_one_repository_never_collide(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db).await;
    let repo = repository(s.scratch.path(), "repo");
    let first = s
        .task(
            "Alpha task",
            &repo,
            WorktreeIsolation::Worktree,
            "alpha.txt",
            false,
            None,
        )
        .await;
    // The second takes isolation from its agent's default.
    s.api
        .agents
        .update_agent(UpdateAgentRequest {
            agent: Some(Agent {
                id: s.agent.id.clone(),
                metadata: Some(AgentMetadata {
                    default_isolation: WorktreeIsolation::Worktree as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: strings(&["metadata"]),
            }),
        })
        .await?;
    let second = s
        .task(
            "Beta task",
            &repo,
            WorktreeIsolation::Unspecified,
            "beta.txt",
            false,
            None,
        )
        .await;

    let (a, b) = (s.start(&first).await, s.start(&second).await);
    let a = s.wait_end(&a.id).await;
    let b = s.wait_end(&b.id).await;
    assert_eq!(a.status(), ExecutionStatus::Succeeded, "{a:?}");
    assert_eq!(b.status(), ExecutionStatus::Succeeded, "{b:?}");

    // Each worked in its task's own worktree and saw only its own file.
    let (ra, rb) = (&s.recorded("Alpha task")[0], &s.recorded("Beta task")[0]);
    let (wa, wb) = (s.worktree_of(&first), s.worktree_of(&second));
    assert_eq!(Path::new(ra["cwd"].as_str().unwrap()), wa.canonicalize()?);
    assert_eq!(Path::new(rb["cwd"].as_str().unwrap()), wb.canonicalize()?);
    assert_eq!(cwd_files(ra), ["README", "alpha.txt"]);
    assert_eq!(cwd_files(rb), ["README", "beta.txt"]);
    // The base repository's working tree was never touched.
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert!(!repo.join("alpha.txt").exists() && !repo.join("beta.txt").exists());

    // The change each made, recorded on its execution.
    let summary = a
        .worktree
        .clone()
        .expect("a worktree summary on the execution");
    let short = &first.id[..8];
    assert_eq!(summary.branch, format!("amon/{short}-alpha-task"));
    assert!(has_branch(&repo, &summary.branch));
    assert_eq!(summary.base_ref, "HEAD");
    assert_eq!(summary.base_commit, git(&repo, &["rev-parse", "HEAD"]));
    assert_eq!(summary.commits, 0);
    assert!(summary.dirty);
    assert_eq!(summary.files.len(), 1, "{summary:?}");
    let prompt_lines = a.prompt.as_deref().unwrap().lines().count() as i32;
    assert_eq!(summary.files[0].path, "alpha.txt");
    assert_eq!(
        (summary.files[0].added, summary.files[0].removed),
        (prompt_lines, 0)
    );
    let other = b.worktree.clone().unwrap();
    assert_eq!(other.files[0].path, "beta.txt");
    assert_ne!(other.branch, summary.branch);

    // Its diff: what the fake wrote, as the numstat counts it.
    let (diff, truncated) = s.diff(&a).await?;
    assert!(!truncated);
    assert!(diff.contains("+++ b/alpha.txt"), "{diff}");
    assert!(!diff.contains("beta.txt"), "{diff}");
    for line in a.prompt.as_deref().unwrap().lines() {
        assert!(diff.contains(&format!("\n+{line}")), "{line:?} in {diff}");
    }
    assert_eq!(changed_lines(&diff), (summary.files[0].added, 0));
    // The same through /mcp, as an AI agent reviewing the run reads it.
    let mcp = connect(&format!("http://{}/mcp", s.server.addr()), None).await?;
    let answer = ok(&mcp, "get_execution_diff", json!({"execution_id": a.id})).await;
    assert_eq!(answer["diff"], diff.as_str());
    assert_eq!(answer["truncated"], false);
    assert_eq!(answer["worktree"]["branch"], summary.branch.as_str());
    let cut = ok(
        &mcp,
        "get_execution_diff",
        json!({"execution_id": a.id, "max_bytes": 10}),
    )
    .await;
    assert_eq!(cut["truncated"], true);
    assert!(diff.starts_with(cut["diff"].as_str().unwrap()), "{cut}");
    let got = ok(&mcp, "get_execution", json!({"execution_id": a.id})).await;
    assert_eq!(got["worktree"]["files"][0]["path"], "alpha.txt");
    assert_eq!(got["worktree"]["files"][0]["added"], prompt_lines);
    refused(
        &mcp,
        "get_execution_diff",
        json!({"execution_id": a.id, "max_bytes": 0}),
        &["max_bytes"],
    )
    .await;

    // A continuation resumes in the same worktree and finds the file.
    let next = s
        .api
        .executions
        .continue_execution(ContinueExecutionRequest {
            id: a.id.clone(),
            prompt: "One more line".into(),
        })
        .await?
        .into_inner()
        .execution
        .unwrap();
    let next = s.wait_end(&next.id).await;
    assert_eq!(next.status(), ExecutionStatus::Succeeded, "{next:?}");
    let records = s.recorded("Alpha task");
    assert_eq!(records[1]["cwd"], ra["cwd"]);
    assert_eq!(cwd_files(&records[1]), ["README", "alpha.txt"]);
    let text = std::fs::read_to_string(wa.join("alpha.txt"))?;
    assert!(text.ends_with("One more line\n"), "{text}");
    let later = next.worktree.unwrap();
    assert_eq!(later.branch, summary.branch);
    assert_eq!(later.files[0].added, prompt_lines + 1);
    // The first run's diff is still what the first run made.
    let (again, _) = s.diff(&a).await?;
    assert_eq!(again, diff);
    Ok(())
}

/// Finishing a worktree: a dirty one survives a cleanup without force;
/// keeping the branch removes the worktree and leaves the branch (and the
/// run's diff readable); removing both leaves neither.
async fn cleanup_keeps_the_branch_and_spares_a_dirty_worktree(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db).await;
    let repo = repository(s.scratch.path(), "repo");
    let dirty = s
        .task(
            "Dirty work",
            &repo,
            WorktreeIsolation::Worktree,
            "notes.txt",
            false,
            None,
        )
        .await;
    let run = s.run_to_end(&dirty).await;
    assert_eq!(run.status(), ExecutionStatus::Succeeded, "{run:?}");
    let path = s.worktree_of(&dirty);
    let branch = run.worktree.clone().unwrap().branch;

    let refused = s
        .finish(&dirty, WorktreeDisposal::KeepBranch, false)
        .await
        .expect_err("uncommitted changes");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("uncommitted"), "{refused:?}");
    assert!(
        path.join("notes.txt").exists(),
        "the dirty worktree survives"
    );

    let done = s.finish(&dirty, WorktreeDisposal::KeepBranch, true).await?;
    assert!(done.worktree_removed && !done.branch_removed, "{done:?}");
    assert_eq!(done.branch, branch);
    assert!(!path.exists());
    assert!(has_branch(&repo, &branch));
    assert!(!git(&repo, &["worktree", "list"]).contains(path.to_str().unwrap()));
    // The recorded change stays readable, its diff too (the objects are in
    // the repository).
    let (diff, _) = s.diff(&run).await?;
    assert!(diff.contains("+++ b/notes.txt"), "{diff}");

    // A run that committed its work leaves a clean worktree: it goes, and
    // with REMOVE_BRANCH its branch too.
    let clean = s
        .task(
            "Clean work",
            &repo,
            WorktreeIsolation::Worktree,
            "done.txt",
            true,
            None,
        )
        .await;
    let run = s.run_to_end(&clean).await;
    assert_eq!(run.status(), ExecutionStatus::Succeeded, "{run:?}");
    let summary = run.worktree.unwrap();
    assert_eq!((summary.commits, summary.dirty), (1, false), "{summary:?}");
    assert_eq!(summary.files[0].path, "done.txt");
    let done = s
        .finish(&clean, WorktreeDisposal::RemoveBranch, false)
        .await?;
    assert!(done.worktree_removed && done.branch_removed, "{done:?}");
    assert!(!s.worktree_of(&clean).exists());
    assert!(!has_branch(&repo, &summary.branch));

    // Mistakes.
    let none = s.api.titled("Never ran").await;
    let refused = s
        .finish(&none, WorktreeDisposal::KeepBranch, false)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let refused = s
        .finish(&clean, WorktreeDisposal::Unspecified, false)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("disposal"), "{refused:?}");
    Ok(())
}

/// Each way a worktree cannot be made fails the run with a clear
/// FAILED_PRECONDITION and leaves nothing half-created.
async fn errors_are_failed_preconditions(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db).await;
    let repo = repository(s.scratch.path(), "repo");
    let before = git(&repo, &["branch", "--list"]);

    let failed = |e: &Execution| {
        assert_eq!(e.status(), ExecutionStatus::Failed, "{e:?}");
        e.error.clone().unwrap_or_default()
    };

    let plain = s.scratch.path().join("plain");
    std::fs::create_dir_all(&plain)?;
    let task = s
        .task(
            "Not a repo",
            &plain,
            WorktreeIsolation::Worktree,
            "x.txt",
            false,
            None,
        )
        .await;
    let error = failed(&s.run_to_end(&task).await);
    assert!(error.starts_with("FAILED_PRECONDITION"), "{error}");
    assert!(error.contains("not in a git repository"), "{error}");
    assert!(!s.worktree_of(&task).exists());
    assert!(
        s.recorded("Not a repo").is_empty(),
        "the agent never started"
    );

    let task = s
        .task(
            "Bad base",
            &repo,
            WorktreeIsolation::Worktree,
            "x.txt",
            false,
            Some("no-such-ref"),
        )
        .await;
    let error = failed(&s.run_to_end(&task).await);
    assert!(error.starts_with("FAILED_PRECONDITION"), "{error}");
    assert!(
        error.contains("base ref \"no-such-ref\" does not exist"),
        "{error}"
    );
    assert!(!s.worktree_of(&task).exists());

    let task = s
        .task(
            "Taken branch",
            &repo,
            WorktreeIsolation::Worktree,
            "x.txt",
            false,
            None,
        )
        .await;
    let taken = format!("amon/{}-taken-branch", &task.id[..8]);
    git(&repo, &["branch", &taken]);
    let error = failed(&s.run_to_end(&task).await);
    assert!(error.starts_with("FAILED_PRECONDITION"), "{error}");
    assert!(error.contains(&format!("branch {taken}")), "{error}");
    assert!(error.contains("already"), "{error}");
    assert!(!s.worktree_of(&task).exists());
    git(&repo, &["branch", "-D", &taken]);

    let task = s
        .task(
            "Locked repo",
            &repo,
            WorktreeIsolation::Worktree,
            "x.txt",
            false,
            None,
        )
        .await;
    std::fs::write(repo.join(".git/index.lock"), "")?;
    let error = failed(&s.run_to_end(&task).await);
    std::fs::remove_file(repo.join(".git/index.lock"))?;
    assert!(error.starts_with("FAILED_PRECONDITION"), "{error}");
    assert!(
        error.contains("locked by a concurrent git command"),
        "{error}"
    );
    assert!(!s.worktree_of(&task).exists());

    // Nothing was left behind: no branch, no worktree, a clean base.
    assert_eq!(git(&repo, &["branch", "--list"]), before);
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");

    // The same task runs once the lock is gone.
    let run = s.run_to_end(&task).await;
    assert_eq!(run.status(), ExecutionStatus::Succeeded, "{run:?}");

    // A base ref that cannot be one is refused at the edge.
    let refused = s
        .api
        .tasks
        .create_task(amon_proto::v1::CreateTaskRequest {
            task: Some(Task {
                title: "Option".into(),
                input_context: Some(TaskInputContext {
                    base_ref: Some("--upload-pack=x".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("base_ref"), "{refused:?}");
    Ok(())
}

/// Deleting a task can finish its worktree first; a worktree of a task
/// deleted without that goes when its worker next starts (its branch and
/// recorded change stay); a worker that is away cannot be asked for a diff,
/// and says so.
async fn deleted_tasks_lose_their_worktrees(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db).await;
    let repo = repository(s.scratch.path(), "repo");

    let removed = s
        .task(
            "Delete with branch",
            &repo,
            WorktreeIsolation::Worktree,
            "a.txt",
            true,
            None,
        )
        .await;
    let run = s.run_to_end(&removed).await;
    let branch = run.worktree.unwrap().branch;
    s.api
        .tasks
        .delete_task(DeleteTaskRequest {
            id: removed.id.clone(),
            worktree: WorktreeDisposal::RemoveBranch as i32,
            force_worktree: false,
        })
        .await?;
    assert!(!s.worktree_of(&removed).exists());
    assert!(!has_branch(&repo, &branch));

    // Cancelling a task can finish its worktree too.
    let cancelled = s
        .task(
            "Cancel me",
            &repo,
            WorktreeIsolation::Worktree,
            "d.txt",
            true,
            None,
        )
        .await;
    let run = s.run_to_end(&cancelled).await;
    let branch = run.worktree.unwrap().branch;
    let moved = s
        .api
        .tasks
        .move_task(MoveTaskRequest {
            id: cancelled.id.clone(),
            status: TaskStatus::Cancelled as i32,
            worktree: WorktreeDisposal::KeepBranch as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .task
        .unwrap();
    assert_eq!(moved.status(), TaskStatus::Cancelled);
    assert!(!s.worktree_of(&cancelled).exists());
    assert!(has_branch(&repo, &branch));

    let left = s
        .task(
            "Delete later",
            &repo,
            WorktreeIsolation::Worktree,
            "b.txt",
            true,
            None,
        )
        .await;
    let kept = s
        .task(
            "Keep me",
            &repo,
            WorktreeIsolation::Worktree,
            "c.txt",
            true,
            None,
        )
        .await;
    let left_run = s.run_to_end(&left).await;
    let kept_run = s.run_to_end(&kept).await;
    assert_eq!(
        kept_run.status(),
        ExecutionStatus::Succeeded,
        "{kept_run:?}"
    );
    let left_branch = left_run.worktree.unwrap().branch;

    // Away: the recorded change is readable, the diff is not.
    s.worker.take().unwrap().terminate(WAIT).await;
    let refused = s.diff(&kept_run).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("not connected"), "{refused:?}");
    let still = s.api.execution(&kept_run.id).await;
    assert_eq!(still.worktree.unwrap().files[0].path, "c.txt");

    s.api
        .tasks
        .delete_task(DeleteTaskRequest {
            id: left.id.clone(),
            ..Default::default()
        })
        .await?;
    assert!(s.worktree_of(&left).exists());
    s.start_worker();
    let (gone, stays) = (s.worktree_of(&left), s.worktree_of(&kept));
    eventually("the deleted task's worktree to go", || !gone.exists()).await;
    assert!(stays.join("c.txt").exists());
    assert!(has_branch(&repo, &left_branch), "its branch is kept");
    Ok(())
}

/// A retry of a task's run goes to the worker holding the task's worktree,
/// and waits for it while it is away (another worker would start a fresh
/// worktree from the base and lose the first run's files).
async fn a_retry_waits_for_the_worker_holding_the_worktree(db: TestDb) -> Result<()> {
    let mut s = Setup::new(&db).await;
    let repo = repository(s.scratch.path(), "repo");
    let task = s
        .task(
            "Alpha task",
            &repo,
            WorktreeIsolation::Worktree,
            "alpha.txt",
            false,
            None,
        )
        .await;
    let first = s.run_to_end(&task).await;
    assert_eq!(first.status(), ExecutionStatus::Succeeded, "{first:?}");
    assert_eq!(first.worker_id.as_deref(), Some(s.worker_id.as_str()));

    // The holder goes away; another worker (with more free slots) comes.
    s.worker.take().unwrap().terminate(WAIT).await;
    let home = s.scratch.path().join("home");
    let other_id = unique_worker("wt-other");
    let _other = TestWorker::start(&s.server, &other_id, 4, &[("HOME", home.to_str().unwrap())]);
    let retry = s
        .api
        .executions
        .retry_execution(amon_proto::v1::RetryExecutionRequest {
            id: first.id.clone(),
        })
        .await?
        .into_inner()
        .execution
        .unwrap();
    // The other worker claims and finishes work queued after the retry...
    let plain_dir = s.scratch.path().join("plain");
    std::fs::create_dir_all(&plain_dir)?;
    let plain = s
        .task(
            "Plain task",
            &plain_dir,
            WorktreeIsolation::None,
            "plain.txt",
            false,
            None,
        )
        .await;
    let probe = s.run_to_end(&plain).await;
    assert_eq!(probe.status(), ExecutionStatus::Succeeded, "{probe:?}");
    assert_eq!(probe.worker_id.as_deref(), Some(other_id.as_str()));
    // ...and leaves the retry to the worktree's holder.
    let waiting = s.api.execution(&retry.id).await;
    assert_eq!(waiting.status(), ExecutionStatus::Queued, "{waiting:?}");

    // The holder returns: the retry runs there, in the same worktree, and
    // finds the first run's file. A watcher sees what it changed as it ends.
    let mut watch = s
        .api
        .executions
        .watch_executions(amon_proto::v1::WatchExecutionsRequest {
            execution_id: retry.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    s.start_worker();
    let watched = loop {
        let change = tokio::time::timeout(WAIT, watch.message())
            .await??
            .expect("the watch stays open")
            .execution
            .unwrap();
        if change.status() == ExecutionStatus::Succeeded {
            break change;
        }
    };
    let summary = watched
        .worktree
        .expect("the finished run's worktree, watched");
    assert_eq!(summary.files[0].path, "alpha.txt");
    let retried = s.wait_end(&retry.id).await;
    assert_eq!(retried.status(), ExecutionStatus::Succeeded, "{retried:?}");
    assert_eq!(retried.worker_id.as_deref(), Some(s.worker_id.as_str()));
    let records = s.recorded("Alpha task");
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1]["cwd"], records[0]["cwd"]);
    assert_eq!(cwd_files(&records[1]), ["README", "alpha.txt"]);
    assert_eq!(
        retried.worktree.unwrap().branch,
        first.worktree.unwrap().branch
    );
    Ok(())
}

both_backends!(
    two_runs_on_one_repository_never_collide,
    cleanup_keeps_the_branch_and_spares_a_dirty_worktree,
    errors_are_failed_preconditions,
    deleted_tasks_lose_their_worktrees,
    a_retry_waits_for_the_worker_holding_the_worktree
);
