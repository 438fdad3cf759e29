//! A throw-away PKI for TLS tests, made fresh with `rcgen` (ECDSA P-256):
//! a test CA, a good leaf for `localhost` and `127.0.0.1`, an expired leaf,
//! a leaf for the wrong host, a leaf signed by a CA that nobody trusts, a
//! CA:FALSE certificate used as an issuer, and a TLS client certificate
//! issued by the test CA.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Which certificate a TLS server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Valid leaf for `localhost` and `127.0.0.1`, issued by the test CA.
    Good,
    /// Same names, issued by the test CA, expired in 2001.
    Expired,
    /// Issued by the test CA for `wrong.example.invalid` only.
    WrongHost,
    /// For `localhost`/`127.0.0.1`, issued by a CA that is never trusted.
    UnknownCa,
    /// For `localhost`/`127.0.0.1`, issued by a CA:FALSE certificate that the
    /// test CA issued (an intermediate that may not sign).
    NotCaIssuer,
}

impl CertKind {
    /// Parses `good`, `expired`, `wrong-host`, `unknown-ca`, `not-ca-issuer`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "good" => Self::Good,
            "expired" => Self::Expired,
            "wrong-host" => Self::WrongHost,
            "unknown-ca" => Self::UnknownCa,
            "not-ca-issuer" => Self::NotCaIssuer,
            _ => return None,
        })
    }
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 DER of the leaf key.
    pub key_der: Vec<u8>,
}

impl Identity {
    /// A rustls server configuration (ring provider, TLS 1.2 and 1.3).
    ///
    /// # Errors
    /// When rustls refuses the key or chain.
    pub fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .map_err(io::Error::other)?;
        Ok(Arc::new(cfg))
    }
}

/// The whole test PKI.
#[derive(Debug)]
pub struct TestPki {
    /// PEM of the trusted test CA (what `cafile=` points at).
    pub ca_pem: String,
    /// PEM of the CA that is never trusted.
    pub unknown_ca_pem: String,
    good: Identity,
    expired: Identity,
    wrong_host: Identity,
    unknown_ca: Identity,
    not_ca_issuer: Identity,
    client: Identity,
}

fn err(e: rcgen::Error) -> io::Error {
    io::Error::other(e)
}

fn ca_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    Ok(p)
}

fn leaf(
    names: &[&str],
    issuer: &rcgen::Issuer<'_, KeyPair>,
    chain_tail: &[CertificateDer<'static>],
    expired: bool,
) -> Result<Identity, rcgen::Error> {
    let mut p = CertificateParams::new(names.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())?;
    p.distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    if expired {
        p.not_before = date_time_ymd(2000, 1, 1);
        p.not_after = date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    let mut chain = vec![cert.der().clone()];
    chain.extend_from_slice(chain_tail);
    Ok(Identity {
        chain,
        key_der: key.serialize_der(),
    })
}

const LOCAL: &[&str] = &["localhost", "127.0.0.1"];

/// A TLS client certificate (clientAuth) for `name`, issued by `issuer`.
fn client_leaf(name: &str, issuer: &rcgen::Issuer<'_, KeyPair>) -> Result<Identity, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    Ok(Identity {
        chain: vec![cert.der().clone()],
        key_der: key.serialize_der(),
    })
}

impl TestPki {
    /// Makes a fresh PKI (a few milliseconds).
    ///
    /// # Errors
    /// When key generation or signing fails.
    pub fn generate() -> io::Result<Self> {
        let ca = CertifiedIssuer::self_signed(
            ca_params("pam_yubiotp test CA").map_err(err)?,
            KeyPair::generate().map_err(err)?,
        )
        .map_err(err)?;
        let unknown = CertifiedIssuer::self_signed(
            ca_params("untrusted test CA").map_err(err)?,
            KeyPair::generate().map_err(err)?,
        )
        .map_err(err)?;
        // A CA:FALSE certificate from the test CA, then a leaf "issued" by it.
        let mut not_ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        not_ca.is_ca = IsCa::ExplicitNoCa;
        not_ca
            .distinguished_name
            .push(DnType::CommonName, "not a CA");
        let not_ca = CertifiedIssuer::signed_by(not_ca, KeyPair::generate().map_err(err)?, &ca)
            .map_err(err)?;
        let not_ca_der = not_ca.der().clone();
        Ok(Self {
            ca_pem: ca.pem(),
            unknown_ca_pem: unknown.pem(),
            good: leaf(LOCAL, &ca, &[], false).map_err(err)?,
            expired: leaf(LOCAL, &ca, &[], true).map_err(err)?,
            wrong_host: leaf(&["wrong.example.invalid"], &ca, &[], false).map_err(err)?,
            unknown_ca: leaf(LOCAL, &unknown, &[], false).map_err(err)?,
            not_ca_issuer: leaf(LOCAL, &not_ca, &[not_ca_der], false).map_err(err)?,
            client: client_leaf("pam_yubiotp test client", &ca).map_err(err)?,
        })
    }

    /// The identity a server of `kind` presents.
    #[must_use]
    pub fn identity(&self, kind: CertKind) -> &Identity {
        match kind {
            CertKind::Good => &self.good,
            CertKind::Expired => &self.expired,
            CertKind::WrongHost => &self.wrong_host,
            CertKind::UnknownCa => &self.unknown_ca,
            CertKind::NotCaIssuer => &self.not_ca_issuer,
        }
    }

    /// A client certificate (clientAuth) issued by the test CA.
    #[must_use]
    pub fn client_identity(&self) -> &Identity {
        &self.client
    }

    /// Writes `ca.pem` (trusted test CA) and `unknown-ca.pem` into `dir`;
    /// returns the path of `ca.pem`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_ca(&self, dir: &Path) -> io::Result<PathBuf> {
        fs::create_dir_all(dir)?;
        let ca = dir.join("ca.pem");
        fs::write(&ca, &self.ca_pem)?;
        fs::write(dir.join("unknown-ca.pem"), &self.unknown_ca_pem)?;
        Ok(ca)
    }
}
