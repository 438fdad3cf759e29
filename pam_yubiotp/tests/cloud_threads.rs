//! No thread outlives `verify()` (libpam may dlclose the module right
//! after), no socket either, and hanging servers do not hold it up.
//!
//! One test function only: the test harness runs tests of one binary on
//! parallel threads, which would disturb the count. The mock servers each
//! run on one thread started before the "before" count is taken.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod cloud_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloud_common::*;
use pam_yubiotp::backend::CloudVerdict;

/// Waits (bounded) for the fd count to come back to `want`: the mock
/// servers close their side of cancelled connections a moment later.
fn fds_settle(want: usize) -> usize {
    let start = Instant::now();
    let mut now = fd_count();
    while now != want && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
        now = fd_count();
    }
    now
}

#[test]
fn no_thread_or_socket_outlives_verify() {
    let pki = TestPki::generate().unwrap();
    let dir = yubiotp_testsupport::tempdir();
    let cafile: PathBuf = pki.write_ca(dir.path()).unwrap();
    let tls = pki.identity(CertKind::Good).server_config().unwrap();
    let key = test_key();

    let hang = mock(Behavior::Hang);
    let never = mock(Behavior::NeverAccept);
    let ok = MockServer::start(Config::new(Behavior::Ok).key(&key).delay_ms(150)).unwrap();
    let tls_hang =
        MockServer::start(Config::new(Behavior::Hang).key(&key).tls(tls.clone())).unwrap();
    let tls_ok =
        MockServer::start(Config::new(Behavior::Ok).key(&key).delay_ms(150).tls(tls)).unwrap();

    let scenarios: Vec<(&str, Vec<String>, Option<String>)> = vec![
        (
            "http, two hanging + one good (IP literals: no resolver thread)",
            vec![hang.url(), never.url(), ok.url()],
            Some(ok.url()),
        ),
        (
            "https by name (resolver threads), one hanging + one good",
            vec![tls_hang.url_localhost(), tls_ok.url_localhost()],
            Some(tls_ok.url_localhost()),
        ),
        (
            "mixed, by name and by address",
            vec![
                hang.url_localhost(),
                never.url(),
                tls_hang.url(),
                tls_ok.url(),
            ],
            Some(tls_ok.url()),
        ),
        (
            "nothing definitive: the deadline ends it",
            vec![hang.url_localhost(), never.url(), tls_hang.url()],
            None,
        ),
    ];
    for (name, urls, winner) in scenarios {
        for round in 0..3 {
            let mut s = settings(&urls);
            s.cafile = Some(cafile.clone());
            if winner.is_none() {
                s.timeout = Duration::from_millis(600);
            }
            let threads_before = thread_count();
            let fds_before = fd_count();
            let (v, log, took) = verify(&s);
            let threads_after = thread_count();
            assert_eq!(
                threads_after, threads_before,
                "{name} #{round}: threads {threads_before} -> {threads_after}"
            );
            assert_eq!(
                fds_settle(fds_before),
                fds_before,
                "{name} #{round}: fd leak"
            );
            match &winner {
                Some(url) => {
                    assert_ok_from(&v, url);
                    // Well before the 20 s deadline although servers hang.
                    assert!(
                        took < Duration::from_secs(15),
                        "{name}: {took:?}\n{}",
                        log.text()
                    );
                }
                None => {
                    assert!(matches!(v, CloudVerdict::NoAnswer { .. }), "{v:?}");
                    assert!(took >= Duration::from_millis(600));
                }
            }
        }
    }
}
