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

    /// Allow listening beyond loopback without TLS or without both tokens
    /// (the network is trusted).
    #[arg(long)]
    pub insecure: bool,

    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, env = "AMON_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "AMON_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM certificate(s) of the authority whose client certificates are
    /// accepted: every client and worker must then present one (mutual TLS).
    #[arg(long, env = "AMON_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Where execution logs are stored. `database` (PostgreSQL only, and
    /// the default there): every server over the database reads every log,
    /// live, and a log outlives the server that received it. `files`: one
    /// file per run in the data directory (SQLite's only choice; for a
    /// single PostgreSQL server, the faster one: see BENCHMARKS.md, Logs).
    #[arg(long, env = "AMON_LOG_STORE", value_enum)]
    pub log_store: Option<LogStoreKind>,

    /// The previous spelling of `--log-store database`, still accepted.
    #[arg(
        long,
        env = "AMON_LOGS_IN_DATABASE",
        hide = true,
        conflicts_with = "log_store"
    )]
    pub logs_in_database: bool,

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
    /// loopback needs both tokens (else anyone who reaches it runs
    /// commands) and TLS (else the tokens cross the network readable),
    /// unless `--insecure` says the network is trusted.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if self.listen.ip().is_loopback() || self.insecure {
            return Ok(());
        }
        if !self.tokens().all_required() {
            anyhow::bail!(
                "refusing to listen on {} without --worker-token and --client-token \
                 (anyone who can reach it could run commands); set both, or pass --insecure",
                self.listen
            );
        }
        if self.tls_cert.is_none() {
            anyhow::bail!(
                "refusing to listen on {} in plaintext (the tokens would cross the network \
                 readable); serve TLS with --tls-cert and --tls-key, or pass --insecure if the \
                 network is trusted",
                self.listen
            );
        }
        Ok(())
    }

    /// The TLS files in force, if TLS is on.
    pub fn tls_files(&self) -> Option<crate::http::tls::TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::http::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        }
    }

    /// The data directory in force: the configured one, else the user's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// Where logs are stored: as asked, else in the database on PostgreSQL
    /// (so a second server over it works as it starts) and in files on
    /// SQLite.
    pub fn log_store(&self, postgres: bool) -> LogStoreKind {
        match (self.log_store, self.logs_in_database) {
            (Some(kind), _) => kind,
            (None, true) => LogStoreKind::Database,
            (None, false) if postgres => LogStoreKind::Database,
            (None, false) => LogStoreKind::Files,
        }
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

/// Where execution logs are stored (`--log-store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogStoreKind {
    /// One file per run in the data directory.
    Files,
    /// In the PostgreSQL database, in the chunks the workers sent.
    Database,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ServerConfig {
        let mut argv = vec!["amon-server"];
        argv.extend_from_slice(args);
        ServerConfig::try_parse_from(argv).expect("valid arguments")
    }

    const TOKENS: [&str; 4] = ["--worker-token", "w", "--client-token", "c"];
    const TLS: [&str; 4] = ["--tls-cert", "c.pem", "--tls-key", "k.pem"];

    #[test]
    fn logs_go_to_the_database_on_postgresql_unless_told() {
        let default = parse(&[]);
        assert_eq!(default.log_store(true), LogStoreKind::Database);
        assert_eq!(default.log_store(false), LogStoreKind::Files);
        let files = parse(&["--log-store", "files"]);
        assert_eq!(files.log_store(true), LogStoreKind::Files);
        let older = parse(&["--logs-in-database"]);
        assert_eq!(older.log_store(false), LogStoreKind::Database);
        let both = ["amon-server", "--logs-in-database", "--log-store", "files"];
        assert!(ServerConfig::try_parse_from(both).is_err());
    }

    #[test]
    fn loopback_needs_neither_tokens_nor_tls() {
        assert!(parse(&["--listen", "127.0.0.1:1"]).check_exposure().is_ok());
        assert!(parse(&["--listen", "[::1]:1"]).check_exposure().is_ok());
    }

    #[test]
    fn beyond_loopback_needs_tokens_and_tls_unless_insecure() {
        let open = parse(&["--listen", "0.0.0.0:1"]).check_exposure();
        assert!(open.unwrap_err().to_string().contains("--worker-token"));

        let mut args = vec!["--listen", "0.0.0.0:1"];
        args.extend(TOKENS);
        let plaintext = parse(&args).check_exposure().unwrap_err().to_string();
        assert!(plaintext.contains("in plaintext"), "{plaintext}");
        assert!(plaintext.contains("--tls-cert"), "{plaintext}");
        assert!(plaintext.contains("--insecure"), "{plaintext}");

        args.extend(TLS);
        assert!(parse(&args).check_exposure().is_ok());

        let mut tls_only = vec!["--listen", "0.0.0.0:1"];
        tls_only.extend(TLS);
        assert!(parse(&tls_only).check_exposure().is_err());

        for trusted in [
            vec!["--listen", "0.0.0.0:1", "--insecure"],
            [
                vec!["--listen", "10.0.0.1:1", "--insecure"],
                TOKENS.to_vec(),
            ]
            .concat(),
        ] {
            assert!(parse(&trusted).check_exposure().is_ok(), "{trusted:?}");
        }
    }

    #[test]
    fn a_client_ca_needs_a_certificate() {
        assert!(
            ServerConfig::try_parse_from(["amon-server", "--tls-client-ca", "ca.pem"]).is_err()
        );
        let mut args = TLS.to_vec();
        args.extend(["--tls-client-ca", "ca.pem"]);
        let files = parse(&args).tls_files().expect("TLS on");
        assert_eq!(
            files.client_ca.as_deref(),
            Some(std::path::Path::new("ca.pem"))
        );
    }
}
