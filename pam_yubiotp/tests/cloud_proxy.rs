//! The configured proxy (and only it) is used: CONNECT for https targets,
//! an absolute-form GET for http targets.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod cloud_common;

use cloud_common::*;
use pam_yubiotp::config::ServerUrl;
use pam_yubiotp::host::Level;

#[test]
fn https_goes_through_a_connect_tunnel() {
    let pki = TestPki::generate().unwrap();
    let dir = yubiotp_testsupport::tempdir();
    let cafile = pki.write_ca(dir.path()).unwrap();
    let m = MockServer::start(
        Config::new(Behavior::Ok)
            .key(&test_key())
            .tls(pki.identity(CertKind::Good).server_config().unwrap()),
    )
    .unwrap();
    let proxy = ConnectProxy::start(None).unwrap();
    for url in [m.url(), m.url_localhost()] {
        let mut s = settings(std::slice::from_ref(&url));
        s.cafile = Some(cafile.clone());
        s.proxy = Some(ServerUrl::parse_proxy(&proxy.url()).unwrap());
        let (v, log, _) = verify(&s);
        assert_ok_from(&v, &url);
        assert!(log.text().contains("via proxy"), "{}", log.text());
    }
    assert_eq!(proxy.tunnels(), 2);
    assert_eq!(proxy.forwards(), 0);
    assert_eq!(
        proxy.targets(),
        [
            format!("127.0.0.1:{}", m.port()),
            format!("localhost:{}", m.port())
        ]
    );
    // The server saw an ordinary request inside the tunnel, with SNI.
    let reqs = m.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.tls && r.target.starts_with('/')));
    assert_eq!(reqs[1].sni.as_deref(), Some("localhost"));
}

#[test]
fn http_goes_as_an_absolute_form_get() {
    let m = mock(Behavior::Ok);
    let proxy = ConnectProxy::start(None).unwrap();
    let mut s = settings(&[m.url()]);
    s.proxy = Some(ServerUrl::parse_proxy(&proxy.url()).unwrap());
    assert_ok_from(&verify(&s).0, &m.url());
    assert_eq!(proxy.forwards(), 1);
    assert_eq!(proxy.tunnels(), 0);
    // The proxy rewrote the target; the signature still holds.
    let r = m.requests().pop().unwrap();
    assert_eq!(r.signature, RequestSignature::Valid);
}

#[test]
fn proxy_failures_are_not_definitive() {
    let m = mock(Behavior::Ok);
    // Refusing (407).
    let refusing = ConnectProxy::start(Some(407)).unwrap();
    let pki = TestPki::generate().unwrap();
    let tls = MockServer::start(
        Config::new(Behavior::Ok)
            .key(&test_key())
            .tls(pki.identity(CertKind::Good).server_config().unwrap()),
    )
    .unwrap();
    let mut s = settings(&[tls.url()]);
    s.proxy = Some(ServerUrl::parse_proxy(&refusing.url()).unwrap());
    let (v, log, _) = verify(&s);
    assert_no_answer(&v);
    assert!(
        log.text().contains("proxy: CONNECT: HTTP 407"),
        "{}",
        log.text()
    );
    // Down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = settings(&[m.url()]);
    s.proxy = Some(ServerUrl::parse_proxy(&format!("http://127.0.0.1:{port}")).unwrap());
    let (v, log, _) = verify(&s);
    assert_no_answer(&v);
    assert!(log.text().contains("connection refused"), "{}", log.text());
    // https:// proxies are not supported: said so, nothing sent.
    let mut s = settings(&[m.url()]);
    // The config refuses them; the transport refuses them too (defence in depth).
    assert!(ServerUrl::parse_proxy("https://127.0.0.1:3128").is_err());
    s.proxy = Some(ServerUrl::parse("https://127.0.0.1:3128").unwrap());
    let (v, log, _) = verify(&s);
    assert_no_answer(&v);
    assert!(
        log.has(Level::Err, "https:// proxies are not supported"),
        "{}",
        log.text()
    );
    assert_eq!(m.request_count(), 0);
    assert_eq!(tls.request_count(), 0);
}
