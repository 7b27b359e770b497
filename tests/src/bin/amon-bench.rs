//! `amon-bench`: measures the execution engine with a real server and real
//! workers on loopback and writes the figures, with the machine's
//! description, to a Markdown file (`BENCHMARKS.md`).
//!
//! ```sh
//! cargo run --release -p amon-tests --bin amon-bench -- --out BENCHMARKS.md
//! cargo run --release -p amon-tests --bin amon-bench -- --quick --figures latency,logs
//! ```
//!
//! Benchmarks are not tests: nothing fails on a number. It uses the release
//! binaries next to itself (`target/release/amon-server`, `amon-worker`),
//! building them first unless `AMON_BIN_DIR` names a directory holding them.

#[path = "../bench/mod.rs"]
mod bench;

use std::{fmt::Write as _, path::PathBuf};

use amon_tests::db::Backend;
use clap::{Parser, ValueEnum};

use bench::Settings;

/// Everything from this line on in an existing report is kept when the
/// figures are measured again.
const NOTES_MARKER: &str =
    "<!-- amon-bench: hand-written notes below this line are kept on re-runs -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Figure {
    Throughput,
    Latency,
    Logs,
    Scale,
    Reassign,
    Cluster,
    Terminal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backends {
    Sqlite,
    Postgres,
    Both,
}

/// Measures Agent Monitor's engine and writes BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "amon-bench")]
struct Cli {
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Small sizes (1,000 executions, 200 latency runs, 128 MiB of log,
    /// 200 workers and 2,000 followers) for a quick look.
    #[arg(long)]
    quick: bool,
    /// Figures to measure (comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    figures: Vec<Figure>,
    /// Repetitions of each measurement.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Database backends.
    #[arg(long, value_enum, default_value = "both")]
    backend: Backends,
    /// Executions per throughput repetition (default 10,000; quick 1,000).
    #[arg(long)]
    executions: Option<usize>,
    /// Runs per dispatch-latency repetition (default 1,000; quick 200).
    #[arg(long)]
    latency_runs: Option<usize>,
    /// Bytes the log-throughput run writes (default 1 GiB; quick 128 MiB).
    #[arg(long)]
    log_bytes: Option<u64>,
    /// Lines of the line-latency run (default 1,000; quick 300).
    #[arg(long)]
    lines: Option<usize>,
    /// Fake workers of the scale figure (default 1,000; quick 200).
    #[arg(long)]
    scale_workers: Option<usize>,
    /// StreamLogs followers of the scale figure (default 10,000; quick 2,000).
    #[arg(long)]
    scale_followers: Option<usize>,
    /// Keys timed per repetition of the terminal figure (default 1,000; quick 300).
    #[arg(long)]
    terminal_keys: Option<usize>,
    /// Skip the graphile-worker peer (no npm install).
    #[arg(long)]
    no_peer: bool,
    /// Directory for the peer's node_modules (default: next to this binary).
    #[arg(long)]
    node_dir: Option<PathBuf>,
}

const ALL: &[Figure] = &[
    Figure::Throughput,
    Figure::Latency,
    Figure::Logs,
    Figure::Scale,
    Figure::Reassign,
    Figure::Cluster,
    Figure::Terminal,
];

/// The section of `figure` in a previous report (from its `## N.` heading
/// to the next `## ` heading or the notes marker).
fn old_section(previous: &str, figure: Figure) -> Option<String> {
    let number = ALL.iter().position(|f| *f == figure)? + 1;
    let start = previous.find(&format!("\n## {number}. "))? + 1;
    let rest = &previous[start..];
    let end = [
        rest[3..].find("\n## ").map(|i| i + 4),
        rest.find(NOTES_MARKER),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // The child of the line-latency figure.
    if args.get(1).map(String::as_str) == Some("line-writer") {
        let rate = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(100);
        let count = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(1000);
        bench::logs::line_writer(rate, count)?;
        return Ok(());
    }
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

fn prepare_binaries(self_exe: &std::path::Path) -> anyhow::Result<()> {
    if std::env::var_os(amon_tests::server::BIN_DIR_ENV).is_some() {
        return Ok(());
    }
    let dir = self_exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory for {}", self_exe.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let keep = matches!(name.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR")
            || name.starts_with("CARGO_TERM_");
        if name.starts_with("CARGO_") && !keep {
            build.env_remove(&name);
        }
    }
    // Build into the target directory this binary lives in (`<target>/release`),
    // whatever CARGO_TARGET_DIR says.
    if let Some(target) = dir.parent() {
        build.env("CARGO_TARGET_DIR", target);
    }
    eprintln!("building the release binaries of amon-server and amon-worker");
    let status = build
        .args(["build", "--release", "--quiet", "--bins"])
        .args(["-p", "amon-server", "-p", "amon-worker"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    // SAFETY: set once, before any other thread reads the environment.
    unsafe { std::env::set_var(amon_tests::server::BIN_DIR_ENV, dir) };
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let self_exe = std::env::current_exe()?;
    prepare_binaries(&self_exe)?;
    // Workers log at warn unless told otherwise: a line per run is not free.
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: no other thread reads the environment concurrently here.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    let figures = if cli.figures.is_empty() {
        ALL.to_vec()
    } else {
        cli.figures.clone()
    };
    let q = cli.quick;
    let settings = Settings {
        reps: cli.reps.max(1),
        executions: cli.executions.unwrap_or(if q { 1_000 } else { 10_000 }),
        latency_runs: cli.latency_runs.unwrap_or(if q { 200 } else { 1_000 }),
        log_bytes: cli.log_bytes.unwrap_or(if q { 128 << 20 } else { 1 << 30 }),
        line_count: cli.lines.unwrap_or(if q { 300 } else { 1_000 }),
        scale_workers: cli.scale_workers.unwrap_or(if q { 200 } else { 1_000 }),
        scale_followers: cli
            .scale_followers
            .unwrap_or(if q { 2_000 } else { 10_000 }),
        terminal_keys: cli.terminal_keys.unwrap_or(if q { 300 } else { 1_000 }),
        backends: match cli.backend {
            Backends::Sqlite => vec![Backend::Sqlite],
            Backends::Postgres => vec![Backend::Postgres],
            Backends::Both => vec![Backend::Sqlite, Backend::Postgres],
        },
        peer: !cli.no_peer,
        self_exe: self_exe.display().to_string(),
    };
    let node_dir = cli.node_dir.clone().unwrap_or_else(|| {
        self_exe
            .parent()
            .map(|d| d.join("amon-bench-node"))
            .unwrap_or_else(|| PathBuf::from("amon-bench-node"))
    });
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");

    let mut header = String::new();
    let _ = writeln!(
        header,
        "# Benchmarks\n\nWritten by `amon-bench` (`tests/src/bin/amon-bench.rs`). Reproduce \
         every figure with:\n\n```sh\ncargo run --release -p amon-tests --bin amon-bench -- \
         --out BENCHMARKS.md\n```\n\nEach section ends with the arguments that produced it \
         (`--figures` re-measures some figures and keeps the others' last sections).\n\n\
         Benchmarks are not tests: nothing fails on a number. Every figure is the median of \
         several repetitions with its spread (min–max); comparisons are ratios measured in the \
         same run, because this machine is shared and noisy. Servers and workers are the \
         release binaries, on loopback, each repetition on a fresh server and a fresh \
         database (SQLite file in a temporary directory, or a new PostgreSQL database).\n"
    );
    let _ = writeln!(
        header,
        "## Machine\n\n{}",
        bench::machine_description().await
    );

    // Hand-written analysis (profiles, before/after, closing note) below the
    // marker survives a re-run.
    let kept = std::fs::read_to_string(&cli.out)
        .ok()
        .and_then(|old| old.find(NOTES_MARKER).map(|at| old[at..].to_owned()))
        .unwrap_or_else(|| format!("{NOTES_MARKER}\n"));
    // Figures not measured this time keep their section from the last run.
    let previous = std::fs::read_to_string(&cli.out).unwrap_or_default();
    let mut sections: Vec<(Figure, String)> = ALL
        .iter()
        .filter(|f| !figures.contains(f))
        .filter_map(|&f| old_section(&previous, f).map(|s| (f, s)))
        .collect();
    let write = |sections: &[(Figure, String)], pending: &[Figure]| -> anyhow::Result<()> {
        let mut doc = header.clone();
        for figure in ALL {
            if let Some((_, s)) = sections.iter().find(|(f, _)| f == figure) {
                doc.push_str(s.trim_end());
                doc.push_str("\n\n");
            }
        }
        if !pending.is_empty() {
            let _ = writeln!(doc, "*Not measured yet in this run: {pending:?}.*\n");
        }
        doc.push_str(&kept);
        std::fs::write(&cli.out, doc)?;
        Ok(())
    };
    for (i, figure) in figures.iter().enumerate() {
        let started = bench::Instant::now();
        let section = match figure {
            Figure::Throughput => bench::throughput::run(&settings, node_dir.clone()).await,
            Figure::Latency => bench::latency::run(&settings).await,
            Figure::Logs => bench::logs::run(&settings).await,
            Figure::Scale => bench::scale::run(&settings).await,
            Figure::Reassign => bench::reassign::run(&settings).await,
            Figure::Cluster => bench::cluster::run(&settings).await,
            Figure::Terminal => bench::terminal::run(&settings).await,
        };
        let mut section = section.unwrap_or_else(|e| format!("## {figure:?}\n\nFailed: {e:#}\n"));
        let _ = writeln!(
            section,
            "*Measured in {:.0} s with `amon-bench {command}`.*\n",
            started.elapsed().as_secs_f64()
        );
        eprintln!("{section}");
        sections.retain(|(f, _)| f != figure);
        sections.push((*figure, section));
        write(&sections, &figures[i + 1..])?;
    }
    eprintln!("wrote {}", cli.out.display());
    Ok(())
}
