//! A real `amon-server` process for end-to-end tests, on `127.0.0.1:0`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::{Channel, Endpoint};

/// How long a server may take to migrate and bind before a test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `amon-server`, killed when dropped.
pub struct TestServer {
    child: Child,
    addr: SocketAddr,
    data_dir: tempfile::TempDir,
    args: Vec<String>,
    /// What the server logged (it is also passed on to the test's stderr).
    log: Log,
    env: Vec<(String, String)>,
}

/// The lines a server logged, newest last (the last 10,000).
type Log = std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>;

impl TestServer {
    /// Starts `amon-server` on `127.0.0.1:0` against `database_url`, with a
    /// fresh data directory, and waits until it listens.
    pub async fn start(database_url: &str) -> Self {
        Self::start_with_args(Some(database_url), &[]).await
    }

    /// Starts `amon-server` on `127.0.0.1:0` with extra command-line
    /// arguments; without a database URL it uses its embedded SQLite default
    /// inside the fresh data directory.
    pub async fn start_with_args(database_url: Option<&str>, extra_args: &[&str]) -> Self {
        Self::start_with_env(database_url, extra_args, &[]).await
    }

    /// [`start_with_args`](Self::start_with_args) with environment variables for the
    /// server process (kept across [`restart`](Self::restart)), such as `RUST_LOG`.
    pub async fn start_with_env(
        database_url: Option<&str>,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("creating a data directory");
        let mut args: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
        if let Some(url) = database_url {
            args.extend(["--database-url".to_owned(), url.to_owned()]);
        }
        let log = Log::default();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (child, addr) = Self::spawn(data_dir.path(), "127.0.0.1:0", &args, &log, &env).await;
        Self {
            child,
            addr,
            data_dir,
            args,
            log,
            env,
        }
    }

    /// Kills the server (SIGKILL, no goodbye to its streams) and starts it
    /// again on the same address, database and data directory.
    pub async fn restart(&mut self) {
        self.restart_after(Duration::ZERO).await;
    }

    /// Like [`Self::restart`], down for `downtime` in between.
    pub async fn restart_after(&mut self, downtime: Duration) {
        self.child.start_kill().expect("killing amon-server");
        self.child.wait().await.expect("waiting for amon-server");
        tokio::time::sleep(downtime).await;
        let (child, addr) = Self::spawn(
            self.data_dir.path(),
            &self.addr.to_string(),
            &self.args,
            &self.log,
            &self.env,
        )
        .await;
        self.child = child;
        self.addr = addr;
    }

    async fn spawn(
        data_dir: &Path,
        listen: &str,
        args: &[String],
        log: &Log,
        env: &[(String, String)],
    ) -> (Child, SocketAddr) {
        let mut command = Command::new(binary("amon-server"));
        command
            .arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("AMON_DATABASE_URL");
        let mut child = command
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning amon-server");

        let stderr = child.stderr.take().expect("piped stderr");
        let log = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                if log.len() == 10_000 {
                    log.pop_front();
                }
                // A line is kept to its first 1,000 characters: a hostile
                // value logged whole must not fill the test's memory.
                log.push_back(line.chars().take(1000).collect());
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first_line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .expect("amon-server did not report its address in time")
            .expect("reading amon-server's stdout")
            .expect("amon-server exited before listening");
        let addr = first_line
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from amon-server: {first_line:?}"));
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, addr)
    }

    /// The lines the server logged so far that contain `needle`.
    pub fn logged(&self, needle: &str) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's process id (for reading its memory and CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The server's exit status if it has exited (crashed, aborted), `None`
    /// while it runs. [`restart`](Self::restart) works after either.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// A connected channel to the server.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url())
            .expect("a valid endpoint")
            .connect()
            .await
            .expect("connecting to amon-server")
    }

    /// Stops the server with SIGTERM and waits for it to exit; returns its exit status.
    pub async fn shutdown(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits in i32"));
            kill(pid, Signal::SIGTERM).expect("sending SIGTERM to amon-server");
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("amon-server did not stop within 30 s of SIGTERM")
            .expect("waiting for amon-server")
    }
}

/// Directory holding prebuilt workspace binaries: when `AMON_BIN_DIR` is set
/// (the benchmark points it at `target/release`), [`binary`] uses it as is
/// and builds nothing.
pub const BIN_DIR_ENV: &str = "AMON_BIN_DIR";

/// Path of a workspace binary, rebuilt once per test process so a test never
/// runs a stale server, worker or CLI (`cargo test -p amon-tests` alone does
/// not rebuild other packages' binaries; when they are fresh this is a no-op).
/// With `AMON_BIN_DIR` set, the binary in that directory, unbuilt.
pub fn binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return PathBuf::from(dir).join(name);
    }
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        // Cargo sets per-package variables (CARGO_MANIFEST_DIR, CARGO_PKG_*…)
        // for this test process; passed on, they differ from a plain build's
        // and make build scripts that watch them (ring's) rebuild every time.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            let keep = matches!(name.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR")
                || name.starts_with("CARGO_TERM_");
            if name.starts_with("CARGO_") && !keep {
                build.env_remove(&name);
            }
        }
        let status = build
            .args(["build", "--quiet", "--bins"])
            .args(["-p", "amon-server", "-p", "amon-worker", "-p", "amon"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(
            status.success(),
            "cargo build of the workspace binaries failed"
        );
    });
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().expect("current test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory")
        .join(name)
}
