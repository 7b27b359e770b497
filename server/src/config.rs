//! Command-line and environment configuration of `amon-server`.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

/// Agent Monitor server: the task board, the execution queue and the worker hub, over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "amon-server", version, about)]
pub struct ServerConfig {
    /// Address to listen on. Port 0 picks a free port (printed on stdout).
    #[arg(long, env = "AMON_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Database URL: `postgres://…` for PostgreSQL or `sqlite://…` for a SQLite
    /// file. Without it, a SQLite database in the data directory is used.
    #[arg(long, env = "AMON_DATABASE_URL")]
    pub database_url: Option<String>,

    /// URL of the Agent Monitor MCP server that agents with `mcp_enabled`
    /// are launched to reach. Defaults to `/mcp` on this server's address
    /// (its host name when it listens on every interface).
    #[arg(long, env = "AMON_MCP_URL")]
    pub mcp_url: Option<String>,

    /// Directory for the embedded SQLite database and execution logs.
    /// Defaults to `$XDG_DATA_HOME/amon` (usually `~/.local/share/amon`).
    #[arg(long, env = "AMON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Token workers must present (`authorization: Bearer …`) to connect.
    #[arg(long, env = "AMON_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,

    /// Token clients must present to call the API (health and reflection stay open).
    #[arg(long, env = "AMON_CLIENT_TOKEN", hide_env_values = true)]
    pub client_token: Option<String>,

    /// Allow listening beyond loopback without both tokens.
    #[arg(long)]
    pub insecure: bool,

    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, env = "AMON_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "AMON_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Do not start the in-process local worker.
    #[arg(long, env = "AMON_NO_LOCAL_WORKER")]
    pub no_local_worker: bool,

    /// Slots of the in-process local worker.
    #[arg(long, env = "AMON_LOCAL_WORKER_SLOTS", default_value_t = 4)]
    pub local_worker_slots: u32,
}

impl ServerConfig {
    /// The tokens in force.
    pub fn tokens(&self) -> crate::auth::Tokens {
        let non_empty = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
        crate::auth::Tokens {
            worker: non_empty(&self.worker_token),
            client: non_empty(&self.client_token),
        }
    }

    /// Refuses settings that would expose an open server: listening beyond
    /// loopback needs both tokens, unless `--insecure` says otherwise.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && !self.tokens().all_required() && !self.insecure {
            anyhow::bail!(
                "refusing to listen on {} without --worker-token and --client-token \
                 (anyone who can reach it could run commands); set both, or pass --insecure",
                self.listen
            );
        }
        Ok(())
    }

    /// The data directory in force: the configured one, else the user's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// The database URL in force: the configured one, else `amon.db` in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir().join("amon.db").display()
            ),
        }
    }
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|dir| dir.join("amon"))
        .unwrap_or_else(|| PathBuf::from("amon-data"))
}

impl ServerConfig {
    /// The MCP URL given, else `/mcp` on the address the server is bound to.
    pub fn mcp_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = self.mcp_url.clone().filter(|u| !u.is_empty()) {
            return url;
        }
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        if bound.ip().is_unspecified() {
            let host = amon_worker::config::local_hostname();
            format!("{scheme}://{host}:{}/mcp", bound.port())
        } else {
            format!("{scheme}://{bound}/mcp")
        }
    }

    /// The `Host` values `/mcp` accepts, or `None` for any.
    ///
    /// rmcp refuses other hosts than loopback ones by default, against DNS
    /// rebinding: a web page whose name resolves to 127.0.0.1 must not reach
    /// an open local server. With a client token every caller of `/mcp`
    /// needs a token such a page cannot have, so any host is accepted
    /// (workers reach the server by whatever name their network gives it).
    /// Without one, the loopback names, the host of the MCP URL agents are
    /// given, the address listened on and this machine's name.
    pub fn mcp_allowed_hosts(&self, bound: SocketAddr) -> Option<Vec<String>> {
        if self.tokens().client.is_some() {
            return None;
        }
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
            .map(String::from)
            .to_vec();
        let url = self.mcp_url(bound);
        if let Some(authority) = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
        {
            let host = match authority.rsplit_once(':') {
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
                _ => authority,
            };
            hosts.push(host.to_owned());
        }
        hosts.push(bound.ip().to_string());
        hosts.push(amon_worker::config::local_hostname());
        hosts.sort();
        hosts.dedup();
        Some(hosts)
    }

    /// "postgres" or "sqlite", for logs.
    pub fn database_backend_name(&self) -> &'static str {
        if self.database_url().starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    }
}
