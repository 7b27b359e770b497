//! TLS for the one listener: the server's certificate, and the handshake of
//! each accepted connection. Everything TLS is here, so reloading
//! certificates or asking clients for theirs changes this file alone.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// Longest a client may take to finish its handshake; past it the
/// connection is dropped, so a silent peer holds nothing for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Terminates TLS on accepted connections.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl Tls {
    /// The certificate chain and key in PEM files.
    ///
    /// ALPN offers `h2` and `http/1.1`: gRPC clients pick h2, while MCP
    /// clients on HTTP/1.1 must find their protocol too (rustls refuses a
    /// client whose ALPN list matches none of ours, which is what tonic's own
    /// TLS, offering only h2, did to them).
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading TLS certificate {}", cert.display()))?;
        anyhow::ensure!(
            !chain.is_empty(),
            "TLS certificate {} holds no certificate",
            cert.display()
        );
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading TLS key {}", key.display()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not match")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Runs the server side of the handshake on `stream`.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
    }
}
