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

    /// Directory for the embedded SQLite database and execution logs.
    /// Defaults to `$XDG_DATA_HOME/amon` (usually `~/.local/share/amon`).
    #[arg(long, env = "AMON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl ServerConfig {
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
    /// "postgres" or "sqlite", for logs.
    pub fn database_backend_name(&self) -> &'static str {
        if self.database_url().starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    }
}
