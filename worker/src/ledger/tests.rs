//! The ledger on its own: inputs in, messages out on a channel standing in
//! for the registered stream, orders out on each run's control channel. No
//! server, no process.

use amon_proto::v1::{ConnectRequest, ExecutionStatus, InteractionMode, ResumedExecution};
use tokio::sync::mpsc::error::TryRecvError;

use super::*;

type Sent = mpsc::UnboundedReceiver<ConnectRequest>;
use connect_request::Message as Up;

const TOKEN: &str = "t1";

fn ledger(slots: u32) -> Ledger {
    Ledger::new(
        slots,
        "test".into(),
        Duration::from_secs(60),
        RuntimeConfig::default(),
        crate::run::agent::trouble::AgentSettings::new("w"),
    )
}

fn assign(id: &str, token: &str) -> Assign {
    Assign {
        execution_id: id.into(),
        attempt_token: token.into(),
        mode: InteractionMode::Template as i32,
        argv: vec!["/bin/true".into()],
        ..Default::default()
    }
}

/// Assigns `id` (attempt [`TOKEN`]): the orders its supervisor would get.
fn start(ledger: &mut Ledger, id: &str) -> mpsc::UnboundedReceiver<Control> {
    ledger
        .on_assign(assign(id, TOKEN))
        .expect("a run to start")
        .control
}

/// A new registered stream, resuming `resumed` (id, acknowledged offset).
fn register(ledger: &mut Ledger, resumed: &[(&str, i64)]) -> Sent {
    let (tx, rx) = mpsc::unbounded_channel();
    let registered = Registered {
        worker_id: "w".into(),
        config: None,
        resumed: resumed
            .iter()
            .map(|&(id, offset)| ResumedExecution {
                execution_id: id.into(),
                attempt_token: TOKEN.into(),
                acknowledged_offset: offset,
            })
            .collect(),
        gone_worktree_task_ids: Vec::new(),
    };
    ledger.on_registered(&registered, tx);
    rx
}

/// Everything sent since the last call.
fn sent(rx: &mut Sent) -> Vec<Up> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|request| request.message)
        .collect()
}

fn event(ledger: &mut Ledger, id: &str, token: &str, kind: RunEventKind) {
    let key = RunKey {
        execution_id: id.into(),
        attempt_token: token.into(),
    };
    ledger.on_run_event(RunEvent { key, kind });
}

fn output(ledger: &mut Ledger, id: &str, data: &[u8]) {
    event(ledger, id, TOKEN, RunEventKind::Output(data.to_vec()));
}

fn exit(ledger: &mut Ledger, id: &str, code: i32) {
    let outcome = Outcome::from_exit(Some(code), None, None);
    event(ledger, id, TOKEN, RunEventKind::Ended(outcome));
}

fn ack(ledger: &mut Ledger, id: &str, offset: i64) {
    ledger.on_log_ack(LogAck {
        execution_id: id.into(),
        offset,
        attempt_token: TOKEN.into(),
    });
}

/// The server's answer to `id`'s finish.
fn finish_ack(ledger: &mut Ledger, id: &str, accepted: bool) {
    ledger.on_finished_ack(RunFinishedAck {
        execution_id: id.into(),
        attempt_token: TOKEN.into(),
        accepted,
        error: if accepted { String::new() } else { "no".into() },
    });
}

fn chunk(id: &str, offset: i64, data: &[u8]) -> Up {
    Up::LogChunk(LogChunk {
        execution_id: id.into(),
        attempt_token: TOKEN.into(),
        offset,
        data: data.to_vec(),
    })
}

fn grant(count: i32) -> Up {
    Up::SlotGrant(SlotGrant { count })
}

fn finished(id: &str, status: ExecutionStatus, log_byte_size: i64) -> Up {
    let error = match status {
        ExecutionStatus::Succeeded => None,
        _ => Some("exited with status 1".into()),
    };
    Up::Finished(RunFinished {
        execution_id: id.into(),
        attempt_token: TOKEN.into(),
        status: status as i32,
        exit_code: Some(if error.is_some() { 1 } else { 0 }),
        error,
        log_byte_size,
        worktree: None,
    })
}

fn held(ledger: &Ledger) -> Vec<String> {
    let mut held = ledger.held();
    held.sort();
    held
}

#[test]
fn a_finished_run_is_forgotten_once_the_server_answered_its_finish() {
    let mut ledger = ledger(2);
    let mut rx = register(&mut ledger, &[]);
    assert_eq!(sent(&mut rx), vec![grant(2)]);

    // Finish first, acknowledgement after.
    start(&mut ledger, "a");
    output(&mut ledger, "a", b"hello");
    exit(&mut ledger, "a", 0);
    assert_eq!(
        sent(&mut rx),
        vec![
            chunk("a", 0, b"hello"),
            finished("a", ExecutionStatus::Succeeded, 5),
            grant(1)
        ]
    );
    ack(&mut ledger, "a", 3);
    assert_eq!(held(&ledger), ["a"], "bytes 3..5 are not stored yet");
    ack(&mut ledger, "a", 5);
    assert_eq!(
        held(&ledger),
        ["a"],
        "stored, but the finish is not answered"
    );
    finish_ack(&mut ledger, "a", true);
    assert!(held(&ledger).is_empty());

    // Acknowledgement first, finish after.
    start(&mut ledger, "b");
    output(&mut ledger, "b", b"hey");
    ack(&mut ledger, "b", 3);
    assert_eq!(held(&ledger), ["b"], "still running");
    exit(&mut ledger, "b", 1);
    assert_eq!(
        sent(&mut rx),
        vec![
            chunk("b", 0, b"hey"),
            finished("b", ExecutionStatus::Failed, 3),
            grant(1)
        ]
    );
    assert_eq!(held(&ledger), ["b"]);
    // A refused result is forgotten too: it will never be taken.
    finish_ack(&mut ledger, "b", false);
    assert!(held(&ledger).is_empty());
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_finish_that_could_not_be_sent_is_resent_on_the_next_stream() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    output(&mut ledger, "a", b"out");
    ack(&mut ledger, "a", 3);
    sent(&mut rx);
    // The stream broke: the finish goes nowhere, so the run is kept even
    // though every byte is stored.
    drop(rx);
    exit(&mut ledger, "a", 0);
    assert_eq!(held(&ledger), ["a"]);

    ledger.link_down();
    assert_eq!(ledger.running().len(), 1, "listed in Register.running");
    let mut rx = register(&mut ledger, &[("a", 3)]);
    assert_eq!(
        sent(&mut rx),
        vec![grant(1), finished("a", ExecutionStatus::Succeeded, 3)]
    );
    finish_ack(&mut ledger, "a", true);
    assert!(held(&ledger).is_empty());
}

#[test]
fn a_finish_lost_with_the_stream_after_every_byte_was_acked_is_resent() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    output(&mut ledger, "a", b"out");
    exit(&mut ledger, "a", 0);
    ack(&mut ledger, "a", 3);
    assert_eq!(
        sent(&mut rx),
        vec![
            grant(1),
            chunk("a", 0, b"out"),
            finished("a", ExecutionStatus::Succeeded, 3),
            grant(1)
        ]
    );
    // Every byte stored, the finish sent... and the stream breaks before
    // the server answered it (it never reached it). It used to be
    // forgotten here, and the run sat in `running` until reaped.
    ledger.link_down();
    assert_eq!(held(&ledger), ["a"]);
    let mut rx = register(&mut ledger, &[("a", 3)]);
    assert_eq!(
        sent(&mut rx),
        vec![grant(1), finished("a", ExecutionStatus::Succeeded, 3)]
    );
    finish_ack(&mut ledger, "a", true);
    assert!(held(&ledger).is_empty());
}

#[test]
fn acks_for_another_attempt_are_ignored() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    output(&mut ledger, "a", b"0123");
    sent(&mut rx);
    ledger.on_log_ack(LogAck {
        execution_id: "a".into(),
        offset: 4,
        attempt_token: "an older attempt".into(),
    });
    ledger.link_down();
    let mut rx = register(&mut ledger, &[("a", 0)]);
    assert_eq!(
        sent(&mut rx),
        vec![chunk("a", 0, b"0123")],
        "resent in full"
    );
}

#[test]
fn a_disowned_run_is_killed_and_forgotten_without_waiting_for_acks() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    let mut control = start(&mut ledger, "a");
    output(&mut ledger, "a", b"unacknowledged");
    sent(&mut rx);
    ledger.on_cancel(Cancel {
        execution_id: "a".into(),
        attempt_token: TOKEN.into(),
        reason: "stale attempt".into(),
        forget: true,
    });
    assert!(matches!(control.try_recv(), Ok(Control::Abandon)));
    output(&mut ledger, "a", b" and more");
    exit(&mut ledger, "a", 143);
    // Its output stops; a best-effort finish, then nothing is held: a
    // drain does not wait for it.
    let after = sent(&mut rx);
    assert!(
        after.iter().all(|m| !matches!(m, Up::LogChunk(_))),
        "{after:?}"
    );
    assert!(held(&ledger).is_empty());
    ledger.begin_drain();
    assert!(ledger.drained());
}

#[test]
fn fencing_stops_every_run_and_reports_it_failed() {
    let mut ledger = ledger(2);
    let mut rx = register(&mut ledger, &[]);
    let mut a = start(&mut ledger, "a");
    let mut b = start(&mut ledger, "b");
    sent(&mut rx);
    assert_eq!(ledger.fence(Duration::from_secs(90)), 2);
    for control in [&mut a, &mut b] {
        assert!(matches!(
            control.try_recv(),
            Ok(Control::Stop(StopReason::Fenced(d))) if d == Duration::from_secs(90)
        ));
    }
    assert_eq!(ledger.fence(Duration::from_secs(91)), 0, "once");
    ledger.link_down();
    // Whatever the server says on the next stream, the fenced runs stay
    // stopped; once they end, their finish goes out and they are forgotten.
    let mut rx = register(&mut ledger, &[("a", 0), ("b", 0)]);
    let outcome = Outcome::from_exit(
        None,
        Some(15),
        Some(&StopReason::Fenced(Duration::from_secs(90))),
    );
    event(&mut ledger, "a", TOKEN, RunEventKind::Ended(outcome));
    let after = sent(&mut rx);
    assert!(
        after
            .iter()
            .any(|m| matches!(m, Up::Finished(f) if f.status == ExecutionStatus::Failed as i32)),
        "{after:?}"
    );
    assert_eq!(held(&ledger), ["b"]);
}

#[test]
fn a_reconnect_rewinds_to_the_acknowledged_offset_and_resends() {
    let mut ledger = ledger(1);
    ledger.set_config(RuntimeConfig {
        log_chunk_bytes: 4,
        ..RuntimeConfig::default()
    });
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    output(&mut ledger, "a", b"0123456789");
    assert_eq!(
        sent(&mut rx),
        vec![
            grant(1),
            chunk("a", 0, b"0123"),
            chunk("a", 4, b"4567"),
            chunk("a", 8, b"89")
        ]
    );
    ack(&mut ledger, "a", 4);

    // Nothing goes out while the link is down; output is kept.
    ledger.link_down();
    drop(rx);
    output(&mut ledger, "a", b"ab");
    assert_eq!(
        ledger.running(),
        vec![RunningExecution {
            execution_id: "a".into(),
            attempt_token: TOKEN.into()
        }]
    );

    // The server stored up to 6 meanwhile (the worker had only heard of 4).
    let mut rx = register(&mut ledger, &[("a", 6)]);
    assert_eq!(
        sent(&mut rx),
        vec![chunk("a", 6, b"6789"), chunk("a", 10, b"ab")],
        "no grant: the one slot is taken"
    );
    exit(&mut ledger, "a", 0);
    ack(&mut ledger, "a", 12);
    assert_eq!(
        sent(&mut rx),
        vec![finished("a", ExecutionStatus::Succeeded, 12), grant(1)]
    );
    finish_ack(&mut ledger, "a", true);
    assert!(held(&ledger).is_empty());
}

#[test]
fn a_run_not_resumed_after_a_reconnect_is_stopped_and_goes_quiet() {
    let mut ledger = ledger(2);
    let mut rx = register(&mut ledger, &[]);
    let mut control = start(&mut ledger, "a");
    start(&mut ledger, "b");
    sent(&mut rx);
    ledger.link_down();

    let mut rx = register(&mut ledger, &[("b", 0)]);
    match control.try_recv() {
        Ok(Control::Stop(StopReason::Cancelled(reason))) => {
            assert_eq!(reason, "not resumed by the server after a reconnect")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sent(&mut rx), vec![], "both slots are still taken");

    // Its output is not sent, heartbeats leave it out...
    output(&mut ledger, "a", b"late");
    ledger.send_heartbeat();
    let [Up::Heartbeat(heartbeat)] = &sent(&mut rx)[..] else {
        panic!("one heartbeat")
    };
    assert_eq!(heartbeat.running_execution_ids, ["b"]);
    // ...and once it ended it is forgotten after a best-effort finish.
    exit(&mut ledger, "a", 0);
    assert_eq!(
        sent(&mut rx),
        vec![finished("a", ExecutionStatus::Succeeded, 4), grant(1)]
    );
    assert_eq!(held(&ledger), ["b"]);
}

#[test]
fn a_finished_run_not_resumed_is_dropped() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    output(&mut ledger, "a", b"x");
    exit(&mut ledger, "a", 0);
    sent(&mut rx);
    ledger.link_down();
    assert_eq!(held(&ledger), ["a"], "its byte is not acknowledged");
    let mut rx = register(&mut ledger, &[]);
    assert!(held(&ledger).is_empty());
    assert_eq!(sent(&mut rx), vec![grant(1)]);
}

#[test]
fn grants_after_registered_are_the_slots_not_taken_by_live_children() {
    let mut ledger = ledger(3);
    let mut rx = register(&mut ledger, &[]);
    assert_eq!(sent(&mut rx), vec![grant(3)]);
    start(&mut ledger, "a");
    start(&mut ledger, "b");
    start(&mut ledger, "c");
    exit(&mut ledger, "c", 0); // ended, not yet acknowledged: no child
    sent(&mut rx);
    ledger.link_down();

    let mut rx = register(&mut ledger, &[("a", 0), ("b", 0), ("c", 0)]);
    assert_eq!(sent(&mut rx)[0], grant(1));
}

#[test]
fn a_duplicate_assign_is_ignored() {
    let mut ledger = ledger(2);
    let mut rx = register(&mut ledger, &[]);
    sent(&mut rx);
    let mut control = start(&mut ledger, "a");
    output(&mut ledger, "a", b"x");
    assert!(ledger.on_assign(assign("a", TOKEN)).is_none());
    assert_eq!(held(&ledger), ["a"]);
    assert_eq!(sent(&mut rx), vec![chunk("a", 0, b"x")]);
    assert!(matches!(control.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn a_new_attempt_of_a_held_run_abandons_the_old_one() {
    let mut ledger = ledger(2);
    let mut rx = register(&mut ledger, &[]);
    sent(&mut rx);
    let mut old = start(&mut ledger, "a");
    let new = ledger
        .on_assign(assign("a", "t2"))
        .expect("the new attempt");
    assert_eq!(new.key.attempt_token, "t2");
    assert!(matches!(old.try_recv(), Ok(Control::Abandon)));
    assert_eq!(
        ledger.running(),
        vec![RunningExecution {
            execution_id: "a".into(),
            attempt_token: "t2".into()
        }]
    );

    // The old attempt still holds its slot until it ends; its events are
    // not reported.
    ledger.link_down();
    let mut rx = register(&mut ledger, &[]);
    assert_eq!(sent(&mut rx), vec![], "2 slots, 2 live children");
    output(&mut ledger, "a", b"stale");
    exit(&mut ledger, "a", 0);
    assert_eq!(sent(&mut rx), vec![grant(1)]);
}

#[test]
fn a_refused_assignment_fails_at_once_and_frees_its_slot() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    sent(&mut rx);
    let mut bad = assign("a", TOKEN);
    bad.argv.clear();
    assert!(ledger.on_assign(bad).is_none());
    let expected = Up::Finished(RunFinished {
        execution_id: "a".into(),
        attempt_token: TOKEN.into(),
        status: ExecutionStatus::Failed as i32,
        exit_code: None,
        error: Some("the assignment has an empty argv".into()),
        log_byte_size: 0,
        worktree: None,
    });
    assert_eq!(sent(&mut rx), vec![expected, grant(1)]);
    assert_eq!(held(&ledger), ["a"], "until the server took the result");
    finish_ack(&mut ledger, "a", true);
    assert!(held(&ledger).is_empty());
}

#[test]
fn cancel_stops_the_attempt_it_names() {
    let mut ledger = ledger(1);
    let mut control = start(&mut ledger, "a");
    let cancel = |token: &str| Cancel {
        execution_id: "a".into(),
        attempt_token: token.into(),
        reason: "by alice".into(),
        forget: false,
    };
    ledger.on_cancel(cancel("t0"));
    assert!(control.try_recv().is_err(), "another attempt's cancel");
    ledger.on_cancel(cancel(TOKEN));
    match control.try_recv() {
        Ok(Control::Stop(StopReason::Cancelled(reason))) => assert_eq!(reason, "by alice"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_session_ref_is_sent_once_per_stream() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    sent(&mut rx);
    event(&mut ledger, "a", TOKEN, RunEventKind::Session("s-1".into()));
    let detected = Up::SessionDetected(SessionDetected {
        execution_id: "a".into(),
        attempt_token: TOKEN.into(),
        session_ref: "s-1".into(),
    });
    assert_eq!(sent(&mut rx), vec![detected.clone()]);
    output(&mut ledger, "a", b"x");
    assert_eq!(sent(&mut rx), vec![chunk("a", 0, b"x")]);
    ledger.link_down();
    let mut rx = register(&mut ledger, &[("a", 1)]);
    assert_eq!(sent(&mut rx), vec![detected]);
}

#[test]
fn an_agents_status_goes_out_when_it_changes() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    sent(&mut rx);
    let status = |text: Option<&str>| {
        Up::RunStatus(RunStatus {
            execution_id: "a".into(),
            attempt_token: TOKEN.into(),
            status: text.map(str::to_string),
        })
    };
    let retrying = || RunEventKind::Status(Some("retrying".into()));
    event(&mut ledger, "a", TOKEN, retrying());
    assert_eq!(sent(&mut rx), vec![status(Some("retrying"))]);
    // The same again is not news.
    event(&mut ledger, "a", TOKEN, retrying());
    assert_eq!(sent(&mut rx), vec![]);
    event(&mut ledger, "a", TOKEN, RunEventKind::Status(None));
    assert_eq!(sent(&mut rx), vec![status(None)]);
    // Not kept for a new stream: it was only worth its moment.
    event(&mut ledger, "a", TOKEN, retrying());
    sent(&mut rx);
    ledger.link_down();
    let mut rx = register(&mut ledger, &[("a", 0)]);
    assert_eq!(sent(&mut rx), vec![]);
}

#[test]
fn draining_grants_nothing_and_stops_the_runs_after_its_timeout() {
    let mut ledger = ledger(2);
    let mut rx = register(&mut ledger, &[]);
    let mut control = start(&mut ledger, "a");
    sent(&mut rx);

    ledger.begin_drain();
    assert!(ledger.draining() && ledger.drain_deadline().is_some());
    let drain = Up::Drain(Drain {
        reason: "worker shutting down".into(),
    });
    assert_eq!(sent(&mut rx), vec![drain.clone()]);
    // Again on a new stream, and still no grant.
    ledger.link_down();
    let mut rx = register(&mut ledger, &[("a", 0)]);
    assert_eq!(sent(&mut rx), vec![drain]);

    ledger.on_drain_timeout();
    assert!(ledger.drain_deadline().is_none() && ledger.give_up_at().is_some());
    assert!(matches!(
        control.try_recv(),
        Ok(Control::Stop(StopReason::DrainTimeout))
    ));
    // A run assigned after the timeout is stopped at once.
    let mut late = start(&mut ledger, "b");
    assert!(matches!(
        late.try_recv(),
        Ok(Control::Stop(StopReason::DrainTimeout))
    ));

    output(&mut ledger, "a", b"a");
    output(&mut ledger, "b", b"b");
    exit(&mut ledger, "a", 0);
    exit(&mut ledger, "b", 0);
    assert!(!ledger.drained(), "not yet stored");
    assert_eq!(
        sent(&mut rx),
        vec![
            chunk("a", 0, b"a"),
            chunk("b", 0, b"b"),
            finished("a", ExecutionStatus::Succeeded, 1),
            finished("b", ExecutionStatus::Succeeded, 1),
        ],
        "no grant while draining"
    );
    ack(&mut ledger, "a", 1);
    finish_ack(&mut ledger, "a", true);
    assert!(!ledger.drained());
    ack(&mut ledger, "b", 1);
    assert!(!ledger.drained(), "b's finish is not answered yet");
    finish_ack(&mut ledger, "b", true);
    assert!(ledger.drained());
}

#[test]
fn the_servers_drain_holds_for_its_stream_only() {
    let mut ledger = ledger(1);
    let mut rx = register(&mut ledger, &[]);
    start(&mut ledger, "a");
    sent(&mut rx);
    ledger.on_server_drain();
    exit(&mut ledger, "a", 0);
    assert_eq!(
        sent(&mut rx),
        vec![finished("a", ExecutionStatus::Succeeded, 0)]
    );
    ledger.link_down();
    let mut rx = register(&mut ledger, &[]);
    assert_eq!(sent(&mut rx), vec![grant(1)]);
}

#[test]
fn a_terminal_attaches_only_to_a_live_run_of_this_attempt_in_tmux() {
    let mut ledger = ledger(2);
    let _stream = register(&mut ledger, &[]);
    let _control = start(&mut ledger, "e1");
    // Started, but not in tmux (a template run): nothing to attach to.
    event(
        &mut ledger,
        "e1",
        TOKEN,
        RunEventKind::Started {
            pid: 10,
            tmux_session: None,
        },
    );
    let refused = ledger.terminal_of("e1", TOKEN).unwrap_err();
    assert!(refused.contains("no tmux session"), "{refused}");
    let _control = start(&mut ledger, "e2");
    event(
        &mut ledger,
        "e2",
        TOKEN,
        RunEventKind::Started {
            pid: 11,
            tmux_session: Some("amon-e2".into()),
        },
    );
    assert_eq!(ledger.terminal_of("e2", TOKEN).as_deref(), Ok("amon-e2"));
    // Another attempt, or a run this worker does not hold.
    assert!(ledger.terminal_of("e2", "stale").is_err());
    assert!(ledger.terminal_of("e3", TOKEN).is_err());
    // Once the run ended, its terminal is gone.
    exit(&mut ledger, "e2", 0);
    let refused = ledger.terminal_of("e2", TOKEN).unwrap_err();
    assert!(refused.contains("has ended"), "{refused}");
}
