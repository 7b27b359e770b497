// Workers: who is connected, their slots and runs; and the tuning every
// worker follows (GetWorkerConfig / SetWorkerConfig).
import { useEffect, useState } from "preact/hooks";
import { describe, workers } from "./api";
import type { Worker } from "./gen/agentmonitor/v1/worker_pb";
import { ErrorLine, Field, Page, fieldSetter, useFormErrors } from "./ui";
import { when } from "./util";

type Millis = { stale_window: string; heartbeat_interval: string; cancel_grace: string; log_chunk_bytes: string };

function ms(d: { seconds: bigint; nanos: number } | undefined): string {
  return d ? String(Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6)) : "";
}

function duration(text: string) {
  const n = Number(text);
  const whole = Math.floor(n / 1000);
  return { seconds: BigInt(whole), nanos: Math.round((n - whole * 1000) * 1e6) };
}

export function WorkersPage() {
  const [list, setList] = useState<Worker[]>([]);
  const [error, setError] = useState<string | null>(null);
  const { errors, busy, run } = useFormErrors(["stale_window", "heartbeat_interval", "cancel_grace", "log_chunk_bytes"]);
  const [config, setConfig] = useState<Millis | null>(null);
  async function load() {
    try {
      setList((await workers.listWorkers({})).workers);
      const c = (await workers.getWorkerConfig({})).config;
      setConfig({
        stale_window: ms(c?.staleWindow),
        heartbeat_interval: ms(c?.heartbeatInterval),
        cancel_grace: ms(c?.cancelGrace),
        log_chunk_bytes: String(c?.logChunkBytes ?? ""),
      });
      setError(null);
    } catch (err) {
      setError(describe(err));
    }
  }
  useEffect(() => void load(), []);
  const set = fieldSetter<Millis>((update) => setConfig((latest) => (latest ? update(latest) : latest)));
  async function save(e: Event) {
    e.preventDefault();
    if (!config) return;
    const done = await run(() =>
      workers.setWorkerConfig({
        config: {
          staleWindow: duration(config.stale_window),
          heartbeatInterval: duration(config.heartbeat_interval),
          cancelGrace: duration(config.cancel_grace),
          logChunkBytes: Number(config.log_chunk_bytes),
        },
        updateMask: { paths: ["stale_window", "heartbeat_interval", "cancel_grace", "log_chunk_bytes"] },
      }),
    );
    if (done) void load();
  }
  return (
    <Page title="Workers" actions={<button onClick={() => void load()}>Refresh</button>}>
      <ErrorLine message={error} />
      <table class="list">
        <thead>
          <tr>
            <th>Worker</th>
            <th>Host</th>
            <th>Version</th>
            <th>State</th>
            <th>Runs / slots</th>
            <th>Labels</th>
            <th>Last seen</th>
          </tr>
        </thead>
        <tbody>
          {list.map((w) => (
            <tr>
              <td>{w.workerId}</td>
              <td>{w.hostname}</td>
              <td>{w.version}</td>
              <td>{w.connected ? (w.draining ? "draining" : "connected") : "gone"}</td>
              <td>
                {w.currentExecutions} / {w.slots}
              </td>
              <td>
                {Object.entries(w.labels)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(", ")}
              </td>
              <td>{when(w.lastSeenAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Tuning (every worker)</h2>
      {config ? (
        <form class="panel" onSubmit={save} noValidate>
          <ErrorLine message={errors.form} />
          <div class="row">
            <Field label="Stale window (ms)" name="stale_window" errors={errors}>
              <input value={config.stale_window} onInput={set("stale_window")} />
            </Field>
            <Field label="Heartbeat interval (ms)" name="heartbeat_interval" errors={errors}>
              <input value={config.heartbeat_interval} onInput={set("heartbeat_interval")} />
            </Field>
            <Field label="Cancel grace (ms)" name="cancel_grace" errors={errors}>
              <input value={config.cancel_grace} onInput={set("cancel_grace")} />
            </Field>
            <Field label="Log chunk (bytes)" name="log_chunk_bytes" errors={errors}>
              <input value={config.log_chunk_bytes} onInput={set("log_chunk_bytes")} />
            </Field>
          </div>
          <button class="primary" type="submit" disabled={busy}>
            Save tuning
          </button>
        </form>
      ) : null}
    </Page>
  );
}
