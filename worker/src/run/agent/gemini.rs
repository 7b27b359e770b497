//! An interactive CLI in a terminal (Gemini CLI): the agent runs in its tmux
//! pane, the prompt is typed in with `send-keys -l` and a separate Enter,
//! and its output is what the pane shows (captured with `pipe-pane`, escape
//! sequences and all). What the run decides, it decides from the screen as
//! drawn ([`Action::ReadScreen`]: tmux's own rendering, not the escape
//! stream), read only when the pane has gone quiet.
//!
//! - **Ready**: once the CLI has drawn something and then been quiet for
//!   [`READY_QUIET`] (its input box is up), or after [`READY_TIMEOUT`]
//!   whatever it did, the screen is read. A known blocking screen (folder
//!   trust, sign-in, a consent) fails the run naming it: typing the prompt
//!   there would answer the dialog, not ask the model. Otherwise the screen
//!   is kept (what was there before the prompt) and the prompt is typed.
//! - **Done**: the CLI exiting ends the run (exit 0 is success). With an idle
//!   rule (`completion_idle`), a pane quiet that long after the prompt was
//!   typed has its screen read again: the run succeeds only if the agent
//!   visibly answered (the prompt's first line shows, and after it text the
//!   screen did not have before the prompt); a blocking screen fails it
//!   naming the screen, and a quiet screen without an answer fails it: an
//!   interactive CLI otherwise waits for the next prompt forever, and quiet
//!   alone is no proof of an answer.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::trouble::{AgentSettings, GEMINI, Trouble, classify_text, explain};
use super::{Action, AgentProtocol, Exit, Verdict};
use crate::run::pane::StdioMode;
use crate::run::tmux::SCREEN_ROWS;

/// Quiet time after the first output before the prompt is typed.
pub(crate) const READY_QUIET: Duration = Duration::from_millis(500);
/// Longest wait for the CLI to draw before the prompt is typed anyway.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Characters of the prompt's first line looked for in the transcript.
const ECHO_CHARS: usize = 40;

/// A screen that waits for a person: what it shows, and what it means.
struct Blocking {
    /// Text the screen shows (compared without spaces, case-insensitively).
    shows: &'static str,
    what: BlockingKind,
}

#[derive(Clone, Copy)]
enum BlockingKind {
    /// The CLI has no login: sign-in dialogs.
    Login,
    /// Any other dialog, by name.
    Dialog(&'static str),
}

/// Gemini CLI 0.61's screens that wait for a person. The worker configures
/// away what it can (the run's folder is trusted, update checks are off),
/// so these show only when a setting did not take or a login is missing.
const BLOCKING: &[Blocking] = &[
    Blocking {
        shows: "Do you trust the files in this folder?",
        what: BlockingKind::Dialog("folder trust"),
    },
    Blocking {
        shows: "How would you like to authenticate",
        what: BlockingKind::Login,
    },
    Blocking {
        shows: "Waiting for authentication",
        what: BlockingKind::Login,
    },
    Blocking {
        shows: "Allow Google to use this data",
        what: BlockingKind::Dialog("data use consent"),
    },
    Blocking {
        shows: "Do you want to accept and load these policies?",
        what: BlockingKind::Dialog("policy consent"),
    },
];

#[derive(Debug)]
enum Stage {
    Starting {
        since: Instant,
        first_output: Option<Instant>,
    },
    /// The screen is being read before the prompt is typed.
    Looking,
    Prompted {
        at: Instant,
    },
    /// The screen is being read after the pane went quiet.
    Judging,
    Done,
}

pub(crate) struct Interactive {
    prompt: String,
    completion_idle: Option<Duration>,
    last_output: Option<Instant>,
    stage: Stage,
    worker: String,
    /// The screen's lines before the prompt was typed (normalised).
    before: HashSet<String>,
}

impl Interactive {
    pub fn new(
        prompt: String,
        completion_idle: Option<Duration>,
        settings: &AgentSettings,
    ) -> Self {
        Self {
            prompt,
            completion_idle: completion_idle.filter(|d| !d.is_zero()),
            last_output: None,
            stage: Stage::Done,
            worker: settings.worker.clone(),
            before: HashSet::new(),
        }
    }

    fn finish(&mut self, verdict: Verdict) -> Vec<Action> {
        self.stage = Stage::Done;
        vec![Action::Finish(verdict)]
    }

    /// The run's error if the screen waits for a person.
    fn blocked(&self, screen: &str) -> Option<String> {
        let lines: Vec<&str> = screen.lines().collect();
        let shown =
            compact(&lines[lines.len().saturating_sub(SCREEN_ROWS)..].join("\n")).to_lowercase();
        let found = BLOCKING
            .iter()
            .find(|b| shown.contains(&compact(b.shows).to_lowercase()))?;
        let shows = format!("its screen shows \"{}\"", found.shows);
        Some(match found.what {
            BlockingKind::Login => explain(GEMINI, Trouble::NotLoggedIn, &self.worker, &shows),
            BlockingKind::Dialog(name) => format!(
                "Gemini CLI on worker {} stopped at its {name} screen (\"{}\"), which waits for a \
                 person: nothing was asked of the model",
                self.worker, found.shows
            ),
        })
    }

    /// What the screen shows after the prompt: the prompt's first line, and
    /// after it text that was not on the screen before the prompt was typed
    /// (the input box, footers and banners were). The newest such line
    /// decides: an error line (`✕ …`, as Gemini CLI draws errors) or an
    /// answer.
    fn judge(&self, screen: &str) -> Judged {
        let needle: String = compact(
            self.prompt
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(""),
        )
        .chars()
        .take(ECHO_CHARS)
        .collect();
        if needle.is_empty() {
            return Judged::Nothing;
        }
        let lines: Vec<&str> = screen.lines().collect();
        // The whole screen without spaces, and where each line ends in it:
        // a prompt wrapped over lines (or inside a box) is still found.
        let mut text = String::new();
        let mut ends = Vec::with_capacity(lines.len());
        for line in &lines {
            text.push_str(&compact(line));
            ends.push(text.len());
        }
        let Some(at) = text.rfind(&needle) else {
            return Judged::Nothing;
        };
        let echo_end = at + needle.len();
        let echo_line = ends.partition_point(|&end| end < echo_end);
        // The rest of a prompt of several lines is echoed too: a line that
        // is a piece of the prompt (after its input marker) is no answer.
        let prompt = compact(&self.prompt);
        let of_prompt = |line: &str| {
            let text = compact(line);
            !text.is_empty() && prompt.contains(&text)
        };
        let newest = lines[(echo_line + 1).min(lines.len())..].iter().rfind(|l| {
            let key = normal(l);
            !key.is_empty() && !self.before.contains(&key) && !of_prompt(&key)
        });
        match newest {
            None => Judged::Nothing,
            Some(line) => match line.trim_start().strip_prefix('\u{2715}') {
                Some(error) => {
                    let error = error.trim();
                    Judged::Error(explain(GEMINI, classify_text(error), &self.worker, error))
                }
                None => Judged::Answered,
            },
        }
    }
}

/// What the screen says of the prompt once the pane went quiet.
#[derive(Debug, PartialEq, Eq)]
enum Judged {
    Answered,
    /// The newest line is an error: the run fails with it.
    Error(String),
    /// No answer shows.
    Nothing,
}

/// Drawing characters: box borders and blocks frame text, they are not text.
fn is_drawing(c: char) -> bool {
    ('\u{2500}'..='\u{259F}').contains(&c)
}

/// `text` without spaces or drawing characters.
fn compact(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && !is_drawing(*c))
        .collect()
}

/// A screen line as compared with another: drawing characters blanked,
/// runs of spaces made one, and what leads the text trimmed (an input
/// marker `> ` drawn before the placeholder or the typed text, a bullet).
fn normal(line: &str) -> String {
    line.chars()
        .map(|c| if is_drawing(c) { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .to_string()
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
            Stage::Looking | Stage::Judging | Stage::Done => None,
        }
    }

    fn on_deadline(&mut self, now: Instant) -> Vec<Action> {
        match self.deadline() {
            Some(due) if due <= now => {}
            _ => return Vec::new(),
        }
        match self.stage {
            Stage::Starting { .. } => {
                self.stage = Stage::Looking;
                vec![Action::ReadScreen]
            }
            Stage::Prompted { .. } => {
                self.stage = Stage::Judging;
                vec![Action::ReadScreen]
            }
            Stage::Looking | Stage::Judging | Stage::Done => Vec::new(),
        }
    }

    fn on_screen(&mut self, screen: Result<&str, &str>, now: Instant) -> Vec<Action> {
        let screen = match screen {
            Ok(screen) => screen,
            Err(error) => {
                return self.finish(Verdict::failure(format!(
                    "reading the agent's screen: {error}"
                )));
            }
        };
        if let Some(error) = self.blocked(screen) {
            return self.finish(Verdict::failure(error));
        }
        match self.stage {
            Stage::Looking => {
                self.before = screen.lines().map(normal).collect();
                self.stage = Stage::Prompted { at: now };
                vec![Action::TypeLine(self.prompt.clone())]
            }
            Stage::Judging => match self.judge(screen) {
                Judged::Answered => self.finish(Verdict::success()),
                Judged::Error(error) => self.finish(Verdict::failure(error)),
                Judged::Nothing => self.no_answer(screen),
            },
            _ => Vec::new(),
        }
    }

    fn on_exit(&mut self, exit: Exit) -> Verdict {
        let prompted = matches!(
            self.stage,
            Stage::Prompted { .. } | Stage::Judging | Stage::Done
        );
        self.stage = Stage::Done;
        match exit.code {
            Some(0) if prompted => Verdict::success(),
            Some(0) => Verdict::failure("the agent exited before it was given the prompt"),
            _ => Verdict::failure(format!("the agent {exit}")),
        }
    }
}

impl Interactive {
    /// The pane went quiet and no answer shows: a failure, with the last
    /// line drawn (what the CLI was showing).
    fn no_answer(&mut self, screen: &str) -> Vec<Action> {
        let idle = self.completion_idle.unwrap_or_default();
        let last = screen
            .lines()
            .map(normal)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default();
        self.finish(Verdict::failure(format!(
            "the agent's screen was quiet for {} after the prompt but shows no answer to it \
             (last line: {last:?})",
            crate::config::human_duration(idle)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        AgentSettings::new("w1")
    }

    /// Gemini CLI 0.61.0's trust dialog, as tmux drew it (trimmed).
    const TRUST: &str = " Gemini CLI v0.61.0
Tips for getting started:
1. Create GEMINI.md files to customize your interactions
 ╭──────────────────────────────────────────────╮
 │ Do you trust the files in this folder?       │
 │                                              │
 │ ● 1. Trust folder (w5)                       │
 │   2. Trust parent folder (tmp)               │
 │   3. Don't trust                             │
 ╰──────────────────────────────────────────────╯
";

    /// Its sign-in dialog, once the folder is trusted (trimmed).
    const SIGN_IN: &str = " Gemini CLI v0.61.0
╭────────────────────────────────────────────────────────╮
│ ? Get started                                          │
│   How would you like to authenticate for this project? │
│   ● 1. Sign in with Google                             │
│     2. Use Gemini API Key                              │
╰────────────────────────────────────────────────────────╯
";

    /// An idle input box and footer.
    const READY: &str = " Gemini CLI v0.61.0
Tips for getting started:
╭──────────────────────────────────────────╮
│ >   Type your message or @path/to/file   │
╰──────────────────────────────────────────╯
~/w5            no sandbox        gemini-2.5-pro
";

    fn ready(p: &mut Interactive, t0: Instant) -> Instant {
        p.start(t0);
        p.on_output(t0 + Duration::from_millis(100));
        let ready = t0 + Duration::from_millis(600);
        assert_eq!(p.deadline(), Some(ready));
        assert_eq!(p.on_deadline(ready), vec![Action::ReadScreen]);
        assert_eq!(
            p.deadline(),
            None,
            "nothing is due while the screen is read"
        );
        ready
    }

    #[test]
    fn types_when_ready_then_judges_the_answer() {
        let t0 = Instant::now();
        let mut p = Interactive::new(
            "Explain the build\n\nmore".into(),
            Some(Duration::from_secs(3)),
            &settings(),
        );
        let ready = ready(&mut p, t0);
        assert_eq!(
            p.on_screen(Ok(READY), ready),
            vec![Action::TypeLine("Explain the build\n\nmore".into())]
        );
        assert_eq!(p.deadline(), Some(ready + Duration::from_secs(3)));
        let reply = ready + Duration::from_secs(2);
        p.on_output(reply);
        assert_eq!(p.deadline(), Some(reply + Duration::from_secs(3)));
        assert_eq!(
            p.on_deadline(reply + Duration::from_secs(3)),
            vec![Action::ReadScreen]
        );
        let answered = format!(
            "{READY}\n > Explain the build\n\n ✦ The build runs cargo.\n{}",
            READY.lines().skip(2).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(
            p.on_screen(Ok(&answered), reply),
            vec![Action::Finish(Verdict::success())]
        );
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn quiet_is_not_an_answer() {
        let t0 = Instant::now();
        let mut p = Interactive::new(
            "Explain the build".into(),
            Some(Duration::from_secs(1)),
            &settings(),
        );
        let ready = ready(&mut p, t0);
        p.on_screen(Ok(READY), ready);
        assert_eq!(
            p.on_deadline(ready + Duration::from_secs(1)),
            vec![Action::ReadScreen]
        );
        // The prompt still sits in the input box: echoed, nothing new after it.
        let typed = READY.replace("Type your message or @path/to/file", "Explain the build");
        let actions = p.on_screen(Ok(&typed), ready);
        let [Action::Finish(verdict)] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert!(!verdict.ok);
        assert!(
            verdict.error.as_deref().unwrap().starts_with(
                "the agent's screen was quiet for 1s after the prompt but shows no answer to it"
            ),
            "{verdict:?}"
        );
        // The rest of a prompt of several lines, echoed after its first, is
        // no answer either.
        let mut p = Interactive::new(
            "Explain the build\n\nDetails.\n\nKeep it short.".into(),
            Some(Duration::from_secs(1)),
            &settings(),
        );
        let ready = super::tests::ready(&mut p, t0);
        p.on_screen(Ok(READY), ready);
        p.on_deadline(ready + Duration::from_secs(1));
        let echoed = format!("{READY}\n> Explain the build\n\n> Details.\n\nKeep it short.\n");
        assert!(matches!(&p.on_screen(Ok(&echoed), ready)[..], [Action::Finish(v)] if !v.ok));
        // An error drawn after the prompt, and nothing after it: that error.
        let mut p = Interactive::new(
            "Explain the build".into(),
            Some(Duration::from_secs(1)),
            &settings(),
        );
        let ready = super::tests::ready(&mut p, t0);
        p.on_screen(Ok(READY), ready);
        p.on_deadline(ready + Duration::from_secs(1));
        let failed =
            format!("{READY}\n > Explain the build\n\n✕ [API Error: fetch failed]\n{READY}");
        assert_eq!(
            p.on_screen(Ok(&failed), ready),
            vec![Action::Finish(Verdict::failure(
                "Gemini CLI cannot reach its service from worker w1: check that machine's network \
                 or proxy ([API Error: fetch failed])"
            ))]
        );
        // Nothing echoed at all.
        let mut p = Interactive::new(
            "Explain the build".into(),
            Some(Duration::from_secs(1)),
            &settings(),
        );
        let ready = super::tests::ready(&mut p, t0);
        p.on_screen(Ok(READY), ready);
        p.on_deadline(ready + Duration::from_secs(1));
        assert!(matches!(&p.on_screen(Ok(READY), ready)[..], [Action::Finish(v)] if !v.ok));
    }

    #[test]
    fn blocking_screens_fail_naming_them() {
        let t0 = Instant::now();
        let mut p = Interactive::new("x".into(), Some(Duration::from_secs(1)), &settings());
        let ready = ready(&mut p, t0);
        assert_eq!(
            p.on_screen(Ok(TRUST), ready),
            vec![Action::Finish(Verdict::failure(
                "Gemini CLI on worker w1 stopped at its folder trust screen (\"Do you trust the \
                 files in this folder?\"), which waits for a person: nothing was asked of the model"
            ))]
        );
        let mut p = Interactive::new("x".into(), Some(Duration::from_secs(1)), &settings());
        let ready = super::tests::ready(&mut p, t0);
        assert_eq!(
            p.on_screen(Ok(SIGN_IN), ready),
            vec![Action::Finish(Verdict::failure(
                "Gemini CLI is not logged in on worker w1: run `gemini` there once and log in \
                 (its screen shows \"How would you like to authenticate\")"
            ))]
        );
        // After the prompt, too (a dialog that came up late).
        let mut p = Interactive::new("x".into(), Some(Duration::from_secs(1)), &settings());
        let ready = super::tests::ready(&mut p, t0);
        p.on_screen(Ok(READY), ready);
        p.on_deadline(ready + Duration::from_secs(1));
        let waiting =
            format!("{READY}\n x\n Waiting for authentication... (Press ESC to cancel)\n");
        let actions = p.on_screen(Ok(&waiting), ready);
        assert!(
            matches!(&actions[..], [Action::Finish(v)] if v.error.as_deref().unwrap().contains("is not logged in on worker w1")),
            "{actions:?}"
        );
        // A screen that cannot be read fails the run.
        let mut p = Interactive::new("x".into(), None, &settings());
        let ready = super::tests::ready(&mut p, t0);
        assert_eq!(
            p.on_screen(Err("tmux capture-pane: no such session"), ready),
            vec![Action::Finish(Verdict::failure(
                "reading the agent's screen: tmux capture-pane: no such session"
            ))]
        );
    }

    #[test]
    fn silent_cli_and_exits() {
        let t0 = Instant::now();
        let mut p = Interactive::new("x".into(), None, &settings());
        p.start(t0);
        assert_eq!(p.on_deadline(t0 + READY_TIMEOUT), vec![Action::ReadScreen]);
        assert_eq!(
            p.on_screen(Ok(""), t0 + READY_TIMEOUT),
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

        let mut p = Interactive::new("x".into(), None, &settings());
        p.start(t0);
        assert!(
            !p.on_exit(Exit {
                code: Some(0),
                signal: None
            })
            .ok
        );
        let mut p = Interactive::new("x".into(), None, &settings());
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
