//! Real `amon-worker` processes for end-to-end tests.

use std::{process::Stdio, time::Duration};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use tokio::process::{Child, Command};

use crate::server::{TestServer, binary};

/// A running `amon-worker`, killed when dropped.
pub struct TestWorker {
    child: Child,
    /// The id it registers with.
    pub worker_id: String,
    /// Its data directory (where its keeper records its runs' groups).
    pub data_dir: std::path::PathBuf,
}

impl TestWorker {
    /// Starts a worker named `name` with `slots` against `server`, with
    /// `env` added to its own environment.
    pub fn start(server: &TestServer, name: &str, slots: u32, env: &[(&str, &str)]) -> Self {
        Self::start_with(server, &server.url(), name, slots, env, &[])
    }

    /// Like [`Self::start`], reaching the server at `url` (a proxy, say)
    /// with extra command-line `args`.
    pub fn start_with(
        server: &TestServer,
        url: &str,
        name: &str,
        slots: u32,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let data_dir = server.data_dir().join("workers").join(name);
        let mut command = Command::new(binary("amon-worker"));
        command
            .arg("--server")
            .arg(url)
            .arg("--name")
            .arg(name)
            .arg("--worker-id")
            .arg(name)
            .arg("--slots")
            .arg(slots.to_string())
            // Its own directory per server and name: a restart under the
            // same name finds what it left; tests running side by side
            // never touch each other's runs.
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let child = command.spawn().expect("spawning amon-worker");
        Self {
            child,
            worker_id: name.into(),
            data_dir,
        }
    }

    /// Sends `signal` to the worker (SIGSTOP freezes it, SIGCONT thaws it).
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signalling the worker");
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().expect("worker running") as i32)
    }

    /// kill -9: the worker vanishes without a word (its children live on
    /// until their group is killed by the test's cleanup).
    pub fn kill_hard(&mut self) {
        kill(self.pid(), Signal::SIGKILL).expect("SIGKILL to the worker");
    }

    /// SIGTERM, then waits for the exit status.
    pub async fn terminate(mut self, within: Duration) -> std::process::ExitStatus {
        kill(self.pid(), Signal::SIGTERM).expect("SIGTERM to the worker");
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the worker did not exit in time")
            .expect("waiting for the worker")
    }
}

/// A worker id no other test of this run uses. A worker's id names its tmux
/// server (`tmux -L amon-<id>`), where tests look for (or for the absence
/// of) their runs' sessions: two tests (or a test's two backends, which run
/// side by side) with workers of one name would see each other's.
pub fn unique_worker(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}
