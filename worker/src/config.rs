//! Who the worker is and how it behaves: the command line ([`Cli`]), the
//! options the library runs with ([`WorkerOptions`]), and the runtime tuning
//! the server pushes ([`RuntimeConfig`], from `WorkerConfig`).

use std::collections::HashMap;
use std::time::Duration;

use amon_proto::client::{self, ClientTls};
use amon_proto::v1::WorkerConfig;
use anyhow::{Context, bail};

use crate::transport::InProcess;
use clap::Parser;

/// Default server address (the server's default listen address).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Default time a draining worker lets its runs finish before cancelling them.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Everything [`crate::run`] needs. Build it with [`WorkerOptions::new`] and
/// adjust the public fields, or from the command line with [`Cli::into_options`].
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Server URL, `http://host:port` (a bare `host:port` is accepted).
    pub server: String,
    /// Other servers over the same database, tried in turn (after
    /// `server`) when the one in use cannot be reached.
    pub other_servers: Vec<String>,
    /// Bearer token sent as `authorization: Bearer <token>` on every call.
    pub token: Option<String>,
    /// Stable worker id, the same across reconnects and restarts.
    pub worker_id: String,
    /// Host name reported to the server.
    pub hostname: String,
    /// Worker software version reported to the server.
    pub version: String,
    /// Most runs at once (at least 1).
    pub slots: u32,
    /// Slugs of the agents this worker runs; empty means any.
    pub agent_slugs: Vec<String>,
    /// Free-form labels reported to the server.
    pub labels: HashMap<String, String>,
    /// How long a draining worker lets its runs finish before cancelling them.
    pub drain_timeout: Duration,
    /// `tmux -L` label of the worker's own tmux server, where AI agents run.
    /// Defaults to `amon-<worker_id>`. Workers may share one: each run
    /// removes only its own session.
    pub tmux_label: Option<String>,
    /// Executable that runs the tmux panes (`__amon-pane-run`); defaults to
    /// the current executable, whose `main` must call
    /// [`crate::pane_dispatch`].
    pub pane_runner: Option<std::path::PathBuf>,
    /// The worker's own directory (what must survive a restart: the record
    /// of its runs' process groups). Defaults to
    /// `$XDG_STATE_HOME/amon-worker/<worker id>`. Two workers must not share one.
    pub data_dir: Option<std::path::PathBuf>,
    /// TLS settings for an `https://` server.
    pub tls: ClientTls,
    /// Reach a server in this same process through memory instead of
    /// `server`'s address (the server's local worker).
    pub in_process: Option<InProcess>,
    /// Directory of Fig completion specs (`<name>.json`) that discovery
    /// reads (`AgentService.DiscoverAgents`).
    pub fig_specs: Option<std::path::PathBuf>,
    /// An AI agent that reports only retryable errors (no network, a rate
    /// limit) and no progress for this long fails with the last error
    /// instead of running to its timeout; zero turns the rule off.
    pub agent_stall_after: Duration,
}

impl WorkerOptions {
    /// Options for a worker of this machine: id and hostname = the host name,
    /// one slot, any agent, no labels, no token, 5 min drain timeout.
    pub fn new(server: impl Into<String>) -> Self {
        let hostname = local_hostname();
        Self {
            server: server.into(),
            other_servers: Vec::new(),
            token: None,
            worker_id: hostname.clone(),
            hostname,
            version: env!("CARGO_PKG_VERSION").to_string(),
            slots: 1,
            agent_slugs: Vec::new(),
            labels: HashMap::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            tmux_label: None,
            pane_runner: None,
            data_dir: None,
            tls: ClientTls::default(),
            in_process: None,
            fig_specs: None,
            agent_stall_after: crate::run::agent::trouble::DEFAULT_STALL_AFTER,
        }
    }

    /// The data directory in force: the one given, else one per worker id
    /// under the user's state directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            let safe: String = self
                .worker_id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            dirs::state_dir()
                .or_else(dirs::data_local_dir)
                .unwrap_or_else(std::env::temp_dir)
                .join("amon-worker")
                .join(safe)
        })
    }
}

/// The host name of this machine, or `"localhost"` when it cannot be read.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Command line of `amon-worker`.
#[derive(Debug, Parser)]
#[command(
    name = "amon-worker",
    version,
    about = "Agent Monitor worker: connects to the server and runs executions",
    long_about = "Agent Monitor worker: connects to the server over one gRPC stream, takes \
                  assignments, runs them as child processes (each in its own process group, \
                  with a cleared environment) and streams their output back.\n\n\
                  SIGTERM or SIGINT drains the worker: it takes no more work, lets its runs \
                  finish (up to --drain-timeout, then cancels them) and exits once the server \
                  has stored everything. A second signal exits at once."
)]
pub struct Cli {
    /// Server URL: `https://host:port` (TLS), `http://host:port`, or
    /// `host:port` (plaintext). Several servers over one database,
    /// comma-separated: the worker moves to the next when its server cannot
    /// be reached, and its runs go on.
    #[arg(long, alias = "addr", env = "AMON_SERVER", default_value = DEFAULT_SERVER,
          value_delimiter = ',', num_args = 1..)]
    pub server: Vec<String>,
    /// PEM certificate of the authority that signed the server's
    /// certificate (a private CA); default: the system's roots.
    #[arg(long, env = "AMON_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// PEM client certificate, for a server that demands one (mutual TLS).
    #[arg(long, env = "AMON_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<std::path::PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "AMON_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<std::path::PathBuf>,
    /// Bearer token sent as `authorization: Bearer <token>`.
    #[arg(long, env = "AMON_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Worker name; the worker id defaults to it. Default: the host name.
    #[arg(long, env = "AMON_WORKER_NAME")]
    pub name: Option<String>,
    /// Stable worker id (kept across restarts). Default: the name.
    #[arg(long, env = "AMON_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Most runs at once.
    #[arg(long, env = "AMON_WORKER_SLOTS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub slots: u32,
    /// Label `key=value` (repeatable; in the env var, comma-separated).
    #[arg(long = "label", env = "AMON_WORKER_LABELS", value_delimiter = ',',
          value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Slug of an agent this worker runs (repeatable; in the env var,
    /// comma-separated). None means any.
    #[arg(long = "agent", env = "AMON_WORKER_AGENTS", value_delimiter = ',')]
    pub agents: Vec<String>,
    /// Time a draining worker lets its runs finish before cancelling them
    /// (`300ms`, `30s`, `5m`, `1h`; a bare number is seconds).
    #[arg(long, env = "AMON_WORKER_DRAIN_TIMEOUT", default_value = "5m",
          value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// The worker's own directory (the record of its runs' process groups,
    /// so a restart kills what a crash left). Default:
    /// `$XDG_STATE_HOME/amon-worker/<worker id>`.
    #[arg(long, env = "AMON_WORKER_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Directory of Fig completion specs (`@withfig/autocomplete`, as
    /// `<name>.json`) that discovery reads for subcommands and options.
    #[arg(long, env = "AMON_WORKER_FIG_SPECS")]
    pub fig_specs: Option<std::path::PathBuf>,
    /// An AI agent that reports only retryable errors (no network, a rate
    /// limit) and no progress for this long fails with the last of them
    /// instead of running to its timeout; `0` turns the rule off.
    #[arg(long, env = "AMON_WORKER_AGENT_STALL_TIMEOUT", default_value = "5m",
          value_parser = parse_duration)]
    pub agent_stall_timeout: Duration,
}

impl Cli {
    /// The options these arguments mean (worker id: `--worker-id`, else
    /// `--name`, else the host name).
    pub fn into_options(self) -> anyhow::Result<WorkerOptions> {
        let mut servers = self
            .server
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| client::server_url(s))
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            bail!("the server URL is empty");
        }
        let mut options = WorkerOptions::new(servers.remove(0));
        options.other_servers = servers;
        options.tls = ClientTls {
            ca_cert: self.ca_cert,
            client_cert: self.client_cert,
            client_key: self.client_key,
        };
        // Unreadable certificates stop the worker now, not at every retry.
        for server in std::iter::once(&options.server).chain(&options.other_servers) {
            client::endpoint(server, &options.tls)?;
        }
        if let Some(name) = self.name.filter(|n| !n.trim().is_empty()) {
            options.worker_id = name.trim().to_string();
        }
        if let Some(id) = self.worker_id.filter(|id| !id.trim().is_empty()) {
            options.worker_id = id.trim().to_string();
        }
        options.token = self.token.filter(|t| !t.is_empty());
        options.slots = self.slots;
        options.labels = self.labels.into_iter().collect();
        options.agent_slugs = self
            .agents
            .into_iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        options.drain_timeout = self.drain_timeout;
        options.data_dir = self.data_dir;
        options.fig_specs = self.fig_specs;
        options.agent_stall_after = self.agent_stall_timeout;
        Ok(options)
    }
}

/// `key=value` → `(key, value)`.
pub fn parse_label(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("label {raw:?} is not key=value"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("label {raw:?} has an empty key"));
    }
    Ok((key.to_string(), value.trim().to_string()))
}

/// `300ms`, `1.5s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration (like 300ms, 30s, 5m, 1h)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("{raw:?}: unknown unit {other:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{raw:?}: {e}"))
}

/// The runtime tuning in force, from the server's `WorkerConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// After this long without a word from the server, the server reaps the
    /// worker's runs.
    pub stale_window: Duration,
    /// How often to send a heartbeat.
    pub heartbeat_interval: Duration,
    /// Time between SIGTERM and SIGKILL when stopping a run.
    pub cancel_grace: Duration,
    /// Largest `LogChunk.data`, in bytes.
    pub log_chunk_bytes: usize,
}

/// Largest chunk we send whatever the server asks: stays well under gRPC's
/// default 4 MiB message limit.
const MAX_CHUNK_BYTES: usize = 1 << 20;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            stale_window: Duration::from_secs(120),
            heartbeat_interval: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(10),
            log_chunk_bytes: 65536,
        }
    }
}

impl RuntimeConfig {
    /// A server `WorkerConfig` replaces the whole config: a field that is
    /// unset (or zero / negative) takes its default. Heartbeats are at least
    /// 10 ms apart, chunks at most 1 MiB.
    pub fn from_proto(config: &WorkerConfig) -> Self {
        let default = Self::default();
        let duration = |d: Option<&prost_types::Duration>| {
            d.and_then(|d| Duration::try_from(*d).ok())
                .filter(|d| !d.is_zero())
        };
        Self {
            stale_window: duration(config.stale_window.as_ref()).unwrap_or(default.stale_window),
            heartbeat_interval: duration(config.heartbeat_interval.as_ref())
                .map(|d| d.max(Duration::from_millis(10)))
                .unwrap_or(default.heartbeat_interval),
            cancel_grace: duration(config.cancel_grace.as_ref()).unwrap_or(default.cancel_grace),
            log_chunk_bytes: usize::try_from(config.log_chunk_bytes)
                .ok()
                .filter(|&n| n > 0)
                .map(|n| n.min(MAX_CHUNK_BYTES))
                .unwrap_or(default.log_chunk_bytes),
        }
    }
}

impl RuntimeConfig {
    /// How long the worker may go without the server answering a heartbeat
    /// before it stops its runs: the stale window. The server requeues them
    /// only after the window, the stop grace and a second more, so they are
    /// gone before they start elsewhere.
    pub fn fence_after(&self) -> Duration {
        self.stale_window
    }
}

/// Short human form of a duration (`250ms`, `10s`, `1.5s`).
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        let secs = format!("{:.3}", d.as_secs_f64());
        format!("{}s", secs.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Parses a worker command line (for tests and embedders) into options.
pub fn options_from_args<I, T>(args: I) -> anyhow::Result<WorkerOptions>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
        .context("parsing the worker command line")?
        .into_options()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 12 "), Ok(Duration::from_secs(12)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(parse_label("gpu=true"), Ok(("gpu".into(), "true".into())));
        assert_eq!(parse_label("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=x").is_err());
    }

    #[test]
    fn worker_id_derivation() {
        let o = options_from_args(["amon-worker", "--server", "h:1"]).unwrap();
        assert_eq!(o.worker_id, local_hostname());
        assert_eq!(o.server, "http://h:1");
        let o = options_from_args(["amon-worker", "--name", "builder"]).unwrap();
        assert_eq!(o.worker_id, "builder");
        let o =
            options_from_args(["amon-worker", "--name", "builder", "--worker-id", "w-7"]).unwrap();
        assert_eq!(o.worker_id, "w-7");
        let o = options_from_args([
            "amon-worker",
            "--label",
            "gpu=true",
            "--label",
            "zone=eu",
            "--agent",
            "git",
            "--slots",
            "3",
            "--drain-timeout",
            "2s",
        ])
        .unwrap();
        assert_eq!(o.labels.get("gpu").map(String::as_str), Some("true"));
        assert_eq!(o.labels.len(), 2);
        assert_eq!(o.agent_slugs, vec!["git".to_string()]);
        assert_eq!(o.slots, 3);
        assert_eq!(o.drain_timeout, Duration::from_secs(2));
        assert!(options_from_args(["amon-worker", "--slots", "0"]).is_err());
    }

    #[test]
    fn several_servers() {
        let o = options_from_args(["amon-worker", "--server", "a:1,https://b:2/"]).unwrap();
        assert_eq!(o.server, "http://a:1");
        assert_eq!(o.other_servers, vec!["https://b:2".to_string()]);
        let o = options_from_args(["amon-worker", "--server", "a:1", "--server", "c:3"]).unwrap();
        assert_eq!(o.other_servers, vec!["http://c:3".to_string()]);
        assert!(options_from_args(["amon-worker", "--server", ","]).is_err());
    }

    #[test]
    fn server_flag_spellings() {
        // `--addr` is the `amon` CLI's former spelling, accepted here too.
        for flag in ["--server", "--addr"] {
            let o = options_from_args(["amon-worker", flag, "h:2"]).unwrap();
            assert_eq!(o.server, "http://h:2", "{flag}");
        }
    }

    #[test]
    fn runtime_config_defaults_and_overrides() {
        let c = RuntimeConfig::from_proto(&WorkerConfig::default());
        assert_eq!(c, RuntimeConfig::default());
        let c = RuntimeConfig::from_proto(&WorkerConfig {
            stale_window: None,
            heartbeat_interval: Some(prost_types::Duration {
                seconds: 0,
                nanos: 100_000_000,
            }),
            cancel_grace: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
            log_chunk_bytes: 64,
        });
        assert_eq!(c.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(c.cancel_grace, Duration::from_secs(2));
        assert_eq!(c.log_chunk_bytes, 64);
        let c = RuntimeConfig::from_proto(&WorkerConfig {
            log_chunk_bytes: i32::MAX,
            ..Default::default()
        });
        assert_eq!(c.log_chunk_bytes, MAX_CHUNK_BYTES);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(10)), "10s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }
}
