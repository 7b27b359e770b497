//! `GET /metrics` read as Prometheus would: a real server, a real worker,
//! the text parsed by a Prometheus text-format parser, its figures moving
//! as runs are queued, claimed, succeed, fail, are retried, followed and
//! reaped; and the client token guarding it. Both backends.

use std::time::Duration;

use amon_proto::v1::{Agent, ExecutionStatus};
use amon_tests::{api::Api, both_backends, db::TestDb, server::TestServer, worker::TestWorker};
use anyhow::{Context, Result, ensure};
use prometheus_parse::{Scrape, Value};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const CLIENT_TOKEN: &str = "metrics-client-secret";
const WORKER_TOKEN: &str = "metrics-worker-secret";

/// One scrape, parsed.
struct Figures {
    scrape: Scrape,
    text: String,
}

impl Figures {
    /// The sum of the samples of `metric` whose labels include `labels`
    /// (0 when there are none): a counter's, a gauge's, or a histogram's
    /// `_count` or `_sum`.
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// Whether any sample of `metric` is there.
    fn has(&self, metric: &str) -> bool {
        self.scrape.samples.iter().any(|s| s.metric == metric)
    }
}

/// `GET /metrics` with `token`, answered 200 and parsed; every `amon_`
/// metric has its help text.
async fn scrape(server: &TestServer, token: Option<&str>) -> Result<Figures> {
    let mut request = amon_tests::http::client().get(format!("{}/metrics", server.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    ensure!(
        response.status() == 200,
        "GET /metrics: {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "content type {content_type:?}"
    );
    let text = response.text().await?;
    let scrape =
        Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).context("parsing /metrics")?;
    // The parser skips what it cannot read: every sample line must have
    // become a sample (histograms fold their buckets into one).
    let sample_lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains("_bucket{"))
        .count();
    let histograms = scrape
        .samples
        .iter()
        .filter(|s| matches!(s.value, Value::Histogram(_)))
        .count();
    ensure!(
        scrape.samples.len() - histograms == sample_lines,
        "{} samples parsed from {sample_lines} lines:\n{text}",
        scrape.samples.len() - histograms
    );
    for sample in &scrape.samples {
        let family = ["_sum", "_count"]
            .iter()
            .find_map(|suffix| sample.metric.strip_suffix(suffix))
            .filter(|family| scrape.docs.contains_key(*family))
            .unwrap_or(&sample.metric);
        ensure!(
            scrape.docs.contains_key(family),
            "{} has no # HELP:\n{text}",
            sample.metric
        );
    }
    Ok(Figures { scrape, text })
}

/// Scrapes until `check` holds (counters move once their batch committed,
/// a moment after the API shows the run).
async fn until(
    server: &TestServer,
    what: &str,
    check: impl Fn(&Figures) -> bool,
) -> Result<Figures> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let figures = scrape(server, None).await?;
        if check(&figures) {
            return Ok(figures);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen in {WAIT:?}; last scrape:\n{}",
            figures.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn figures_move_as_runs_go(db: TestDb) -> Result<()> {
    let server = TestServer::start_with_args(Some(db.url()), &["--no-local-worker"]).await;
    let mut api = Api::new(server.channel().await);

    let empty = scrape(&server, None).await?;
    assert_eq!(empty.value("amon_workers_connected", &[]), 0.0);
    assert!(!empty.has("amon_runs"), "no agent, no runs");
    assert!(empty.has("amon_write_batches_total"), "{}", empty.text);

    let sh = api
        .agent(Agent {
            name: "sh".into(),
            slug: "sh".into(),
            binary_path: "/bin/sh".into(),
            max_concurrent: Some(8),
            ..Default::default()
        })
        .await;
    let hello = api.command(&sh, "hello", &["-c", "printf hello"]).await;
    let fails = api
        .command(&sh, "fails", &["-c", "echo nope; exit 3"])
        .await;
    let slow = api
        .command(&sh, "slow", &["-c", "printf start; sleep 1; printf end"])
        .await;
    let task = api.titled("metrics").await;
    let sh_ = [("agent", "sh")];

    // Queued, nobody to run them.
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(api.run(&task, &hello, json!({}), 0).await);
    }
    let failing = api.run(&task, &fails, json!({}), 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued = scrape(&server, None).await?;
    assert_eq!(
        queued.value("amon_runs", &[("agent", "sh"), ("status", "queued")]),
        4.0
    );
    assert_eq!(
        queued.value("amon_runs", &[("agent", "sh"), ("status", "succeeded")]),
        0.0
    );
    assert_eq!(queued.value("amon_queue_depth", &sh_), 4.0);
    let age = queued.value("amon_queue_oldest_age_seconds", &sh_);
    assert!((0.25..60.0).contains(&age), "oldest queued age {age}");
    assert_eq!(queued.value("amon_claims_total", &[]), 0.0);

    // A worker runs them: 3 succeed, one fails twice (one retry).
    let mut worker = TestWorker::start(&server, "w1", 2, &[]);
    for run in &runs {
        api.wait_for(&run.id, ExecutionStatus::Succeeded, WAIT)
            .await;
    }
    api.wait_for(&failing.id, ExecutionStatus::Failed, WAIT)
        .await;
    let ran = until(&server, "the runs counted", |f| {
        f.value(
            "amon_runs_finished_total",
            &[("agent", "sh"), ("outcome", "failed")],
        ) == 1.0
            && f.value("amon_worker_slots_free", &[]) == 2.0
    })
    .await?;
    let runs_in = |status| ran.value("amon_runs", &[("agent", "sh"), ("status", status)]);
    assert_eq!(
        (runs_in("queued"), runs_in("succeeded"), runs_in("failed")),
        (0.0, 3.0, 1.0)
    );
    assert_eq!(ran.value("amon_queue_depth", &sh_), 0.0);
    assert_eq!(ran.value("amon_queue_oldest_age_seconds", &sh_), 0.0);
    assert_eq!(
        ran.value("amon_claims_total", &sh_),
        5.0,
        "4 runs, one retried"
    );
    assert_eq!(
        ran.value(
            "amon_runs_finished_total",
            &[("agent", "sh"), ("outcome", "succeeded")]
        ),
        3.0
    );
    assert_eq!(
        ran.value(
            "amon_run_retries_total",
            &[("agent", "sh"), ("reason", "failed")]
        ),
        1.0
    );
    assert_eq!(
        ran.value("amon_dispatch_latency_seconds_count", &sh_),
        4.0,
        "first attempts"
    );
    assert!(ran.value("amon_dispatch_latency_seconds_sum", &sh_) > 0.0);
    assert!(ran.value("amon_claim_duration_seconds_count", &[]) >= 1.0);
    let batches = ran.value("amon_write_batches_total", &[("result", "committed")]);
    assert!(batches >= 1.0, "{}", ran.text);
    assert_eq!(
        ran.value("amon_write_batch_size_count", &[]),
        ran.value("amon_write_batches_total", &[]),
        "one size per batch"
    );
    assert!(ran.value("amon_write_batch_size_sum", &[]) >= batches);
    assert!(
        ran.value("amon_db_transaction_seconds_count", &[("kind", "batch")]) >= batches,
        "{}",
        ran.text
    );
    let received = ran.value("amon_log_bytes_received_total", &[]);
    assert!(
        received >= (3 * "hello".len() + 2 * "nope\n".len()) as f64,
        "log bytes received {received}"
    );
    assert_eq!(ran.value("amon_workers_connected", &[]), 1.0);
    assert_eq!(ran.value("amon_worker_slots", &[]), 2.0);
    assert_eq!(ran.value("amon_log_followers", &[]), 0.0);

    // A follower, counted while it follows.
    let run = api.run(&task, &slow, json!({}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    let follower = {
        let mut api = api.clone();
        let id = run.id.clone();
        tokio::spawn(async move { api.follow_log(&id, 0, true).await })
    };
    until(&server, "a follower", |f| {
        f.value("amon_log_followers", &[]) == 1.0
    })
    .await?;
    assert_eq!(follower.await?, b"startend");
    until(&server, "the follower gone", |f| {
        f.value("amon_log_followers", &[]) == 0.0
    })
    .await?;

    // A worker gone silent: its run is reaped (failed: no retries left).
    api.tune(1_000, 200, 200).await;
    let stuck = api.command(&sh, "stuck", &["-c", "sleep 30"]).await;
    let run = api.run(&task, &stuck, json!({}), 0).await;
    api.wait_for(&run.id, ExecutionStatus::Running, WAIT).await;
    worker.kill_hard();
    let reaped = api.wait_for(&run.id, ExecutionStatus::Failed, WAIT).await;
    assert!(
        reaped.error.as_deref().unwrap_or("").contains("silent"),
        "{:?}",
        reaped.error
    );
    let gone = until(&server, "the reaped run counted", |f| {
        f.value(
            "amon_runs_reaped_total",
            &[("agent", "sh"), ("reason", "silent")],
        ) == 1.0
    })
    .await?;
    assert_eq!(
        gone.value(
            "amon_runs_finished_total",
            &[("agent", "sh"), ("outcome", "failed")]
        ),
        2.0
    );
    assert_eq!(gone.value("amon_workers_connected", &[]), 0.0);
    assert_eq!(gone.value("amon_worker_slots_free", &[]), 0.0);
    Ok(())
}

/// With a client token, /metrics takes it and nothing else: 401 without
/// it, with a wrong one and with the worker token.
async fn client_token_guards_metrics(db: TestDb) -> Result<()> {
    let server = TestServer::start_with_args(
        Some(db.url()),
        &[
            "--no-local-worker",
            "--client-token",
            CLIENT_TOKEN,
            "--worker-token",
            WORKER_TOKEN,
        ],
    )
    .await;
    let http = amon_tests::http::client();
    let url = format!("{}/metrics", server.url());
    for token in [None, Some("wrong"), Some(WORKER_TOKEN)] {
        let mut request = http.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), 401, "token {token:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        let body = response.text().await?;
        assert!(!body.contains("amon_"), "nothing leaks: {body}");
    }
    let figures = scrape(&server, Some(CLIENT_TOKEN)).await?;
    assert_eq!(figures.value("amon_workers_connected", &[]), 0.0);
    Ok(())
}

both_backends!(figures_move_as_runs_go, client_token_guards_metrics);
