//! Several servers at once: the first definitive answer wins at once, a
//! non-definitive one never ends the wait, and the deadline bounds it all.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod cloud_common;

use std::time::Duration;

use cloud_common::*;
use pam_yubiotp::backend::CloudVerdict;

fn slow(behavior: Behavior, ms: u64) -> MockServer {
    MockServer::start(Config::new(behavior).key(&test_key()).delay_ms(ms)).unwrap()
}

#[test]
fn fast_definitive_reject_beats_slow_ok() {
    for st in ["REPLAYED_OTP", "BAD_OTP"] {
        let fast = mock(Behavior::Status(st.into()));
        let late_ok = slow(Behavior::Ok, 10_000);
        let (v, _, took) = verify(&settings(&[late_ok.url(), fast.url()]));
        assert_rejected_from(&v, &fast.url(), st);
        // Returned at the rejection, not after the slow OK (10 s) or the deadline (20 s).
        assert!(took < Duration::from_secs(8), "{took:?}");
    }
}

#[test]
fn fast_ok_beats_slow_reject() {
    let fast = mock(Behavior::Ok);
    let late = slow(Behavior::Status("BAD_OTP".into()), 10_000);
    let (v, _, took) = verify(&settings(&[late.url(), fast.url()]));
    assert_ok_from(&v, &fast.url());
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn non_definitive_answers_do_not_end_the_wait() {
    for first in [
        Behavior::Status("BACKEND_ERROR".into()),
        Behavior::Status("REPLAYED_REQUEST".into()),
        Behavior::Status("BAD_SIGNATURE".into()),
        Behavior::Status("NO_SUCH_CLIENT".into()),
        Behavior::BadSignature,
        Behavior::WrongNonce,
        Behavior::Garbage,
        Behavior::Http(500),
        Behavior::Redirect("http://127.0.0.1:1/".into()),
        Behavior::Reset,
    ] {
        let fast = mock(first.clone());
        let ok = slow(Behavior::Ok, 400);
        let (v, _, _) = verify(&settings(&[fast.url(), ok.url()]));
        assert_ok_from(&v, &ok.url());
        assert_eq!(fast.request_count(), 1, "{first:?}");
    }
}

#[test]
fn server_down_and_server_ok() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ok = mock(Behavior::Ok);
    let (v, log, _) = verify(&settings(&[
        format!("http://127.0.0.1:{port}/wsapi/2.0/verify"),
        ok.url(),
    ]));
    assert_ok_from(&v, &ok.url());
    assert!(log.text().contains("connection refused"), "{}", log.text());
}

#[test]
fn same_nonce_to_every_server_of_one_attempt() {
    let a = mock(Behavior::Status("BACKEND_ERROR".into()));
    let b = mock(Behavior::Status("BACKEND_ERROR".into()));
    let (v, _, _) = verify(&settings(&[a.url(), b.url()]));
    assert_no_answer(&v);
    assert_eq!(
        a.requests()[0].params["nonce"],
        b.requests()[0].params["nonce"]
    );
}

#[test]
fn all_answered_non_definitively_returns_without_waiting_for_the_deadline() {
    let servers = [
        mock(Behavior::Status("BACKEND_ERROR".into())),
        mock(Behavior::Http(500)),
        mock(Behavior::Garbage),
    ];
    let urls: Vec<String> = servers.iter().map(MockServer::url).collect();
    let (v, _, took) = verify(&settings(&urls));
    let CloudVerdict::NoAnswer { summary } = v else {
        panic!("{v:?}");
    };
    assert!(took < Duration::from_secs(15), "{took:?}");
    for (u, what) in urls
        .iter()
        .zip(["BACKEND_ERROR", "HTTP 500", "malformed line"])
    {
        assert!(summary.contains(&format!("{u}: {what}")), "{summary}");
    }
}

#[test]
fn all_down_or_hanging_ends_at_the_deadline() {
    let hang = mock(Behavior::Hang);
    let err = mock(Behavior::Status("BACKEND_ERROR".into()));
    let mut s = settings(&[hang.url(), err.url()]);
    s.timeout = Duration::from_millis(700);
    let (v, _, took) = verify(&s);
    assert_no_answer(&v);
    assert!(took >= Duration::from_millis(700));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn two_hanging_servers_do_not_delay_a_good_one() {
    let h1 = mock(Behavior::Hang);
    let h2 = mock(Behavior::NeverAccept);
    let ok = slow(Behavior::Ok, 100);
    let (v, log, took) = verify(&settings(&[h1.url(), h2.url(), ok.url()]));
    assert_ok_from(&v, &ok.url());
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(log.text().contains("cancelled"), "{}", log.text());
}
