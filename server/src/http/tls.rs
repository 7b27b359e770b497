//! TLS for the one listener: the server's certificate (reloaded on demand,
//! so a renewed certificate needs no restart), the client certificates it
//! may demand (mutual TLS), and the handshake of each accepted connection.
//! Everything TLS is here.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// Longest a client may take to finish its handshake; past it the
/// connection is dropped, so a silent peer holds nothing for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of every TLS handshake record (a ClientHello): how a
/// plaintext client on the TLS port is told apart before any handshake.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Where the server's TLS material lives; read at start and on every
/// reload.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's first.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM certificates of the authorities whose client certificates are
    /// accepted; with it every client must present one (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Terminates TLS on accepted connections. Clones share one configuration,
/// which [`Tls::reload`] replaces for the connections accepted after it
/// (open connections keep the certificate they were served).
#[derive(Clone)]
pub struct Tls {
    files: Arc<TlsFiles>,
    current: Arc<RwLock<Loaded>>,
}

/// One reading of the files.
#[derive(Clone)]
struct Loaded {
    config: Arc<ServerConfig>,
    /// With a client CA: the verifier that decides, once the handshake is
    /// done, whether the client's certificate lets it in.
    clients: Option<Arc<dyn ClientCertVerifier>>,
}

/// What a new connection turned out to be.
pub enum Accepted {
    /// A TLS client, handshake done.
    Tls(Box<TlsStream<TcpStream>>),
    /// A client speaking plaintext to the TLS port: it is answered with an
    /// error telling it to use `https://` rather than cut off with nothing.
    Plaintext(TcpStream),
    /// A TLS client without an acceptable client certificate (mutual TLS):
    /// it is answered with the reason, and nothing it asks is done.
    Unauthenticated(Box<TlsStream<TcpStream>>, String),
}

impl Tls {
    /// Reads the files; fails with what is wrong in them.
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let loaded = load(&files)?;
        Ok(Self {
            files: Arc::new(files),
            current: Arc::new(RwLock::new(loaded)),
        })
    }

    /// Reads the files again and serves what they hold from now on. On
    /// failure (a half-written file, a key that does not match) the
    /// configuration in force is kept and the error returned.
    pub fn reload(&self) -> anyhow::Result<()> {
        let loaded = load(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// Runs the server side of the handshake on `stream`, unless the client
    /// speaks plaintext.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<Accepted> {
        let Loaded { config, clients } = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio::time::timeout(HANDSHAKE_TIMEOUT, async move {
            let mut first = [0u8; 1];
            let read = stream.peek(&mut first).await?;
            if read == 1 && first[0] != TLS_HANDSHAKE_RECORD {
                return Ok(Accepted::Plaintext(stream));
            }
            let stream = Box::new(TlsAcceptor::from(config).accept(stream).await?);
            if let Some(clients) = clients
                && let Err(why) = check_client(clients.as_ref(), &stream)
            {
                return Ok(Accepted::Unauthenticated(stream, why));
            }
            Ok(Accepted::Tls(stream))
        })
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
    }
}

/// The rustls configuration the files describe.
///
/// ALPN offers `h2` and `http/1.1`: gRPC clients pick h2, while MCP clients
/// on HTTP/1.1 must find their protocol too (rustls refuses a client whose
/// ALPN list matches none of ours, which is what tonic's own TLS, offering
/// only h2, did to them).
fn load(files: &TlsFiles) -> anyhow::Result<Loaded> {
    let chain = read_certificates(&files.cert, "TLS certificate")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading TLS key {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let mut clients = None;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(path, "client CA certificate")? {
                roots.add(certificate).with_context(|| {
                    format!("the client CA certificate {} is not usable", path.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("the client certificate verifier")?;
            clients = Some(verifier.clone());
            builder.with_client_cert_verifier(Arc::new(DecideAfterHandshake(verifier)))
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        clients,
    })
}

/// Whether the client of a finished handshake presented a certificate
/// `clients` accepts; else why not, in words for the client.
fn check_client(
    clients: &dyn ClientCertVerifier,
    stream: &TlsStream<TcpStream>,
) -> Result<(), String> {
    let (_, connection) = stream.get_ref();
    let Some((end_entity, intermediates)) = connection
        .peer_certificates()
        .and_then(|chain| chain.split_first())
    else {
        return Err(
            "this server demands a client certificate signed by its client CA: \
                    give one with --client-cert and --client-key"
                .into(),
        );
    };
    clients
        .verify_client_cert(end_entity, intermediates, UnixTime::now())
        .map(|_| ())
        .map_err(|e| {
            format!(
                "the client certificate was refused ({e}): it must be signed by the server's \
                 client CA"
            )
        })
}

/// Asks for a client certificate and checks the client holds its key, but
/// lets the handshake finish whatever the certificate is; [`Tls::accept`]
/// then decides with the real verifier and answers a refused client with
/// the reason (as web servers do: "No required SSL certificate was sent").
/// Failing the handshake instead would reach a TLS 1.3 client as an alert
/// after its handshake, which its HTTP/2 layer reports as a bare
/// "connection closed".
#[derive(Debug)]
struct DecideAfterHandshake(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for DecideAfterHandshake {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The certificates of a PEM file; at least one.
fn read_certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading {what} {}", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{what} {} holds no certificate",
        path.display()
    );
    Ok(certificates)
}
