// amon-bench's peer: graphile-worker running JOBS jobs whose task spawns
// `true`, with CONCURRENCY jobs at once, while CREATORS concurrent callers
// add them. Prints one JSON line: {"jobs":N,"seconds":S,"rate":R}.
// The clock runs from the first addJob until the jobs table is empty
// (graphile-worker deletes a job once its task succeeded).
const { spawn } = require("child_process");
const { run, makeWorkerUtils, Logger } = require("graphile-worker");

const connectionString = process.env.DATABASE_URL;
const jobs = Number(process.env.JOBS || 10000);
const concurrency = Number(process.env.CONCURRENCY || 32);
const creators = Number(process.env.CREATORS || 16);

// Warnings and errors only: a line per job would cost more than the job.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`${level}: ${message}`);
});

function spawnTrue() {
  return new Promise((resolve, reject) => {
    const child = spawn("true", [], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`true exited ${code}`))));
  });
}

async function main() {
  const utils = await makeWorkerUtils({ connectionString, logger });
  await utils.migrate();
  let done = 0;
  let allDone;
  const finished = new Promise((resolve) => (allDone = resolve));
  const runner = await run({
    connectionString,
    concurrency,
    // Its own advice: a pool at least as large as the concurrency.
    maxPoolSize: concurrency + 2,
    logger,
    noHandleSignals: true,
    taskList: {
      spawn_true: async () => {
        await spawnTrue();
        done += 1;
        if (done === jobs) allDone();
      },
    },
  });

  const start = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: creators }, async () => {
      while (next < jobs) {
        next += 1;
        await utils.addJob("spawn_true", {});
      }
    }),
  );
  await finished;
  // Stored: wait until every completed job is gone from the table.
  for (;;) {
    const left = await utils.withPgClient((client) =>
      client.query("select count(*)::int as n from graphile_worker.jobs"),
    );
    if (left.rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await runner.stop();
  await utils.release();
  console.log(JSON.stringify({ jobs, seconds, rate: jobs / seconds }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
