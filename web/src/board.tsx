// The board: five columns of cards, drag and drop (MoveTask with the
// neighbour), a form to create a task, filters, and live changes from every
// other client (WatchTaskEvents; no polling).
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { keepStreaming, tasks, describe } from "./api";
import type { Agent } from "./gen/agentmonitor/v1/agent_pb";
import { TaskStatus } from "./gen/agentmonitor/v1/common_pb";
import type { Task } from "./gen/agentmonitor/v1/task_pb";
import { COLUMNS, date, shortId } from "./util";
import { ErrorLine, Field, useFormErrors } from "./ui";
import { useAgents } from "./agents";

type Columns = Map<TaskStatus, Task[]>;

// Refetches the board after a change, never two at once: changes that land
// while a fetch is under way ask for one more fetch after it, so the board
// always ends up at least as new as the last event it heard of.
function useLiveBoard() {
  const [columns, setColumns] = useState<Columns>(new Map());
  const [truncated, setTruncated] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [streamError, setStreamError] = useState<string | null>(null);
  const [deps, setDeps] = useState<Map<string, number>>(new Map());
  const state = useRef({
    fetching: false,
    again: false,
    lastEventId: 0n,
    watching: false,
    depsDirty: new Set<string>(),
    depsKnown: new Set<string>(),
  });

  async function refresh() {
    const s = state.current;
    if (s.fetching) {
      s.again = true;
      return;
    }
    s.fetching = true;
    try {
      do {
        s.again = false;
        const board = await tasks.getBoard({});
        // The watch, not yet started, starts where this board stands: no
        // replay of the trail (0 from a server that does not say: replay).
        if (!s.watching) s.lastEventId = board.lastEventId;
        const next: Columns = new Map();
        let cut = false;
        for (const column of board.columns) {
          next.set(column.status, column.tasks);
          cut ||= column.truncated;
        }
        setColumns(next);
        setTruncated(cut);
        setError(null);
        // Cards new to the page get their dependency marker; known ones are
        // refreshed by their dependency events.
        const fresh = [...next.values()].flat().map((t) => t.id).filter((id) => !s.depsKnown.has(id));
        for (const id of fresh) s.depsKnown.add(id);
        if (fresh.length) void refreshDeps(fresh);
      } while (s.again);
    } catch (err) {
      setError(describe(err));
    } finally {
      s.fetching = false;
    }
  }

  // Dependency markers: what each task waits for, fetched for the cards the
  // page has not seen yet and for those whose dependencies changed.
  async function refreshDeps(ids: string[]) {
    const counts = new Map<string, number>();
    for (const id of ids) {
      try {
        const reply = await tasks.listDependencies({ taskId: id });
        counts.set(id, reply.dependencies.length);
      } catch {
        counts.set(id, 0);
      }
    }
    setDeps((old) => new Map([...old, ...counts]));
  }

  useEffect(() => {
    const stop = new AbortController();
    let scheduled = false;
    const s = state.current;
    const flush = () => {
      scheduled = false;
      void refresh();
      const ids = [...s.depsDirty];
      s.depsDirty.clear();
      if (ids.length) void refreshDeps(ids);
    };
    // After `lastEventId`: from where the first board stood (GetBoard's
    // `last_event_id`, read before the board, so nothing between is missed
    // and the trail is not replayed), and a dropped stream resumes where it
    // was, with no gap and no duplicate. Should the first board fail, from
    // 0: the trail replays, which lands as one refetch.
    void refresh().then(() => {
      s.watching = true;
      if (stop.signal.aborted) return;
      return keepStreaming(
        stop.signal,
        async () => {
          for await (const reply of tasks.watchTaskEvents(
            { afterEventId: s.lastEventId },
            { signal: stop.signal },
          )) {
            const event = reply.event!;
            s.lastEventId = event.id;
            if (event.eventType.startsWith("dependency") && s.depsKnown.has(event.taskId)) {
              s.depsDirty.add(event.taskId);
            }
            if (!scheduled) {
              scheduled = true;
              setTimeout(flush, 30);
            }
          }
        },
        setStreamError,
      );
    });
    return () => stop.abort();
  }, []);

  return { columns, setColumns, truncated, error, streamError, refresh, deps };
}

interface Filters {
  text: string;
  assignee: string;
  priority: string;
}

function matches(task: Task, filters: Filters, agents: Map<string, Agent>): boolean {
  if (filters.priority && String(task.priority ?? 3) !== filters.priority) return false;
  if (filters.assignee === "none" && task.assigneeAgentId) return false;
  if (filters.assignee && filters.assignee !== "none" && task.assigneeAgentId !== filters.assignee) return false;
  if (filters.text) {
    const needle = filters.text.toLowerCase();
    const agent = task.assigneeAgentId ? agents.get(task.assigneeAgentId)?.name ?? "" : "";
    const hay = `${task.title}\n${task.description ?? ""}\n${agent}`.toLowerCase();
    if (!hay.includes(needle)) return false;
  }
  return true;
}

export function Board() {
  const { columns, setColumns, truncated, error, streamError, refresh, deps } = useLiveBoard();
  const agents = useAgents();
  const [filters, setFilters] = useState<Filters>({ text: "", assignee: "", priority: "" });
  const [moveError, setMoveError] = useState<string | null>(null);
  const [dragging, setDragging] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);

  const all = useMemo(() => [...columns.values()].flat(), [columns]);
  const children = useMemo(() => {
    const count = new Map<string, number>();
    for (const task of all) {
      if (task.parentTaskId) count.set(task.parentTaskId, (count.get(task.parentTaskId) ?? 0) + 1);
    }
    return count;
  }, [all]);

  // Moves the card now (the page answers at once) and asks the server; the
  // event of the move refetches the board, and a refusal puts it back.
  async function drop(status: TaskStatus, beforeId: string | null) {
    const id = dragging;
    setDragging(null);
    if (!id || id === beforeId) return;
    const task = all.find((t) => t.id === id);
    if (!task) return;
    const target = (columns.get(status) ?? []).filter((t) => t.id !== id);
    const index = beforeId ? target.findIndex((t) => t.id === beforeId) : target.length;
    const position =
      index < 0 || index >= target.length
        ? target.length
          ? { case: "afterTaskId" as const, value: target[target.length - 1].id }
          : { case: undefined }
        : { case: "beforeTaskId" as const, value: target[index].id };
    const next: Columns = new Map();
    for (const [s, list] of columns) next.set(s, list.filter((t) => t.id !== id));
    const moved = { ...task, status } as Task;
    const list = next.get(status) ?? [];
    list.splice(index < 0 ? list.length : index, 0, moved);
    next.set(status, list);
    setColumns(next);
    setMoveError(null);
    try {
      await tasks.moveTask({ id, status, position });
    } catch (err) {
      setMoveError(`Moving “${task.title}”: ${describe(err)}`);
      void refresh();
    }
  }

  return (
    <section class="board-page">
      <header class="page-head">
        <h1>Board</h1>
        <div class="filters">
          <input
            type="search"
            placeholder="Filter cards"
            aria-label="Filter cards"
            value={filters.text}
            onInput={(e) => setFilters({ ...filters, text: e.currentTarget.value })}
          />
          <select
            aria-label="Assignee filter"
            value={filters.assignee}
            onChange={(e) => setFilters({ ...filters, assignee: e.currentTarget.value })}
          >
            <option value="">Any assignee</option>
            <option value="none">Unassigned</option>
            {[...agents.values()].map((a) => (
              <option value={a.id}>{a.name}</option>
            ))}
          </select>
          <select
            aria-label="Priority filter"
            value={filters.priority}
            onChange={(e) => setFilters({ ...filters, priority: e.currentTarget.value })}
          >
            <option value="">Any priority</option>
            {[1, 2, 3, 4, 5].map((p) => (
              <option value={String(p)}>P{p}</option>
            ))}
          </select>
          <button class="primary" onClick={() => setCreating(!creating)}>
            New task
          </button>
        </div>
      </header>
      {creating ? <CreateTask agents={agents} onDone={() => setCreating(false)} /> : null}
      <ErrorLine message={error} />
      <ErrorLine message={streamError ? `Live updates interrupted, reconnecting: ${streamError}` : null} />
      <ErrorLine message={moveError} />
      {truncated ? <p class="note">Some columns hold more cards than one reply carries; the rest are in each task list.</p> : null}
      <div class="board">
        {COLUMNS.map((column) => {
          const cards = columns.get(column.status) ?? [];
          return (
            <div
              class="column"
              data-status={column.title}
              onDragOver={(e) => {
                e.preventDefault();
              }}
              onDrop={(e) => {
                e.preventDefault();
                void drop(column.status, null);
              }}
            >
              <h2>
                {column.title} <span class="count">{cards.length}</span>
              </h2>
              <ul class="cards">
                {cards
                  .filter((t) => matches(t, filters, agents))
                  .map((task) => (
                    <Card
                      task={task}
                      agent={task.assigneeAgentId ? agents.get(task.assigneeAgentId) : undefined}
                      dependencies={deps.get(task.id) ?? 0}
                      subtasks={children.get(task.id) ?? 0}
                      parent={task.parentTaskId ? all.find((t) => t.id === task.parentTaskId) : undefined}
                      onDragStart={() => setDragging(task.id)}
                      onDropBefore={(before) => void drop(column.status, before)}
                    />
                  ))}
              </ul>
            </div>
          );
        })}
      </div>
    </section>
  );
}

function Card(props: {
  task: Task;
  agent: Agent | undefined;
  dependencies: number;
  subtasks: number;
  parent: Task | undefined;
  onDragStart: () => void;
  onDropBefore: (beforeId: string | null) => void;
}) {
  const { task } = props;
  const due = date(task.dueAt);
  const overdue = due && due.getTime() < Date.now() && task.status !== TaskStatus.DONE;
  const priority = task.priority ?? 3;
  return (
    <li
      class={`card p${priority}`}
      draggable
      data-task-id={task.id}
      onDragStart={(e) => {
        e.dataTransfer?.setData("text/plain", task.id);
        props.onDragStart();
      }}
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => {
        e.preventDefault();
        e.stopPropagation();
        // The lower half of a card means after it, i.e. before the next one.
        const box = e.currentTarget.getBoundingClientRect();
        const after = e.clientY > box.top + box.height / 2;
        const next = (e.currentTarget.nextElementSibling as HTMLElement | null)?.dataset.taskId ?? null;
        props.onDropBefore(after ? next : task.id);
      }}
    >
      <a href={`#/tasks/${task.id}`} class="card-title">
        {task.title}
      </a>
      <div class="markers">
        <span class="priority" title="Priority">
          P{priority}
        </span>
        {props.agent ? (
          <span class="assignee" title="Assignee">
            {props.agent.name}
          </span>
        ) : null}
        {due ? (
          <span class={overdue ? "due overdue" : "due"} title="Due">
            due {due.toLocaleDateString()}
          </span>
        ) : null}
        {props.dependencies ? (
          <span class="deps" title="Waits for other tasks">
            waits for {props.dependencies}
          </span>
        ) : null}
        {props.subtasks ? (
          <span class="subtasks" title="Subtasks">
            {props.subtasks} subtask{props.subtasks === 1 ? "" : "s"}
          </span>
        ) : null}
        {task.parentTaskId ? (
          <span class="parent" title="Subtask of">
            in {props.parent?.title ?? shortId(task.parentTaskId)}
          </span>
        ) : null}
      </div>
    </li>
  );
}

function CreateTask(props: { agents: Map<string, Agent>; onDone: () => void }) {
  const { errors, busy, run } = useFormErrors(["title", "description", "priority", "assignee_agent_id", "due_at"]);
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [priority, setPriority] = useState("3");
  const [assignee, setAssignee] = useState("");
  const [due, setDue] = useState("");
  async function submit(e: Event) {
    e.preventDefault();
    const created = await run(() =>
      tasks.createTask({
        task: {
          title,
          description: description || undefined,
          priority: Number(priority),
          assigneeAgentId: assignee || undefined,
          dueAt: due ? timestampFromDate(new Date(due)) : undefined,
        },
      }),
    );
    if (created) props.onDone();
  }
  return (
    <form class="panel create-task" onSubmit={submit} noValidate>
      <ErrorLine message={errors.form} />
      <Field label="Title" name="title" errors={errors}>
        <input name="title" value={title} onInput={(e) => setTitle(e.currentTarget.value)} autoFocus />
      </Field>
      <Field label="Description" name="description" errors={errors}>
        <textarea name="description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </Field>
      <div class="row">
        <Field label="Priority" name="priority" errors={errors}>
          <select name="priority" value={priority} onChange={(e) => setPriority(e.currentTarget.value)}>
            {[1, 2, 3, 4, 5].map((p) => (
              <option value={String(p)}>P{p}</option>
            ))}
          </select>
        </Field>
        <Field label="Assignee" name="assignee_agent_id" errors={errors}>
          <select name="assignee" value={assignee} onChange={(e) => setAssignee(e.currentTarget.value)}>
            <option value="">Nobody</option>
            {[...props.agents.values()].map((a) => (
              <option value={a.id}>{a.name}</option>
            ))}
          </select>
        </Field>
        <Field label="Due" name="due_at" errors={errors}>
          <input type="date" name="due" value={due} onInput={(e) => setDue(e.currentTarget.value)} />
        </Field>
      </div>
      <div class="buttons">
        <button class="primary" type="submit" disabled={busy}>
          Create
        </button>
        <button type="button" onClick={props.onDone}>
          Close
        </button>
      </div>
    </form>
  );
}
