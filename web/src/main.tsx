// The web board's shell: hash routes (`#/`, `#/tasks/ID`, `#/executions/ID`,
// `#/agents`, `#/agents/ID`, `#/workers`), so no app path ever reaches the
// server, and the token prompt a refusal opens.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { onTokenNeeded, setToken, token } from "./api";
import { AgentPage, AgentsPage } from "./agents";
import { Board } from "./board";
import { ExecutionPage } from "./execution";
import { TaskPage } from "./task";
import { WorkersPage } from "./workers";
import "@xterm/xterm/css/xterm.css";
import "./style.css";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function route(hash: string) {
  const path = hash.replace(/^#/, "") || "/";
  let m;
  if ((m = /^\/tasks\/([\w-]+)$/.exec(path))) return <TaskPage id={m[1]} key={m[1]} />;
  if ((m = /^\/executions\/([\w-]+)$/.exec(path))) return <ExecutionPage id={m[1]} key={m[1]} />;
  if ((m = /^\/agents\/([\w-]+)$/.exec(path))) return <AgentPage id={m[1]} key={m[1]} />;
  if (path === "/agents") return <AgentsPage />;
  if (path === "/workers") return <WorkersPage />;
  if (path === "/") return <Board />;
  return <p class="error">No page at {path}.</p>;
}

// Asked once per browser session: the token is kept in sessionStorage and
// the page reloads its data with it.
function TokenPrompt({ message, onSaved }: { message: string; onSaved: () => void }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="token-prompt panel"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim() || null);
        onSaved();
      }}
    >
      <p role="alert">
        This server asks for a client token ({message}). It is kept for this browser tab until you close it.
      </p>
      <input type="password" aria-label="Client token" value={value} onInput={(e) => setValue(e.currentTarget.value)} autoFocus />
      <button class="primary" type="submit">
        Use token
      </button>
    </form>
  );
}

function App() {
  const hash = useHash();
  const [asked, setAsked] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => onTokenNeeded((message) => setAsked(message)), []);
  const path = hash.replace(/^#/, "") || "/";
  const tab = (href: string, label: string, active: boolean) => (
    <a href={href} class={active ? "active" : ""}>
      {label}
    </a>
  );
  return (
    <>
      <nav class="top">
        <strong>Agent Monitor</strong>
        {tab("#/", "Board", path === "/" || path.startsWith("/tasks") || path.startsWith("/executions"))}
        {tab("#/agents", "Agents", path.startsWith("/agents"))}
        {tab("#/workers", "Workers", path === "/workers")}
        {token() ? (
          <button
            class="small"
            onClick={() => {
              setToken(null);
              setGeneration(generation + 1);
            }}
          >
            Forget token
          </button>
        ) : null}
      </nav>
      {asked !== null ? (
        <TokenPrompt
          message={asked}
          onSaved={() => {
            setAsked(null);
            setGeneration(generation + 1);
          }}
        />
      ) : null}
      <main key={generation}>{route(hash)}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
