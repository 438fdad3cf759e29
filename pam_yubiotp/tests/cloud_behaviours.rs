//! Every scripted server behaviour against one server → the exact
//! `CloudVerdict`; the request as the server saw it; what is logged.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod cloud_common;
use pam_yubiotp::config::{CloudAuth, CloudSettings, ServerUrl, Timeout};
use pam_yubiotp::secret::ApiKey;

use std::time::Duration;

use cloud_common::*;
use pam_yubiotp::backend::CloudVerdict;
use pam_yubiotp::host::Level;
use yubiotp_core::Counter;

#[test]
fn ok_is_accepted_with_counters_and_the_request_is_correct() {
    let m = mock(Behavior::Ok);
    let (v, log, _) = verify(&settings(&[m.url()]));
    assert_eq!(
        v,
        CloudVerdict::Ok {
            server: m.url(),
            signed: true,
            counter: Some(Counter::new(19, 3)),
        }
    );
    assert!(log.has(Level::Info, "OK (signed)"), "{}", log.text());
    let reqs = m.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/wsapi/2.0/verify");
    assert_eq!(r.param_order, ["id", "otp", "nonce", "timestamp", "h"]);
    assert_eq!(r.params["id"], "1");
    assert_eq!(r.params["otp"], OTP);
    assert_eq!(r.params["timestamp"], "1");
    let nonce = &r.params["nonce"];
    assert!((16..=40).contains(&nonce.len()), "{nonce}");
    assert!(nonce.bytes().all(|b| b.is_ascii_alphanumeric()));
    // The signature survives PHP-style decoding ('+' must be escaped).
    assert_eq!(r.signature, RequestSignature::Valid);
    assert!(!r.tls);
    let header = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("host"), Some(format!("127.0.0.1:{}", m.port())));
    assert_eq!(header("accept-encoding").as_deref(), Some("identity"));
    assert_eq!(header("cookie"), None);
}

#[test]
fn a_fresh_nonce_every_attempt() {
    let m = mock(Behavior::Ok);
    let s = settings(&[m.url()]);
    for _ in 0..5 {
        assert!(matches!(verify(&s).0, CloudVerdict::Ok { .. }));
    }
    let nonces: std::collections::HashSet<String> = m
        .requests()
        .iter()
        .map(|r| r.params["nonce"].clone())
        .collect();
    assert_eq!(nonces.len(), 5);
}

#[test]
fn server_that_requires_a_valid_signature_accepts_ours() {
    let m = MockServer::start(
        Config::new(Behavior::Ok)
            .key(&test_key())
            .require_signature(),
    )
    .unwrap();
    let (v, _, _) = verify(&settings(&[m.url()]));
    assert_ok_from(&v, &m.url());
}

#[test]
fn benign_format_variations_are_accepted() {
    // Chunked transfer coding.
    let m = MockServer::start(Config::new(Behavior::Ok).key(&test_key()).chunked()).unwrap();
    assert_ok_from(&verify(&settings(&[m.url()])).0, &m.url());
    // No Content-Length: the body ends with the connection.
    let m =
        MockServer::start(Config::new(Behavior::Ok).key(&test_key()).close_delimited()).unwrap();
    assert_ok_from(&verify(&settings(&[m.url()])).0, &m.url());
    // LF line endings and an extra signed field (privacyIDEA's ttype).
    let m = mock(Behavior::ExtraField);
    assert_ok_from(&verify(&settings(&[m.url()])).0, &m.url());
    // A slow but complete answer within the deadline.
    let m = MockServer::start(Config::new(Behavior::Ok).key(&test_key()).delay_ms(300)).unwrap();
    assert_ok_from(&verify(&settings(&[m.url()])).0, &m.url());
    let m = MockServer::start(Config::new(Behavior::Ok).key(&test_key()).dribble_ms(1)).unwrap();
    assert_ok_from(&verify(&settings(&[m.url()])).0, &m.url());
}

#[test]
fn definitive_rejections() {
    for st in ["BAD_OTP", "REPLAYED_OTP"] {
        let m = mock(Behavior::Status(st.into()));
        let (v, log, _) = verify(&settings(&[m.url()]));
        assert_rejected_from(&v, &m.url(), st);
        assert!(log.has(Level::Info, st), "{}", log.text());
        // Signed with an empty key, as the reference server does: still final.
        let m = mock(Behavior::StatusEmptyKey(st.into()));
        assert_rejected_from(&verify(&settings(&[m.url()])).0, &m.url(), st);
    }
}

#[test]
fn configuration_statuses_are_not_definitive_and_logged_as_errors() {
    for (st, hint) in [
        ("BAD_SIGNATURE", "API key"),
        ("NO_SUCH_CLIENT", "client id 1"),
        ("OPERATION_NOT_ALLOWED", "not allowed"),
        ("MISSING_PARAMETER", "missing or malformed"),
    ] {
        let m = mock(Behavior::Status(st.into()));
        let (v, log, took) = verify(&settings(&[m.url()]));
        assert_no_answer(&v);
        assert!(log.has(Level::Err, st), "{st}: {}", log.text());
        assert!(log.has(Level::Err, hint), "{st}: {}", log.text());
        // The only server answered: no waiting for the deadline.
        assert!(took < Duration::from_secs(15), "{took:?}");
        if let CloudVerdict::NoAnswer { summary } = v {
            assert!(summary.contains(st), "{summary}");
        }
    }
}

#[test]
fn server_trouble_statuses_are_not_definitive() {
    for st in [
        "BACKEND_ERROR",
        "NOT_ENOUGH_ANSWERS",
        "REPLAYED_REQUEST",
        "DELAYED_OTP",
        "FOO",
    ] {
        let m = mock(Behavior::Status(st.into()));
        let (v, log, _) = verify(&settings(&[m.url()]));
        assert_no_answer(&v);
        assert!(log.has(Level::Warning, st), "{st}: {}", log.text());
    }
    let m = mock(Behavior::Status("REPLAYED_REQUEST".into()));
    let (_, log, _) = verify(&settings(&[m.url()]));
    assert!(log.has(Level::Warning, "possible MITM or server sync"));
}

#[test]
fn answers_that_are_not_ours_or_not_authentic_are_refused() {
    let cases = [
        (Behavior::BadSignature, "wrong signature"),
        (Behavior::NoSignature, "without a signature"),
        (Behavior::StatusEmptyKey("OK".into()), "wrong signature"),
        (Behavior::WrongNonce, "nonce"),
        (Behavior::NoNonce, "nonce"),
        (Behavior::WrongOtp, "otp"),
        (Behavior::DuplicateStatus, "duplicate key"),
        (Behavior::Garbage, "unusable answer"),
        (
            Behavior::Body(b"status=OK\n".to_vec()),
            "without a signature",
        ),
        (Behavior::Body(b"".to_vec()), "no status"),
        (Behavior::Body(vec![0xff; 64]), "not text"),
    ];
    for (b, needle) in cases {
        let m = mock(b.clone());
        let (v, log, _) = verify(&settings(&[m.url()]));
        assert_no_answer(&v);
        assert!(log.text().contains(needle), "{b:?}: {}", log.text());
        assert_eq!(m.request_count(), 1, "{b:?}");
    }
}

#[test]
fn http_failures_are_not_definitive() {
    for code in [500, 404, 400, 503] {
        let m = mock(Behavior::Http(code));
        let (v, log, _) = verify(&settings(&[m.url()]));
        assert_no_answer(&v);
        assert!(
            log.has(Level::Warning, &format!("HTTP {code}")),
            "{}",
            log.text()
        );
    }
    let m = mock(Behavior::HugeBody(16 << 20));
    let (v, log, _) = verify(&settings(&[m.url()]));
    assert_no_answer(&v);
    assert!(log.text().contains("body too large"), "{}", log.text());
    let m = mock(Behavior::Raw(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
    ));
    assert_no_answer(&verify(&settings(&[m.url()])).0);
    let m = mock(Behavior::Raw(b"not http at all\r\n\r\n".to_vec()));
    assert_no_answer(&verify(&settings(&[m.url()])).0);
}

#[test]
fn signed_or_overflowing_lengths_are_not_definitive() {
    // A lenient parser reads `+5` as 5; each of these is refused at the
    // HTTP layer (logged as malformed or unsupported), never accepted.
    let heads: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 3\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nabcde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nabcde\r\n0\r\n\r\n",
    ];
    for raw in heads {
        let m = mock(Behavior::Raw(raw.to_vec()));
        let (v, log, _) = verify(&settings(&[m.url()]));
        assert_no_answer(&v);
        assert!(!matches!(v, CloudVerdict::Ok { .. }));
        let text = log.text();
        assert!(
            text.contains("malformed HTTP response") || text.contains("unsupported HTTP encoding"),
            "{}: {text}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn redirects_are_not_followed() {
    let target = mock(Behavior::Ok);
    let m = mock(Behavior::Redirect(target.url()));
    let (v, log, _) = verify(&settings(&[m.url()]));
    assert_no_answer(&v);
    assert!(
        log.text().contains("302 redirect (not followed)"),
        "{}",
        log.text()
    );
    assert_eq!(target.request_count(), 0);
}

#[test]
fn connection_refused_is_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/wsapi/2.0/verify");
    let (v, log, took) = verify(&settings(&[url]));
    assert_no_answer(&v);
    assert!(log.text().contains("connection refused"), "{}", log.text());
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn hangs_end_at_the_deadline() {
    for b in [Behavior::Hang, Behavior::NeverAccept] {
        let m = mock(b.clone());
        let mut s = settings(&[m.url()]);
        s.timeout = Timeout::new(Duration::from_millis(800)).unwrap();
        let (v, log, took) = verify(&s);
        assert_no_answer(&v);
        assert!(took >= Duration::from_millis(800), "{b:?} {took:?}");
        assert!(took < Duration::from_secs(10), "{b:?} {took:?}");
        assert!(
            log.has(Level::Warning, "no answer within"),
            "{}",
            log.text()
        );
        if let CloudVerdict::NoAnswer { summary } = v {
            assert!(summary.contains("timed out"), "{summary}");
        }
    }
}

#[test]
fn slowloris_is_ended_by_the_overall_deadline() {
    // About 280 bytes at one byte per 40 ms would take over 11 s.
    let m = MockServer::start(Config::new(Behavior::Ok).key(&test_key()).dribble_ms(40)).unwrap();
    let mut s = settings(&[m.url()]);
    s.timeout = Timeout::new(Duration::from_secs(1)).unwrap();
    let (v, _, took) = verify(&s);
    assert_no_answer(&v);
    assert!(took >= Duration::from_secs(1));
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn peer_reset_is_not_definitive() {
    for b in [Behavior::Reset, Behavior::ResetOnAccept] {
        let m = mock(b.clone());
        assert_no_answer(&verify(&settings(&[m.url()])).0);
    }
}

#[test]
fn missing_id_or_key_cannot_reach_the_backend() {
    // The config layer builds CloudSettings only whole: no id, no URL, or
    // http:// without a key never reach the validator, so nothing is asked.
    let m = mock(Behavior::Ok);
    let url = ServerUrl::parse(&m.url()).unwrap();
    let key = || CloudAuth::Signed(ApiKey::from_base64(TEST_KEY_B64).unwrap());
    assert!(CloudSettings::new(0, key(), vec![url.clone()]).is_err());
    assert!(CloudSettings::new(1, key(), vec![]).is_err());
    // insecure_unsigned never goes over plain http.
    let e = CloudSettings::new(1, CloudAuth::Unsigned, vec![url]).unwrap_err();
    assert!(e.message.contains("http://"), "{e}");
    // Resolution refuses a cloud mode without id or key.
    for args in [&["mode=cloud", "key="][..], &["mode=cloud", "id=1"][..]] {
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                if *a == "key=" {
                    format!("key={TEST_KEY_B64}")
                } else {
                    (*a).to_string()
                }
            })
            .collect();
        let layer = pam_yubiotp::config::parse_args(&args).unwrap();
        assert!(
            pam_yubiotp::config::resolve(None, &layer).is_err(),
            "{args:?}"
        );
    }
    assert_eq!(m.request_count(), 0);
}

#[test]
fn plain_http_warns_on_every_attempt() {
    let m = mock(Behavior::Ok);
    let s = settings(&[m.url()]);
    for _ in 0..2 {
        let (v, log, _) = verify(&s);
        assert!(matches!(v, CloudVerdict::Ok { .. }));
        assert!(log.has(Level::Warning, "plain http://"), "{}", log.text());
    }
}

#[test]
fn unresolvable_host_is_not_definitive() {
    let (v, log, _) = verify(&settings(&[
        "http://no-such-host.invalid/wsapi/2.0/verify".into()
    ]));
    assert_no_answer(&v);
    assert!(log.text().contains("DNS"), "{}", log.text());
}

#[test]
fn absurd_and_zero_timeouts_cannot_be_configured() {
    let m = mock(Behavior::Ok);
    assert!(Timeout::new(Duration::MAX).is_none());
    assert!(Timeout::new(Duration::ZERO).is_none());
    // The longest allowed deadline works (the mock answers at once).
    let mut s = settings(&[m.url()]);
    s.timeout = Timeout::new(Duration::from_secs(600)).unwrap();
    assert_ok_from(&verify(&s).0, &m.url());
}
