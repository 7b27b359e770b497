//! `amon diff`: what a run changed in its task's git worktree.

use std::io::IsTerminal;

use amon_proto::v1::{GetExecutionDiffRequest, WorktreeSummary};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::{client::Ctx, json, output, resolve};

/// `amon diff`.
#[derive(Debug, Args)]
#[command(after_help = "\
Runs of tasks with worktree isolation record, when they end, what they changed
in the task's git worktree against its base: the diff is asked of the worker
that holds the repository. A header (branch, commits, files with added and
removed lines) goes to standard error, the unified diff to standard output.
With --json: the summary and the diff as one JSON object.")]
pub struct DiffArgs {
    /// Execution id or id prefix.
    pub execution: String,
    /// Colour the diff: auto (when standard output is a terminal and
    /// NO_COLOR is not set), always or never.
    #[arg(long, value_enum, default_value_t = Colour::Auto)]
    pub color: Colour,
    /// Most bytes of diff to fetch (0: the server's most, 4,000,000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..))]
    pub max_bytes: i32,
}

/// When to colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Colour {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Colour {
    fn enabled(self) -> bool {
        match self {
            Colour::Always => true,
            Colour::Never => false,
            Colour::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// Runs `amon diff`.
pub async fn run(ctx: &Ctx, args: DiffArgs) -> anyhow::Result<()> {
    let execution_id = resolve::execution_id(ctx, &args.execution).await?;
    let reply = ctx
        .executions()
        .get_execution_diff(GetExecutionDiffRequest {
            execution_id: execution_id.clone(),
            max_bytes: args.max_bytes,
        })
        .await?
        .into_inner();
    if ctx.json {
        let summary = reply.worktree.as_ref().map(json::worktree_summary);
        return Ok(output::json(&json!({
            "execution_id": execution_id,
            "worktree": summary,
            "diff": String::from_utf8_lossy(&reply.diff),
            "truncated": reply.truncated,
        }))?);
    }
    if let Some(summary) = &reply.worktree {
        output::note(&header(summary));
    }
    let diff = if args.color.enabled() {
        colour(&reply.diff)
    } else {
        reply.diff
    };
    output::raw(&diff)?;
    if reply.truncated {
        output::note("(diff cut: it is longer than --max-bytes, or than the server's 4,000,000)");
    }
    Ok(())
}

/// The lines above the diff: where, how many commits, which files.
fn header(summary: &WorktreeSummary) -> String {
    let base: String = summary.base_commit.chars().take(12).collect();
    let mut text = format!(
        "branch {} (from {} {base}), {} commit(s){}, worktree {}",
        summary.branch,
        summary.base_ref,
        summary.commits,
        if summary.dirty {
            ", uncommitted changes"
        } else {
            ""
        },
        summary.path,
    );
    for file in &summary.files {
        if file.binary {
            text.push_str(&format!("\n  {:>6} {:>6}  {}", "bin", "", file.path));
        } else {
            text.push_str(&format!(
                "\n  {:>6} {:>6}  {}",
                format!("+{}", file.added),
                format!("-{}", file.removed),
                file.path
            ));
        }
    }
    if summary.files_truncated {
        text.push_str("\n  … more files");
    }
    text
}

/// `diff` with git's colours: headers bold, hunks cyan, additions green,
/// removals red.
fn colour(diff: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(diff.len() + diff.len() / 8);
    for line in diff.split_inclusive(|b| *b == b'\n') {
        let (body, newline) = match line.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (line, &b""[..]),
        };
        let code: Option<&[u8]> = if body.starts_with(b"diff --git")
            || body.starts_with(b"index ")
            || body.starts_with(b"+++")
            || body.starts_with(b"---")
            || body.starts_with(b"new file")
            || body.starts_with(b"deleted file")
        {
            Some(b"\x1b[1m")
        } else if body.starts_with(b"@@") {
            Some(b"\x1b[36m")
        } else if body.starts_with(b"+") {
            Some(b"\x1b[32m")
        } else if body.starts_with(b"-") {
            Some(b"\x1b[31m")
        } else {
            None
        };
        match code {
            Some(code) => {
                out.extend_from_slice(code);
                out.extend_from_slice(body);
                out.extend_from_slice(b"\x1b[0m");
            }
            None => out.extend_from_slice(body),
        }
        out.extend_from_slice(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_coloured_by_kind_and_bytes_kept() {
        let diff = b"diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n ctx\xff";
        let coloured = colour(diff);
        let text = String::from_utf8_lossy(&coloured);
        assert!(text.contains("\x1b[31m-old\x1b[0m\n"), "{text:?}");
        assert!(text.contains("\x1b[32m+new\x1b[0m\n"), "{text:?}");
        assert!(text.contains("\x1b[36m@@ -1 +1 @@\x1b[0m\n"), "{text:?}");
        assert!(text.contains("\x1b[1m+++ b/x\x1b[0m"), "{text:?}");
        assert!(coloured.ends_with(b" ctx\xff"));
    }
}
