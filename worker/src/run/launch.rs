//! Starting runs: the seam between the worker's bookkeeping, which decides
//! that a run starts, and how it is started. A [`Launcher`] turns a
//! [`Prepared`] run into a running supervisor; the worker picks its launcher
//! once at startup ([`launcher`]).
//!
//! - [`Spawner`]: each run's supervisor is a task of this process (a plain
//!   child through [`super::process`], an AI agent through
//!   [`super::agent::supervise`]).
//! - [`BenchNoop`]: benchmark only, see [`BENCH_NOOP_ENV`].

use tokio::sync::mpsc;

use super::adapter::Prepared;
use super::agent::supervise::{AgentHost, supervise_agent};
use super::lifecycle::RunChannels;
use super::process::supervise;
use super::{Outcome, RunEvent, RunEventKind, RunKey};

/// Starts a run's supervisor.
pub(crate) trait Launcher: Send {
    /// Supervises `prepared` from now on, in the background: it reports on
    /// `channels.events` and takes orders from `channels.control`.
    fn launch(&self, prepared: Prepared, channels: RunChannels);
}

/// Supervises every run as a task of this process.
pub(crate) struct Spawner {
    /// tmux server and pane runner of AI agent runs.
    pub agent_host: AgentHost,
}

impl Launcher for Spawner {
    fn launch(&self, prepared: Prepared, channels: RunChannels) {
        match prepared {
            Prepared::Process(spec) => tokio::spawn(supervise(channels, spec)),
            Prepared::Agent(agent) => {
                tokio::spawn(supervise_agent(channels, agent, self.agent_host.clone()))
            }
        };
    }
}

/// BENCHMARK ONLY, off unless the variable is set: runs whose `argv[0]`
/// equals `AMON_BENCH_NOOP_ARGV0` succeed at once without spawning anything,
/// so `amon-bench` can measure the queue's own cost with the spawn taken out.
pub(crate) const BENCH_NOOP_ENV: &str = "AMON_BENCH_NOOP_ARGV0";

/// The worker's launcher: a [`Spawner`], behind a [`BenchNoop`] when
/// [`BENCH_NOOP_ENV`] is set and not empty.
pub(crate) fn launcher(agent_host: AgentHost) -> Box<dyn Launcher + Sync> {
    let spawner = Spawner { agent_host };
    match std::env::var(BENCH_NOOP_ENV).ok().filter(|s| !s.is_empty()) {
        Some(argv0) => Box::new(BenchNoop {
            argv0,
            inner: spawner,
        }),
        None => Box::new(spawner),
    }
}

/// Template runs of `argv0` succeed at once with no output and nothing
/// spawned; everything else goes to `inner`.
pub(crate) struct BenchNoop<L> {
    argv0: String,
    inner: L,
}

impl<L: Launcher> Launcher for BenchNoop<L> {
    fn launch(&self, prepared: Prepared, channels: RunChannels) {
        match prepared {
            Prepared::Process(spec) if spec.argv.first() == Some(&self.argv0) => {
                tokio::spawn(noop_run(channels.key, channels.events));
            }
            prepared => self.inner.launch(prepared, channels),
        }
    }
}

/// The events of a run that started and exited 0 with no output.
async fn noop_run(key: RunKey, events: mpsc::Sender<RunEvent>) {
    let started = RunEvent {
        key: key.clone(),
        kind: RunEventKind::Started {
            pid: 0,
            tmux_session: None,
        },
    };
    if events.send(started).await.is_ok() {
        let outcome = Outcome::from_exit(Some(0), None, None);
        let _ = events
            .send(RunEvent {
                key,
                kind: RunEventKind::Ended(outcome),
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use amon_proto::v1::ExecutionStatus;
    use tokio::sync::watch;

    use super::*;
    use crate::config::RuntimeConfig;
    use crate::run::ProcessSpec;

    /// Records the argv of what it is asked to launch.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<String>>>);

    impl Launcher for Recorder {
        fn launch(&self, prepared: Prepared, _channels: RunChannels) {
            let Prepared::Process(spec) = prepared else {
                panic!("only template runs here")
            };
            self.0.lock().unwrap().push(spec.argv);
        }
    }

    fn process(argv: &[&str]) -> Prepared {
        Prepared::Process(ProcessSpec {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            working_dir: None,
            env: Default::default(),
            timeout: None,
        })
    }

    fn channels(id: &str, events: &mpsc::Sender<RunEvent>) -> RunChannels {
        RunChannels {
            key: RunKey {
                execution_id: id.into(),
                attempt_token: "t".into(),
            },
            events: events.clone(),
            control: mpsc::unbounded_channel().1,
            config: watch::channel(RuntimeConfig::default()).1,
        }
    }

    #[tokio::test]
    async fn bench_noop_succeeds_its_argv0_and_passes_the_rest_on() {
        let noop = BenchNoop {
            argv0: "noop".into(),
            inner: Recorder::default(),
        };
        let (events, mut rx) = mpsc::channel(8);
        noop.launch(process(&["noop", "x"]), channels("a", &events));
        noop.launch(process(&["/bin/true", "noop"]), channels("b", &events));

        let started = rx.recv().await.unwrap();
        assert_eq!(started.key.execution_id, "a");
        assert!(matches!(
            started.kind,
            RunEventKind::Started {
                pid: 0,
                tmux_session: None
            }
        ));
        let ended = rx.recv().await.unwrap();
        let RunEventKind::Ended(outcome) = ended.kind else {
            panic!("{ended:?}")
        };
        assert_eq!(outcome.status, ExecutionStatus::Succeeded);
        assert_eq!(
            *noop.inner.0.lock().unwrap(),
            vec![vec!["/bin/true".to_string(), "noop".to_string()]]
        );
    }
}
