//! TLS across hosts, as a team with a private certificate authority uses
//! it: a remote worker (with its token) and the CLI over TLS with
//! `--ca-cert`; the local worker with TLS on; each misconfiguration refused
//! with words that say what to fix; mutual TLS; the certificate reloaded on
//! SIGHUP under a connected worker. Transport only: the store behind is the
//! embedded SQLite.

use std::{path::Path, process::Stdio, sync::Arc, time::Duration};

use amon_proto::client::ClientTls;
use amon_proto::v1::{ExecutionStatus, ListWorkersRequest};
use amon_tests::{
    api::Api,
    pki::{CertFiles, TestCa, Validity},
    server::{TestServer, binary},
    worker::TestWorker,
};
use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(30);

/// A team's PKI in a temporary directory: its CA and a server certificate
/// for `localhost` only (so `127.0.0.1` is a name it does not carry).
struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
    server: CertFiles,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("a directory for certificates");
    let ca = TestCa::new(dir.path(), "team");
    let server = ca.server_cert("server", &["localhost"], Validity::Current);
    Pki { dir, ca, server }
}

async fn tls_server(cert: &CertFiles, extra: &[&str]) -> TestServer {
    let mut args = vec!["--tls-cert", cert.cert_arg(), "--tls-key", cert.key_arg()];
    args.extend_from_slice(extra);
    TestServer::start_with_args(None, &args).await
}

fn https(server: &TestServer) -> String {
    format!("https://localhost:{}", server.addr().port())
}

/// A channel over TLS trusting `ca`, presenting `identity` if given.
async fn tls_channel(
    server: &TestServer,
    ca: &TestCa,
    identity: Option<&CertFiles>,
) -> Result<Channel> {
    let tls = ClientTls {
        ca_cert: Some(ca.cert_path()),
        client_cert: identity.map(|id| id.cert.clone()),
        client_key: identity.map(|id| id.key.clone()),
    };
    Ok(amon_proto::client::endpoint(&https(server), &tls)?
        .connect()
        .await?)
}

/// What a finished `amon` command left.
struct Cli {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the CLI with `args`, with none of the caller's AMON_* settings.
async fn amon(args: &[&str]) -> Cli {
    let mut command = tokio::process::Command::new(binary("amon"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AMON_") {
            command.env_remove(key);
        }
    }
    let output = tokio::time::timeout(
        WAIT,
        command
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the CLI did not finish in time")
    .expect("running the CLI");
    Cli {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `amon --server URL EXTRA… board`: refused (exit 1, the server could not
/// be used), its message containing `needle`.
async fn refused(url: &str, extra: &[&str], needle: &str) {
    refused_with(url, extra, needle, 1).await;
}

/// Like [`refused`], with exit code `code`.
async fn refused_with(url: &str, extra: &[&str], needle: &str, code: i32) {
    let mut args = vec!["--server", url];
    args.extend_from_slice(extra);
    args.push("board");
    let cli = amon(&args).await;
    assert!(!cli.success, "{args:?} should fail; stdout: {}", cli.stdout);
    assert_eq!(cli.code, Some(code), "{args:?}: {}", cli.stderr);
    assert!(
        cli.stderr.contains(needle),
        "{args:?}: expected {needle:?} in: {}",
        cli.stderr
    );
}

/// An agent running `/bin/sh`, a capability printing `line`, and a task.
async fn hello(api: &mut Api, slug: &str, line: &str) -> (String, String) {
    let agent = api.tool(slug, "/bin/sh", &[]).await;
    let script = format!("printf '%s\\n' '{line}'");
    let capability = api.command(&agent, "hello", &["-c", &script]).await;
    let task = api.titled(&format!("{slug}: over TLS")).await;
    (task.id, capability.id)
}

/// `amon run TASK CAPABILITY` over TLS: it must succeed and print `line`.
async fn run_with_cli(url: &str, tls_args: &[&str], task: &str, capability: &str, line: &str) {
    let mut args = vec!["--server", url];
    args.extend_from_slice(tls_args);
    args.extend(["run", task, capability]);
    let cli = amon(&args).await;
    assert!(cli.success, "amon run over TLS: {}", cli.stderr);
    assert!(
        cli.stdout.contains(line),
        "the run's output: {:?}",
        cli.stdout
    );
}

/// A worker on another machine, as it would be started there: the server's
/// https:// URL, the team's CA, its token. It registers over TLS and runs
/// work the CLI (also over TLS) asks for.
#[tokio::test]
async fn a_remote_worker_and_the_cli_run_work_over_tls() -> Result<()> {
    let pki = pki();
    let server = tls_server(
        &pki.server,
        &["--no-local-worker", "--worker-token", "w-secret"],
    )
    .await;
    let url = https(&server);
    let ca = pki.ca.cert_arg();
    let _worker = TestWorker::start_with(
        &server,
        &url,
        "remote-tls",
        2,
        &[("AMON_WORKER_TOKEN", "w-secret")],
        &["--ca-cert", &ca],
    );
    let mut api = Api::new(tls_channel(&server, &pki.ca, None).await?);
    let (task, capability) = hello(&mut api, "sh", "hello over TLS").await;
    run_with_cli(
        &url,
        &["--ca-cert", &ca],
        &task,
        &capability,
        "hello over TLS",
    )
    .await;

    let workers = api
        .workers
        .list_workers(ListWorkersRequest::default())
        .await?
        .into_inner()
        .workers;
    assert!(
        workers.iter().any(|w| w.worker_id == "remote-tls"),
        "the remote worker is registered: {workers:?}"
    );
    Ok(())
}

/// With TLS on, the server's own local worker still runs work (it reaches
/// the server in process, not through the TLS port).
#[tokio::test]
async fn the_local_worker_runs_work_with_tls_on() -> Result<()> {
    let pki = pki();
    let server = tls_server(&pki.server, &[]).await;
    let mut api = Api::new(tls_channel(&server, &pki.ca, None).await?);
    let (task, capability) = hello(&mut api, "sh", "local worker, TLS on").await;
    let execution = api
        .executions
        .create_execution(amon_proto::v1::CreateExecutionRequest {
            task_id: task,
            capability_id: capability,
            args: Some(amon_tests::api::object(json!({}))),
            ..Default::default()
        })
        .await?
        .into_inner()
        .execution
        .context("execution")?;
    let done = api
        .wait_for(&execution.id, ExecutionStatus::Succeeded, WAIT)
        .await;
    let worker = done.worker_id.unwrap_or_default();
    assert!(
        worker.starts_with("local-"),
        "run by the local worker: {worker}"
    );
    assert_eq!(api.log(&execution.id).await, b"local worker, TLS on\n");
    Ok(())
}

/// Each way a client can be set up wrong gets a message that says what to
/// fix, from the CLI and from a worker.
#[tokio::test]
async fn misconfigured_clients_are_told_what_is_wrong() -> Result<()> {
    let pki = pki();
    let other = TestCa::new(pki.dir.path(), "other");
    let expired = pki
        .ca
        .server_cert("expired", &["localhost"], Validity::Expired);
    let (server, expired_server, plaintext) = tokio::join!(
        tls_server(&pki.server, &["--no-local-worker"]),
        tls_server(&expired, &["--no-local-worker"]),
        TestServer::start_with_args(None, &["--no-local-worker"]),
    );
    let ca = pki.ca.cert_arg();
    let url = https(&server);

    // The right CA: works.
    let ok = amon(&["--server", &url, "--ca-cert", &ca, "board"]).await;
    assert!(ok.success, "with the team's CA: {}", ok.stderr);

    // The system's roots do not know a private CA, nor does another CA.
    let unknown =
        "not signed by a trusted certificate authority (give the CA's certificate with --ca-cert";
    refused(&url, &[], unknown).await;
    refused(&url, &["--ca-cert", &other.cert_arg()], unknown).await;

    // A name the certificate does not carry.
    let by_ip = format!("https://127.0.0.1:{}", server.addr().port());
    refused(
        &by_ip,
        &["--ca-cert", &ca],
        "not valid for the name 127.0.0.1 (it names localhost)",
    )
    .await;

    // An expired certificate, with its date.
    refused(
        &https(&expired_server),
        &["--ca-cert", &ca],
        "the server's certificate expired on 2002-01-01 00:00:00 UTC",
    )
    .await;

    // Plaintext to the TLS port, and TLS to a plaintext port.
    refused(
        &format!("http://localhost:{}", server.addr().port()),
        &[],
        "this port serves TLS: connect with https://",
    )
    .await;
    refused(
        &format!("https://localhost:{}", plaintext.addr().port()),
        &["--ca-cert", &ca],
        "it serves plaintext at this address (use http://)",
    )
    .await;

    // TLS settings with a plaintext URL are a usage error (exit 2).
    let cli = amon(&["--server", &plaintext.url(), "--ca-cert", &ca, "board"]).await;
    assert_eq!(cli.code, Some(2), "{}", cli.stderr);
    assert!(cli.stderr.contains("use https://"), "{}", cli.stderr);

    // A plain HTTP client on the TLS port (curl http://…) is told too.
    let response = amon_tests::http::client()
        .get(format!("http://localhost:{}/", server.addr().port()))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    assert!(response.text().await?.contains("connect with https://"));

    // A worker says it in its log, and keeps trying.
    let logged = worker_log_line(&url, &["--ca-cert", &other.cert_arg()], "trusted").await?;
    assert!(logged.contains(unknown), "{logged}");
    let logged = worker_log_line(
        &format!("http://localhost:{}", server.addr().port()),
        &[],
        "TLS",
    )
    .await?;
    assert!(
        logged.contains("this port serves TLS: connect with https://"),
        "{logged}"
    );
    Ok(())
}

/// Starts a worker against `url` and returns the first line of its log
/// that contains `needle` (it has not connected by then).
async fn worker_log_line(url: &str, args: &[&str], needle: &str) -> Result<String> {
    let data = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(binary("amon-worker"))
        .args(["--server", url, "--name", "misconfigured", "--data-dir"])
        .arg(data.path())
        .args(args)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
    let line = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await? {
            if line.contains(needle) {
                return Ok(line);
            }
        }
        anyhow::bail!("the worker exited without logging {needle:?}")
    })
    .await
    .context("the worker logged nothing about it in time")??;
    child.start_kill()?;
    Ok(line)
}

/// With `--tls-client-ca`, only clients presenting a certificate signed by
/// that CA get in: none, or one from another CA, is refused with a message
/// saying so; a worker with its certificate runs work.
#[tokio::test]
async fn mutual_tls_demands_a_certificate_from_the_clients_ca() -> Result<()> {
    let pki = pki();
    let clients = TestCa::new(pki.dir.path(), "clients");
    let stranger = TestCa::new(pki.dir.path(), "stranger");
    let alice = clients.client_cert("alice", "alice");
    let worker_cert = clients.client_cert("worker", "worker-1");
    let mallory = stranger.client_cert("mallory", "mallory");
    let server = tls_server(
        &pki.server,
        &["--no-local-worker", "--tls-client-ca", &clients.cert_arg()],
    )
    .await;
    let url = https(&server);
    let ca = pki.ca.cert_arg();

    // UNAUTHENTICATED: the caller's to fix (exit 2).
    refused_with(
        &url,
        &["--ca-cert", &ca],
        "UNAUTHENTICATED: this server demands a client certificate signed by its client CA: \
         give one with --client-cert and --client-key",
        2,
    )
    .await;
    refused_with(
        &url,
        &[
            "--ca-cert",
            &ca,
            "--client-cert",
            mallory.cert_arg(),
            "--client-key",
            mallory.key_arg(),
        ],
        "UNAUTHENTICATED: the client certificate was refused (invalid peer certificate: \
         UnknownIssuer): it must be signed by the server's client CA",
        2,
    )
    .await;
    let alice_args = [
        "--ca-cert",
        &ca,
        "--client-cert",
        alice.cert_arg(),
        "--client-key",
        alice.key_arg(),
    ];
    let mut args = vec!["--server", url.as_str()];
    args.extend_from_slice(&alice_args);
    args.push("board");
    let board = amon(&args).await;
    assert!(board.success, "with alice's certificate: {}", board.stderr);

    let _worker = TestWorker::start_with(
        &server,
        &url,
        "mtls-worker",
        1,
        &[],
        &[
            "--ca-cert",
            &ca,
            "--client-cert",
            worker_cert.cert_arg(),
            "--client-key",
            worker_cert.key_arg(),
        ],
    );
    let mut api = Api::new(tls_channel(&server, &pki.ca, Some(&alice)).await?);
    let (task, capability) = hello(&mut api, "sh", "mutual TLS").await;
    run_with_cli(&url, &alice_args, &task, &capability, "mutual TLS").await;
    Ok(())
}

/// A renewed certificate is served after SIGHUP, without a restart: the
/// worker connected before keeps its stream and keeps running work; a
/// broken file on reload keeps the certificate in force.
#[tokio::test]
async fn sighup_reloads_the_certificate_under_a_connected_worker() -> Result<()> {
    let pki = pki();
    let mut server = tls_server(&pki.server, &["--no-local-worker"]).await;
    let url = https(&server);
    let ca = pki.ca.cert_arg();
    let _worker = TestWorker::start_with(&server, &url, "steady", 1, &[], &["--ca-cert", &ca]);
    let mut api = Api::new(tls_channel(&server, &pki.ca, None).await?);
    let (task, capability) = hello(&mut api, "sh", "before the renewal").await;
    run_with_cli(
        &url,
        &["--ca-cert", &ca],
        &task,
        &capability,
        "before the renewal",
    )
    .await;
    let first = served_certificate(&server, &pki.ca.cert_path()).await?;
    assert_eq!(first, pem_der(&pki.server.cert)?);

    // Renewed in place, as certbot or a CA's agent does it.
    let renewed = pki
        .ca
        .server_cert("renewed", &["localhost"], Validity::Current);
    std::fs::copy(&renewed.cert, &pki.server.cert)?;
    std::fs::copy(&renewed.key, &pki.server.key)?;
    let pid = nix::unistd::Pid::from_raw(server.pid().context("server pid")? as i32);
    kill(pid, Signal::SIGHUP)?;
    let served = wait_until_served(&server, &pki.ca.cert_path(), &pem_der(&renewed.cert)?).await?;
    assert_ne!(served, first);

    // The worker's stream was opened before: it still runs work.
    let task2 = api.titled("after the renewal").await;
    run_with_cli(
        &url,
        &["--ca-cert", &ca],
        &task2.id,
        &capability,
        "before the renewal",
    )
    .await;
    let workers = api
        .workers
        .list_workers(ListWorkersRequest::default())
        .await?
        .into_inner()
        .workers;
    assert_eq!(workers.len(), 1, "{workers:?}");

    // A half-written key: the renewed certificate stays in force.
    std::fs::write(&pki.server.key, "-----BEGIN PRIVATE KEY-----\ntruncated")?;
    kill(pid, Signal::SIGHUP)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        served_certificate(&server, &pki.ca.cert_path()).await?,
        pem_der(&renewed.cert)?
    );
    assert!(
        server.exited().is_none(),
        "a failed reload must not stop the server"
    );
    let board = amon(&["--server", &url, "--ca-cert", &ca, "board"]).await;
    assert!(board.success, "{}", board.stderr);
    Ok(())
}

/// The DER of the first certificate in a PEM file.
fn pem_der(path: &Path) -> Result<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    Ok(CertificateDer::from_pem_file(path)?.to_vec())
}

/// The certificate the server presents to a new connection now.
async fn served_certificate(server: &TestServer, ca: &Path) -> Result<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca)?)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.addr()).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (_, session) = tls.get_ref();
    Ok(session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .context("no certificate")?
        .to_vec())
}

/// Waits (a signal is handled asynchronously) until new connections get
/// `expected`.
async fn wait_until_served(server: &TestServer, ca: &Path, expected: &[u8]) -> Result<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let served = served_certificate(server, ca).await?;
        if served == expected {
            return Ok(served);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not served after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
