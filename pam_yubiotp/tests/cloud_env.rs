//! The caller's environment cannot change what the module trusts or where
//! it connects (su and sudo run PAM with the calling user's variables).
//!
//! The environment is process-global, so the checks run in a child: this
//! test binary re-executed with `--exact` and hostile variables set. The
//! parent owns the "attacker" proxy and checks that it saw nothing and
//! that no TLS key log was written.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod cloud_common;

use std::process::Command;

use cloud_common::*;

const CHILD: &str = "PAM_YUBIOTP_CLOUD_ENV_CHILD";

/// Runs in the child, with the hostile environment.
fn child() {
    let dir = std::path::PathBuf::from(std::env::var("CHILD_DIR").unwrap());
    let pki = TestPki::generate().unwrap();
    let cafile = pki.write_ca(&dir.join("good")).unwrap();
    // The "attacker" CA is what SSL_CERT_FILE and SSL_CERT_DIR point at.
    std::fs::write(std::env::var("SSL_CERT_FILE").unwrap(), &pki.unknown_ca_pem).unwrap();
    let cert_dir = std::path::PathBuf::from(std::env::var("SSL_CERT_DIR").unwrap());
    std::fs::write(cert_dir.join("attacker.pem"), &pki.unknown_ca_pem).unwrap();

    // 1. A server whose certificate the attacker CA signed: still refused.
    let evil = MockServer::start(
        Config::new(Behavior::Ok)
            .key(&test_key())
            .tls(pki.identity(CertKind::UnknownCa).server_config().unwrap()),
    )
    .unwrap();
    for url in [evil.url(), evil.url_localhost()] {
        let (v, log, _) = verify(&settings(&[url]));
        assert_no_answer(&v);
        assert!(log.text().contains("UnknownIssuer"), "{}", log.text());
    }
    // 2. A good server with cafile: answered directly, not via the env proxy.
    let good = MockServer::start(
        Config::new(Behavior::Ok)
            .key(&test_key())
            .tls(pki.identity(CertKind::Good).server_config().unwrap()),
    )
    .unwrap();
    for url in [good.url(), good.url_localhost()] {
        let mut s = settings(std::slice::from_ref(&url));
        s.cafile = Some(cafile.clone());
        assert_ok_from(&verify(&s).0, &url);
    }
    // 3. Plain http, also direct.
    let plain = mock(Behavior::Ok);
    for url in [plain.url(), plain.url_localhost()] {
        assert_ok_from(&verify(&settings(std::slice::from_ref(&url))).0, &url);
        let last = plain.requests().pop().unwrap();
        assert!(
            last.target.starts_with('/'),
            "absolute form: went via a proxy"
        );
    }
    println!("CHILD-CHECKS-DONE");
}

#[test]
fn environment_cannot_change_trust_or_routing() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let proxy = ConnectProxy::start(None).unwrap();
    let dir = yubiotp_testsupport::tempdir();
    let cert_dir = dir.path().join("certs");
    std::fs::create_dir(&cert_dir).unwrap();
    let keylog = dir.path().join("keylog.txt");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "environment_cannot_change_trust_or_routing",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("CHILD_DIR", dir.path())
        .env("HTTPS_PROXY", proxy.url())
        .env("https_proxy", proxy.url())
        .env("HTTP_PROXY", proxy.url())
        .env("http_proxy", proxy.url())
        .env("ALL_PROXY", proxy.url())
        .env("all_proxy", proxy.url())
        .env("NO_PROXY", "")
        .env("no_proxy", "")
        .env("SSL_CERT_FILE", dir.path().join("attacker-ca.pem"))
        .env("SSL_CERT_DIR", &cert_dir)
        .env("SSLKEYLOGFILE", &keylog)
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("CHILD-CHECKS-DONE"), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert_eq!(proxy.connections(), 0, "the environment's proxy was used");
    assert!(!keylog.exists(), "SSLKEYLOGFILE was honoured");
}
