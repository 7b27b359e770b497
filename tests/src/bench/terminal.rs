//! Figure 7: key-to-echo latency of an attached terminal. A viewer on
//! `ExecutionService.AttachTerminal` types one key at a time into a
//! running agent (the fake Gemini CLI in tmux on a real worker) and waits
//! for its echo: viewer → server → worker's `Connect` stream → the
//! attach's pseudo-terminal → tmux client → tmux server → the pane's
//! terminal (which echoes) → tmux server → client → pseudo-terminal →
//! worker → server → viewer.

use std::{fmt::Write as _, time::Duration};

use amon_tests::terminal::{GeminiRig, Viewer};
use anyhow::Context;

use super::{Instant, Percentiles, Settings, percentiles};

/// Keys typed between two line erasures (the line never nears the
/// terminal's 4 KiB line limit).
const KEYS_PER_LINE: usize = 50;
/// Ctrl-U: erase the line typed so far.
const ERASE_LINE: &str = "\u{15}";

/// One repetition: a fresh server and worker, `keys` keys timed.
async fn repetition(rep: usize, keys: usize) -> anyhow::Result<Vec<f64>> {
    let worker = format!("bench-term-{}-{rep}", std::process::id());
    let mut rig = GeminiRig::start(None, &worker).await;
    let run = rig.running("latency").await;
    let mut viewer = Viewer::attach(&mut rig.api, &run.id, false, 40, 120)
        .await
        .context("attaching")?;
    viewer.until_shows("echo: latency").await;
    let mut samples = Vec::with_capacity(keys);
    // 20 keys to warm up, not counted.
    for i in 0..keys + 20 {
        if i % KEYS_PER_LINE == 0 {
            viewer.type_keys(ERASE_LINE).await;
            // Its redraw is not a key's echo: let it pass.
            while let Ok(Ok(Some(_))) =
                tokio::time::timeout(Duration::from_millis(30), viewer.read()).await
            {}
        }
        let key = (b'a' + (i % 26) as u8) as char;
        let sent = Instant::now();
        viewer.type_keys(&key.to_string()).await;
        loop {
            let output = tokio::time::timeout(Duration::from_secs(10), viewer.read())
                .await
                .context("no echo within 10 s")??
                .context("the attach ended")?;
            if output.contains(&(key as u8)) {
                break;
            }
        }
        if i >= 20 {
            samples.push(sent.elapsed().as_secs_f64() * 1e3);
        }
        // What tmux draws after the echo (cursor moves, whose escape
        // sequences end in letters too) must not pass for the next key's
        // echo: wait until the screen is quiet.
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_millis(5), viewer.read()).await
        {}
    }
    viewer.type_keys(&format!("{ERASE_LINE}/quit\r")).await;
    viewer.until_ended().await;
    Ok(samples)
}

/// Runs the figure; returns its Markdown section.
pub async fn run(settings: &Settings) -> anyhow::Result<String> {
    let keys = settings.terminal_keys;
    let mut reps = Vec::new();
    for rep in 0..settings.reps {
        reps.push(repetition(rep, keys).await?);
    }
    let p: Percentiles = percentiles(&reps);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## 7. Terminal key-to-echo latency\n\n\
         A viewer attached with `ExecutionService.AttachTerminal` (40×120) to a running AI \
         agent run (the fake Gemini CLI waiting at its prompt, in tmux on a real worker) types \
         {keys} keys one at a time, each once the previous one's echo arrived, and times each \
         from sending it to receiving the output that carries its echo: viewer → server → the \
         worker's `Connect` stream → the attach's pseudo-terminal → `tmux attach` → the tmux \
         server → the pane's terminal echo → back the same way. 20 warm-up keys not counted; \
         the line is erased every {KEYS_PER_LINE} keys, and the screen left to go quiet (5 ms without \
         output) before each key. SQLite (the relay touches no \
         database); a fresh server and worker per repetition. Milliseconds; each cell is the \
         median of the repetitions' percentile (min–max across {} repetitions). Target: p99 \
         ≤ 30 ms on loopback.\n\n\
         | measure | p50 | p95 | p99 | max |\n|---|---|---|---|---|\n{}\n",
        settings.reps,
        super::latency::row("key sent → echo received", &p)
    );
    Ok(out)
}
