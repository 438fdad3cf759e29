//! Shared helpers of the `cloud_*` integration tests.
#![allow(dead_code, unused_imports)]

use std::time::{Duration, Instant};

use pam_yubiotp::backend::cloud::CloudValidator;
use pam_yubiotp::backend::{CloudBackend, CloudVerdict};
use pam_yubiotp::config::{CloudAuth, CloudSettings, ServerUrl, Timeout};
use pam_yubiotp::host::{Level, Log};
use pam_yubiotp::secret::ApiKey;
use yubiotp_core::Token;
pub use yubiotp_testsupport::{
    Behavior, CapturedLog, CertKind, Config, ConnectProxy, MockServer, RequestSignature,
    TEST_KEY_B64, TestPki, test_key, thread_count,
};

/// A syntactically valid OTP (public id `ccccccdbjrgf`).
pub const OTP: &str = "ccccccdbjrgfhknhfjbrjnlnldnhcujvddbikngjrtgh";
/// Its encrypted part (must never be logged).
pub const OTP_SECRET_PART: &str = "hknhfjbrjnlnldnhcujvddbikngjrtgh";

pub fn token() -> Token {
    Token::parse(OTP, 12).unwrap()
}

/// Collects log lines ([`CapturedLog`]: `lines`, `text`, `has`).
#[derive(Debug, Default)]
pub struct CaptureLog(pub CapturedLog<Level>);

impl Log for CaptureLog {
    fn log(&self, level: Level, line: &str) {
        self.0.push(level, line);
    }
}

impl std::ops::Deref for CaptureLog {
    type Target = CapturedLog<Level>;
    fn deref(&self) -> &CapturedLog<Level> {
        &self.0
    }
}

impl CaptureLog {
    /// No OTP, no ciphertext, no key, no signature, no query string.
    pub fn assert_clean(&self) {
        self.0.assert_none_contains(&[
            OTP,
            OTP_SECRET_PART,
            TEST_KEY_B64,
            "h=",
            "nonce=",
            "otp=",
            "?",
        ]);
    }
}

/// Settings for `urls` with id 1, the test key and a 20 s deadline.
pub fn settings(urls: &[String]) -> CloudSettings {
    let mut s = CloudSettings::new(
        1,
        CloudAuth::Signed(ApiKey::from_base64(TEST_KEY_B64).unwrap()),
        urls.iter().map(|u| ServerUrl::parse(u).unwrap()).collect(),
    )
    .unwrap();
    s.timeout = Timeout::new(Duration::from_secs(20)).unwrap();
    s
}

/// `s` without the API key (`insecure_unsigned`), keeping the rest.
pub fn unsigned(s: &CloudSettings) -> CloudSettings {
    let mut u = CloudSettings::new(s.id(), CloudAuth::Unsigned, s.urls().to_vec()).unwrap();
    u.timeout = s.timeout;
    u.cafile.clone_from(&s.cafile);
    u.capath.clone_from(&s.capath);
    u.proxy.clone_from(&s.proxy);
    u.resolver.clone_from(&s.resolver);
    u
}

/// Runs one attempt; returns the verdict, the log and the elapsed time.
pub fn verify(s: &CloudSettings) -> (CloudVerdict, CaptureLog, Duration) {
    let log = CaptureLog::default();
    let start = Instant::now();
    let v = CloudValidator::new(s, &log, true).verify(&token());
    let took = start.elapsed();
    if std::env::var_os("CLOUD_TEST_SHOW_LOG").is_some() {
        eprintln!("--- {took:?} {v:?}\n{}", log.text());
    }
    log.assert_clean();
    (v, log, took)
}

/// A plain-HTTP mock with the test key.
pub fn mock(behavior: Behavior) -> MockServer {
    MockServer::start(Config::new(behavior).key(&test_key())).unwrap()
}

pub fn assert_no_answer(v: &CloudVerdict) {
    assert!(
        matches!(v, CloudVerdict::NoAnswer { .. }),
        "expected NoAnswer, got {v:?}"
    );
}

pub fn assert_ok_from(v: &CloudVerdict, url: &str) {
    match v {
        CloudVerdict::Ok { server, signed, .. } => {
            assert_eq!(server, url);
            assert!(*signed);
        }
        other => panic!("expected Ok from {url}, got {other:?}"),
    }
}

pub fn assert_rejected_from(v: &CloudVerdict, url: &str, status: &str) {
    match v {
        CloudVerdict::Rejected {
            server, status: s, ..
        } => {
            assert_eq!(server, url);
            assert_eq!(s, status);
        }
        other => panic!("expected {status} from {url}, got {other:?}"),
    }
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}
