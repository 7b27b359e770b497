// The page's one way to the server: gRPC-web to the same services every other
// client calls (no private endpoint), with the client token as a bearer
// header when the server demands one.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AgentService } from "./gen/agentmonitor/v1/agent_pb";
import { ExecutionService } from "./gen/agentmonitor/v1/execution_pb";
import { TaskService } from "./gen/agentmonitor/v1/task_pb";
import { WorkerService } from "./gen/agentmonitor/v1/worker_pb";

// Kept for the browser session only (a closed tab forgets it).
const TOKEN_KEY = "amon.clientToken";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Whoever shows the token prompt listens here: a call was refused for want of
// the (right) token.
const tokenListeners = new Set<(message: string) => void>();
export function onTokenNeeded(listener: (message: string) => void): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}

const bearer: Interceptor = (next) => async (request) => {
  const value = token();
  if (value) request.header.set("authorization", `Bearer ${value}`);
  try {
    return await next(request);
  } catch (err) {
    const error = ConnectError.from(err);
    if (error.code === Code.Unauthenticated) {
      for (const listener of tokenListeners) listener(error.rawMessage);
    }
    throw err;
  }
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
});

export const tasks = createClient(TaskService, transport);
export const executions = createClient(ExecutionService, transport);
export const agents = createClient(AgentService, transport);
export const workers = createClient(WorkerService, transport);

// What a failed call says to a person: the server's own message, with its
// code when that helps (a refused token says so plainly).
export function describe(err: unknown): string {
  if (err instanceof DOMException && err.name === "AbortError") return "";
  const error = ConnectError.from(err);
  switch (error.code) {
    case Code.Unauthenticated:
      return `Refused: ${error.rawMessage}`;
    case Code.PermissionDenied:
      return `Not allowed: ${error.rawMessage}`;
    case Code.Unavailable:
      return `The server cannot be reached (${error.rawMessage})`;
    default:
      return error.rawMessage;
  }
}

export function isAbort(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}

// The server names the field an INVALID_ARGUMENT is about, first:
// `task.title: must not be blank`, `args/count: 0 is less than...`,
// `args: "count" is a required property`. Returns the field's last name
// (`title`, `count`) and the message, or null when no field is named.
export function fieldError(err: unknown): { field: string; message: string } | null {
  const error = ConnectError.from(err);
  if (error.code !== Code.InvalidArgument) return null;
  const match = /^([A-Za-z_][\w.\[\]\/-]*): ([\s\S]*)$/.exec(error.rawMessage);
  if (!match) return null;
  const [, path, message] = match;
  if (path === "args") {
    const required = /^"([^"]+)" is a required property/.exec(message);
    return { field: required ? required[1] : "args", message };
  }
  const parts = path.split(/[.\/]/).filter((p) => p !== "" && !/^\d+$/.test(p));
  const last = parts[parts.length - 1] ?? path;
  return { field: last.replace(/\[\d+\]$/, ""), message };
}

// Retries a stream that dropped, after a pause that grows to 5 s; the
// caller's `open` resumes from where it was (event id, log offset).
export async function keepStreaming(
  signal: AbortSignal,
  open: () => Promise<"done" | void>,
  onError: (message: string | null) => void,
) {
  let pause = 250;
  while (!signal.aborted) {
    try {
      const result = await open();
      onError(null);
      if (result === "done") return;
      pause = 250;
    } catch (err) {
      if (signal.aborted || isAbort(err)) return;
      const code = ConnectError.from(err).code;
      onError(describe(err));
      // A caller's mistake or a refusal does not heal by retrying.
      if (
        code === Code.InvalidArgument ||
        code === Code.NotFound ||
        code === Code.Unauthenticated ||
        code === Code.PermissionDenied
      ) {
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 5000);
  }
}
