//! Finding an agent's session id after the fact, for CLIs that do not say it
//! on their output: by listing sessions (`listSessionsCommand` +
//! `listSessionsPattern`) or by the newest session file (`sessionFileGlob`).
//! Both run once the agent has ended, when its session is saved.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use regex::Regex;
use tokio::process::Command;

/// Longest a session listing may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// How to find the session id.
#[derive(Clone, Debug)]
pub(crate) enum Discovery {
    /// Run `argv` (no shell) in the run's directory with the run's
    /// environment; the first capture group (or the whole match) of
    /// `pattern` on each output line is a session id. The id that was not
    /// listed before the run wins; else the last one listed.
    ListCommand { argv: Vec<String>, pattern: Regex },
    /// The newest file matching `glob` (`~` is the run's HOME) modified since
    /// the run started; its id is `pattern`'s capture on the file name when
    /// given, else the last UUID in the name, else the file stem.
    Files {
        glob: String,
        pattern: Option<Regex>,
    },
}

/// Where and as whom the agent ran.
pub(crate) struct RunContext<'a> {
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<OsString, OsString>,
    pub started: SystemTime,
}

impl Discovery {
    /// Ids listed now (before the run), to tell the run's own apart later.
    pub async fn snapshot(&self, ctx: &RunContext<'_>) -> Vec<String> {
        match self {
            Discovery::ListCommand { argv, pattern } => {
                list(argv, pattern, ctx).await.unwrap_or_default()
            }
            Discovery::Files { .. } => Vec::new(),
        }
    }

    /// The run's session id, or why it was not found.
    pub async fn find(&self, ctx: &RunContext<'_>, before: &[String]) -> Result<String, String> {
        match self {
            Discovery::ListCommand { argv, pattern } => {
                let ids = list(argv, pattern, ctx).await?;
                ids.iter()
                    .rev()
                    .find(|id| !before.contains(id))
                    .or_else(|| ids.last())
                    .cloned()
                    .ok_or_else(|| "the session listing named no session".to_string())
            }
            Discovery::Files { glob, pattern } => newest_file(glob, pattern.as_ref(), ctx),
        }
    }
}

async fn list(
    argv: &[String],
    pattern: &Regex,
    ctx: &RunContext<'_>,
) -> Result<Vec<String>, String> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| "listSessionsCommand is empty".to_string())?;
    let binary = crate::env::resolve_binary(
        program,
        ctx.env
            .get(&OsString::from("PATH"))
            .map(|p| p.as_os_str())
            .or(std::env::var_os("PATH").as_deref()),
        ctx.cwd,
    )?;
    let mut command = Command::new(binary);
    command
        .args(args)
        .env_clear()
        .envs(ctx.env)
        .current_dir(ctx.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(LIST_TIMEOUT, command.output())
        .await
        .map_err(|_| format!("{program}: listing sessions took over 10s"))?
        .map_err(|e| format!("{program}: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            let captures = pattern.captures(line)?;
            captures
                .get(1)
                .or_else(|| captures.get(0))
                .map(|m| m.as_str().to_string())
        })
        .collect())
}

fn newest_file(
    glob: &str,
    pattern: Option<&Regex>,
    ctx: &RunContext<'_>,
) -> Result<String, String> {
    let home = ctx
        .env
        .get(&OsString::from("HOME"))
        .map(PathBuf::from)
        .or_else(dirs::home_dir);
    let expanded = match (glob.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest).to_string_lossy().into_owned(),
        _ => glob.to_string(),
    };
    let paths = glob::glob(&expanded).map_err(|e| format!("sessionFileGlob {glob:?}: {e}"))?;
    // A second of slack: some file systems keep whole-second times.
    let since = ctx.started - Duration::from_secs(1);
    let newest = paths
        .filter_map(Result::ok)
        .filter_map(|path| {
            let modified = path.metadata().ok()?.modified().ok()?;
            (modified >= since).then_some((modified, path))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
        .ok_or_else(|| format!("no session file matching {glob} was written during the run"))?;
    let name = newest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(pattern) = pattern {
        let captures = pattern
            .captures(&name)
            .ok_or_else(|| format!("session file {name} does not match listSessionsPattern"))?;
        return Ok(captures
            .get(1)
            .or_else(|| captures.get(0))
            .map(|m| m.as_str().to_string())
            .unwrap_or_default());
    }
    let uuid =
        Regex::new(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
            .expect("valid regex");
    if let Some(found) = uuid.find_iter(&name).last() {
        return Ok(found.as_str().to_string());
    }
    Ok(newest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listing_prefers_the_new_id() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("list");
        std::fs::write(
            &script,
            "#!/bin/sh\necho '  1. old (a) [aaaa]'\necho '  2. new (b) [bbbb]'\necho junk\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let env: BTreeMap<OsString, OsString> =
            [(OsString::from("PATH"), OsString::from("/usr/bin:/bin"))].into();
        let ctx = RunContext {
            cwd: dir.path(),
            env: &env,
            started: SystemTime::now(),
        };
        let d = Discovery::ListCommand {
            argv: vec![script.to_string_lossy().into_owned()],
            pattern: Regex::new(r"\[([0-9a-f]+)\]$").unwrap(),
        };
        assert_eq!(d.snapshot(&ctx).await, vec!["aaaa", "bbbb"]);
        assert_eq!(d.find(&ctx, &["bbbb".into()]).await.unwrap(), "aaaa");
        assert_eq!(d.find(&ctx, &[]).await.unwrap(), "bbbb");
    }

    #[tokio::test]
    async fn newest_session_file() {
        let home = tempfile::tempdir().unwrap();
        let chats = home.path().join(".codex/sessions/2026/11");
        std::fs::create_dir_all(&chats).unwrap();
        std::fs::write(
            chats.join("rollout-2026-11-27T10-00-00-0199a7a2-1111-7222-8333-944445555666.jsonl"),
            "{}",
        )
        .unwrap();
        let env: BTreeMap<OsString, OsString> =
            [(OsString::from("HOME"), home.path().into())].into();
        let ctx = RunContext {
            cwd: home.path(),
            env: &env,
            started: SystemTime::now(),
        };
        let d = Discovery::Files {
            glob: "~/.codex/sessions/**/*.jsonl".into(),
            pattern: None,
        };
        assert_eq!(
            d.find(&ctx, &[]).await.unwrap_or_else(|e| panic!("{e}")),
            "0199a7a2-1111-7222-8333-944445555666"
        );
        let old = RunContext {
            started: SystemTime::now() + Duration::from_secs(60),
            ..ctx
        };
        assert!(
            Discovery::Files {
                glob: "~/.codex/sessions/**/*.jsonl".into(),
                pattern: None
            }
            .find(&old, &[])
            .await
            .is_err()
        );
    }
}
