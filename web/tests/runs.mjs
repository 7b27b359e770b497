// A run's terminal and its worktree's change in a real browser (Debian's
// chromium, driven by playwright-core), against a real server and worker
// that tests/tests/web_board.rs starts: the fake Gemini CLI running in tmux,
// and a finished fake Claude run that wrote a file in a git worktree.
//
// Environment: AMON_URL (the server), CHROMIUM (the browser's path),
// AMON_SCREENSHOTS (a directory for screenshots; unset: none),
// AMON_TERMINAL_RUN (a running fake-Gemini run whose first prompt was
// AMON_TERMINAL_TITLE), AMON_DIFF_RUN (the finished fake-Claude run, which
// appended its prompt, AMON_DIFF_ADDED lines of which the first is
// AMON_DIFF_LINE, to AMON_DIFF_FILE).
// Protocol with the Rust test: this script prints `need worker gone` and
// reads one line once the worker is away; it prints `ok <step>` after each
// step.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env("AMON_URL");
const terminalRun = env("AMON_TERMINAL_RUN");
const terminalTitle = env("AMON_TERMINAL_TITLE");
const diffRun = env("AMON_DIFF_RUN");
const diffFile = env("AMON_DIFF_FILE");
const diffLine = env("AMON_DIFF_LINE");
const diffAdded = env("AMON_DIFF_ADDED");
const shots = process.env.AMON_SCREENSHOTS;
const WAIT = 30_000;
const started = Date.now();
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function step(name) {
  console.log(`ok ${name} (${Date.now() - started} ms)`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  // What the terminal shows: xterm's rendered rows, as a person reads them.
  const screen = (p) => p.locator(".terminal-host .xterm-rows");
  const untilScreenShows = (p, text) =>
    p.waitForFunction(
      (t) => (document.querySelector(".terminal-host .xterm-rows")?.textContent ?? "").includes(t),
      text,
    );

  // The worktree: the summary recorded, the diff coloured.
  await page.goto(`${url}/#/executions/${diffRun}`);
  await page.locator(".worktree .wt-branch", { hasText: "amon/" }).waitFor();
  await page.locator(".wt-files tr", { has: page.locator(".wt-path", { hasText: diffFile }) }).locator(".d-add", { hasText: `+${diffAdded}` }).waitFor();
  await page.getByRole("button", { name: "Diff", exact: true }).click();
  await page.locator(".diff-lines .d-meta", { hasText: `+++ b/${diffFile}` }).waitFor();
  await page.locator(".diff-lines .d-add", { hasText: `+${diffLine}` }).waitFor();
  if (shots) await page.locator(".worktree").screenshot({ path: join(shots, "diff.png") });
  step("a run's worktree summary and its coloured diff");

  // The terminal of a running AI run: its screen, keys answered.
  await page.goto(`${url}/#/executions/${terminalRun}`);
  await page.locator('dd.status[data-status="running"]').waitFor();
  await page.getByRole("button", { name: "Open terminal" }).click();
  await page.locator('.terminal-state[data-state="open"]').waitFor();
  await untilScreenShows(page, `echo: ${terminalTitle}`);
  await page.locator(".terminal-host .xterm-helper-textarea").focus();
  await page.keyboard.type("typed in the browser");
  await page.keyboard.press("Enter");
  await untilScreenShows(page, "echo: typed in the browser");
  if (shots) await page.screenshot({ path: join(shots, "terminal.png") });
  step("a running run's terminal: a line typed in xterm is answered");

  // A second person watching only: it sees the same screen; its keys go
  // nowhere. (Another browser context: a browser opens at most 6 HTTP/1.1
  // connections to one server, and each run page holds 2 or 3 streams.)
  const other = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  other.setDefaultTimeout(WAIT);
  const watcher = await other.newPage();
  await watcher.goto(`${url}/#/executions/${terminalRun}`);
  await watcher.getByRole("button", { name: "Watch terminal (read-only)" }).click();
  await watcher.locator('.terminal-state[data-state="open"]', { hasText: "read-only" }).waitFor();
  await untilScreenShows(watcher, "echo: typed in the browser");
  await watcher.locator(".terminal-host .xterm-helper-textarea").focus();
  await watcher.keyboard.type("not sent");
  await watcher.keyboard.press("Enter");
  step("a read-only viewer watches the same screen");

  // Closing the panel detaches; the run goes on.
  await page.getByRole("button", { name: "Close terminal" }).click();
  if ((await page.locator(".terminal-host").count()) !== 0) throw new Error("the terminal stayed open");
  await page.getByRole("button", { name: "Open terminal" }).click();
  await page.locator('.terminal-state[data-state="open"]').waitFor();
  await untilScreenShows(page, "echo: typed in the browser");
  if ((await screen(page).textContent()).includes("not sent")) throw new Error("a read-only viewer's keys reached the run");
  step("closed and reopened: the run went on, the watcher's keys were dropped");

  // The run ends: both terminals say why, and the page offers none.
  await page.locator(".terminal-host .xterm-helper-textarea").focus();
  await page.keyboard.type("/quit");
  await page.keyboard.press("Enter");
  for (const p of [page, watcher]) {
    await p.locator('.terminal-state[data-state="ended"]', { hasText: "the run ended" }).waitFor();
  }
  await page.locator('dd.status:not([data-status="running"])').waitFor();
  await page.reload();
  await page.locator("dd.status").waitFor();
  if ((await page.getByRole("button", { name: "Open terminal" }).count()) !== 0) throw new Error("a finished run offers a terminal");
  step("a run that ended closes its terminals with the reason");

  // The worker away: the server's message, and the recorded summary still.
  console.log("need worker gone");
  await lines.next();
  await page.goto(`${url}/#/executions/${diffRun}`);
  await page.locator(".wt-path", { hasText: diffFile }).waitFor();
  await page.getByRole("button", { name: "Diff", exact: true }).click();
  await page.locator(".worktree .error", { hasText: "not connected" }).waitFor();
  await page.locator(".wt-path", { hasText: diffFile }).waitFor();
  step("with its worker away, the diff's refusal is shown and the summary stays");
  console.log(`browser tests took ${Date.now() - started} ms`);
} catch (err) {
  // What the pages showed when a step failed.
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    const text = await p.locator("main, body").first().innerText().catch(() => "?");
    console.error(`page ${p.url()} showed:\n${text}`);
  }
  throw err;
} finally {
  await browser.close();
}
process.exit(0);
