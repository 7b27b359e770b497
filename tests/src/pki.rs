//! Certificates made by a test: a certificate authority, server and client
//! certificates it signs (or that another CA signs, or that expired), as
//! PEM files in a temporary directory, the way a team's private CA would
//! hand them out.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};

/// A certificate authority whose certificate and keys live in `dir`.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    name: String,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// The certificate file as a `&str` argument.
    pub fn cert_arg(&self) -> &str {
        self.cert.to_str().expect("UTF-8 path")
    }

    /// The key file as a `&str` argument.
    pub fn key_arg(&self) -> &str {
        self.key.to_str().expect("UTF-8 path")
    }
}

/// How long a leaf certificate is valid.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// 2020 to 4000.
    Current,
    /// 2001 to 2002: expired long ago.
    Expired,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        std::fs::write(dir.join(format!("{name}-ca.pem")), issuer.pem()).expect("writing the CA");
        Self {
            issuer,
            dir: dir.to_path_buf(),
            name: name.to_owned(),
        }
    }

    /// The CA's certificate file.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// The CA's certificate file as a `&str` argument.
    pub fn cert_arg(&self) -> String {
        self.cert_path().to_str().expect("UTF-8 path").to_owned()
    }

    /// A server certificate for `names` (DNS names or IP addresses), as
    /// `<file>.pem` and `<file>.key` in the CA's directory.
    pub fn server_cert(&self, file: &str, names: &[&str], validity: Validity) -> CertFiles {
        self.leaf(file, names, validity, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate named `name`.
    pub fn client_cert(&self, file: &str, name: &str) -> CertFiles {
        self.leaf(
            file,
            &[name],
            Validity::Current,
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn leaf(
        &self,
        file: &str,
        names: &[&str],
        validity: Validity,
        usage: ExtendedKeyUsagePurpose,
    ) -> CertFiles {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("certificate names");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (date_time_ymd(2020, 1, 1), date_time_ymd(4000, 1, 1)),
            Validity::Expired => (date_time_ymd(2001, 1, 1), date_time_ymd(2002, 1, 1)),
        };
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("signing");
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("writing a certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("writing a key");
        files
    }
}
