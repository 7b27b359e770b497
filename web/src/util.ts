// Small shared pieces: names of enum values, times, durations.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus, TaskStatus } from "./gen/agentmonitor/v1/common_pb";

export const COLUMNS: { status: TaskStatus; title: string }[] = [
  { status: TaskStatus.TODO, title: "To do" },
  { status: TaskStatus.IN_PROGRESS, title: "In progress" },
  { status: TaskStatus.BLOCKED, title: "Blocked" },
  { status: TaskStatus.DONE, title: "Done" },
  { status: TaskStatus.CANCELLED, title: "Cancelled" },
];

export function taskStatusName(status: TaskStatus): string {
  return COLUMNS.find((c) => c.status === status)?.title ?? "—";
}

const EXECUTION_NAMES: Record<number, string> = {
  [ExecutionStatus.QUEUED]: "queued",
  [ExecutionStatus.RUNNING]: "running",
  [ExecutionStatus.CANCELLING]: "cancelling",
  [ExecutionStatus.SUCCEEDED]: "succeeded",
  [ExecutionStatus.FAILED]: "failed",
  [ExecutionStatus.CANCELLED]: "cancelled",
  [ExecutionStatus.TIMED_OUT]: "timed out",
};

export function executionStatusName(status: ExecutionStatus): string {
  return EXECUTION_NAMES[status] ?? "—";
}

export function isFinished(status: ExecutionStatus): boolean {
  return (
    status === ExecutionStatus.SUCCEEDED ||
    status === ExecutionStatus.FAILED ||
    status === ExecutionStatus.CANCELLED ||
    status === ExecutionStatus.TIMED_OUT
  );
}

export function date(ts: Timestamp | undefined): Date | null {
  return ts ? timestampDate(ts) : null;
}

export function when(ts: Timestamp | undefined): string {
  const d = date(ts);
  return d ? d.toLocaleString() : "";
}

export function duration(start: Timestamp | undefined, end: Timestamp | undefined): string {
  const from = date(start);
  if (!from) return "";
  const to = date(end) ?? new Date();
  const seconds = Math.max(0, (to.getTime() - from.getTime()) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

// Lines of a textarea, blank ones dropped (argument lists, allowlists).
export function lines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
}
