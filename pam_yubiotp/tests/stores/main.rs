//! The on-disk stores: key store format and file checks, counter state,
//! replay, concurrency (threads and processes), crash safety and disk
//! faults. Cases refer to the security catalogue (R060–R101, R175–R177).
//!
//! Tests that need other processes re-run this binary with
//! `--exact <test> --nocapture` and `STORES_TEST_CHILD=<role>` set; the test
//! then runs [`maybe_child`] first, which does the child's work and exits.
//! Everything lives under `yubiotp_testsupport::tempdir()`, whose
//! ancestors are root-owned and not world-writable (unlike `/tmp`).
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod concurrency;
mod crash;
mod faults;
mod keydir;
mod keystore;
mod properties;
mod replay;
mod state;

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::{Duration, Instant};

use pam_yubiotp::backend::local::{self, LocalVerdict};
use pam_yubiotp::fs_policy::{OpenError, Violation};
use pam_yubiotp::store::counters::{STATE_POLICY, format_state, parse_state};
use pam_yubiotp::store::keystore::HEADER;
use pam_yubiotp::store::{CommitStep, CounterStore, KeyStore, ParseError, StoreError};
use tempfile::TempDir;
use yubiotp_core::{
    AesKey, Counter, KeyMaterial, PrivateId, PublicId, Rejection, Token, mint_token, verify_offline,
};
use yubiotp_testsupport::tempdir;

// ───────────────────────────── helpers ─────────────────────────────

/// A generous "did not hang" bound; no test relies on anything tighter.
const HANG: Duration = Duration::from_secs(30);

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn write_file(p: &Path, bytes: &[u8], mode: u32) {
    fs::write(p, bytes).unwrap();
    chmod(p, mode);
}

#[derive(Clone)]
struct TestKey {
    id: PublicId,
    km: KeyMaterial,
}

/// A deterministic key; `n` makes it distinct.
fn key(n: u8) -> TestKey {
    key_with_id(PublicId::from_array([0x01, 0x02, 0x03, 0x04, 0x05, n]), n)
}

fn key_with_id(id: PublicId, n: u8) -> TestKey {
    let aes: [u8; 16] = core::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ n ^ 0xa5);
    TestKey {
        id,
        km: KeyMaterial {
            aes_key: AesKey::from_bytes(aes),
            private_id: PrivateId::from_bytes([0x87, 0x92, 0xeb, 0xfe, n, 0xcc]),
        },
    }
}

fn otp(k: &TestKey, use_counter: u16, session: u8) -> Token {
    let c = Counter::new(use_counter, session);
    let text = mint_token(
        &k.id,
        &k.km,
        c,
        false,
        0x00ab_cdef,
        u16::from(session) * 7 + 1,
    );
    Token::parse(&text, k.id.len_chars()).unwrap()
}

/// The production decision: core offline check against the stored counter.
fn advance(
    store: &CounterStore,
    k: &TestKey,
    token: &Token,
) -> Result<Result<Counter, Rejection>, StoreError> {
    store.check_and_advance(&k.id, |last| {
        verify_offline(token, &k.km, last).map(|f| f.counter)
    })
}

fn new_state_dir(root: &Path) -> CounterStore {
    CounterStore::create_dir(&root.join("state")).unwrap()
}

fn temps(store: &CounterStore, id: &PublicId) -> Vec<PathBuf> {
    let prefix = CounterStore::temp_prefix_of(id);
    let mut v: Vec<PathBuf> = fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_str().unwrap().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn expect_untrusted(r: Result<impl std::fmt::Debug, StoreError>) -> (PathBuf, Violation) {
    match r {
        Err(StoreError::Open(OpenError::Untrusted(p, v))) => (p, v),
        other => panic!("expected Open(Untrusted), got {other:?}"),
    }
}

fn expect_corrupt(r: Result<impl std::fmt::Debug, StoreError>) -> (PathBuf, usize, String) {
    match r {
        Err(StoreError::Corrupt { path, line, reason }) => (path, line, reason),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fn is_replayed<T: std::fmt::Debug>(r: &Result<Result<T, Rejection>, StoreError>) -> bool {
    matches!(r, Ok(Err(Rejection::Replayed { .. })))
}

/// Runs `f` on another thread and fails the test if it takes longer than
/// [`HANG`] (a FIFO that blocks the open, say).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} did not return within {HANG:?}"))
}

/// A key store file with the given keys, 0600, root-owned.
fn write_keystore(path: &Path, keys: &[&TestKey]) {
    let mut ks = KeyStore::default();
    for k in keys {
        ks.insert(k.id, k.km.clone());
    }
    write_file(path, ks.to_text().as_bytes(), 0o600);
}

/// Restores a file or directory's immutable flag on drop.
struct Immutable(PathBuf);

impl Immutable {
    fn set(p: &Path) -> Option<Self> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(p)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(p.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

// ───────────────────────── child processes ─────────────────────────

const CHILD: &str = "STORES_TEST_CHILD";

fn child(test: &str, role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, role)
        .stdin(Stdio::null());
    c
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
}

fn env_u16(name: &str) -> u16 {
    env(name).parse().unwrap()
}

/// Exit codes of an advancing child.
const ACCEPTED: i32 = 0;
const REPLAYED: i32 = 10;
const REJECTED: i32 = 11;
const LOCK_TIMEOUT: i32 = 20;
const STORE_ERROR: i32 = 21;

fn exit_code(r: &Result<Result<Counter, Rejection>, StoreError>) -> i32 {
    match r {
        Ok(Ok(_)) => ACCEPTED,
        Ok(Err(Rejection::Replayed { .. })) => REPLAYED,
        Ok(Err(_)) => REJECTED,
        Err(StoreError::LockTimeout { .. }) => LOCK_TIMEOUT,
        Err(_) => STORE_ERROR,
    }
}

/// Waits (bounded) until `path` exists.
fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// In a child process: does the role's work and exits. In the parent:
/// returns at once.
fn maybe_child() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let code = match role.as_str() {
        // Present one OTP once, after the shared "go" file appears.
        "advance" => {
            let store = CounterStore::open(Path::new(&env("ST_DIR"))).unwrap();
            let k = key(env_u16("ST_KEY") as u8);
            let token = otp(&k, env_u16("ST_USE"), env_u16("ST_SESSION") as u8);
            if let Ok(go) = std::env::var("ST_GO") {
                wait_for(Path::new(&go), HANG);
            }
            exit_code(&advance(&store, &k, &token))
        }
        // Like "advance", but abort(3) at the chosen commit step.
        "crash" => {
            let store = CounterStore::open(Path::new(&env("ST_DIR"))).unwrap();
            let k = key(env_u16("ST_KEY") as u8);
            let token = otp(&k, env_u16("ST_USE"), env_u16("ST_SESSION") as u8);
            let step = env("ST_STEP");
            let r = store.check_and_advance_with_hook(
                &k.id,
                |last| verify_offline(&token, &k.km, last).map(|f| f.counter),
                &|s| {
                    if format!("{s:?}") == step {
                        std::process::abort();
                    }
                },
            );
            exit_code(&r)
        }
        // Present sessions 1..=N of use counter 1, pausing between read
        // and rename; print the accepted sessions.
        "sequence" => {
            let store = CounterStore::open(Path::new(&env("ST_DIR"))).unwrap();
            let k = key(env_u16("ST_KEY") as u8);
            let n = env_u16("ST_N") as u8;
            wait_for(Path::new(&env("ST_GO")), HANG);
            let mut accepted = Vec::new();
            for s in 1..=n {
                let token = otp(&k, 1, s);
                let r = store.check_and_advance_with_hook(
                    &k.id,
                    |last| verify_offline(&token, &k.km, last).map(|f| f.counter),
                    &|step| {
                        if step == CommitStep::Read {
                            std::thread::sleep(Duration::from_micros(300));
                        }
                    },
                );
                match r {
                    Ok(Ok(_)) => accepted.push(s.to_string()),
                    Ok(Err(Rejection::Replayed { .. })) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            println!("\nACCEPTED {}", accepted.join(","));
            ACCEPTED
        }
        // Hold the lock file until the release file appears (at most 60 s).
        "hold" => {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(env("ST_LOCK"))
                .unwrap();
            f.lock().unwrap();
            println!("\nLOCKED");
            wait_for(Path::new(&env("ST_RELEASE")), Duration::from_secs(60));
            ACCEPTED
        }
        // Add a key to the key store (run under strace by the parent).
        "keystore-add" => {
            let k = key(env_u16("ST_KEY") as u8);
            KeyStore::update(Path::new(&env("ST_KEYS")), |ks| {
                ks.insert(k.id, k.km.clone());
                Ok(())
            })
            .map_or(STORE_ERROR, |()| ACCEPTED)
        }
        other => panic!("unknown child role {other}"),
    };
    std::process::exit(code);
}

fn spawn_advancers(
    test: &str,
    dir: &Path,
    k: u8,
    c: Counter,
    go: &Path,
    n: usize,
) -> Vec<std::process::Child> {
    (0..n)
        .map(|_| {
            child(test, "advance")
                .env("ST_DIR", dir)
                .env("ST_KEY", k.to_string())
                .env("ST_USE", c.use_counter().to_string())
                .env("ST_SESSION", c.session().to_string())
                .env("ST_GO", go)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn codes(children: Vec<std::process::Child>) -> Vec<i32> {
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            out.status
                .code()
                .unwrap_or_else(|| panic!("child died: {:?}", out.status))
        })
        .collect()
}

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
