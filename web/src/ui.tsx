// Building blocks every page uses: an error line, a field with its error,
// and the hook that keeps a form's errors next to the fields that caused them.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { describe, fieldError } from "./api";
import { duration } from "./util";

// The input handler of a form's field `key`: sets it from the event's input
// (a checkbox's state, else its text) on the LATEST values, not the render's
// (a handler spreading its render's values loses a field changed before the
// next render: a fast typist, a script).
export function fieldSetter<T extends object>(setValues: (update: (latest: T) => T) => void, onChange?: () => void) {
  return (key: keyof T) => (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const value = input.type === "checkbox" ? input.checked : input.value;
    onChange?.();
    setValues((latest) => ({ ...latest, [key]: value }));
  };
}

// A run's duration; while it runs (started, not ended) it counts up each
// second. A clock on the page, not a poll: nothing is asked of the server.
export function Elapsed({ start, end }: { start?: Timestamp; end?: Timestamp }) {
  const [, tick] = useState(0);
  const running = start !== undefined && end === undefined;
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, [running]);
  return <>{duration(start, end)}</>;
}

export function ErrorLine({ message }: { message: string | null | undefined }) {
  if (!message) return null;
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

export function Field(props: {
  label: string;
  name: string;
  errors: FormErrors;
  children: ComponentChildren;
  hint?: string;
}) {
  const message = props.errors.fields[props.name];
  return (
    <label class={message ? "field invalid" : "field"} data-field={props.name}>
      <span class="label">{props.label}</span>
      {props.children}
      {props.hint && !message ? <small class="hint">{props.hint}</small> : null}
      {message ? (
        <small class="field-error" role="alert">
          {message}
        </small>
      ) : null}
    </label>
  );
}

export interface FormErrors {
  fields: Record<string, string>;
  form: string | null;
}

// `run(action)` clears the errors, runs the call, and on failure puts the
// server's message at the field it names when the form has that field
// (`known`), else at the top of the form.
export function useFormErrors(known: string[]) {
  const [errors, setErrors] = useState<FormErrors>({ fields: {}, form: null });
  const [busy, setBusy] = useState(false);
  async function run<T>(action: () => Promise<T>): Promise<T | undefined> {
    setErrors({ fields: {}, form: null });
    setBusy(true);
    try {
      return await action();
    } catch (err) {
      const field = fieldError(err);
      if (field && known.includes(field.field)) {
        setErrors({ fields: { [field.field]: field.message }, form: null });
      } else {
        setErrors({ fields: {}, form: describe(err) });
      }
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { errors, busy, run, setErrors };
}

export function Page(props: { title: ComponentChildren; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{props.title}</h1>
        <div class="actions">{props.actions}</div>
      </header>
      {props.children}
    </section>
  );
}
