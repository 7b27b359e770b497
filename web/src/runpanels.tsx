// A run's terminal (issue 16) and the change it made in its task's git
// worktree (issue 18), on the run's page.
import { useEffect, useRef, useState } from "preact/hooks";
import { describe, executions } from "./api";
import type { WorktreeSummary } from "./gen/agentmonitor/v1/common_pb";
import type { TerminalState } from "./terminal";
import { ErrorLine } from "./ui";

// The terminal of a running AI run: opened on demand (typing or watching
// only), detached when the panel closes or the page goes.
export function TerminalPanel({ executionId, running }: { executionId: string; running: boolean }) {
  const [mode, setMode] = useState<"closed" | "type" | "watch">("closed");
  const [state, setState] = useState<TerminalState | null>(null);
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (mode === "closed" || !host.current) return;
    let detach: (() => void) | null = null;
    let gone = false;
    setState({ kind: "opening" });
    import("./terminal").then(
      ({ attachTerminal }) => {
        if (!gone && host.current) detach = attachTerminal(host.current, executionId, mode === "watch", setState);
      },
      (err) => setState({ kind: "failed", message: `the terminal could not be loaded: ${String(err)}` }),
    );
    return () => {
      gone = true;
      detach?.();
    };
  }, [mode, executionId]);

  if (mode === "closed") {
    if (!running) return null;
    return (
      <div class="terminal-bar">
        <button onClick={() => setMode("type")}>Open terminal</button>
        <button onClick={() => setMode("watch")}>Watch terminal (read-only)</button>
      </div>
    );
  }
  return (
    <div class="terminal-panel panel">
      <div class="terminal-bar">
        <strong>Terminal</strong>
        <span class="terminal-state" data-state={state?.kind ?? "opening"}>
          {state?.kind === "open"
            ? `attached to ${state.session} on ${state.workerId}${state.readOnly ? ", read-only" : ""}`
            : state?.kind === "ended"
              ? `Ended: ${state.reason}${state.message ? ` (${state.message})` : ""}`
              : state?.kind === "failed"
                ? ""
                : "opening…"}
        </span>
        <button onClick={() => setMode("closed")}>Close terminal</button>
      </div>
      <ErrorLine message={state?.kind === "failed" ? state.message : null} />
      <div class="terminal-host" ref={host} data-testid="terminal" />
    </div>
  );
}

const DIFF_PAGE = 2000;

function diffClass(line: string): string {
  if (line.startsWith("diff ") || line.startsWith("index ") || line.startsWith("+++ ") || line.startsWith("--- ")) return "d-meta";
  if (line.startsWith("@@")) return "d-hunk";
  if (line.startsWith("+")) return "d-add";
  if (line.startsWith("-")) return "d-del";
  return "d-ctx";
}

// What the run changed: the summary the server recorded when it ended, and
// on demand the diff the worker computes (GetExecutionDiff). The summary
// stays when the worker cannot be asked.
export function WorktreePanel({ executionId, finished }: { executionId: string; finished: boolean }) {
  const [summary, setSummary] = useState<WorktreeSummary | null>(null);
  const [diff, setDiff] = useState<{ lines: string[]; truncated: boolean } | null>(null);
  const [shown, setShown] = useState(DIFF_PAGE);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // WatchExecutions does not carry the summary; GetExecution does, once the
  // run has ended (and recorded it).
  useEffect(() => {
    executions.getExecution({ id: executionId }).then(
      (reply) => setSummary(reply.execution?.worktree ?? null),
      () => {},
    );
  }, [executionId, finished]);
  if (!summary) return null;

  async function load() {
    setLoading(true);
    setError(null);
    try {
      const reply = await executions.getExecutionDiff({ executionId });
      const text = new TextDecoder().decode(reply.diff);
      const lines = text.split("\n");
      if (lines.length && lines[lines.length - 1] === "") lines.pop();
      setDiff({ lines, truncated: reply.truncated });
      setShown(DIFF_PAGE);
      if (reply.worktree) setSummary(reply.worktree);
    } catch (err) {
      setError(describe(err));
    } finally {
      setLoading(false);
    }
  }

  const s = summary;
  return (
    <div class="worktree panel">
      <h3>Worktree</h3>
      <dl class="facts">
        <dt>Branch</dt>
        <dd class="wt-branch">{s.branch}</dd>
        <dt>Base</dt>
        <dd>
          {s.baseRef || "HEAD"} <code>{s.baseCommit.slice(0, 10)}</code>
        </dd>
        <dt>Head</dt>
        <dd>
          <code>{s.headCommit.slice(0, 10)}</code> ({s.commits} commit{s.commits === 1 ? "" : "s"} since base)
        </dd>
        <dt>Uncommitted</dt>
        <dd class="wt-dirty">{s.dirty ? "yes: the worktree had changes not committed" : "no"}</dd>
        <dt>Where</dt>
        <dd>
          <code>{s.path}</code>
        </dd>
      </dl>
      <table class="list wt-files">
        <thead>
          <tr>
            <th>File</th>
            <th>Added</th>
            <th>Removed</th>
          </tr>
        </thead>
        <tbody>
          {s.files.map((f) => (
            <tr>
              <td class="wt-path">{f.path}</td>
              <td class="d-add">{f.binary ? "binary" : `+${f.added}`}</td>
              <td class="d-del">{f.binary ? "" : `-${f.removed}`}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {s.files.length === 0 ? <p class="note">No file changed.</p> : null}
      {s.filesTruncated ? <p class="note">More files changed than these {s.files.length} (the list was cut).</p> : null}
      <div class="terminal-bar">
        <button onClick={load} disabled={loading}>
          {diff ? "Reload diff" : "Diff"}
        </button>
      </div>
      <ErrorLine message={error} />
      {diff ? (
        <div class="diff">
          {diff.truncated ? <p class="note">The diff is longer than shown: it was cut at the server's limit.</p> : null}
          <pre class="diff-lines">
            {diff.lines.slice(0, shown).map((line) => (
              <div class={diffClass(line)}>{line || " "}</div>
            ))}
          </pre>
          {diff.lines.length > shown ? (
            <button onClick={() => setShown(shown + DIFF_PAGE)}>
              Show {Math.min(DIFF_PAGE, diff.lines.length - shown)} more of {diff.lines.length - shown} lines left
            </button>
          ) : null}
          {diff.lines.length === 0 ? <p class="note">The diff is empty.</p> : null}
        </div>
      ) : null}
    </div>
  );
}
