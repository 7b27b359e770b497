// A run's terminal in the page (issue 16's browser half): xterm.js fed by
// AttachTerminalOutput, keys sent with AttachTerminalInput and size changes
// with AttachTerminalResize, all keyed by the attach id the server gave.
// Loaded only when a person opens a terminal (xterm.js is most of its
// chunk), so the board itself does not grow.
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { describe, executions } from "./api";
import { TerminalEndReason } from "./gen/agentmonitor/v1/execution_pb";

export type TerminalState =
  | { kind: "opening" }
  | { kind: "open"; workerId: string; session: string; readOnly: boolean }
  | { kind: "ended"; reason: string; message: string }
  | { kind: "failed"; message: string };

const REASONS: Record<TerminalEndReason, string> = {
  [TerminalEndReason.UNSPECIFIED]: "ended",
  [TerminalEndReason.RUN_ENDED]: "the run ended",
  [TerminalEndReason.DETACHED]: "detached by tmux",
  [TerminalEndReason.WORKER_DISCONNECTED]: "the worker disconnected",
  [TerminalEndReason.ERROR]: "error",
};

// Sends what `take` gathers, one call at a time: keys typed while a call is
// in flight go together in the next one, in the order typed.
function serialSender(send: (signal: AbortSignal) => Promise<unknown> | null, signal: AbortSignal, onError: (err: unknown) => void) {
  let busy = false;
  return async function kick() {
    if (busy) return;
    busy = true;
    try {
      for (let call = send(signal); call; call = send(signal)) await call;
    } catch (err) {
      if (!signal.aborted) onError(err);
    } finally {
      busy = false;
    }
  };
}

// Attaches `host` to the run's terminal; the returned function detaches
// (closing the output stream is what detaches on the server).
export function attachTerminal(
  host: HTMLElement,
  executionId: string,
  readOnly: boolean,
  report: (state: TerminalState) => void,
): () => void {
  const term = new Terminal({
    cursorBlink: !readOnly,
    disableStdin: readOnly,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    fontSize: 13,
    scrollback: 5000,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(host);
  fit.fit();
  const stop = new AbortController();
  let attachId = "";
  let ended = false;
  const encoder = new TextEncoder();
  const failInput = (err: unknown) => report({ kind: "failed", message: describe(err) });

  let keys: Uint8Array[] = [];
  const sendKeys = serialSender(
    (signal) => {
      if (!attachId || !keys.length || ended) return null;
      const data = new Uint8Array(keys.reduce((n, k) => n + k.length, 0));
      let at = 0;
      for (const k of keys) {
        data.set(k, at);
        at += k.length;
      }
      keys = [];
      return executions.attachTerminalInput({ attachId, data }, { signal });
    },
    stop.signal,
    failInput,
  );
  let size: { rows: number; cols: number } | null = null;
  const sendSize = serialSender(
    (signal) => {
      if (!attachId || !size || ended) return null;
      const next = size;
      size = null;
      return executions.attachTerminalResize({ attachId, size: next }, { signal });
    },
    stop.signal,
    failInput,
  );
  if (!readOnly) {
    term.onData((data) => {
      keys.push(encoder.encode(data));
      void sendKeys();
    });
    term.onBinary((data) => {
      keys.push(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
      void sendKeys();
    });
  }
  term.onResize(({ rows, cols }) => {
    size = { rows, cols };
    void sendSize();
  });
  const observer = new ResizeObserver(() => {
    if (!ended) fit.fit();
  });
  observer.observe(host);

  report({ kind: "opening" });
  void (async () => {
    try {
      const open = { executionId, readOnly, size: { rows: term.rows, cols: term.cols } };
      for await (const reply of executions.attachTerminalOutput({ open }, { signal: stop.signal })) {
        const m = reply.message;
        if (m.case === "opened") {
          attachId = m.value.attachId;
          report({ kind: "open", workerId: m.value.workerId, session: m.value.tmuxSessionName, readOnly: m.value.readOnly });
          // Keys typed and sizes changed before the attach was open.
          void sendKeys();
          void sendSize();
          if (!readOnly) term.focus();
        } else if (m.case === "output") {
          term.write(m.value);
        } else if (m.case === "ended") {
          ended = true;
          report({ kind: "ended", reason: REASONS[m.value.reason] ?? "ended", message: m.value.message });
        }
      }
      if (!ended && !stop.signal.aborted) report({ kind: "ended", reason: "closed", message: "the server closed the terminal" });
    } catch (err) {
      if (!stop.signal.aborted) report({ kind: "failed", message: describe(err) });
    }
    ended = true;
  })();

  return () => {
    stop.abort();
    observer.disconnect();
    term.dispose();
  };
}
