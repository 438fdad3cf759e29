//! Shared helpers of the `cloud_*` integration tests.
#![allow(dead_code, unused_imports)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pam_yubiotp::backend::cloud::CloudValidator;
use pam_yubiotp::backend::{CloudBackend, CloudVerdict};
use pam_yubiotp::config::{CloudSettings, ServerUrl};
use pam_yubiotp::host::{Level, Log};
use pam_yubiotp::secret::ApiKey;
use yubiotp_core::Token;
pub use yubiotp_testsupport::{
    Behavior, CertKind, Config, ConnectProxy, MockServer, RequestSignature, TEST_KEY_B64, TestPki,
    test_key, thread_count,
};

/// A syntactically valid OTP (public id `ccccccdbjrgf`).
pub const OTP: &str = "ccccccdbjrgfhknhfjbrjnlnldnhcujvddbikngjrtgh";
/// Its encrypted part (must never be logged).
pub const OTP_SECRET_PART: &str = "hknhfjbrjnlnldnhcujvddbikngjrtgh";

pub fn token() -> Token {
    Token::parse(OTP, 12).unwrap()
}

/// Collects log lines.
#[derive(Debug, Default)]
pub struct CaptureLog(pub Mutex<Vec<(Level, String)>>);

impl Log for CaptureLog {
    fn log(&self, level: Level, line: &str) {
        self.0.lock().unwrap().push((level, line.to_string()));
    }
}

impl CaptureLog {
    pub fn lines(&self) -> Vec<(Level, String)> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines()
            .iter()
            .map(|(l, s)| format!("{l:?}: {s}\n"))
            .collect()
    }

    /// True when some line at `level` contains `needle`.
    pub fn has(&self, level: Level, needle: &str) -> bool {
        self.lines()
            .iter()
            .any(|(l, s)| *l == level && s.contains(needle))
    }

    /// No OTP, no ciphertext, no key, no signature, no query string.
    pub fn assert_clean(&self) {
        for (_, line) in self.lines() {
            for secret in [
                OTP,
                OTP_SECRET_PART,
                TEST_KEY_B64,
                "h=",
                "nonce=",
                "otp=",
                "?",
            ] {
                assert!(!line.contains(secret), "log line leaks {secret:?}: {line}");
            }
        }
    }
}

/// Settings for `urls` with id 1, the test key and a 20 s deadline.
pub fn settings(urls: &[String]) -> CloudSettings {
    CloudSettings {
        id: Some(1),
        key: ApiKey::from_base64(TEST_KEY_B64),
        insecure_unsigned: false,
        urls: urls.iter().map(|u| ServerUrl::parse(u).unwrap()).collect(),
        timeout: Duration::from_secs(20),
        cafile: None,
        capath: None,
        proxy: None,
        resolver: pam_yubiotp::backend::cloud::resolve::DEFAULT_HELPER.into(),
    }
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
    assert_eq!(
        v,
        &CloudVerdict::Rejected {
            server: url.to_string(),
            status: status.to_string()
        }
    );
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}
