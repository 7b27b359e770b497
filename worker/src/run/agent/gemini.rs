//! An interactive CLI in a terminal (Gemini CLI): the agent runs in its tmux
//! pane, the prompt is typed in with `send-keys -l` and a separate Enter,
//! and its output is what the pane shows (captured with `pipe-pane`, escape
//! sequences and all).
//!
//! - **Ready**: the prompt is typed once the CLI has drawn something and then
//!   been quiet for [`READY_QUIET`] (its input box is up), or after
//!   [`READY_TIMEOUT`] whatever it did.
//! - **Done**: the CLI exiting ends the run (exit 0 is success). With an idle
//!   rule (`completion_idle`), a pane quiet that long after the prompt was
//!   typed also ends it, successfully: an interactive CLI otherwise waits
//!   for the next prompt forever.

use std::time::Duration;

use tokio::time::Instant;

use super::{Action, AgentProtocol, Exit, Verdict};
use crate::run::pane::StdioMode;

/// Quiet time after the first output before the prompt is typed.
pub(crate) const READY_QUIET: Duration = Duration::from_millis(500);
/// Longest wait for the CLI to draw before the prompt is typed anyway.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
enum Stage {
    Starting {
        since: Instant,
        first_output: Option<Instant>,
    },
    Prompted {
        at: Instant,
    },
    Done,
}

pub(crate) struct Interactive {
    prompt: String,
    completion_idle: Option<Duration>,
    last_output: Option<Instant>,
    stage: Stage,
}

impl Interactive {
    pub fn new(prompt: String, completion_idle: Option<Duration>) -> Self {
        Self {
            prompt,
            completion_idle: completion_idle.filter(|d| !d.is_zero()),
            last_output: None,
            stage: Stage::Done,
        }
    }
}

impl AgentProtocol for Interactive {
    fn stdio(&self) -> StdioMode {
        StdioMode::Terminal
    }

    fn start(&mut self, now: Instant) -> Vec<Action> {
        self.stage = Stage::Starting {
            since: now,
            first_output: None,
        };
        Vec::new()
    }

    fn on_output(&mut self, now: Instant) {
        self.last_output = Some(now);
        if let Stage::Starting { first_output, .. } = &mut self.stage {
            first_output.get_or_insert(now);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Starting {
                since,
                first_output,
            } => {
                let timeout = *since + READY_TIMEOUT;
                Some(match (first_output, self.last_output) {
                    (Some(_), Some(last)) => timeout.min(last + READY_QUIET),
                    _ => timeout,
                })
            }
            Stage::Prompted { at } => {
                let idle = self.completion_idle?;
                Some(self.last_output.map_or(*at, |last| last.max(*at)) + idle)
            }
            Stage::Done => None,
        }
    }

    fn on_deadline(&mut self, now: Instant) -> Vec<Action> {
        match self.deadline() {
            Some(due) if due <= now => {}
            _ => return Vec::new(),
        }
        match self.stage {
            Stage::Starting { .. } => {
                self.stage = Stage::Prompted { at: now };
                vec![Action::TypeLine(self.prompt.clone())]
            }
            Stage::Prompted { .. } => {
                self.stage = Stage::Done;
                vec![Action::Finish(Verdict::success())]
            }
            Stage::Done => Vec::new(),
        }
    }

    fn on_exit(&mut self, exit: Exit) -> Verdict {
        let prompted = matches!(self.stage, Stage::Prompted { .. } | Stage::Done);
        self.stage = Stage::Done;
        match exit.code {
            Some(0) if prompted => Verdict::success(),
            Some(0) => Verdict::failure("the agent exited before it was given the prompt"),
            _ => Verdict::failure(format!("the agent {exit}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_when_ready_then_idles_out() {
        let t0 = Instant::now();
        let mut p = Interactive::new("hi there".into(), Some(Duration::from_secs(3)));
        assert!(p.start(t0).is_empty());
        assert_eq!(p.deadline(), Some(t0 + READY_TIMEOUT));
        p.on_output(t0 + Duration::from_millis(100));
        p.on_output(t0 + Duration::from_millis(300));
        let ready = t0 + Duration::from_millis(800);
        assert_eq!(p.deadline(), Some(ready));
        assert!(p.on_deadline(ready - Duration::from_millis(1)).is_empty());
        assert_eq!(
            p.on_deadline(ready),
            vec![Action::TypeLine("hi there".into())]
        );
        assert_eq!(p.deadline(), Some(ready + Duration::from_secs(3)));
        let reply = ready + Duration::from_secs(2);
        p.on_output(reply);
        assert_eq!(p.deadline(), Some(reply + Duration::from_secs(3)));
        assert_eq!(
            p.on_deadline(reply + Duration::from_secs(3)),
            vec![Action::Finish(Verdict::success())]
        );
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn silent_cli_and_exits() {
        let t0 = Instant::now();
        let mut p = Interactive::new("x".into(), None);
        p.start(t0);
        assert_eq!(
            p.on_deadline(t0 + READY_TIMEOUT),
            vec![Action::TypeLine("x".into())]
        );
        assert_eq!(p.deadline(), None, "no idle rule: only the exit ends it");
        assert!(
            p.on_exit(Exit {
                code: Some(0),
                signal: None
            })
            .ok
        );

        let mut p = Interactive::new("x".into(), None);
        p.start(t0);
        assert!(
            !p.on_exit(Exit {
                code: Some(0),
                signal: None
            })
            .ok
        );
        let mut p = Interactive::new("x".into(), None);
        p.start(t0);
        assert_eq!(
            p.on_exit(Exit {
                code: Some(2),
                signal: None
            })
            .error
            .as_deref(),
            Some("the agent exited with status 2")
        );
    }
}
