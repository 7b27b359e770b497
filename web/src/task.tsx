// A task's page: its fields (editable), input context, dependencies and
// subtasks, its audit trail live (WatchTaskEvents), its executions live
// (WatchExecutions), and a form to run one of the capabilities.
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useEffect, useRef, useState } from "preact/hooks";
import { describe, executions as executionApi, keepStreaming, tasks } from "./api";
import { listCapabilities, useAgents } from "./agents";
import type { Capability } from "./gen/agentmonitor/v1/agent_pb";
import type { Execution } from "./gen/agentmonitor/v1/execution_pb";
import type { Task, TaskDependency, TaskEvent } from "./gen/agentmonitor/v1/task_pb";
import { ExecutionActions } from "./execution";
import { RunForm } from "./runform";
import { Elapsed, ErrorLine, Field, Page, fieldSetter, useFormErrors } from "./ui";
import { COLUMNS, executionStatusName, shortId, when } from "./util";

// A task's executions, newest first, kept live. The watch opens before the
// list is read, so a change between the two is not lost; what the watch
// says is newer than what the list said.
export function useLiveExecutions(filter: { taskId?: string; executionId?: string }) {
  const [list, setList] = useState<Execution[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const stop = new AbortController();
    const watched = new Set<string>();
    const upsert = (execution: Execution, fromWatch: boolean) => {
      if (fromWatch) watched.add(execution.id);
      else if (watched.has(execution.id)) return;
      setList((old) => {
        const rest = old.filter((e) => e.id !== execution.id);
        return [execution, ...rest].sort((a, b) =>
          Number((b.createdAt?.seconds ?? 0n) - (a.createdAt?.seconds ?? 0n)) || (b.createdAt?.nanos ?? 0) - (a.createdAt?.nanos ?? 0),
        );
      });
    };
    void keepStreaming(
      stop.signal,
      async () => {
        const stream = executionApi.watchExecutions(
          { taskId: filter.taskId ?? "", executionId: filter.executionId ?? "" },
          { signal: stop.signal },
        );
        const iterator = stream[Symbol.asyncIterator]();
        const first = iterator.next();
        // (Re)read the current state once the watch is asked for.
        if (filter.executionId) {
          const got = await executionApi.getExecution({ id: filter.executionId }, { signal: stop.signal });
          if (got.execution) upsert(got.execution, false);
        } else {
          const page = await executionApi.listExecutions({ taskId: filter.taskId, pageSize: 100 }, { signal: stop.signal });
          for (const e of page.executions.reverse()) upsert(e, false);
        }
        watched.clear();
        for (let next = await first; !next.done; next = await iterator.next()) {
          if (next.value.execution) upsert(next.value.execution, true);
        }
      },
      setError,
    );
    return () => stop.abort();
  }, [filter.taskId, filter.executionId]);
  return { list, error };
}

export function TaskPage({ id }: { id: string }) {
  const [task, setTask] = useState<Task | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [events, setEvents] = useState<TaskEvent[]>([]);
  const [eventsError, setEventsError] = useState<string | null>(null);
  const [deps, setDeps] = useState<{ dependencies: TaskDependency[]; dependents: TaskDependency[] }>({
    dependencies: [],
    dependents: [],
  });
  const [subtasks, setSubtasks] = useState<Task[]>([]);
  const [titles, setTitles] = useState<Map<string, string>>(new Map());
  const live = useLiveExecutions({ taskId: id });

  async function load() {
    try {
      const got = await tasks.getTask({ id });
      setTask(got.task ?? null);
      const d = await tasks.listDependencies({ taskId: id });
      setDeps({ dependencies: d.dependencies, dependents: d.dependents });
      setSubtasks((await tasks.listTasks({ parentTaskId: id, pageSize: 500 })).tasks);
      const board = await tasks.getBoard({});
      setTitles(new Map(board.columns.flatMap((c) => c.tasks.map((t) => [t.id, t.title] as [string, string]))));
      setError(null);
    } catch (err) {
      setError(describe(err));
    }
  }

  // The trail from the start, then live; each event also refreshes the
  // task (coalesced), so another client's edit shows here without a reload.
  useEffect(() => {
    setEvents([]);
    const stop = new AbortController();
    let last = 0n;
    let pending = false;
    void load();
    void keepStreaming(
      stop.signal,
      async () => {
        for await (const reply of tasks.watchTaskEvents({ taskId: id, afterEventId: last }, { signal: stop.signal })) {
          const event = reply.event!;
          last = event.id;
          setEvents((old) => [...old, event]);
          if (!pending) {
            pending = true;
            setTimeout(() => {
              pending = false;
              void load();
            }, 50);
          }
        }
      },
      setEventsError,
    );
    return () => stop.abort();
  }, [id]);

  if (!task) {
    return (
      <Page title="Task">
        <ErrorLine message={error} />
      </Page>
    );
  }
  const name = (taskId: string) => titles.get(taskId) ?? shortId(taskId);
  return (
    <Page title={task.title} actions={<a href="#/">Board</a>}>
      <ErrorLine message={error} />
      <div class="two">
        <div>
          <TaskForm task={task} />
          <h2>Dependencies</h2>
          <ul class="plain deps">
            {deps.dependencies.map((d) => (
              <li>
                waits for <a href={`#/tasks/${d.dependsOnTaskId}`}>{name(d.dependsOnTaskId)}</a>{" "}
                <button
                  class="small"
                  onClick={async () => {
                    try {
                      await tasks.removeDependency({ taskId: id, dependsOnTaskId: d.dependsOnTaskId });
                    } catch (err) {
                      setError(describe(err));
                    }
                  }}
                >
                  remove
                </button>
              </li>
            ))}
            {deps.dependents.map((d) => (
              <li>
                <a href={`#/tasks/${d.taskId}`}>{name(d.taskId)}</a> waits for this
              </li>
            ))}
          </ul>
          <AddDependency taskId={id} titles={titles} />
          <h2>Subtasks</h2>
          <ul class="plain">
            {subtasks.map((t) => (
              <li>
                <a href={`#/tasks/${t.id}`}>{t.title}</a> — {COLUMNS.find((c) => c.status === t.status)?.title}
              </li>
            ))}
          </ul>
          <AddSubtask parentId={id} />
        </div>
        <div>
          <h2>Run</h2>
          <Run taskId={id} />
          <h2>Executions</h2>
          <ErrorLine message={live.error} />
          <ExecutionTable list={live.list} />
          <h2>Audit trail</h2>
          <ErrorLine message={eventsError} />
          <ol class="events">
            {events.map((e) => (
              <li>
                <time>{when(e.createdAt)}</time> <strong>{e.eventType}</strong>{" "}
                <span class="payload">{e.payload ? JSON.stringify(e.payload) : ""}</span>
              </li>
            ))}
          </ol>
        </div>
      </div>
    </Page>
  );
}

export function ExecutionTable({ list }: { list: Execution[] }) {
  return (
    <table class="list executions">
      <thead>
        <tr>
          <th>Run</th>
          <th>Status</th>
          <th>Worker</th>
          <th>Exit</th>
          <th>Duration</th>
          <th>Retries</th>
          <th>Continues</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {list.map((e) => (
          <tr data-execution-id={e.id}>
            <td>
              <a href={`#/executions/${e.id}`}>{shortId(e.id)}</a>
            </td>
            <td class={`status s-${executionStatusName(e.status).replace(" ", "-")}`}>
              {executionStatusName(e.status)}
              {e.error ? <div class="small-error">{e.error}</div> : null}
            </td>
            <td>{e.workerId ?? ""}</td>
            <td>{e.exitCode ?? ""}</td>
            <td><Elapsed start={e.startedAt} end={e.endedAt} /></td>
            <td>
              {e.retryCount}/{e.maxRetries}
            </td>
            <td>{e.parentExecutionId ? <a href={`#/executions/${e.parentExecutionId}`}>{shortId(e.parentExecutionId)}</a> : ""}</td>
            <td>
              <ExecutionActions execution={e} compact />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Run({ taskId }: { taskId: string }) {
  const [caps, setCaps] = useState<Capability[]>([]);
  const [chosen, setChosen] = useState("");
  const [error, setError] = useState<string | null>(null);
  const agents = useAgents();
  useEffect(() => {
    listCapabilities().then(
      (all) => setCaps(all.filter((c) => c.isEnabled !== false)),
      (err) => setError(describe(err)),
    );
  }, []);
  const capability = caps.find((c) => c.id === chosen);
  return (
    <div>
      <ErrorLine message={error} />
      <select aria-label="Capability" value={chosen} onChange={(e) => setChosen(e.currentTarget.value)}>
        <option value="">Choose a capability…</option>
        {caps.map((c) => (
          <option value={c.id}>
            {agents.get(c.agentId)?.name ?? shortId(c.agentId)} / {c.label}
          </option>
        ))}
      </select>
      {capability ? (
        <RunForm key={capability.id} taskId={taskId} capability={capability} onQueued={(id) => (location.hash = `#/executions/${id}`)} />
      ) : null}
    </div>
  );
}

const TASK_FIELDS = ["title", "description", "status", "priority", "assignee_agent_id", "due_at", "input_context"];

function TaskForm({ task }: { task: Task }) {
  const agents = useAgents();
  const { errors, busy, run } = useFormErrors([...TASK_FIELDS, "working_dir", "prompt_additions", "args", "env_overrides"]);
  const fresh = () => ({
    title: task.title,
    description: task.description ?? "",
    status: String(task.status),
    priority: String(task.priority ?? 3),
    assignee: task.assigneeAgentId ?? "",
    due: task.dueAt ? timestampDate(task.dueAt).toISOString().slice(0, 10) : "",
    working_dir: task.inputContext?.workingDir ?? "",
    prompt_additions: task.inputContext?.promptAdditions ?? "",
    args: JSON.stringify(task.inputContext?.args ?? {}, null, 1),
    env: Object.entries(task.inputContext?.envOverrides ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
  });
  const [v, setV] = useState(fresh);
  const [dirty, setDirty] = useState(false);
  const seen = useRef(task);
  // Another client's edit shows unless the person here is editing.
  if (seen.current !== task) {
    seen.current = task;
    if (!dirty) setV(fresh());
  }
  const set = fieldSetter(setV, () => setDirty(true));
  async function submit(e: Event) {
    e.preventDefault();
    let args;
    try {
      args = JSON.parse(v.args || "{}");
    } catch {
      args = v.args; // the server names what is wrong
    }
    const env: Record<string, string> = {};
    for (const line of v.env.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) env[line.slice(0, at).trim()] = line.slice(at + 1);
    }
    const done = await run(() =>
      tasks.updateTask({
        task: {
          id: task.id,
          title: v.title,
          description: v.description,
          status: Number(v.status),
          priority: Number(v.priority),
          assigneeAgentId: v.assignee || undefined,
          dueAt: v.due ? timestampFromDate(new Date(v.due)) : undefined,
          inputContext: {
            workingDir: v.working_dir || undefined,
            promptAdditions: v.prompt_additions || undefined,
            args,
            envOverrides: env,
          },
        },
        updateMask: { paths: TASK_FIELDS },
      }),
    );
    if (done) setDirty(false);
  }
  async function remove() {
    if (confirm(`Delete task “${task.title}” with its executions?`)) {
      if (await run(() => tasks.deleteTask({ id: task.id }))) location.hash = "#/";
    }
  }
  return (
    <form class="panel" onSubmit={submit} noValidate>
      <ErrorLine message={errors.form} />
      <Field label="Title" name="title" errors={errors}>
        <input name="title" value={v.title} onInput={set("title")} />
      </Field>
      <Field label="Description" name="description" errors={errors}>
        <textarea name="description" value={v.description} onInput={set("description")} />
      </Field>
      <div class="row">
        <Field label="Column" name="status" errors={errors}>
          <select name="status" value={v.status} onChange={set("status")}>
            {COLUMNS.map((c) => (
              <option value={String(c.status)}>{c.title}</option>
            ))}
          </select>
        </Field>
        <Field label="Priority" name="priority" errors={errors}>
          <select name="priority" value={v.priority} onChange={set("priority")}>
            {[1, 2, 3, 4, 5].map((p) => (
              <option value={String(p)}>P{p}</option>
            ))}
          </select>
        </Field>
        <Field label="Assignee" name="assignee_agent_id" errors={errors}>
          <select name="assignee" value={v.assignee} onChange={set("assignee")}>
            <option value="">Nobody</option>
            {[...agents.values()].map((a) => (
              <option value={a.id}>{a.name}</option>
            ))}
          </select>
        </Field>
        <Field label="Due" name="due_at" errors={errors}>
          <input type="date" name="due" value={v.due} onInput={set("due")} />
        </Field>
      </div>
      <h3>Input context</h3>
      <div class="row">
        <Field label="Working directory" name="working_dir" errors={errors}>
          <input name="working_dir" value={v.working_dir} onInput={set("working_dir")} />
        </Field>
        <Field label="Prompt additions" name="prompt_additions" errors={errors}>
          <textarea name="prompt_additions" value={v.prompt_additions} onInput={set("prompt_additions")} />
        </Field>
      </div>
      <div class="row">
        <Field label="Default arguments (JSON)" name="args" errors={errors}>
          <textarea name="args" class="code" value={v.args} onInput={set("args")} />
        </Field>
        <Field label="Environment (NAME=value per line)" name="env_overrides" errors={errors}>
          <textarea name="env" class="code" value={v.env} onInput={set("env")} />
        </Field>
      </div>
      <div class="buttons">
        <button class="primary" type="submit" disabled={busy || !dirty}>
          Save
        </button>
        <button type="button" class="danger" onClick={remove}>
          Delete task
        </button>
      </div>
    </form>
  );
}

function AddDependency({ taskId, titles }: { taskId: string; titles: Map<string, string> }) {
  const { errors, busy, run } = useFormErrors(["depends_on_task_id"]);
  const [other, setOther] = useState("");
  return (
    <form
      class="inline"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        if (await run(() => tasks.addDependency({ taskId, dependsOnTaskId: other }))) setOther("");
      }}
    >
      <ErrorLine message={errors.form} />
      <Field label="Wait for" name="depends_on_task_id" errors={errors}>
        <select value={other} onChange={(e) => setOther(e.currentTarget.value)}>
          <option value="" />
          {[...titles].filter(([id]) => id !== taskId).map(([id, title]) => (
            <option value={id}>{title}</option>
          ))}
        </select>
      </Field>
      <button type="submit" disabled={busy || !other}>
        Add dependency
      </button>
    </form>
  );
}

function AddSubtask({ parentId }: { parentId: string }) {
  const { errors, busy, run } = useFormErrors(["title"]);
  const [title, setTitle] = useState("");
  return (
    <form
      class="inline"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        if (await run(() => tasks.createTask({ task: { title, parentTaskId: parentId } }))) setTitle("");
      }}
    >
      <ErrorLine message={errors.form} />
      <Field label="New subtask" name="title" errors={errors}>
        <input value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </Field>
      <button type="submit" disabled={busy}>
        Add subtask
      </button>
    </form>
  );
}
