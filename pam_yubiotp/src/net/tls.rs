//! The rustls client configuration: ring provider (never a process-wide
//! default), TLS 1.2 and 1.3, trust anchors only from a fixed system path
//! plus `cafile`/`capath` — never from `SSL_CERT_FILE`/`SSL_CERT_DIR` — and
//! no key log (`SSLKEYLOGFILE` is ignored).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{ClientConfig, RootCertStore};

use crate::fs_policy::{self, FilePolicy, Owner};

/// The system trust store (Debian's `ca-certificates` bundle).
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Largest PEM file read for trust anchors.
const MAX_PEM: u64 = 4 << 20;
/// Most files read from `capath`.
const MAX_CAPATH_FILES: usize = 4096;

/// What went into the trust store (for a debug line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootsReport {
    /// Anchors added from the system bundle.
    pub system: usize,
    /// Anchors added from `cafile`.
    pub cafile: usize,
    /// Anchors added from `capath`.
    pub capath: usize,
    /// Problems worth an error line (file unreadable, no certificate in it).
    pub problems: Vec<String>,
}

/// Reads a trust anchor file the way every file root trusts is read: the
/// path is resolved (capath's hash names are symlinks), then the real file
/// and every directory above it must be root-owned and not writable by
/// group or other; the open never blocks (FIFO) and the read is capped.
/// A CA file a user could write would let them impersonate the server.
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let real = path
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = real.parent() {
        fs_policy::check_dir_chain(dir).map_err(|e| e.to_string())?;
    }
    let policy = FilePolicy {
        owner: Owner::Root,
        forbidden_mode: 0o022,
        max_size: MAX_PEM,
    };
    fs_policy::read_checked(&real, &policy)
        .map(|buf| buf.to_vec())
        .map_err(|e| e.to_string())
}

/// Adds every parsable certificate of a PEM buffer; returns how many.
fn add_pem(roots: &mut RootCertStore, pem: &[u8]) -> usize {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    added
}

/// Builds the trust store from `system` (missing file: no system roots),
/// `cafile` and `capath`.
#[must_use]
pub fn load_roots(
    system: &Path,
    cafile: Option<&Path>,
    capath: Option<&Path>,
) -> (RootCertStore, RootsReport) {
    let mut roots = RootCertStore::empty();
    let mut report = RootsReport::default();
    match read_capped(system) {
        Ok(pem) => report.system = add_pem(&mut roots, &pem),
        Err(_) => report.system = 0,
    }
    if let Some(path) = cafile {
        match read_capped(path) {
            Ok(pem) => {
                report.cafile = add_pem(&mut roots, &pem);
                if report.cafile == 0 {
                    report
                        .problems
                        .push(format!("cafile {}: no certificate found", path.display()));
                }
            }
            Err(e) => report.problems.push(format!("cafile {e}")),
        }
    }
    if let Some(dir) = capath {
        match fs::read_dir(dir) {
            Ok(entries) => {
                let mut names: Vec<_> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .take(MAX_CAPATH_FILES)
                    .collect();
                names.sort();
                for p in names {
                    // Symlinks (OpenSSL's hash names) are resolved; anything
                    // untrusted, not a regular file or not PEM is skipped.
                    if let Ok(pem) = read_capped(&p) {
                        report.capath += add_pem(&mut roots, &pem);
                    }
                }
                if report.capath == 0 {
                    report
                        .problems
                        .push(format!("capath {}: no certificate found", dir.display()));
                }
            }
            Err(e) => report
                .problems
                .push(format!("capath {}: {e}", dir.display())),
        }
    }
    (roots, report)
}

/// The client configuration for one attempt.
///
/// # Errors
/// A short reason when rustls refuses the protocol versions (not expected).
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.enable_sni = true;
    // The default is already `NoKeyLog`; spelled out because SSLKEYLOGFILE
    // must never be honoured.
    cfg.key_log = Arc::new(rustls::NoKeyLog);
    Ok(Arc::new(cfg))
}

/// The client configuration with a client certificate (etcd's mutual
/// TLS): the chain from `certfile`, the key from `keyfile`, which must be a
/// root-owned file without group/other bits.
///
/// # Errors
/// A short reason naming the file (never its contents).
pub fn client_config_with_cert(
    roots: RootCertStore,
    certfile: &Path,
    keyfile: &Path,
) -> Result<Arc<ClientConfig>, String> {
    use rustls::pki_types::PrivateKeyDer;
    let pem = read_capped(certfile)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", certfile.display()));
    }
    let policy = FilePolicy {
        owner: Owner::Root,
        forbidden_mode: 0o077,
        max_size: MAX_PEM,
    };
    let key_pem = fs_policy::read_checked(keyfile, &policy).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| format!("{}: no private key found", keyfile.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|_| {
            format!(
                "{}: the key does not fit the certificate",
                keyfile.display()
            )
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.enable_sni = true;
    cfg.key_log = Arc::new(rustls::NoKeyLog);
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_mean_no_roots_not_a_panic() {
        let (roots, report) = load_roots(
            Path::new("/nonexistent/ca.crt"),
            Some(Path::new("/nonexistent/cafile.pem")),
            Some(Path::new("/nonexistent/dir")),
        );
        assert!(roots.is_empty());
        assert_eq!(report.system, 0);
        assert_eq!(report.problems.len(), 2);
        assert!(client_config(roots).is_ok());
    }

    #[test]
    fn system_bundle_loads_when_present() {
        if !Path::new(SYSTEM_ROOTS).exists() {
            return;
        }
        let (roots, report) = load_roots(Path::new(SYSTEM_ROOTS), None, None);
        assert!(report.system > 10, "{report:?}");
        assert_eq!(roots.len(), report.system);
    }

    #[test]
    fn not_pem_is_a_problem_for_cafile() {
        let dir = yubiotp_testsupport::tempdir();
        let f = dir.path().join("x.pem");
        fs::write(&f, b"not a certificate").unwrap();
        let (_, report) = load_roots(Path::new("/nonexistent"), Some(&f), Some(dir.path()));
        assert_eq!(report.cafile, 0);
        assert_eq!(report.problems.len(), 2, "{report:?}");
    }
}
