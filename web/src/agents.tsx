// Agents and their capabilities: list, create, edit, delete, and agents made
// from presets, so nobody needs the CLI for them.
import { useEffect, useState } from "preact/hooks";
import { agents as agentApi, describe } from "./api";
import type { Agent, AgentPreset, Capability } from "./gen/agentmonitor/v1/agent_pb";
import { InteractionMode } from "./gen/agentmonitor/v1/common_pb";
import { ErrorLine, Field, Page, fieldSetter, useFormErrors } from "./ui";
import { lines } from "./util";

// Every agent, by id (for names on cards and menus). Agents change rarely and
// have no watch: the list is read when a page that shows them opens.
export function useAgents(): Map<string, Agent> {
  const [map, setMap] = useState<Map<string, Agent>>(new Map());
  useEffect(() => {
    void listAll().then(setMap, () => {});
  }, []);
  return map;
}

async function listAll(): Promise<Map<string, Agent>> {
  const map = new Map<string, Agent>();
  let pageToken = "";
  do {
    const reply = await agentApi.listAgents({ pageSize: 500, pageToken });
    for (const agent of reply.agents) map.set(agent.id, agent);
    pageToken = reply.nextPageToken;
  } while (pageToken);
  return map;
}

export async function listCapabilities(agentId = ""): Promise<Capability[]> {
  const all: Capability[] = [];
  let pageToken = "";
  do {
    const reply = await agentApi.listCapabilities({ pageSize: 500, pageToken, agentId });
    all.push(...reply.capabilities);
    pageToken = reply.nextPageToken;
  } while (pageToken);
  return all;
}

export function AgentsPage() {
  const [list, setList] = useState<Agent[]>([]);
  const [presets, setPresets] = useState<AgentPreset[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<Agent | "new" | null>(null);
  async function load() {
    try {
      setList([...(await listAll()).values()]);
      setPresets((await agentApi.listAgentPresets({})).presets);
      setError(null);
    } catch (err) {
      setError(describe(err));
    }
  }
  useEffect(() => void load(), []);
  return (
    <Page title="Agents" actions={<button class="primary" onClick={() => setEditing("new")}>New agent</button>}>
      <ErrorLine message={error} />
      {editing ? (
        <AgentForm
          agent={editing === "new" ? null : editing}
          onDone={() => {
            setEditing(null);
            void load();
          }}
        />
      ) : null}
      <table class="list">
        <thead>
          <tr>
            <th>Name</th>
            <th>Slug</th>
            <th>Binary</th>
            <th>Active</th>
            <th>Max runs</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((agent) => (
            <tr>
              <td>
                <a href={`#/agents/${agent.id}`}>{agent.name}</a>
              </td>
              <td>{agent.slug}</td>
              <td>
                <code>{[agent.binaryPath, ...agent.baseArgs].join(" ")}</code>
              </td>
              <td>{agent.isActive === false ? "no" : "yes"}</td>
              <td>{agent.maxConcurrent ?? ""}</td>
              <td>
                <button onClick={() => setEditing(agent)}>Edit</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Presets</h2>
      <Presets presets={presets} onCreated={() => void load()} />
    </Page>
  );
}

function Presets(props: { presets: AgentPreset[]; onCreated: () => void }) {
  const { errors, busy, run } = useFormErrors(["binary_path", "slug", "name"]);
  const [preset, setPreset] = useState("");
  const [binary, setBinary] = useState("");
  async function submit(e: Event) {
    e.preventDefault();
    const created = await run(() =>
      agentApi.createPresetAgent({ preset, binaryPath: binary || undefined }),
    );
    if (created) props.onCreated();
  }
  return (
    <form class="panel" onSubmit={submit} noValidate>
      <ErrorLine message={errors.form} />
      <div class="row">
        <Field label="Preset" name="preset" errors={errors}>
          <select name="preset" value={preset} onChange={(e) => setPreset(e.currentTarget.value)}>
            <option value="">Choose…</option>
            {props.presets.map((p) => (
              <option value={p.name}>
                {p.displayName} ({p.defaultBinary})
              </option>
            ))}
          </select>
        </Field>
        <Field label="Binary path (optional)" name="binary_path" errors={errors}>
          <input name="binary_path" value={binary} onInput={(e) => setBinary(e.currentTarget.value)} />
        </Field>
      </div>
      <button class="primary" type="submit" disabled={busy || !preset}>
        Add agent from preset
      </button>
    </form>
  );
}

const AGENT_FIELDS = ["name", "slug", "binary_path", "base_args", "working_dir", "env_allowlist", "max_concurrent", "is_active"];

function AgentForm(props: { agent: Agent | null; onDone: () => void }) {
  const a = props.agent;
  const { errors, busy, run } = useFormErrors(AGENT_FIELDS);
  const [v, setV] = useState({
    name: a?.name ?? "",
    slug: a?.slug ?? "",
    binary_path: a?.binaryPath ?? "",
    base_args: (a?.baseArgs ?? []).join("\n"),
    working_dir: a?.workingDir ?? "",
    env_allowlist: (a?.envAllowlist ?? []).join("\n"),
    max_concurrent: a?.maxConcurrent?.toString() ?? "",
    is_active: a?.isActive !== false,
  });
  const set = fieldSetter(setV);
  async function submit(e: Event) {
    e.preventDefault();
    const agent = {
      id: a?.id ?? "",
      name: v.name,
      slug: v.slug,
      binaryPath: v.binary_path,
      baseArgs: lines(v.base_args),
      workingDir: v.working_dir || undefined,
      envAllowlist: lines(v.env_allowlist),
      maxConcurrent: v.max_concurrent ? Number(v.max_concurrent) : undefined,
      isActive: v.is_active,
    };
    const done = a
      ? await run(() => agentApi.updateAgent({ agent, updateMask: { paths: AGENT_FIELDS } }))
      : await run(() => agentApi.createAgent({ agent }));
    if (done) props.onDone();
  }
  async function remove() {
    if (a && confirm(`Delete agent ${a.name}?`)) {
      if (await run(() => agentApi.deleteAgent({ id: a.id }))) props.onDone();
    }
  }
  return (
    <form class="panel" onSubmit={submit} noValidate>
      <ErrorLine message={errors.form} />
      <div class="row">
        <Field label="Name" name="name" errors={errors}>
          <input name="name" value={v.name} onInput={set("name")} />
        </Field>
        <Field label="Slug" name="slug" errors={errors}>
          <input name="slug" value={v.slug} onInput={set("slug")} />
        </Field>
        <Field label="Binary path" name="binary_path" errors={errors}>
          <input name="binary_path" value={v.binary_path} onInput={set("binary_path")} />
        </Field>
      </div>
      <div class="row">
        <Field label="Base arguments (one per line)" name="base_args" errors={errors}>
          <textarea name="base_args" value={v.base_args} onInput={set("base_args")} />
        </Field>
        <Field label="Environment allowlist (one per line)" name="env_allowlist" errors={errors}>
          <textarea name="env_allowlist" value={v.env_allowlist} onInput={set("env_allowlist")} />
        </Field>
      </div>
      <div class="row">
        <Field label="Working directory" name="working_dir" errors={errors}>
          <input name="working_dir" value={v.working_dir} onInput={set("working_dir")} />
        </Field>
        <Field label="Max concurrent runs" name="max_concurrent" errors={errors}>
          <input name="max_concurrent" type="number" value={v.max_concurrent} onInput={set("max_concurrent")} />
        </Field>
        <Field label="Active" name="is_active" errors={errors}>
          <input name="is_active" type="checkbox" checked={v.is_active} onChange={set("is_active")} />
        </Field>
      </div>
      <div class="buttons">
        <button class="primary" type="submit" disabled={busy}>
          {a ? "Save" : "Create agent"}
        </button>
        <button type="button" onClick={props.onDone}>
          Close
        </button>
        {a ? (
          <button type="button" class="danger" onClick={remove}>
            Delete
          </button>
        ) : null}
      </div>
    </form>
  );
}

export function AgentPage({ id }: { id: string }) {
  const [agent, setAgent] = useState<Agent | null>(null);
  const [caps, setCaps] = useState<Capability[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<Capability | "new" | null>(null);
  async function load() {
    try {
      setAgent((await agentApi.getAgent({ id })).agent ?? null);
      setCaps(await listCapabilities(id));
      setError(null);
    } catch (err) {
      setError(describe(err));
    }
  }
  useEffect(() => void load(), [id]);
  return (
    <Page
      title={agent ? `Agent ${agent.name}` : "Agent"}
      actions={<button class="primary" onClick={() => setEditing("new")}>New capability</button>}
    >
      <ErrorLine message={error} />
      {editing ? (
        <CapabilityForm
          agentId={id}
          capability={editing === "new" ? null : editing}
          onDone={() => {
            setEditing(null);
            void load();
          }}
        />
      ) : null}
      <table class="list">
        <thead>
          <tr>
            <th>Key</th>
            <th>Label</th>
            <th>Mode</th>
            <th>Command / prompt</th>
            <th>Approval</th>
            <th>Enabled</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {caps.map((c) => (
            <tr>
              <td>{c.key}</td>
              <td>{c.label}</td>
              <td>{c.interactionMode === InteractionMode.PROMPT ? "prompt" : "template"}</td>
              <td>
                <code>{c.interactionMode === InteractionMode.PROMPT ? c.promptTemplate : c.commandTokens.join(" ")}</code>
              </td>
              <td>{c.requiresApproval ? "required" : ""}</td>
              <td>{c.isEnabled === false ? "no" : "yes"}</td>
              <td>
                <button onClick={() => setEditing(c)}>Edit</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

const CAPABILITY_FIELDS = [
  "key",
  "label",
  "description",
  "interaction_mode",
  "command_tokens",
  "prompt_template",
  "args_schema",
  "requires_approval",
  "is_enabled",
  "timeout_sec",
];

function CapabilityForm(props: { agentId: string; capability: Capability | null; onDone: () => void }) {
  const c = props.capability;
  const { errors, busy, run, setErrors } = useFormErrors(CAPABILITY_FIELDS);
  const [v, setV] = useState({
    key: c?.key ?? "",
    label: c?.label ?? "",
    description: c?.description ?? "",
    interaction_mode: c?.interactionMode === InteractionMode.PROMPT ? "prompt" : "template",
    command_tokens: (c?.commandTokens ?? []).join("\n"),
    prompt_template: c?.promptTemplate ?? "",
    args_schema: JSON.stringify(c?.argsSchema ?? {}, null, 2),
    requires_approval: c?.requiresApproval ?? false,
    is_enabled: c?.isEnabled !== false,
    timeout_sec: c?.timeoutSec?.toString() ?? "",
  });
  const set = fieldSetter(setV);
  async function submit(e: Event) {
    e.preventDefault();
    let schema;
    try {
      schema = JSON.parse(v.args_schema || "{}");
    } catch (err) {
      setErrors({ fields: { args_schema: `not JSON: ${(err as Error).message}` }, form: null });
      return;
    }
    const prompt = v.interaction_mode === "prompt";
    const capability = {
      id: c?.id ?? "",
      agentId: props.agentId,
      key: v.key,
      label: v.label,
      description: v.description || undefined,
      interactionMode: prompt ? InteractionMode.PROMPT : InteractionMode.TEMPLATE,
      commandTokens: prompt ? [] : lines(v.command_tokens),
      promptTemplate: prompt ? v.prompt_template : undefined,
      argsSchema: schema,
      requiresApproval: v.requires_approval,
      isEnabled: v.is_enabled,
      timeoutSec: v.timeout_sec ? Number(v.timeout_sec) : undefined,
    };
    const done = c
      ? await run(() => agentApi.updateCapability({ capability, updateMask: { paths: CAPABILITY_FIELDS } }))
      : await run(() => agentApi.createCapability({ capability }));
    if (done) props.onDone();
  }
  async function remove() {
    if (c && confirm(`Delete capability ${c.label}?`)) {
      if (await run(() => agentApi.deleteCapability({ id: c.id }))) props.onDone();
    }
  }
  return (
    <form class="panel" onSubmit={submit} noValidate>
      <ErrorLine message={errors.form} />
      <div class="row">
        <Field label="Key" name="key" errors={errors}>
          <input name="key" value={v.key} onInput={set("key")} />
        </Field>
        <Field label="Label" name="label" errors={errors}>
          <input name="label" value={v.label} onInput={set("label")} />
        </Field>
        <Field label="Mode" name="interaction_mode" errors={errors}>
          <select name="interaction_mode" value={v.interaction_mode} onChange={set("interaction_mode")}>
            <option value="template">template (a command)</option>
            <option value="prompt">prompt (an AI agent)</option>
          </select>
        </Field>
      </div>
      <Field label="Description" name="description" errors={errors}>
        <input name="description" value={v.description} onInput={set("description")} />
      </Field>
      {v.interaction_mode === "prompt" ? (
        <Field label="Prompt template" name="prompt_template" errors={errors}>
          <textarea name="prompt_template" value={v.prompt_template} onInput={set("prompt_template")} />
        </Field>
      ) : (
        <Field label="Command tokens (one argument per line, MiniJinja)" name="command_tokens" errors={errors}>
          <textarea name="command_tokens" value={v.command_tokens} onInput={set("command_tokens")} />
        </Field>
      )}
      <Field label="Arguments schema (JSON Schema)" name="args_schema" errors={errors}>
        <textarea name="args_schema" class="code" value={v.args_schema} onInput={set("args_schema")} />
      </Field>
      <div class="row">
        <Field label="Requires approval" name="requires_approval" errors={errors}>
          <input type="checkbox" checked={v.requires_approval} onChange={set("requires_approval")} />
        </Field>
        <Field label="Enabled" name="is_enabled" errors={errors}>
          <input type="checkbox" checked={v.is_enabled} onChange={set("is_enabled")} />
        </Field>
        <Field label="Timeout (s)" name="timeout_sec" errors={errors}>
          <input type="number" value={v.timeout_sec} onInput={set("timeout_sec")} />
        </Field>
      </div>
      <div class="buttons">
        <button class="primary" type="submit" disabled={busy}>
          {c ? "Save" : "Create capability"}
        </button>
        <button type="button" onClick={props.onDone}>
          Close
        </button>
        {c ? (
          <button type="button" class="danger" onClick={remove}>
            Delete
          </button>
        ) : null}
      </div>
    </form>
  );
}
