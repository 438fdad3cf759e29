//! Test support for `pam_yubiotp`: a loopback Yubico Validation Protocol
//! 2.0 server with scripted behaviours ([`server`]), a throw-away PKI for
//! its HTTPS mode ([`pki`]), a counting HTTP CONNECT proxy ([`proxy`]),
//! the scratch directories every test creates its files in ([`scratch`])
//! and the log collector ([`logs`]). Everything binds `127.0.0.1` only, every loop is
//! bounded, and each server or proxy runs on exactly one thread that is
//! joined on drop. The `ykval-mock` binary exposes the same behaviours from the
//! command line for benchmarks and end-to-end tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod etcd;
pub mod logs;
pub mod pki;
pub mod proto;
pub mod proxy;
pub mod scratch;
pub mod server;
pub mod slapd;

pub use logs::{CapturedLog, pam_wrapper_syslog};
pub use pki::{CertKind, TestPki};
pub use proxy::ConnectProxy;
pub use scratch::{scratch_root, tempdir};
pub use server::{Behavior, Config, MockServer, Record, RequestSignature};
pub use slapd::Slapd;

/// The API key of the protocol's published test vectors (base64).
pub const TEST_KEY_B64: &str = "mG5be6ZJU1qBGz24yPh/ESM3UdU=";

/// [`TEST_KEY_B64`], decoded.
#[must_use]
pub fn test_key() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(TEST_KEY_B64)
        .unwrap_or_default()
}

/// The number of threads of this process (`/proc/self/task`), or 0 when
/// it cannot be read.
#[must_use]
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// How long [`run_with_stdin`] waits before it kills the program.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `cmd` with `stdin` written to its standard input (then closed) and
/// its stdout and stderr captured, waiting at most [`RUN_LIMIT`].
///
/// # Panics
/// When the program cannot be started or waited for (a test setup fault),
/// or does not finish within [`RUN_LIMIT`] (it is killed first).
pub fn run_with_stdin(cmd: &mut std::process::Command, stdin: &[u8]) -> std::process::Output {
    use std::io::{Read as _, Write as _};
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    // A program that exits without reading gives EPIPE here: not a failure.
    let writer = std::thread::spawn(move || drop(input.write_all(&bytes)));
    let reader = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let _ = writer.join();
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}
