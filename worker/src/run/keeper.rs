//! The keeper: nothing of a run outlives its worker.
//!
//! Each run is a process group. A worker that dies (SIGKILL, a crash, the
//! machine's OOM killer) used to leave its runs' groups running, and after
//! the stale window the server started the runs again elsewhere: their side
//! effects happened twice (6 times of 6 in the fault tests). Two measures:
//!
//! - **The keeper**, a small process of the worker's own executable
//!   (`<exe> __amon-keeper <state file>`), started with the worker, in a
//!   process group of its own. The worker tells it, on its stdin, each run
//!   group as it starts (`+ <pgid> <start time>`) and ends (`- <pgid>`), and
//!   the stop grace (`grace <ms>`). Its stdin is its lifeline: when it reads
//!   the end of it, the worker is gone, and it stops every group it knows
//!   (SIGTERM, the grace, SIGKILL), then exits.
//! - **The state file** the keeper keeps (`<worker data dir>/run-groups`,
//!   rewritten on each change): a worker starting under the same data
//!   directory SIGKILLs what a previous incarnation left there (should its
//!   keeper have died with it) before it connects to the server.
//!
//! A group is told apart from a later one that reuses its id by its
//! leader's start time (`/proc/<pid>/stat`); a group whose leader is gone
//! keeps its id reserved while any member lives, so it is still the run's.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitCode, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tracing::{info, warn};

/// Subcommand of the keeper.
pub const KEEPER: &str = "__amon-keeper";

/// Name of the state file in the worker's data directory.
pub const STATE_FILE: &str = "run-groups";

/// Grace before SIGKILL when the keeper was told none.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The keeper of this worker process, once started.
static KEEPER_STDIN: OnceLock<Mutex<ChildStdin>> = OnceLock::new();

/// Kills what a previous incarnation left (per `state_file`), then starts
/// this worker's keeper. Idempotent per process: the first call wins.
pub(crate) fn start(exe: &Path, state_file: &Path) -> io::Result<()> {
    if KEEPER_STDIN.get().is_some() {
        return Ok(());
    }
    kill_leftovers(state_file);
    if let Some(dir) = state_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut child = Command::new(exe)
        .arg(KEEPER)
        .arg(state_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        // Its own group: signals meant for runs (or a terminal's Ctrl-C)
        // never reach it.
        .process_group(0)
        .spawn()?;
    let stdin = child.stdin.take().expect("piped stdin");
    // The keeper outlives us by design; nobody waits for it but init.
    std::mem::forget(child);
    let _ = KEEPER_STDIN.set(Mutex::new(stdin));
    Ok(())
}

fn tell(line: &str) {
    if let Some(stdin) = KEEPER_STDIN.get() {
        let mut stdin = stdin.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = writeln!(stdin, "{line}") {
            warn!(error = %e, "telling the keeper failed: a run may outlive a crash");
        }
    }
}

/// Tells the keeper a run's group started.
pub(crate) fn watch(pgid: u32) {
    let started = start_time(pgid).unwrap_or(0);
    tell(&format!("+ {pgid} {started}"));
}

/// Tells the keeper a run's group is gone.
pub(crate) fn unwatch(pgid: u32) {
    tell(&format!("- {pgid}"));
}

/// Tells the keeper the grace between SIGTERM and SIGKILL.
pub(crate) fn set_grace(grace: Duration) {
    tell(&format!("grace {}", grace.as_millis()));
}

/// The start time of process `pid` (clock ticks since boot), if it lives.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields resume
    // after the last ')'. Field 22 (starttime) is the 20th after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether group `pgid`, recorded with its leader's `started`, is still
/// the same group (and not a later one reusing the id).
fn same_group(pgid: u32, started: u64) -> bool {
    match start_time(pgid) {
        Some(now) => started == 0 || now == started,
        // The leader is gone; the id stays reserved while a member lives.
        None => true,
    }
}

fn signal_group(pgid: u32, signal: Signal) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    if raw <= 1 {
        return false;
    }
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(e) => {
            warn!(pgid, %signal, error = %e, "signalling a leftover group failed");
            false
        }
    }
}

fn group_alive(pgid: u32) -> bool {
    // Signal 0 checks without sending.
    i32::try_from(pgid)
        .is_ok_and(|raw| raw > 1 && !matches!(killpg(Pid::from_raw(raw), None), Err(Errno::ESRCH)))
}

/// Stops `groups`: SIGTERM, up to `grace` for them to go, SIGKILL.
fn stop_groups(groups: &BTreeMap<u32, u64>, grace: Duration) {
    let live: Vec<u32> = groups
        .iter()
        .filter(|(pgid, started)| same_group(**pgid, **started))
        .map(|(pgid, _)| *pgid)
        .filter(|pgid| signal_group(*pgid, Signal::SIGTERM))
        .collect();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|pgid| group_alive(*pgid)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pgid in live {
        signal_group(pgid, Signal::SIGKILL);
    }
}

fn read_state(state_file: &Path) -> BTreeMap<u32, u64> {
    std::fs::read_to_string(state_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect()
}

fn write_state(state_file: &Path, groups: &BTreeMap<u32, u64>) -> io::Result<()> {
    let text: String = groups
        .iter()
        .map(|(pgid, started)| format!("{pgid} {started}\n"))
        .collect();
    let partial = state_file.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(partial, state_file)
}

/// SIGKILLs the groups a previous incarnation recorded, waits (a few
/// seconds at most) until they are gone, and clears the record.
fn kill_leftovers(state_file: &Path) {
    let groups = read_state(state_file);
    if groups.is_empty() {
        return;
    }
    let mut killed = 0;
    for (&pgid, &started) in &groups {
        if same_group(pgid, started) && signal_group(pgid, Signal::SIGKILL) {
            killed += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && groups.keys().any(|pgid| group_alive(*pgid)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if killed > 0 {
        info!(
            killed,
            "killed the runs a previous life of this worker left running"
        );
    }
    let _ = std::fs::remove_file(state_file);
}

/// Runs the keeper when this process was started as one.
pub(crate) fn dispatch(
    command: &std::ffi::OsStr,
    mut args: impl Iterator<Item = std::ffi::OsString>,
) -> Option<ExitCode> {
    if command != KEEPER {
        return None;
    }
    let Some(state_file) = args.next().map(PathBuf::from) else {
        eprintln!("amon keeper: missing state file");
        return Some(ExitCode::from(2));
    };
    keep(&state_file);
    Some(ExitCode::SUCCESS)
}

/// The keeper's life: follow the worker's lines until they end, then stop
/// every group still known.
fn keep(state_file: &Path) {
    let mut groups: BTreeMap<u32, u64> = BTreeMap::new();
    let mut grace = DEFAULT_GRACE;
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some("+"), Some(pgid), started) => {
                if let Ok(pgid) = pgid.parse() {
                    let started = started.and_then(|s| s.parse().ok()).unwrap_or(0);
                    groups.insert(pgid, started);
                }
            }
            (Some("-"), Some(pgid), _) => {
                if let Ok(pgid) = pgid.parse::<u32>() {
                    groups.remove(&pgid);
                }
            }
            (Some("grace"), Some(ms), _) => {
                if let Ok(ms) = ms.parse() {
                    grace = Duration::from_millis(ms);
                }
            }
            _ => continue,
        }
        let _ = write_state(state_file, &groups);
    }
    // The worker is gone: its runs go with it.
    if !groups.is_empty() {
        eprintln!(
            "amon keeper: the worker is gone; stopping {} run group(s)",
            groups.len()
        );
        stop_groups(&groups, grace);
    }
    let _ = std::fs::remove_file(state_file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_parse_and_tell_groups_apart() {
        let me = std::process::id();
        let started = start_time(me).expect("our own start time");
        assert!(started > 0);
        assert!(same_group(me, started));
        assert!(!same_group(me, started + 1), "a reused id is another group");
        assert!(
            same_group(u32::MAX - 7, 42),
            "a gone leader keeps its group's id"
        );
    }

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(STATE_FILE);
        let groups = BTreeMap::from([(12, 345), (678, 9)]);
        write_state(&file, &groups).unwrap();
        assert_eq!(read_state(&file), groups);
        assert!(read_state(&dir.path().join("none")).is_empty());
    }
}
