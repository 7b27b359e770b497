//! The real `amon-worker` binary against a scripted fake server.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use amon_proto::v1::connect_request::Message as Up;
use amon_proto::v1::connect_response::Message as Down;
use amon_proto::v1::{
    Cancel, ExecutionStatus, InteractionMode, ResumedExecution, RunningExecution, WorkerConfig,
};
use common::*;
use nix::sys::signal::Signal;

fn status(finished: &amon_proto::v1::RunFinished) -> ExecutionStatus {
    ExecutionStatus::try_from(finished.status).unwrap()
}

/// (a) argv without a shell (an explicit `/bin/sh -c` here), stdout and
/// stderr interleaved byte-exact in one log, a failing exit code, the
/// registration fields and the bearer token.
#[tokio::test]
async fn runs_a_command_and_reports_output_and_exit_code() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(
        &server.url(),
        &[
            "--token",
            "s3cret",
            "--worker-id",
            "w-a",
            "--slots",
            "2",
            "--label",
            "gpu=no",
            "--agent",
            "sh",
        ],
        &[],
    );
    let mut conn = server.accept().await;
    assert_eq!(conn.metadata.get("authorization").unwrap(), "Bearer s3cret");
    let register = conn.register(config(200), vec![]).await;
    assert_eq!(register.worker_id, "w-a");
    assert_eq!(register.slots, 2);
    assert_eq!(register.agent_slugs, vec!["sh".to_string()]);
    assert_eq!(register.labels.get("gpu").map(String::as_str), Some("no"));
    assert!(register.running.is_empty());
    assert!(!register.hostname.is_empty() && !register.version.is_empty());
    assert_eq!(conn.expect_grant().await, 2);

    let mut a = assign(
        "exec-a",
        &[
            "/bin/sh",
            "-c",
            "echo out; echo err >&2; printf tail; exit 3",
        ],
    );
    a.log_offset = 42;
    conn.send(Down::Assign(a));
    let report = conn.collect_run("exec-a", true).await;
    assert!(report.started.as_ref().unwrap().pid > 0);
    assert_eq!(report.text(), "out\nerr\ntail");
    assert_eq!(report.chunks[0].offset, 42);
    assert!(
        report
            .chunks
            .iter()
            .all(|c| c.attempt_token == "token-exec-a")
    );
    let finished = report.finished();
    assert_eq!(status(finished), ExecutionStatus::Failed);
    assert_eq!(finished.exit_code, Some(3));
    assert_eq!(finished.error.as_deref(), Some("exited with status 3"));
    assert_eq!(finished.log_byte_size, 42 + 12);
    assert_eq!(finished.attempt_token, "token-exec-a");
    // The slot comes back.
    assert_eq!(conn.expect_grant().await, 1);
}

/// (b) The child sees only the allowlisted variables (from the worker's
/// environment) and the overrides; argv[0] is found with the worker's PATH
/// although the child has none. The working directory is used.
#[tokio::test]
async fn child_environment_is_allowlist_plus_overrides() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(
        &server.url(),
        &["--slots", "1"],
        &[("AMON_T_SECRET", "hidden"), ("AMON_T_ALLOWED", "yes")],
    );
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    assert_eq!(conn.expect_grant().await, 1);

    let mut a = assign("exec-env", &["env"]);
    a.env_allowlist = vec!["AMON_T_ALLOWED".into(), "AMON_T_ABSENT".into()];
    a.env = HashMap::from([("AMON_T_OVERRIDE".to_string(), "o v".to_string())]);
    conn.send(Down::Assign(a));
    let report = conn.collect_run("exec-env", true).await;
    assert_eq!(status(report.finished()), ExecutionStatus::Succeeded);
    let mut lines: Vec<&str> = std::str::from_utf8(&report.data).unwrap().lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["AMON_T_ALLOWED=yes", "AMON_T_OVERRIDE=o v"]);
    assert_eq!(conn.expect_grant().await, 1);

    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().canonicalize().unwrap();
    let mut a = assign("exec-cwd", &["/bin/sh", "-c", "pwd -P"]);
    a.working_dir = dir_path.to_str().unwrap().to_string();
    conn.send(Down::Assign(a));
    let report = conn.collect_run("exec-cwd", true).await;
    assert_eq!(report.text(), format!("{}\n", dir_path.display()));
    assert_eq!(status(report.finished()), ExecutionStatus::Succeeded);
}

/// (c) A child that ignores SIGTERM is SIGKILLed after the grace; the run is
/// TIMED_OUT and nothing of its process group survives.
#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(&server.url(), &[], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    conn.expect_grant().await;

    let mut a = assign(
        "exec-t",
        &[
            "/bin/sh",
            "-c",
            "trap '' TERM; echo ready; sleep 30; echo never",
        ],
    );
    a.timeout = Some(duration_ms(300));
    conn.send(Down::Assign(a));
    let report = conn.collect_bytes("exec-t", 6).await;
    let pid = report.started.as_ref().unwrap().pid;
    let begun = Instant::now();
    let report = conn.collect_run("exec-t", true).await;
    let finished = report.finished();
    assert_eq!(status(finished), ExecutionStatus::TimedOut, "{finished:?}");
    let error = finished.error.as_deref().unwrap();
    assert!(error.starts_with("timed out after 300ms"), "{error}");
    assert!(error.contains("SIGKILL"), "{error}");
    assert!(begun.elapsed() < Duration::from_secs(3));
    assert_eq!(finished.log_byte_size, 6);
    assert!(group_gone(pid).await, "process group {pid} survived");
}

/// (d) Cancel stops a run quickly (CANCELLED); a cancel with another
/// attempt token is ignored; a live config change shortens heartbeats.
#[tokio::test]
async fn cancel_and_heartbeats() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(&server.url(), &[], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    conn.expect_grant().await;

    conn.send(Down::Assign(assign("exec-c", &["sleep", "30"])));
    let pid = match conn.recv().await {
        Up::Started(s) => s.pid,
        other => panic!("expected Started, got {other:?}"),
    };
    conn.send(Down::Cancel(Cancel {
        execution_id: "exec-c".into(),
        attempt_token: "some-older-attempt".into(),
        reason: "wrong attempt".into(),
        forget: false,
    }));
    let mut fast = config(200);
    fast.heartbeat_interval = Some(duration_ms(100));
    conn.send(Down::Config(fast));
    // The next message is a heartbeat listing the run (not a finish).
    match conn.recv().await {
        Up::Heartbeat(h) => {
            assert_eq!(h.running_execution_ids, vec!["exec-c".to_string()]);
            assert!(h.metadata.is_some());
        }
        other => panic!("expected a Heartbeat, got {other:?}"),
    }

    let begun = Instant::now();
    conn.send(Down::Cancel(Cancel {
        execution_id: "exec-c".into(),
        attempt_token: "token-exec-c".into(),
        reason: "by the test".into(),
        forget: false,
    }));
    let report = conn.collect_run("exec-c", true).await;
    let finished = report.finished();
    assert_eq!(status(finished), ExecutionStatus::Cancelled, "{finished:?}");
    assert!(finished.error.as_deref().unwrap().contains("by the test"));
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "{:?}",
        begun.elapsed()
    );
    assert!(group_gone(pid).await);
    // Cancel and ack for unknown runs are ignored; the worker keeps serving.
    conn.send(Down::Cancel(Cancel {
        execution_id: "nope".into(),
        attempt_token: String::new(),
        reason: String::new(),
        forget: false,
    }));
    conn.send(Down::Assign(assign("exec-c2", &["echo", "still here"])));
    let report = conn.collect_run("exec-c2", true).await;
    assert_eq!(report.text(), "still here\n");
}

/// (e) Output past max_output_bytes is cut after a one-line marker; the
/// child is drained and runs to its end; chunks respect log_chunk_bytes.
#[tokio::test]
async fn output_cap_appends_a_marker() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(&server.url(), &[], &[]);
    let mut conn = server.accept().await;
    let mut small_chunks = config(200);
    small_chunks.log_chunk_bytes = 64;
    conn.register(small_chunks, vec![]).await;
    conn.expect_grant().await;

    let script = "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; \
                  echo done >&2; exit 0";
    let mut a = assign("exec-cap", &["/bin/sh", "-c", script]);
    a.max_output_bytes = 1000;
    a.log_offset = 7;
    conn.send(Down::Assign(a));
    let report = conn.collect_run("exec-cap", true).await;

    let full: String = (0..3000).map(|i| format!("line-{i}\n")).collect();
    let mut expected = full.as_bytes()[..1000].to_vec();
    if expected[999] != b'\n' {
        expected.push(b'\n');
    }
    expected.extend_from_slice(b"[amon: output truncated at 1000 bytes]\n");
    assert_eq!(report.text(), String::from_utf8(expected.clone()).unwrap());
    assert!(report.chunks.iter().all(|c| c.data.len() <= 64));
    assert_eq!(report.chunks[0].offset, 7);
    let finished = report.finished();
    assert_eq!(status(finished), ExecutionStatus::Succeeded);
    assert_eq!(finished.log_byte_size, 7 + expected.len() as i64);
}

/// (f) Runs that cannot start fail with a clear error (no Started), and the
/// worker keeps serving: missing binary, bad working directory, an AI agent
/// without a protocol.
#[tokio::test]
async fn failures_to_start_do_not_stop_the_worker() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(&server.url(), &["--slots", "1"], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    assert_eq!(conn.expect_grant().await, 1);

    let mut a = assign("exec-f1", &["definitely-not-a-binary-amon"]);
    a.log_offset = 5;
    conn.send(Down::Assign(a));
    match conn.recv().await {
        Up::Finished(f) => {
            assert_eq!(status(&f), ExecutionStatus::Failed);
            let error = f.error.unwrap();
            assert!(
                error.starts_with("binary not found: definitely-not-a-binary-amon"),
                "{error}"
            );
            assert_eq!(f.log_byte_size, 5);
            assert_eq!(f.exit_code, None);
        }
        other => panic!("expected Finished, got {other:?}"),
    }
    assert_eq!(conn.expect_grant().await, 1);

    let mut a = assign("exec-f2", &["echo", "x"]);
    a.working_dir = "/nonexistent/amon/dir".into();
    conn.send(Down::Assign(a));
    match conn.recv().await {
        Up::Finished(f) => {
            let error = f.error.unwrap();
            assert!(
                error.starts_with("working directory /nonexistent/amon/dir: "),
                "{error}"
            );
        }
        other => panic!("expected Finished, got {other:?}"),
    }
    assert_eq!(conn.expect_grant().await, 1);

    // An AI agent without a protocol cannot be spoken to.
    let mut a = assign("exec-f3", &["claude"]);
    a.mode = InteractionMode::Prompt as i32;
    a.prompt = Some("do things".into());
    conn.send(Down::Assign(a));
    match conn.recv().await {
        Up::Finished(f) => assert_eq!(
            f.error.as_deref(),
            Some(
                "agent  has no session_config.bidirectional_protocol: \
                 a prompt-mode run needs stream-json, app-server or tmux"
            )
        ),
        other => panic!("expected Finished, got {other:?}"),
    }
    assert_eq!(conn.expect_grant().await, 1);

    conn.send(Down::Assign(assign("exec-f4", &["echo", "hi"])));
    let report = conn.collect_run("exec-f4", true).await;
    assert_eq!(report.text(), "hi\n");
    assert_eq!(status(report.finished()), ExecutionStatus::Succeeded);
}

/// (g) The stream breaks mid-run: the child keeps running, the worker
/// reconnects, reports the run, and resends from the server's offset; what
/// the server stored before plus what comes after is the output, byte-exact.
#[tokio::test]
async fn reconnect_resends_from_the_acknowledged_offset() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(&server.url(), &["--slots", "1"], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    assert_eq!(conn.expect_grant().await, 1);

    let script = "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.15; done";
    let mut a = assign("exec-r", &["/bin/sh", "-c", script]);
    a.log_offset = 10;
    conn.send(Down::Assign(a));
    let before = conn.collect_bytes("exec-r", 7).await;
    assert_eq!(before.chunks[0].offset, 10);
    // The server acknowledges 3 bytes, has stored 5, then the stream breaks.
    conn.send(Down::LogAck(amon_proto::v1::LogAck {
        attempt_token: String::new(),
        execution_id: "exec-r".into(),
        offset: 13,
    }));
    conn.hang_up();
    drop(conn);

    let mut conn = server.accept().await;
    let register = conn
        .register(
            config(200),
            vec![ResumedExecution {
                execution_id: "exec-r".into(),
                attempt_token: "token-exec-r".into(),
                acknowledged_offset: 15,
            }],
        )
        .await;
    assert_eq!(
        register.running,
        vec![RunningExecution {
            execution_id: "exec-r".into(),
            attempt_token: "token-exec-r".into(),
        }]
    );
    let after = conn.collect_run("exec-r", true).await;
    assert_eq!(
        after.chunks[0].offset, 15,
        "resent from the server's offset"
    );
    let mut stored = before.data[..5].to_vec();
    stored.extend_from_slice(&after.data);
    let expected: String = (1..=6).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(String::from_utf8(stored).unwrap(), expected);
    let finished = after.finished();
    assert_eq!(status(finished), ExecutionStatus::Succeeded);
    assert_eq!(finished.log_byte_size, 10 + expected.len() as i64);
    // No slot was free while the run went on; its end frees one.
    assert!(
        !after.others.iter().any(|m| matches!(m, Up::SlotGrant(_))),
        "{:?}",
        after.others
    );
    assert_eq!(conn.expect_grant().await, 1);
}

/// (g') After a reconnect, a run the server does not resume is stopped.
#[tokio::test]
async fn runs_not_resumed_after_a_reconnect_are_stopped() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(&server.url(), &["--slots", "2"], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    assert_eq!(conn.expect_grant().await, 2);
    conn.send(Down::Assign(assign("exec-o", &["sleep", "30"])));
    let pid = match conn.recv().await {
        Up::Started(s) => s.pid,
        other => panic!("expected Started, got {other:?}"),
    };
    conn.hang_up();
    drop(conn);

    let mut conn = server.accept().await;
    let register = conn.register(config(200), vec![]).await;
    assert_eq!(register.running.len(), 1);
    // One slot free (the orphan still runs), then the orphan is stopped.
    assert_eq!(conn.expect_grant().await, 1);
    let report = conn.collect_run("exec-o", false).await;
    assert_eq!(status(report.finished()), ExecutionStatus::Cancelled);
    assert!(report.chunks.is_empty());
    assert!(group_gone(pid).await);
    assert_eq!(conn.expect_grant().await, 1);
}

/// (h) SIGTERM drains: Drain is sent, no more slots, the run in flight
/// finishes and is stored, then the worker exits 0.
#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    let mut server = FakeServer::start().await;
    let mut worker = WorkerProcess::start(&server.url(), &["--slots", "1"], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    assert_eq!(conn.expect_grant().await, 1);

    conn.send(Down::Assign(assign(
        "exec-d",
        &["/bin/sh", "-c", "sleep 0.4; echo finished"],
    )));
    match conn.recv().await {
        Up::Started(_) => {}
        other => panic!("expected Started, got {other:?}"),
    }
    worker.signal(Signal::SIGTERM);
    match conn.recv().await {
        Up::Drain(d) => assert!(!d.reason.is_empty()),
        other => panic!("expected Drain, got {other:?}"),
    }
    let report = conn.collect_run("exec-d", true).await;
    assert_eq!(report.text(), "finished\n");
    assert_eq!(status(report.finished()), ExecutionStatus::Succeeded);
    let exit = worker.wait(Duration::from_secs(5)).await;
    assert!(exit.success(), "{exit:?}");
    let (_, rest) = conn.until_closed(Duration::from_millis(200)).await;
    assert!(
        !report
            .others
            .iter()
            .chain(&rest)
            .any(|m| matches!(m, Up::SlotGrant(_))),
        "no slot granted while draining"
    );
}

/// (h') A drain whose runs outlast --drain-timeout stops them, reports them
/// failed (nobody cancelled them: `cancelled` is only reachable through
/// `cancelling`, and the server refused it), then exits 0.
#[tokio::test]
async fn drain_timeout_cancels_the_runs() {
    let mut server = FakeServer::start().await;
    let mut worker = WorkerProcess::start(
        &server.url(),
        &["--slots", "1", "--drain-timeout", "300ms"],
        &[],
    );
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    conn.expect_grant().await;
    conn.send(Down::Assign(assign("exec-dt", &["sleep", "30"])));
    let pid = match conn.recv().await {
        Up::Started(s) => s.pid,
        other => panic!("expected Started, got {other:?}"),
    };
    let begun = Instant::now();
    worker.signal(Signal::SIGINT);
    let report = conn.collect_run("exec-dt", true).await;
    assert!(matches!(report.others.first(), Some(Up::Drain(_))));
    assert_eq!(status(report.finished()), ExecutionStatus::Failed);
    assert!(
        report
            .finished()
            .error
            .as_deref()
            .unwrap()
            .contains("drain timeout")
    );
    assert!(begun.elapsed() >= Duration::from_millis(300));
    let exit = worker.wait(Duration::from_secs(5)).await;
    assert!(exit.success(), "{exit:?}");
    assert!(group_gone(pid).await);
}

/// The worker waits for a server that is not there yet, and registers when
/// it comes (backoff retries, no crash).
#[tokio::test]
async fn connects_once_the_server_is_up() {
    // Reserve a port, start the worker against it, then start the server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let _worker = WorkerProcess::start(&addr.to_string(), &["--name", "late"], &[]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut server = FakeServer::start_on(addr).await;
    let mut conn = server.accept().await;
    let register = conn.register(WorkerConfig::default(), vec![]).await;
    assert_eq!(register.worker_id, "late");
}

/// A grandchild that keeps the output pipe open does not hold the run: after
/// the child exits, the rest of its group is killed and the run ends.
#[tokio::test]
async fn a_lingering_grandchild_does_not_hold_the_run() {
    let mut server = FakeServer::start().await;
    let _worker = WorkerProcess::start(&server.url(), &[], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    conn.expect_grant().await;
    conn.send(Down::Assign(assign(
        "exec-g",
        &["/bin/sh", "-c", "(sleep 30; echo late) & echo parent done"],
    )));
    let begun = Instant::now();
    let report = conn.collect_run("exec-g", true).await;
    assert_eq!(report.text(), "parent done\n");
    assert_eq!(status(report.finished()), ExecutionStatus::Succeeded);
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "{:?}",
        begun.elapsed()
    );
    let pid = report.started.as_ref().unwrap().pid;
    assert!(group_gone(pid).await, "the grandchild survived");
}

/// A second signal exits at once (status 130) and kills the runs' groups.
#[tokio::test]
async fn second_signal_exits_at_once_and_kills_the_runs() {
    let mut server = FakeServer::start().await;
    let mut worker = WorkerProcess::start(&server.url(), &[], &[]);
    let mut conn = server.accept().await;
    conn.register(config(200), vec![]).await;
    conn.expect_grant().await;
    conn.send(Down::Assign(assign("exec-2s", &["sleep", "30"])));
    let pid = match conn.recv().await {
        Up::Started(s) => s.pid,
        other => panic!("expected Started, got {other:?}"),
    };
    worker.signal(Signal::SIGTERM);
    assert!(matches!(conn.recv().await, Up::Drain(_)));
    worker.signal(Signal::SIGTERM);
    let exit = worker.wait(Duration::from_secs(5)).await;
    assert_eq!(exit.code(), Some(130));
    assert!(group_gone(pid).await, "the run survived the worker");
}
