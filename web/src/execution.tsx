// One run: its state live (WatchExecutions), its continuation chain, what a
// person can do with it (approve, cancel, retry, continue), and its log.
import { useEffect, useState } from "preact/hooks";
import { agents, describe, executions } from "./api";
import { ExecutionStatus, InteractionMode } from "./gen/agentmonitor/v1/common_pb";
import type { Execution } from "./gen/agentmonitor/v1/execution_pb";
import { LogView } from "./log";
import { TerminalPanel, WorktreePanel } from "./runpanels";
import { useLiveExecutions } from "./task";
import { Elapsed, ErrorLine, Page } from "./ui";
import { executionStatusName, isFinished, shortId, when } from "./util";

// Whether runs of a capability wait for approval, asked once per capability
// for the page's life (a queued run's Approve button depends on it).
const needsApproval = new Map<string, Promise<boolean>>();
function requiresApproval(capabilityId: string): Promise<boolean> {
  let known = needsApproval.get(capabilityId);
  if (!known) {
    known = agents.getCapability({ id: capabilityId }).then(
      (reply) => reply.capability?.requiresApproval ?? false,
      () => {
        needsApproval.delete(capabilityId);
        return false;
      },
    );
    needsApproval.set(capabilityId, known);
  }
  return known;
}

export function ExecutionActions({ execution, compact }: { execution: Execution; compact?: boolean }) {
  const [error, setError] = useState<string | null>(null);
  // Whether this queued run waits for approval: unknown until asked.
  const [approvable, setApprovable] = useState<boolean | null>(null);
  const queued = execution.status === ExecutionStatus.QUEUED;
  useEffect(() => {
    let live = true;
    setApprovable(null);
    if (queued) void requiresApproval(execution.capabilityId).then((yes) => live && setApprovable(yes));
    return () => {
      live = false;
    };
  }, [queued, execution.capabilityId]);
  const [prompt, setPrompt] = useState("");
  const [continuing, setContinuing] = useState(false);
  const act = async (call: () => Promise<{ execution?: Execution }>, open = false) => {
    setError(null);
    try {
      const reply = await call();
      if (open && reply.execution) location.hash = `#/executions/${reply.execution.id}`;
    } catch (err) {
      setError(describe(err));
    }
  };
  const e = execution;
  const finished = isFinished(e.status);
  return (
    <div class="execution-actions" data-approval={queued ? (approvable === null ? "asking" : approvable ? "required" : "none") : undefined}>
      {queued && approvable ? (
        <button onClick={() => act(() => executions.approveExecution({ id: e.id }))}>Approve</button>
      ) : null}
      {!finished && e.status !== ExecutionStatus.CANCELLING ? (
        <button class="danger" onClick={() => act(() => executions.cancelExecution({ id: e.id, reason: "cancelled from the web board" }))}>
          Cancel
        </button>
      ) : null}
      {finished ? <button onClick={() => act(() => executions.retryExecution({ id: e.id }), !compact)}>Retry</button> : null}
      {finished && e.mode === InteractionMode.PROMPT && !compact ? (
        continuing ? (
          <form
            class="continue"
            onSubmit={(ev) => {
              ev.preventDefault();
              void act(() => executions.continueExecution({ id: e.id, prompt }), true);
            }}
          >
            <textarea aria-label="Follow-up prompt" value={prompt} onInput={(ev) => setPrompt(ev.currentTarget.value)} />
            <button class="primary" type="submit">
              Continue
            </button>
          </form>
        ) : (
          <button onClick={() => setContinuing(true)}>Continue…</button>
        )
      ) : null}
      <ErrorLine message={error} />
    </div>
  );
}

export function ExecutionPage({ id }: { id: string }) {
  const live = useLiveExecutions({ executionId: id });
  const [ancestors, setAncestors] = useState<string[]>([]);
  useEffect(() => {
    executions.getExecution({ id }).then(
      (reply) => setAncestors(reply.ancestorExecutionIds),
      () => {},
    );
  }, [id]);
  const e = live.list.find((x) => x.id === id);
  return (
    <Page title={`Run ${shortId(id)}`} actions={e ? <a href={`#/tasks/${e.taskId}`}>Its task</a> : null}>
      <ErrorLine message={live.error} />
      {e ? (
        <div class="execution-head">
          <dl class="facts">
            <dt>Status</dt>
            <dd class="status" data-status={executionStatusName(e.status)}>
              {executionStatusName(e.status)}
            </dd>
            <dt>Worker</dt>
            <dd>{e.workerId ?? "—"}</dd>
            <dt>Exit code</dt>
            <dd>{e.exitCode ?? "—"}</dd>
            <dt>Duration</dt>
            <dd><Elapsed start={e.startedAt} end={e.endedAt} /></dd>
            <dt>Retries</dt>
            <dd>
              {e.retryCount} of {e.maxRetries}
            </dd>
            <dt>Queued</dt>
            <dd>{when(e.createdAt)}</dd>
            {ancestors.length ? (
              <>
                <dt>Continues</dt>
                <dd>
                  {ancestors.map((a) => (
                    <a href={`#/executions/${a}`}>{shortId(a)} </a>
                  ))}
                </dd>
              </>
            ) : null}
            {e.tmuxSessionName ? (
              <>
                <dt>Terminal</dt>
                <dd>
                  <code>tmux attach -t {e.tmuxSessionName}</code> on {e.workerId}
                </dd>
              </>
            ) : null}
            {e.error ? (
              <>
                <dt>Error</dt>
                <dd class="small-error">{e.error}</dd>
              </>
            ) : null}
          </dl>
          {e.prompt ? <pre class="prompt">{e.prompt}</pre> : null}
          <ExecutionActions execution={e} />
        </div>
      ) : null}
      {e?.tmuxSessionName ? <TerminalPanel key={id} executionId={id} running={e.status === ExecutionStatus.RUNNING} /> : null}
      {e ? <WorktreePanel executionId={id} finished={isFinished(e.status)} /> : null}
      <LogView executionId={id} />
    </Page>
  );
}
