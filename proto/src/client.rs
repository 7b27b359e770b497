//! How a client (the `amon` CLI, `amon-worker`) reaches the server: the
//! server URL, TLS, and a failed connection told in words a person can act
//! on. One place for both binaries, so they accept the same URLs, trust the
//! same roots and explain the same failures the same way.
//!
//! TLS is rustls (through tonic): the system's roots by default, or the
//! certificate authority given with `--ca-cert` (a private CA) instead of
//! them; a client certificate and key for servers that demand one (mutual
//! TLS).

use std::{
    error::Error as StdError,
    fmt,
    path::{Path, PathBuf},
};

use rustls::{
    AlertDescription, CertificateError, pki_types::CertificateDer, pki_types::pem::PemObject,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The TLS settings of a client; all optional. They apply to `https://`
/// URLs only.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM certificate(s) of the authority that signed the server's
    /// certificate; replaces the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM certificate chain presented to a server that demands one.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl ClientTls {
    fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }
}

/// A client setting that cannot work (a bad URL, an unreadable certificate),
/// found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError(pub String);

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for SettingError {}

/// `host:port` → `http://host:port`; `http://…` and `https://…` are kept
/// (without a trailing `/`); any other scheme is refused.
pub fn server_url(raw: &str) -> Result<String, SettingError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(SettingError("the server URL is empty".into()));
    }
    match raw.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.trim_end_matches('/');
            match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" if !rest.is_empty() => Ok(format!("{scheme}://{rest}")),
                "http" | "https" => Err(SettingError(format!("'{raw}': the host is missing"))),
                _ => Err(SettingError(format!(
                    "'{raw}': unsupported scheme (use https://HOST:PORT, http://HOST:PORT or HOST:PORT)"
                ))),
            }
        }
        None => Ok(format!("http://{}", raw.trim_end_matches('/'))),
    }
}

/// Whether `url` (as [`server_url`] returns it) asks for TLS.
pub fn is_tls(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The endpoint of `url` (as [`server_url`] returns it) with `tls`: TLS for
/// `https://`, with the given CA or else the system's roots; plaintext for
/// `http://`, where TLS settings are refused rather than ignored.
///
/// Timeouts and keep-alives are the caller's to add.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, SettingError> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| SettingError(format!("bad server URL '{url}': {e}")))?;
    if !is_tls(url) {
        if !tls.is_empty() {
            return Err(SettingError(format!(
                "TLS settings (--ca-cert, --client-cert, --client-key) were given but '{url}' is \
                 plaintext: use https://"
            )));
        }
        return Ok(endpoint);
    }
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca_cert {
        Some(path) => config.ca_certificate(Certificate::from_pem(read_certificates(path, "CA")?)),
        None => config.with_native_roots(),
    };
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let cert = read_certificates(cert, "client")?;
            let key = std::fs::read(key).map_err(|e| {
                SettingError(format!("reading the client key {}: {e}", key.display()))
            })?;
            config = config.identity(Identity::from_pem(cert, key));
        }
        (None, None) => {}
        _ => {
            return Err(SettingError(
                "--client-cert and --client-key go together".into(),
            ));
        }
    }
    endpoint.tls_config(config).map_err(|e| {
        SettingError(format!(
            "TLS settings for '{url}': {}",
            chain(&e).replace(
                "native certs not found",
                "no system CA certificates found (give one with --ca-cert)"
            )
        ))
    })
}

/// The PEM file at `path`, checked to hold at least one certificate (a
/// file holding none would otherwise trust nothing, silently).
fn read_certificates(path: &Path, what: &str) -> Result<Vec<u8>, SettingError> {
    let pem = std::fs::read(path).map_err(|e| {
        SettingError(format!(
            "reading the {what} certificate {}: {e}",
            path.display()
        ))
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            SettingError(format!(
                "the {what} certificate {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(SettingError(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(pem)
}

/// A failed connection or call, in words: what went wrong with TLS when it
/// was TLS (an unknown CA, a name mismatch, an expired certificate, a
/// plaintext server, a client certificate demanded or refused), else the
/// chain of causes.
pub fn explain(error: &(dyn StdError + 'static)) -> String {
    tls_failure(error).unwrap_or_else(|| chain(error))
}

/// What went wrong with TLS, when that is why `error` happened.
pub fn tls_failure(error: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(tls) = find_tls_error(error) {
        return Some(explain_tls(tls));
    }
    // An alert that arrives after the handshake (TLS 1.3 servers check a
    // client certificate then) reaches us through h2, which keeps an I/O
    // error's text only: read the alert's name from it.
    let text = chain(error);
    let alert = text.split("received fatal alert: ").nth(1)?;
    let name: String = alert
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let alert = [
        AlertDescription::CertificateRequired,
        AlertDescription::HandshakeFailure,
        AlertDescription::UnknownCA,
        AlertDescription::BadCertificate,
        AlertDescription::CertificateExpired,
        AlertDescription::CertificateUnknown,
        AlertDescription::CertificateRevoked,
        AlertDescription::AccessDenied,
    ]
    .into_iter()
    .find(|alert| format!("{alert:?}") == name)?;
    Some(explain_tls(&rustls::Error::AlertReceived(alert)))
}

/// The rustls error among `error`'s causes. An `io::Error` hides the error
/// it wraps from `source()` (it returns that error's own source), so each
/// one is opened as well.
fn find_tls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = current.source();
    }
    None
}

fn explain_tls(error: &rustls::Error) -> String {
    use rustls::Error as E;
    match error {
        E::InvalidCertificate(certificate) => explain_certificate(certificate),
        E::AlertReceived(AlertDescription::CertificateRequired)
        | E::AlertReceived(AlertDescription::HandshakeFailure) => {
            "the server demands a client certificate (give one with --client-cert and --client-key)"
                .into()
        }
        E::AlertReceived(
            alert @ (AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied),
        ) => format!("the server refused our client certificate ({alert:?})"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "the server did not answer in TLS: it serves plaintext at this address (use http://)"
                .into()
        }
        other => format!("TLS: {other}"),
    }
}

fn explain_certificate(error: &CertificateError) -> String {
    use CertificateError as C;
    match error {
        C::UnknownIssuer => "the server's certificate is not signed by a trusted certificate \
                             authority (give the CA's certificate with --ca-cert or AMON_CA_CERT)"
            .into(),
        C::NotValidForName => {
            "the server's certificate is not valid for the name in the URL".into()
        }
        C::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the server's certificate is not valid for the name {} (it names {}); \
             connect by one of its names",
            expected.to_str(),
            if presented.is_empty() {
                "none".to_string()
            } else {
                presented
                    .iter()
                    .map(|name| bare_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        C::Expired => "the server's certificate has expired".into(),
        C::ExpiredContext { not_after, .. } => format!(
            "the server's certificate expired on {}",
            utc(not_after.as_secs())
        ),
        C::NotValidYet => "the server's certificate is not valid yet".into(),
        C::NotValidYetContext { not_before, .. } => format!(
            "the server's certificate is not valid before {} (is this machine's clock right?)",
            utc(not_before.as_secs())
        ),
        other => format!("the server's certificate was refused: {other}"),
    }
}

/// `localhost` of `DnsName("localhost")`, `10.0.0.1` of
/// `IpAddress(10.0.0.1)` (rustls gives the names in their Debug form); any
/// other form unchanged.
fn bare_name(presented: &str) -> &str {
    match (presented.find('('), presented.strip_suffix(')')) {
        (Some(open), Some(inner)) => inner[open + 1..].trim_matches('"'),
        _ => presented,
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{seconds} s after the epoch"))
}

/// `error: cause: cause…`, each cause once (tonic and hyper often repeat
/// their source in their own message).
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(server_url("h:1").unwrap(), "http://h:1");
        assert_eq!(server_url(" http://h:1/ ").unwrap(), "http://h:1");
        assert_eq!(server_url("https://h:1").unwrap(), "https://h:1");
        assert_eq!(server_url("HTTPS://h:1").unwrap(), "HTTPS://h:1");
        assert!(is_tls("HTTPS://h:1"));
        assert!(!is_tls("http://h:1"));
        assert!(server_url("").is_err());
        assert!(server_url("https://").is_err());
        assert!(
            server_url("ftp://h:1")
                .unwrap_err()
                .0
                .contains("unsupported scheme")
        );
    }

    #[test]
    fn tls_settings_on_a_plaintext_url_are_refused() {
        let tls = ClientTls {
            ca_cert: Some("/nonexistent.pem".into()),
            ..Default::default()
        };
        let err = endpoint("http://h:1", &tls).unwrap_err();
        assert!(err.0.contains("use https://"), "{err}");
    }

    #[test]
    fn unreadable_or_empty_certificates_are_named() {
        let dir = std::env::temp_dir().join(format!("amon-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let tls = |path: &Path| ClientTls {
            ca_cert: Some(path.to_path_buf()),
            ..Default::default()
        };
        let err = endpoint("https://h:1", &tls(&empty)).unwrap_err();
        assert!(err.0.contains("holds no PEM certificate"), "{err}");
        let err = endpoint("https://h:1", &tls(&dir.join("missing.pem"))).unwrap_err();
        assert!(err.0.contains("reading the CA certificate"), "{err}");
        let half = ClientTls {
            client_cert: Some(empty.clone()),
            ca_cert: None,
            client_key: None,
        };
        assert!(endpoint("https://h:1", &half).is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn tls_failures_are_told_in_words() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(explain(&io).contains("--ca-cert"), "{}", explain(&io));
        let expired = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_700_000_000,
            )),
            not_after: rustls::pki_types::UnixTime::since_unix_epoch(
                std::time::Duration::from_secs(1_600_000_000),
            ),
        });
        assert_eq!(
            explain(&expired),
            "the server's certificate expired on 2020-09-13 12:26:40 UTC"
        );
        let required = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(explain(&required).contains("--client-cert"));
        // As h2 passes it on: the text only.
        let flattened = std::io::Error::other("connection error: received fatal alert: UnknownCA");
        assert!(
            explain(&flattened).contains("refused our client certificate"),
            "{}",
            explain(&flattened)
        );
        assert_eq!(bare_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(bare_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(bare_name("DirectoryName"), "DirectoryName");
        let plain = std::io::Error::other("connection refused");
        assert_eq!(explain(&plain), "connection refused");
    }
}
