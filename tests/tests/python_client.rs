//! A client nobody hand-wrote: the Python client generated from `proto/` with
//! grpcio-tools (`proto/clients/python`) runs its example against a real
//! server, on SQLite and PostgreSQL. The example registers an agent and a
//! capability, creates a task, runs it, tails its log live and watches the
//! task's board events; this test checks its exit status, what it printed, and
//! what the server recorded.
//!
//! Needs python3 with pip. The client's requirements
//! (`proto/clients/python/requirements.txt`) are used from python3 when it
//! has them (`.ci/run` installs them), else installed once under the
//! target directory; if neither works the test fails, naming the install
//! command. It never skips.

use std::{
    path::PathBuf,
    process::{Output, Stdio},
    time::Duration,
};

use amon_proto::v1::{
    ExecutionStatus, GetTaskRequest, ListExecutionsRequest, TaskStatus,
    execution_service_client::ExecutionServiceClient,
};
use amon_tests::{
    api::Api,
    both_backends,
    db::{self, Backend, TestDb},
    pki::{TestCa, Validity},
    server::TestServer,
};
use anyhow::{Context, Result, ensure};
use tokio::process::Command;

/// The example's own run takes about a second; the rest is Python starting
/// and a busy machine.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(120);
const INSTALL: &str = "pip install -r proto/clients/python/requirements.txt";
/// What the example's capability prints, and the example expects.
const EXPECTED_LOG: &str = "line 1 of 3\nline 2 of 3\nline 3 of 3\n";

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/clients/python/example.py")
}

/// Where python3 finds the client's runtime (grpcio, protobuf): `None`
/// when it has them already (CI installs them), else a directory under
/// the build's target into which they are installed once with pip, so
/// `cargo test` on a fresh machine needs no set-up step of its own. Fails,
/// naming the install command, when neither works.
async fn python_path() -> Result<Option<PathBuf>> {
    static INSTALLED: tokio::sync::OnceCell<Option<PathBuf>> = tokio::sync::OnceCell::const_new();
    INSTALLED
        .get_or_try_init(|| async {
            if imports_grpc(None).await? {
                return Ok(None);
            }
            let requirements = example().with_file_name("requirements.txt");
            let pinned = std::fs::read_to_string(&requirements)?;
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-client");
            let marker = dir.join(".requirements.txt");
            if std::fs::read_to_string(&marker).ok().as_deref() != Some(pinned.as_str()) {
                let _ = std::fs::remove_dir_all(&dir);
                let pip = Command::new("python3")
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .arg("--target")
                    .arg(&dir)
                    .arg("-r")
                    .arg(&requirements)
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .with_context(|| {
                        format!("cannot run python3 -m pip; the Python client needs: {INSTALL}")
                    })?;
                ensure!(
                    pip.status.success(),
                    "installing the Python client's requirements failed ({INSTALL}):\n{}",
                    String::from_utf8_lossy(&pip.stderr).trim()
                );
                std::fs::write(&marker, &pinned)?;
            }
            ensure!(
                imports_grpc(Some(&dir)).await?,
                "python3 cannot import grpc and protobuf, which the Python client needs: {INSTALL}"
            );
            Ok(Some(dir))
        })
        .await
        .cloned()
}

/// Whether python3 (with `path` on its `PYTHONPATH`) imports the client's
/// runtime.
async fn imports_grpc(path: Option<&std::path::Path>) -> Result<bool> {
    let mut probe = Command::new("python3");
    probe
        .args(["-c", "import grpc, google.protobuf"])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if let Some(path) = path {
        probe.env("PYTHONPATH", path);
    }
    let status = probe.status().await.with_context(|| {
        format!("cannot run python3; the Python client needs it and: {INSTALL}")
    })?;
    Ok(status.success())
}

/// How the example is told its token.
enum Token<'a> {
    None,
    Flag(&'a str),
    Env(&'a str),
}

/// Runs the example against `server`, within [`EXAMPLE_TIMEOUT`].
async fn run_example(server: &TestServer, token: Token<'_>) -> Result<Output> {
    run_example_at(&server.addr().to_string(), &[], token).await
}

/// Runs the example against the server at `url` with `extra` arguments.
async fn run_example_at(url: &str, extra: &[&str], token: Token<'_>) -> Result<Output> {
    let path = python_path().await?;
    let mut command = Command::new("python3");
    if let Some(path) = path {
        command.env("PYTHONPATH", path);
    }
    command
        .arg(example())
        .arg("--server")
        .arg(url)
        .args(extra)
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("AMON_CLIENT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match token {
        Token::None => {}
        Token::Flag(token) => {
            command.args(["--token", token]);
        }
        Token::Env(token) => {
            command.env("AMON_CLIENT_TOKEN", token);
        }
    }
    let output = tokio::time::timeout(EXAMPLE_TIMEOUT, command.output())
        .await
        .with_context(|| format!("example.py did not finish within {EXAMPLE_TIMEOUT:?}"))?
        .context("running python3 example.py")?;
    // Shown when the test fails (the harness captures it otherwise).
    println!(
        "--- example.py exited {}\n--- stdout:\n{}--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// The example succeeded and printed the whole flow: the log as the child
/// wrote it, the final status, and the task's board events in order.
fn check_success(output: &Output) -> Result<()> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "example.py exited {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    ensure!(
        stdout.contains(&format!(
            "(ExecutionService.StreamLogs, follow)\n{EXPECTED_LOG}"
        )),
        "the live log is not in the output"
    );
    ensure!(
        stdout.contains("succeeded, exit code 0"),
        "no final status in the output"
    );
    // The events section lists the task's trail in order: created, queued,
    // running (the task moves to in progress), succeeded (it moves to done).
    let events = stdout
        .split("== Board events seen for the task")
        .nth(1)
        .context("no events section in the output")?;
    let mut rest = events;
    for expected in [
        "created",
        "execution_queued",
        "execution_running",
        "queued -> running",
        "status_changed",
        "todo -> in_progress",
        "execution_succeeded",
        "running -> succeeded",
        "status_changed",
        "in_progress -> done",
    ] {
        let at = rest
            .find(expected)
            .with_context(|| format!("event {expected:?} missing or out of order"))?;
        rest = &rest[at + expected.len()..];
    }
    ensure!(stdout.contains("\n== OK:"), "no OK line in the output");
    Ok(())
}

/// The example's run, as the server recorded it: succeeded, its task done,
/// its log what the example printed.
async fn check_server_side(server: &TestServer) -> Result<()> {
    let mut api = Api::new(server.channel().await);
    let executions = ExecutionServiceClient::new(server.channel().await)
        .list_executions(ListExecutionsRequest::default())
        .await?
        .into_inner()
        .executions;
    ensure!(executions.len() == 1, "{} executions", executions.len());
    let run = &executions[0];
    ensure!(
        run.status() == ExecutionStatus::Succeeded,
        "the run is {:?}",
        run.status()
    );
    let task = api
        .tasks
        .get_task(GetTaskRequest {
            id: run.task_id.clone(),
        })
        .await?
        .into_inner()
        .task
        .context("task")?;
    ensure!(task.title.starts_with("Python example "), "{}", task.title);
    ensure!(task.status() == TaskStatus::Done, "{:?}", task.status());
    ensure!(api.log(&run.id).await == EXPECTED_LOG.as_bytes());
    Ok(())
}

/// The whole flow against a server whose built-in local worker runs the work.
async fn example_runs_end_to_end(db: TestDb) -> Result<()> {
    let server = TestServer::start_with_args(Some(db.url()), &[]).await;
    let output = run_example(&server, Token::None).await?;
    check_success(&output)?;
    check_server_side(&server).await
}

both_backends!(example_runs_end_to_end);

/// With `--client-token`, the example is refused without the token (and says
/// how to pass it), and works with it, given by flag or by environment, twice
/// against the same server (its names never clash).
#[tokio::test]
async fn example_sends_the_client_token() {
    db::run(Backend::Sqlite, |db| async move {
        let server =
            TestServer::start_with_args(Some(db.url()), &["--client-token", "py-secret"]).await;

        let refused = run_example(&server, Token::None).await?;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        ensure!(
            refused.status.code() == Some(1),
            "without the token: exited {}",
            refused.status
        );
        ensure!(
            stderr.contains("UNAUTHENTICATED") && stderr.contains("--token"),
            "without the token: {stderr}"
        );

        let wrong = run_example(&server, Token::Flag("not-the-secret")).await?;
        ensure!(!wrong.status.success(), "a wrong token was accepted");

        check_success(&run_example(&server, Token::Flag("py-secret")).await?)?;
        check_success(&run_example(&server, Token::Env("py-secret")).await?)?;
        Ok(())
    })
    .await;
}

/// As from another machine: over TLS, trusting the team's private CA, with
/// the client token.
#[tokio::test]
async fn example_runs_over_tls() {
    db::run(Backend::Sqlite, |db| async move {
        let dir = tempfile::tempdir()?;
        let ca = TestCa::new(dir.path(), "team");
        let cert = ca.server_cert("server", &["localhost"], Validity::Current);
        let server = TestServer::start_with_args(
            Some(db.url()),
            &[
                "--tls-cert",
                cert.cert_arg(),
                "--tls-key",
                cert.key_arg(),
                "--client-token",
                "py-secret",
            ],
        )
        .await;
        let url = format!("https://localhost:{}", server.addr().port());
        let output = run_example_at(
            &url,
            &["--ca-cert", &ca.cert_arg()],
            Token::Flag("py-secret"),
        )
        .await?;
        check_success(&output)?;
        ensure!(
            String::from_utf8_lossy(&output.stdout).contains("over TLS"),
            "the example did not connect over TLS"
        );
        Ok(())
    })
    .await;
}
