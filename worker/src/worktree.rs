//! Git worktrees of tasks: a task with worktree isolation gets one worktree
//! of its repository, at `<data dir>/worktrees/<task id>`, on a branch of its
//! own, and every run of the task works there (a continuation or a retry
//! finds the files of the runs before it). Two tasks never share one, and
//! the base repository's working tree is never touched: a worktree has its
//! own index and checkout.
//!
//! Only the `git` CLI is used, never a shell, always `git -C <dir>`, with
//! the caller's `GIT_DIR`-like variables removed (a worker started from a
//! git hook must not act on the hook's repository). What the worker
//! records of a task's worktree lives in git itself: the branch's config
//! says which task made it (`branch.<name>.amonTask`) and what it was based
//! on (`branch.<name>.amonBase`), so a worktree outlives the worker process
//! and a restarted worker finds everything it needs.
//!
//! Errors are one line each and change nothing: every check (repository,
//! lock, base ref, branch) is made before anything is created, and a
//! creation that fails half-way is undone.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use amon_proto::v1::{WorktreeFileChange, WorktreeSummary};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// Folder of the worktrees under the worker's data directory.
pub(crate) const WORKTREES_DIR: &str = "worktrees";
/// Most files listed in a summary: a run that rewrote a vendored tree
/// still fits in a `RunFinished` (1,000 paths of ≤ 4 KiB are ≤ 4 MiB, the
/// gRPC message limit; real paths are far shorter).
const MAX_SUMMARY_FILES: usize = 1000;
/// Variables that would point git at another repository than the one named.
const GIT_LOCATION_VARS: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_NAMESPACE",
];

/// Held by every change this worker makes to repositories (creating and
/// removing worktrees, writing branch config): git fails at once rather
/// than wait when another command holds `.git/config.lock`, so two runs of
/// two tasks of one repository starting together would fail one another.
/// Reads (summaries, diffs) do not take it.
static MUTATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The worktree of one task on this worker.
#[derive(Clone, Debug)]
pub(crate) struct TaskWorktree {
    /// The task.
    pub task_id: String,
    /// The task's working directory: inside the repository to branch from.
    pub repository: PathBuf,
    /// `<data dir>/worktrees/<task id>`.
    pub path: PathBuf,
    /// The branch to create with it.
    pub branch: String,
    /// What to base it on; empty: `HEAD`.
    pub base_ref: String,
}

/// Where the worktrees of this worker live: absolute, since git resolves
/// a relative path from the repository's directory, not the worker's.
pub(crate) fn root(data_dir: &Path) -> PathBuf {
    let root = data_dir.join(WORKTREES_DIR);
    std::path::absolute(&root).unwrap_or(root)
}

/// The worktree folder of `task_id`, or an error for an id that is not a
/// UUID (it becomes a path: nothing else may reach the file system).
pub(crate) fn task_path(data_dir: &Path, task_id: &str) -> Result<PathBuf, String> {
    let id =
        uuid::Uuid::parse_str(task_id).map_err(|_| format!("task id {task_id:?} is not a UUID"))?;
    Ok(root(data_dir).join(id.to_string()))
}

/// Tasks with a worktree folder here (sent at registration: the server
/// says which of them are gone).
pub(crate) fn task_ids(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root(data_dir)) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| uuid::Uuid::parse_str(name).is_ok())
        .collect();
    ids.sort();
    ids
}

/// Output of a git command that succeeded.
struct Output {
    stdout: Vec<u8>,
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim_end().to_owned()
    }
}

/// `git -C dir args…`; the error is git's own first line of complaint.
async fn git<I, S>(dir: &Path, args: I) -> Result<Output, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    git_with(dir, args, None).await
}

async fn git_with<I, S>(dir: &Path, args: I, index: Option<&Path>) -> Result<Output, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = command(dir);
    command.args(args);
    if let Some(index) = index {
        command.env("GIT_INDEX_FILE", index);
    }
    let output = command
        .output()
        .await
        .map_err(|e| format!("running git: {e}"))?;
    if output.status.success() {
        Ok(Output {
            stdout: output.stdout,
        })
    } else {
        Err(complaint(&String::from_utf8_lossy(&output.stderr)))
    }
}

/// What a failed git command said: its `fatal:`/`error:` line, else its
/// last line. Not the first: `worktree add` begins with progress
/// ("Preparing worktree (checking out 'x')") before the reason.
fn complaint(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("fatal: ")
                .or_else(|| l.strip_prefix("error: "))
        })
        .or(lines.last().copied())
        .unwrap_or("failed")
        .to_owned()
}

fn command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .kill_on_drop(true);
    for var in GIT_LOCATION_VARS {
        command.env_remove(var);
    }
    command
}

/// The repository `dir` is in: its top level, `dir` relative to it, and its
/// common git directory (shared by all its worktrees).
struct Repository {
    top: PathBuf,
    prefix: String,
    common_dir: PathBuf,
}

async fn repository(dir: &Path) -> Result<Repository, String> {
    if !dir.is_dir() {
        return Err(format!(
            "working directory {} does not exist",
            dir.display()
        ));
    }
    let out = git(
        dir,
        [
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-common-dir",
            "--show-prefix",
        ],
    )
    .await
    .map_err(|e| {
        format!(
            "working directory {} is not in a git repository ({e})",
            dir.display()
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let (Some(top), Some(common)) = (lines.next(), lines.next()) else {
        return Err(format!(
            "working directory {} is not in a git repository with a working tree",
            dir.display()
        ));
    };
    Ok(Repository {
        top: PathBuf::from(top),
        common_dir: PathBuf::from(common),
        prefix: lines.next().unwrap_or("").to_owned(),
    })
}

/// A git command of someone else holds the repository's lock: nothing is
/// started (git would fail half-way, or wait).
fn check_unlocked(common_dir: &Path, repository: &Path) -> Result<(), String> {
    let lock = common_dir.join("index.lock");
    if lock.exists() {
        return Err(format!(
            "repository {} is locked by a concurrent git command ({} exists): \
             try again when it is done, or remove the lock if no git command runs",
            repository.display(),
            lock.display()
        ));
    }
    Ok(())
}

fn config_key(branch: &str, name: &str) -> String {
    format!("branch.{branch}.{name}")
}

async fn config_get(dir: &Path, key: &str) -> Option<String> {
    git(dir, ["config", "--get", key])
        .await
        .ok()
        .map(|o| o.text())
        .filter(|v| !v.is_empty())
}

impl TaskWorktree {
    /// Creates the task's worktree, or finds the one it has; answers the
    /// directory to run in (the task's working directory's place in it).
    pub async fn prepare(&self) -> Result<PathBuf, String> {
        let _one_at_a_time = MUTATIONS.lock().await;
        let repo = repository(&self.repository).await?;
        if self.path.exists() {
            return self.reuse(&repo).await;
        }
        check_unlocked(&repo.common_dir, &repo.top)?;
        let base_ref = if self.base_ref.is_empty() {
            "HEAD"
        } else {
            &self.base_ref
        };
        let base_commit = git(
            &repo.top,
            [
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &format!("{base_ref}^{{commit}}"),
            ],
        )
        .await
        .map(|o| o.text())
        .map_err(|_| {
            format!(
                "base ref {base_ref:?} does not exist in repository {}",
                repo.top.display()
            )
        })?;
        git(&repo.top, ["check-ref-format", "--branch", &self.branch])
            .await
            .map_err(|e| format!("branch name {:?} is not valid: {e}", self.branch))?;
        let branch_ref = format!("refs/heads/{}", self.branch);
        let existing = git(&repo.top, ["rev-parse", "--verify", "--quiet", &branch_ref])
            .await
            .is_ok();
        let owner = config_get(&repo.top, &config_key(&self.branch, "amonTask")).await;
        if existing && owner.as_deref() != Some(self.task_id.as_str()) {
            return Err(match owner {
                Some(other) => format!(
                    "branch {} of repository {} is already used by task {other}",
                    self.branch,
                    repo.top.display()
                ),
                None => format!(
                    "branch {} already exists in repository {} and was not made for this task",
                    self.branch,
                    repo.top.display()
                ),
            });
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        let path = self.path.to_string_lossy().into_owned();
        let added = if existing {
            // The branch this task kept when its worktree was last removed.
            git(&repo.top, ["worktree", "add", &path, &self.branch]).await
        } else {
            git(
                &repo.top,
                ["worktree", "add", "-b", &self.branch, &path, &base_commit],
            )
            .await
        };
        if let Err(e) = added {
            self.undo(&repo, !existing).await;
            return Err(format!(
                "creating the worktree of repository {} failed: {e}",
                repo.top.display()
            ));
        }
        if !existing {
            for (name, value) in [
                ("amonTask", self.task_id.as_str()),
                ("amonBase", base_commit.as_str()),
                ("amonBaseRef", base_ref),
            ] {
                if let Err(e) = git(
                    &repo.top,
                    ["config", &config_key(&self.branch, name), value],
                )
                .await
                {
                    self.undo(&repo, true).await;
                    return Err(format!(
                        "recording the worktree in repository {} failed: {e}",
                        repo.top.display()
                    ));
                }
            }
        }
        Ok(self.path.join(&repo.prefix))
    }

    /// The task has a worktree already: it must be of the same repository.
    async fn reuse(&self, repo: &Repository) -> Result<PathBuf, String> {
        let theirs = git(
            &self.path,
            ["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .await
        .map(|o| PathBuf::from(o.text()))
        .map_err(|e| {
            format!(
                "the task's worktree {} is broken ({e}): finish it with force, or remove it",
                self.path.display()
            )
        })?;
        if !same_path(&theirs, &repo.common_dir) {
            return Err(format!(
                "the task's worktree {} belongs to another repository ({}) than its \
                 working directory {}: finish it first",
                self.path.display(),
                theirs.display(),
                repo.top.display()
            ));
        }
        Ok(self.path.join(&repo.prefix))
    }

    /// Takes back a creation that failed half-way.
    async fn undo(&self, repo: &Repository, branch_created: bool) {
        if self.path.exists() {
            let path = self.path.to_string_lossy().into_owned();
            let _ = git(&repo.top, ["worktree", "remove", "--force", &path]).await;
            let _ = std::fs::remove_dir_all(&self.path);
        }
        let _ = git(&repo.top, ["worktree", "prune"]).await;
        if branch_created {
            let _ = git(&repo.top, ["branch", "-D", &self.branch]).await;
            let _ = git(
                &repo.top,
                [
                    "config",
                    "--remove-section",
                    &format!("branch.{}", self.branch),
                ],
            )
            .await;
        }
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What the worktree at `path` holds against its base: commits, files with
/// line counts, dirtiness, and a tree object of its whole content now.
pub(crate) async fn summarize(path: &Path, scratch: &Path) -> Result<WorktreeSummary, String> {
    let repo = repository(path).await?;
    let top = &repo.top;
    let branch = git(top, ["symbolic-ref", "--short", "HEAD"])
        .await
        .map(|o| o.text())
        .unwrap_or_default();
    let base_commit = config_get(top, &config_key(&branch, "amonBase"))
        .await
        .ok_or_else(|| format!("branch {branch:?} records no base"))?;
    let base_ref = config_get(top, &config_key(&branch, "amonBaseRef"))
        .await
        .unwrap_or_else(|| "HEAD".into());
    let head_commit = git(top, ["rev-parse", "HEAD"]).await?.text();
    let commits = git(
        top,
        ["rev-list", "--count", &format!("{base_commit}..HEAD")],
    )
    .await?
    .text()
    .parse()
    .unwrap_or(0);
    let dirty = !git(
        top,
        ["status", "--porcelain=v2", "-z", "--untracked-files=all"],
    )
    .await?
    .stdout
    .is_empty();
    let snapshot_tree = snapshot(top, scratch).await?;
    let numstat = git(
        top,
        [
            "diff",
            "--numstat",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            &base_commit,
            &snapshot_tree,
        ],
    )
    .await?;
    let mut files = parse_numstat(&numstat.stdout);
    let files_truncated = files.len() > MAX_SUMMARY_FILES;
    files.truncate(MAX_SUMMARY_FILES);
    let repository = git(
        top,
        ["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )
    .await
    .ok()
    .map(|o| PathBuf::from(o.text()))
    .and_then(|common| main_worktree(&common))
    .unwrap_or_else(|| top.clone());
    Ok(WorktreeSummary {
        repository: repository.to_string_lossy().into_owned(),
        path: top.to_string_lossy().into_owned(),
        branch,
        base_ref,
        base_commit,
        head_commit,
        commits,
        files,
        files_truncated,
        dirty,
        snapshot_tree,
    })
}

/// The main worktree of the repository whose common git dir is `common`
/// (`<repo>/.git` → `<repo>`).
fn main_worktree(common: &Path) -> Option<PathBuf> {
    (common.file_name() == Some(OsStr::new(".git")))
        .then(|| common.parent().map(Path::to_path_buf))
        .flatten()
}

/// A tree object with the worktree's whole content (untracked files too),
/// written through a copy of its index: its own index is left as it was.
async fn snapshot(top: &Path, scratch: &Path) -> Result<String, String> {
    let index = git(
        top,
        ["rev-parse", "--path-format=absolute", "--git-path", "index"],
    )
    .await?
    .text();
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let copy = scratch.join(format!("index-{}", uuid::Uuid::new_v4()));
    let result = async {
        if Path::new(&index).exists() {
            std::fs::copy(&index, &copy).map_err(|e| format!("copying the index: {e}"))?;
        } else {
            git_with(top, ["read-tree", "HEAD"], Some(&copy)).await?;
        }
        git_with(top, ["add", "--all", "--", "."], Some(&copy)).await?;
        Ok(git_with(top, ["write-tree"], Some(&copy)).await?.text())
    }
    .await;
    let _ = std::fs::remove_file(&copy);
    result
}

/// `git diff --numstat -z` without renames: `added\tremoved\tpath\0`, with
/// `-` counts for a binary file. Sorted by path, as git writes them.
fn parse_numstat(out: &[u8]) -> Vec<WorktreeFileChange> {
    out.split(|b| *b == 0)
        .filter(|record| !record.is_empty())
        .filter_map(|record| {
            let text = String::from_utf8_lossy(record);
            let mut parts = text.splitn(3, '\t');
            let (added, removed, path) = (parts.next()?, parts.next()?, parts.next()?);
            let binary = added == "-" && removed == "-";
            Some(WorktreeFileChange {
                path: path.to_owned(),
                added: added.parse().unwrap_or(0),
                removed: removed.parse().unwrap_or(0),
                binary,
            })
        })
        .collect()
}

/// The unified diff from `base_commit` to `snapshot_tree` in `repository`,
/// cut at `max_bytes` (then `true`).
pub(crate) async fn diff(
    repository: &Path,
    base_commit: &str,
    snapshot_tree: &str,
    max_bytes: u64,
) -> Result<(Vec<u8>, bool), String> {
    for (what, id) in [("base commit", base_commit), ("snapshot", snapshot_tree)] {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("the {what} {id:?} is not an object id"));
        }
    }
    let mut child = command(repository)
        .args([
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            "--binary",
            base_commit,
            snapshot_tree,
        ])
        .spawn()
        .map_err(|e| format!("running git: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut diff = Vec::new();
    // One byte past the cap tells a cut diff from one that fits exactly.
    (&mut stdout)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut diff)
        .await
        .map_err(|e| format!("reading git's output: {e}"))?;
    let truncated = diff.len() as u64 > max_bytes;
    if truncated {
        diff.truncate(max_bytes as usize);
        let _ = child.kill().await;
        return Ok((diff, true));
    }
    let mut complaint = String::new();
    let _ = stderr.read_to_string(&mut complaint).await;
    let status = child
        .wait()
        .await
        .map_err(|e| format!("running git: {e}"))?;
    if !status.success() {
        let line = complaint.lines().next().unwrap_or("failed").trim();
        return Err(format!(
            "git diff in {} failed: {}",
            repository.display(),
            line.trim_start_matches("fatal: ")
        ));
    }
    Ok((diff, false))
}

/// What finishing a worktree did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finished {
    pub worktree_removed: bool,
    pub branch_removed: bool,
}

/// Removes the task's worktree at `path` (unless it has uncommitted changes
/// and `force` is not set), then its branch when `remove_branch`.
/// `repository` is used when the worktree is gone already (to delete the
/// branch); nothing is changed when an error is answered.
pub(crate) async fn finish(
    path: &Path,
    repository: &Path,
    branch: &str,
    remove_branch: bool,
    force: bool,
) -> Result<Finished, String> {
    let _one_at_a_time = MUTATIONS.lock().await;
    let mut finished = Finished::default();
    let repo_dir = if path.exists() {
        let repo = repository_of_worktree(path).await?;
        check_unlocked(&repo.common_dir, &repo.top)?;
        if !force {
            let status = git(
                path,
                ["status", "--porcelain=v2", "-z", "--untracked-files=all"],
            )
            .await
            .map_err(|e| format!("reading the worktree {}: {e}", path.display()))?;
            if !status.stdout.is_empty() {
                return Err(format!(
                    "worktree {} has uncommitted changes: commit them, or finish it with force \
                     (they are lost)",
                    path.display()
                ));
            }
        }
        let main = main_worktree(&repo.common_dir).unwrap_or_else(|| repo.common_dir.clone());
        let target = path.to_string_lossy().into_owned();
        let mut args = vec!["worktree", "remove"];
        if force {
            // Twice: also a worktree that is locked.
            args.extend(["--force", "--force"]);
        }
        args.push(&target);
        git(&main, args)
            .await
            .map_err(|e| format!("removing worktree {}: {e}", path.display()))?;
        let _ = git(&main, ["worktree", "prune"]).await;
        finished.worktree_removed = true;
        main
    } else {
        repository.to_path_buf()
    };
    if remove_branch && !branch.is_empty() {
        let branch_ref = format!("refs/heads/{branch}");
        if git(&repo_dir, ["rev-parse", "--verify", "--quiet", &branch_ref])
            .await
            .is_ok()
        {
            git(&repo_dir, ["branch", "-D", "--", branch])
                .await
                .map_err(|e| format!("deleting branch {branch}: {e}"))?;
            let _ = git(
                &repo_dir,
                ["config", "--remove-section", &format!("branch.{branch}")],
            )
            .await;
            finished.branch_removed = true;
        }
    }
    Ok(finished)
}

async fn repository_of_worktree(path: &Path) -> Result<Repository, String> {
    repository(path).await.map_err(|e| {
        format!(
            "{e}: the worktree {} is broken (its repository moved or was deleted)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_git_failure_is_told_by_its_reason_not_its_progress() {
        // `git worktree add` of a branch another worktree has (git 2.39).
        let stderr = "Preparing worktree (checking out 'amon/a77e6262-alpha-task')\n\
                      fatal: 'amon/a77e6262-alpha-task' is already checked out at '/w/x'\n";
        assert_eq!(
            complaint(stderr),
            "'amon/a77e6262-alpha-task' is already checked out at '/w/x'"
        );
        assert_eq!(
            complaint("error: pathspec 'x' did not match\n"),
            "pathspec 'x' did not match"
        );
        assert_eq!(complaint("\nsomething odd\nits end\n"), "its end");
        assert_eq!(complaint(""), "failed");
    }

    #[test]
    fn numstat_records_are_parsed_with_binary_files() {
        let out = b"3\t1\tsrc/a.rs\0-\t-\timg.png\x002\t0\tdir with space/b\0";
        let files = parse_numstat(out);
        assert_eq!(files.len(), 3);
        assert_eq!(
            (files[0].path.as_str(), files[0].added, files[0].removed),
            ("src/a.rs", 3, 1)
        );
        assert!(files[1].binary && files[1].added == 0);
        assert_eq!(files[2].path, "dir with space/b");
    }

    #[test]
    fn a_task_path_needs_a_uuid() {
        let dir = Path::new("/data");
        assert!(task_path(dir, "../../etc").is_err());
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(
            task_path(dir, &id).unwrap(),
            Path::new("/data/worktrees").join(&id)
        );
    }
}
