// The form of a capability's run, generated from its `args_schema` (JSON
// Schema): one field per property, typed by the schema. The server is the one
// judge of the arguments (the form does not validate on its own, so no rule
// lives twice); its INVALID_ARGUMENT names the property, shown at its field.
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { useState } from "preact/hooks";
import { executions } from "./api";
import type { Capability } from "./gen/agentmonitor/v1/agent_pb";
import { ErrorLine, Field, useFormErrors } from "./ui";

interface Property {
  name: string;
  schema: JsonObject;
  required: boolean;
}

function properties(schema: JsonObject | undefined): Property[] {
  const props = (schema?.properties ?? {}) as JsonObject;
  const required = new Set(((schema?.required ?? []) as JsonValue[]).map(String));
  return Object.entries(props).map(([name, s]) => ({
    name,
    schema: (s ?? {}) as JsonObject,
    required: required.has(name),
  }));
}

function kind(schema: JsonObject): string {
  const type = schema.type;
  if (Array.isArray(schema.enum)) return "enum";
  return typeof type === "string" ? type : Array.isArray(type) ? String(type.find((t) => t !== "null")) : "string";
}

// A field's text as the JSON value its type calls for. What does not parse
// is sent as typed, so the server's message says what is wrong with it.
function value(prop: Property, text: string): JsonValue | undefined {
  const t = kind(prop.schema);
  if (t === "boolean") return text === "true";
  if (text === "") return undefined;
  if (t === "integer" || t === "number") {
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  }
  if (t === "array") {
    return text
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "");
  }
  if (t === "object") {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      return text;
    }
  }
  if (t === "enum") {
    const match = (prop.schema.enum as JsonValue[]).find((option) => String(option) === text);
    return match ?? text;
  }
  return text;
}

function initial(prop: Property): string {
  const d = prop.schema.default;
  if (d === undefined || d === null) return kind(prop.schema) === "boolean" ? "false" : "";
  if (Array.isArray(d)) return d.map(String).join("\n");
  return typeof d === "object" ? JSON.stringify(d) : String(d);
}

export function RunForm(props: { taskId: string; capability: Capability; onQueued: (id: string) => void }) {
  const props_ = properties(props.capability.argsSchema);
  const { errors, busy, run } = useFormErrors([...props_.map((p) => p.name), "max_retries"]);
  // Set from the first render (the form is keyed by its capability, so
  // another capability starts afresh): filled in an effect, the defaults
  // overwrote what was typed before the effect ran.
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(props_.map((p) => [p.name, initial(p)])),
  );
  const [retries, setRetries] = useState("0");

  async function submit(e: Event) {
    e.preventDefault();
    const args: JsonObject = {};
    for (const prop of props_) {
      const v = value(prop, values[prop.name] ?? "");
      if (v !== undefined) args[prop.name] = v;
    }
    const reply = await run(() =>
      executions.createExecution({
        taskId: props.taskId,
        capabilityId: props.capability.id,
        args,
        maxRetries: Number(retries) || 0,
      }),
    );
    if (reply?.execution) props.onQueued(reply.execution.id);
  }

  return (
    <form class="panel run-form" onSubmit={submit} noValidate data-capability={props.capability.key}>
      {props.capability.description ? <p class="note">{props.capability.description}</p> : null}
      <ErrorLine message={errors.form} />
      {props_.map((prop) => {
        const t = kind(prop.schema);
        const label = `${(prop.schema.title as string) ?? prop.name}${prop.required ? " *" : ""}`;
        const hint = (prop.schema.description as string | undefined) ?? undefined;
        const v = values[prop.name] ?? "";
        // From the latest values, not this render's: two fields changed
        // before a render (a fast typist, a script) both stay.
        const set = (text: string) => setValues((latest) => ({ ...latest, [prop.name]: text }));
        let input;
        if (t === "boolean") {
          input = <input type="checkbox" name={prop.name} checked={v === "true"} onChange={(e) => set(String(e.currentTarget.checked))} />;
        } else if (t === "enum") {
          input = (
            <select name={prop.name} value={v} onChange={(e) => set(e.currentTarget.value)}>
              <option value="" />
              {(prop.schema.enum as JsonValue[]).map((option) => (
                <option value={String(option)}>{String(option)}</option>
              ))}
            </select>
          );
        } else if (t === "array" || t === "object" || (t === "string" && prop.schema.format === "textarea")) {
          input = <textarea name={prop.name} value={v} onInput={(e) => set(e.currentTarget.value)} />;
        } else {
          input = (
            <input
              name={prop.name}
              type={t === "integer" || t === "number" ? "text" : "text"}
              inputMode={t === "integer" || t === "number" ? "numeric" : undefined}
              value={v}
              onInput={(e) => set(e.currentTarget.value)}
            />
          );
        }
        return (
          <Field label={label} name={prop.name} errors={errors} hint={hint}>
            {input}
          </Field>
        );
      })}
      <Field label="Automatic retries" name="max_retries" errors={errors}>
        <input name="max_retries" value={retries} onInput={(e) => setRetries(e.currentTarget.value)} />
      </Field>
      <button class="primary" type="submit" disabled={busy}>
        Run {props.capability.label}
      </button>
    </form>
  );
}
