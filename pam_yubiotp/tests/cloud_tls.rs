//! HTTPS: certificate checks, trust anchors from `cafile`/`capath` only
//! (plus the fixed system bundle), SNI.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod cloud_common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use cloud_common::*;
use pam_yubiotp::backend::CloudVerdict;
use pam_yubiotp::host::Level;

struct Pki {
    pki: TestPki,
    _dir: tempfile::TempDir,
    cafile: PathBuf,
    capath: PathBuf,
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let pki = TestPki::generate().unwrap();
        let dir = yubiotp_testsupport::tempdir();
        let cafile = pki.write_ca(dir.path()).unwrap();
        let capath = dir.path().join("capath");
        std::fs::create_dir(&capath).unwrap();
        std::fs::write(capath.join("test-ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(capath.join("README"), "not a certificate").unwrap();
        Pki {
            pki,
            _dir: dir,
            cafile,
            capath,
        }
    })
}

fn tls_mock(kind: CertKind, behavior: Behavior) -> MockServer {
    let cfg = pki().pki.identity(kind).server_config().unwrap();
    MockServer::start(Config::new(behavior).key(&test_key()).tls(cfg)).unwrap()
}

fn with_cafile(urls: &[String]) -> pam_yubiotp::config::CloudSettings {
    let mut s = settings(urls);
    s.cafile = Some(pki().cafile.clone());
    s
}

#[test]
fn cafile_makes_the_test_ca_trusted() {
    let m = tls_mock(CertKind::Good, Behavior::Ok);
    for url in [m.url(), m.url_localhost()] {
        let (v, log, _) = verify(&with_cafile(std::slice::from_ref(&url)));
        assert_ok_from(&v, &url);
        assert!(!log.text().contains("plain http"), "{}", log.text());
    }
    let reqs = m.requests();
    assert!(reqs.iter().all(|r| r.tls));
    // SNI is sent for names, not for IP literals.
    assert_eq!(reqs[0].sni, None);
    assert_eq!(reqs[1].sni.as_deref(), Some("localhost"));
}

#[test]
fn capath_makes_the_test_ca_trusted() {
    let m = tls_mock(CertKind::Good, Behavior::Ok);
    let mut s = settings(&[m.url()]);
    s.capath = Some(pki().capath.clone());
    assert_ok_from(&verify(&s).0, &m.url());
}

#[test]
fn untrusted_ca_is_refused_without_cafile() {
    let m = tls_mock(CertKind::Good, Behavior::Ok);
    let (v, log, _) = verify(&settings(&[m.url()]));
    assert_no_answer(&v);
    assert!(log.has(Level::Warning, "TLS"), "{}", log.text());
    assert!(log.text().contains("UnknownIssuer"), "{}", log.text());
    assert_eq!(m.request_count(), 0);
}

#[test]
fn certificate_faults_are_not_definitive() {
    for (kind, needle) in [
        (CertKind::Expired, "certificate expired"),
        (CertKind::WrongHost, "not valid for name"),
        (CertKind::UnknownCa, "UnknownIssuer"),
        (CertKind::NotCaIssuer, "EndEntityUsedAsCa"),
    ] {
        let m = tls_mock(kind, Behavior::Ok);
        for url in [m.url(), m.url_localhost()] {
            let (v, log, _) = verify(&with_cafile(&[url]));
            assert_no_answer(&v);
            assert!(log.text().contains(needle), "{kind:?}: {}", log.text());
        }
        assert_eq!(m.request_count(), 0, "{kind:?}");
    }
}

#[test]
fn unreadable_cafile_is_logged_and_trusts_nothing_extra() {
    let m = tls_mock(CertKind::Good, Behavior::Ok);
    let mut s = settings(&[m.url()]);
    s.cafile = Some(PathBuf::from("/nonexistent/ca.pem"));
    let (v, log, _) = verify(&s);
    assert_no_answer(&v);
    assert!(log.has(Level::Err, "/nonexistent/ca.pem"), "{}", log.text());
}

#[test]
fn behaviours_over_tls() {
    let m = tls_mock(CertKind::Good, Behavior::Status("REPLAYED_OTP".into()));
    assert_rejected_from(
        &verify(&with_cafile(&[m.url()])).0,
        &m.url(),
        "REPLAYED_OTP",
    );
    for b in [
        Behavior::BadSignature,
        Behavior::WrongNonce,
        Behavior::Status("BACKEND_ERROR".into()),
        Behavior::Http(500),
        Behavior::HugeBody(1 << 20),
        Behavior::Reset,
        Behavior::ResetOnAccept,
    ] {
        let m = tls_mock(CertKind::Good, b.clone());
        assert_no_answer(&verify(&with_cafile(&[m.url()])).0);
    }
    let cfg = pki().pki.identity(CertKind::Good).server_config().unwrap();
    let m = MockServer::start(
        Config::new(Behavior::Ok)
            .key(&test_key())
            .tls(cfg.clone())
            .chunked()
            .dribble_ms(1),
    )
    .unwrap();
    assert_ok_from(&verify(&with_cafile(&[m.url()])).0, &m.url());
    // A close-delimited body ends with the server's close_notify.
    let m = MockServer::start(
        Config::new(Behavior::Ok)
            .key(&test_key())
            .tls(cfg)
            .close_delimited(),
    )
    .unwrap();
    assert_ok_from(&verify(&with_cafile(&[m.url()])).0, &m.url());
}

#[test]
fn tls_hang_ends_at_the_deadline() {
    let m = tls_mock(CertKind::Good, Behavior::Hang);
    let mut s = with_cafile(&[m.url()]);
    s.timeout = Duration::from_millis(700);
    let (v, log, took) = verify(&s);
    assert_no_answer(&v);
    assert!(took >= Duration::from_millis(700));
    assert!(log.text().contains("no answer within"), "{}", log.text());
}

#[test]
fn insecure_unsigned_accepts_a_tls_ok_without_signature_and_warns() {
    let cfg = pki().pki.identity(CertKind::Good).server_config().unwrap();
    // The server has no key: it signs nothing.
    let m = MockServer::start(Config::new(Behavior::Ok).tls(cfg)).unwrap();
    let mut s = with_cafile(&[m.url()]);
    s.key = None;
    s.insecure_unsigned = true;
    for _ in 0..2 {
        let (v, log, _) = verify(&s);
        match v {
            CloudVerdict::Ok { signed, .. } => assert!(!signed),
            other => panic!("{other:?}"),
        }
        assert!(
            log.has(Level::Warning, "insecure_unsigned"),
            "{}",
            log.text()
        );
    }
    // No `h` in the request either.
    assert!(m.requests().iter().all(|r| !r.params.contains_key("h")));
    // And the TLS checks still apply.
    let bad = MockServer::start(
        Config::new(Behavior::Ok).tls(
            pki()
                .pki
                .identity(CertKind::UnknownCa)
                .server_config()
                .unwrap(),
        ),
    )
    .unwrap();
    let mut s = with_cafile(&[bad.url()]);
    s.key = None;
    s.insecure_unsigned = true;
    assert_no_answer(&verify(&s).0);
}

#[test]
fn a_ca_file_others_could_write_is_not_trusted() {
    let m = tls_mock(CertKind::Good, Behavior::Ok);
    // The same CA, but in world-writable /tmp, and then group-writable.
    let tmp = tempfile::tempdir().unwrap();
    let loose = tmp.path().join("ca.pem");
    std::fs::write(&loose, &pki().pki.ca_pem).unwrap();
    let mut s = settings(&[m.url()]);
    s.cafile = Some(loose);
    let (v, log, _) = verify(&s);
    assert_no_answer(&v);
    assert!(log.text().contains("cafile"), "{}", log.text());

    let dir = yubiotp_testsupport::tempdir();
    let writable = dir.path().join("ca.pem");
    std::fs::write(&writable, &pki().pki.ca_pem).unwrap();
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o664)).unwrap();
    s.cafile = Some(writable);
    let (v, log, _) = verify(&s);
    assert_no_answer(&v);
    assert!(log.text().contains("0664"), "{}", log.text());
    assert_eq!(
        m.request_count(),
        0,
        "nothing sent over an untrusted channel"
    );
}
