// The web board in a real browser (Debian's chromium, driven by
// playwright-core), against a real server and worker that
// tests/tests/web_board.rs starts and seeds. Asserts what a person sees.
//
// Environment: AMON_URL (the server), AMON_TOKEN_URL and AMON_TOKEN (a second
// server that demands a client token), CHROMIUM (the browser's path),
// AMON_SCREENSHOTS (a directory: store screenshots there; unset: none),
// AMON_PROXY_URL (the server behind a proxy the test can cut),
// AMON_FAKE_CLAUDE (a fake Claude Code CLI, tests/fixtures/fake-claude).
// Protocol with the Rust test: this script prints a request (`need
// other-client task`, `need ticker run`, `cut the network`) and reads one
// line from stdin once the test has done it (the run's id for the ticker);
// it prints `ok <step>` after each step.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { join } from "node:path";

const url = process.env.AMON_URL;
const tokenUrl = process.env.AMON_TOKEN_URL;
const token = process.env.AMON_TOKEN;
const proxyUrl = process.env.AMON_PROXY_URL;
const fakeClaude = process.env.AMON_FAKE_CLAUDE;
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
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  const column = (name) => page.locator(`.column[data-status="${name}"]`);
  // A card by its exact title (a subtask's card names its parent too).
  const card = (title) => page.locator(".card", { has: page.getByRole("link", { name: title, exact: true }) });

  // The board's watch starts where GetBoard said the trail stood (the seed
  // wrote events): its request carries after_event_id (field 2, a varint:
  // tag 0x10 after the 5-byte gRPC-web frame header), never 0 (omitted).
  const watchAsked = page.waitForRequest((r) => r.url().endsWith("/agentmonitor.v1.TaskService/WatchTaskEvents"));
  await page.goto(url);
  for (const name of ["To do", "In progress", "Blocked", "Done", "Cancelled"]) {
    await column(name).waitFor();
  }
  step("board shows five columns");
  const watchBody = (await watchAsked).postDataBuffer() ?? Buffer.alloc(0);
  if (watchBody.length <= 5 || watchBody[5] !== 0x10) {
    throw new Error(`the board's watch replays the trail (request ${watchBody.toString("hex")})`);
  }
  step("the board watches from where GetBoard stood, not from event 0");

  // The markers of cards the test made through its own client.
  const review = card("Review the proto");
  for (const marker of [".priority:text('P1')", ".assignee:text('echo')", ".due", ".subtasks:text('1')"]) {
    await review.locator(marker).waitFor();
  }
  const lint = card("Lint the proto");
  await lint.locator(".deps:text('1')").waitFor();
  await lint.locator(".parent:text('Review the proto')").waitFor();
  step("cards show priority, assignee, due date, subtask and dependency markers");

  // Create a task in the page.
  await page.getByRole("button", { name: "New task" }).click();
  await page.locator('.create-task input[name="title"]').fill("Write the web board");
  await page.locator('.create-task select[name="priority"]').selectOption("2");
  await page.locator(".create-task").getByRole("button", { name: "Create" }).click();
  await column("To do").locator(".card", { hasText: "Write the web board" }).waitFor();
  step("task created from the page appears in To do");

  // A blank title: the server's INVALID_ARGUMENT shows at the title field.
  await page.getByRole("button", { name: "New task" }).click();
  await page.locator(".create-task").getByRole("button", { name: "Create" }).click();
  await page.locator('.create-task [data-field="title"] .field-error').waitFor();
  await page.getByRole("button", { name: "Close" }).click();
  step("a blank title is refused at the title field");

  // Drag it to In progress; the move is the server's (a reload keeps it).
  await card("Write the web board").dragTo(column("In progress"));
  await column("In progress").locator(".card", { hasText: "Write the web board" }).waitFor();
  await page.reload();
  await column("In progress").locator(".card", { hasText: "Write the web board" }).waitFor();
  step("dragged to In progress, and it stays there after a reload");

  // A task created by another gRPC client appears without a reload.
  await page.evaluate(() => (window.__sameDocument = true));
  console.log("need other-client task");
  await lines.next();
  await card("Made by another client").waitFor();
  if (!(await page.evaluate(() => window.__sameDocument === true))) throw new Error("the page reloaded");
  step("another client's task appears live");
  if (shots) await page.screenshot({ path: join(shots, "board.png") });

  // Within a column: dropped on the upper half of a card, it goes above it.
  await card("Made by another client").dragTo(card("Review the proto"), { targetPosition: { x: 20, y: 4 } });
  const firstTodo = () => column("To do").locator(".card .card-title").first().textContent();
  await page.waitForFunction(
    () => document.querySelector('.column[data-status="To do"] .card .card-title')?.textContent === "Made by another client",
  );
  await page.reload();
  await column("To do").locator(".card").first().waitFor();
  if ((await firstTodo()) !== "Made by another client") throw new Error(`first in To do: ${await firstTodo()}`);
  step("reordered within a column, and the order stays after a reload");

  // Run the echo capability from its generated form; its output appears.
  await card("Write the web board").locator("a.card-title").click();
  // Edit it: the change is saved and lands in its live audit trail.
  await page.locator('textarea[name="description"]').fill("Edited in the page");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.locator("ol.events li", { hasText: "Edited in the page" }).waitFor();
  step("task edited from its page, the edit in its live audit trail");
  const capability = page.getByLabel("Capability");
  await capability.selectOption({ label: "echo / Say" });
  const form = page.locator('form.run-form[data-capability="say"]');
  await form.locator('input[name="text"]').fill("hello from the browser");
  // An argument against the schema: the message is at its field.
  await form.locator('input[name="times"]').fill("0");
  await form.getByRole("button", { name: /^Run/ }).click();
  const timesError = form.locator('[data-field="times"] .field-error');
  await timesError.waitFor();
  const message = await timesError.textContent();
  if (!/minimum/.test(message)) throw new Error(`unexpected field error: ${message}`);
  step("an args error shows at its field");
  // Two fields changed before the page renders again (as a fast typist or
  // a script does): both keep what was typed.
  await form.evaluate((f) => {
    for (const [name, text] of [["text", "hello from the browser, twice"], ["times", "2"]]) {
      const input = f.querySelector(`input[name="${name}"]`);
      input.value = text;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const kept = [await form.locator('input[name="text"]').inputValue(), await form.locator('input[name="times"]').inputValue()];
  if (kept[0] !== "hello from the browser, twice" || kept[1] !== "2") {
    throw new Error(`a field changed together with another lost its text: ${JSON.stringify(kept)}`);
  }
  step("two fields changed before a render both keep their text");
  await form.getByRole("button", { name: /^Run/ }).click();
  await page.waitForURL(/#\/executions\//);
  await page.locator(".log-box").getByText("hello from the browser, twice").first().waitFor();
  await page.locator('dd.status[data-status="succeeded"]').waitFor();
  step("echo run from the generated form, its output shown");

  // A running sleep, its output live, then cancelled from the page.
  await page.getByRole("link", { name: "Its task" }).click();
  await capability.selectOption({ label: "sleepy / Sleep" });
  await page.locator('form.run-form[data-capability="sleep"]').getByRole("button", { name: /^Run/ }).click();
  await page.waitForURL(/#\/executions\//);
  await page.locator('dd.status[data-status="running"]').waitFor();
  await page.locator(".log-box").getByText("line 3").waitFor();
  if (shots) await page.screenshot({ path: join(shots, "log.png") });
  step("a running sleep's output shown live");
  // Its duration counts up while it runs, with no new message from the
  // server (the sleep is silent now): three readings a second apart differ.
  const durationCell = page.locator("dt", { hasText: /^Duration$/ }).locator("xpath=following-sibling::dd[1]");
  let reading = await durationCell.textContent();
  for (let i = 0; i < 2; i++) {
    await page.waitForFunction((was) => {
      const label = [...document.querySelectorAll("dt")].find((dt) => dt.textContent === "Duration");
      return label?.nextElementSibling?.textContent !== was;
    }, reading);
    reading = await durationCell.textContent();
  }
  step("a running run's duration counts up");
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator('dd.status[data-status="cancelled"]').waitFor();
  step("the running sleep cancelled from the page");

  // A capability that requires approval waits queued until approved here.
  await page.getByRole("link", { name: "Its task" }).click();
  await capability.selectOption({ label: "echo / Guarded" });
  await page.locator('form.run-form[data-capability="guarded"]').getByRole("button", { name: /^Run/ }).click();
  await page.waitForURL(/#\/executions\//);
  await page.locator('dd.status[data-status="queued"]').waitFor();
  await page.getByRole("button", { name: "Approve" }).click();
  await page.locator('dd.status[data-status="succeeded"]').waitFor();
  await page.locator(".log-line", { hasText: "approved and ran" }).waitFor();
  step("a run awaiting approval approved from the page");

  // A run queued behind its task's dependency (Lint waits for Review) needs
  // no approval: it offers Cancel, never Approve.
  await page.goto(`${url}/#/`);
  await card("Lint the proto").locator("a.card-title").click();
  await capability.selectOption({ label: "sleepy / Sleep" });
  await page.locator('form.run-form[data-capability="sleep"]').getByRole("button", { name: /^Run/ }).click();
  await page.waitForURL(/#\/executions\//);
  await page.locator('dd.status[data-status="queued"]').waitFor();
  await page.getByRole("button", { name: "Cancel" }).waitFor();
  // Once the page knows the capability needs no approval (it asks once).
  await page.locator('.execution-head .execution-actions[data-approval="none"]').waitFor();
  if (await page.getByRole("button", { name: "Approve" }).count()) {
    throw new Error("Approve offered on a run whose capability needs no approval");
  }
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator('dd.status[data-status="cancelled"]').waitFor();
  step("a queued run that needs no approval offers no Approve");

  // An AI agent from a preset (a fake Claude Code), run on the task and
  // continued with a follow-up prompt, all from the page.
  if (fakeClaude) {
    await page.goto(`${url}/#/agents`);
    await page.locator('select[name="preset"]').selectOption("claude");
    await page.locator('input[name="binary_path"]').fill(fakeClaude);
    await page.getByRole("button", { name: "Add agent from preset" }).click();
    await page.locator("table.list td", { hasText: fakeClaude }).waitFor();
    await page.goto(`${url}/#/`);
    await card("Write the web board").locator("a.card-title").click();
    const prompt = await capability.locator("option", { hasText: "/ Prompt" }).first().getAttribute("value");
    await capability.selectOption(prompt);
    await page.locator('form.run-form[data-capability="prompt"]').getByRole("button", { name: /^Run/ }).click();
    await page.waitForURL(/#\/executions\//);
    await page.locator('dd.status[data-status="succeeded"]').waitFor();
    const first = page.url();
    await page.getByRole("button", { name: "Continue…" }).click();
    await page.getByLabel("Follow-up prompt").fill("And now the tests");
    await page.getByRole("button", { name: "Continue", exact: true }).click();
    await page.waitForURL((u) => u.href !== first && /#\/executions\//.test(u.href));
    await page.locator("dt", { hasText: "Continues" }).waitFor();
    await page.locator('dd.status[data-status="succeeded"]').waitFor();
    step("an AI run from a preset agent, continued with a prompt");
  }

  // A log stream and a watch that drop (the network cut under the page)
  // resume where they were: every line once, in order, and the final status.
  if (proxyUrl) {
    const cut = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    cut.setDefaultTimeout(WAIT);
    console.log("need ticker run");
    const id = (await lines.next()).value.trim();
    await cut.goto(`${proxyUrl}/#/executions/${id}`);
    await cut.locator(".log-line", { hasText: /^tick 3$/ }).waitFor();
    console.log("cut the network");
    await lines.next();
    // The page noticed: the stream dropped, it says so while it reconnects.
    await cut.locator(".error").first().waitFor();
    await cut.locator('dd.status[data-status="succeeded"]').waitFor();
    await cut.locator(".log-info", { hasText: "(complete)" }).waitFor();
    const shown = await cut.locator(".log-line").allTextContents();
    const expected = Array.from({ length: 20 }, (_, i) => `tick ${i + 1}`);
    if (JSON.stringify(shown) !== JSON.stringify(expected)) throw new Error(`log after reconnecting: ${JSON.stringify(shown)}`);
    step("a dropped log stream resumes with no gap or duplicate");
  }

  // The other pages a person needs instead of the CLI.
  await page.goto(`${url}/#/agents`);
  await page.locator("table.list td", { hasText: "sleepy" }).first().waitFor();
  await page.goto(`${url}/#/workers`);
  await page.locator("table.list td", { hasText: "connected" }).first().waitFor();
  await page.getByRole("button", { name: "Save tuning" }).waitFor();
  step("agents and workers pages list what the server has");

  // A server that demands a client token: asked once, a wrong one refused plainly.
  if (tokenUrl) {
    const guarded = await (await browser.newContext()).newPage();
    guarded.setDefaultTimeout(WAIT);
    await guarded.goto(tokenUrl);
    const prompt = guarded.locator(".token-prompt");
    await prompt.getByText("needs the client token").waitFor();
    await prompt.getByLabel("Client token").fill("not-the-token");
    await prompt.getByRole("button", { name: "Use token" }).click();
    await guarded.locator(".token-prompt").getByText("the client token is wrong").waitFor();
    await guarded.locator(".token-prompt").getByLabel("Client token").fill(token);
    await guarded.locator(".token-prompt").getByRole("button", { name: "Use token" }).click();
    await guarded.locator(".card", { hasText: "Guarded task" }).waitFor();
    await guarded.reload();
    await guarded.locator(".card", { hasText: "Guarded task" }).waitFor();
    if ((await guarded.locator(".token-prompt").count()) !== 0) throw new Error("asked for the token twice");
    step("the token is asked for once and kept for the session");
  }
  console.log(`browser tests took ${Date.now() - started} ms`);
} finally {
  await browser.close();
}
process.exit(0);
