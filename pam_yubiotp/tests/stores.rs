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

// ─────────────────────────── key store ───────────────────────────

mod keystore {
    use super::*;

    const PID: &str = "8792ebfe26cc";
    const AES: &str = "ecde18dbe76fbd0c33330f1c354871db";

    fn text(lines: &[&str]) -> String {
        let mut s = format!("{HEADER}\n");
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    #[test]
    fn round_trip_keeps_comments_order_and_the_empty_id() {
        let input = text(&[
            "# site keys",
            "",
            &format!("ccccccdbjrgf {PID} {AES}"),
            &format!("  # indented comment with a tab\t{AES}"),
            &format!("-\t0a1b2c3d4e5f\t{}", AES.to_uppercase()),
            &format!("VVCCCCDBJRGF {} {AES}", PID.to_uppercase()),
        ]);
        let ks = KeyStore::parse(&input).unwrap();
        assert_eq!(ks.len(), 3);
        let empty = PublicId::from_modhex("").unwrap();
        let std_id = PublicId::from_modhex("ccccccdbjrgf").unwrap();
        let upper = PublicId::from_modhex("vvccccdbjrgf").unwrap();
        assert!(ks.contains(&empty) && ks.contains(&std_id) && ks.contains(&upper));
        let m = ks.get(&std_id).unwrap();
        assert_eq!(m.aes_key.expose_hex(), AES);
        assert_eq!(m.private_id.expose_hex(), PID);
        assert_eq!(
            ks.get(&empty).unwrap().private_id.expose_hex(),
            "0a1b2c3d4e5f"
        );
        let out = ks.to_text();
        let expected = text(&[
            "# site keys",
            "",
            &format!("ccccccdbjrgf {PID} {AES}"),
            &format!("  # indented comment with a tab\t{AES}"),
            &format!("- 0a1b2c3d4e5f {AES}"),
            &format!("vvccccdbjrgf {PID} {AES}"),
        ]);
        assert_eq!(out.as_str(), expected);
        // A second round is a fixed point, and equal key by key.
        let again = KeyStore::parse(&out).unwrap();
        assert_eq!(again.to_text().as_str(), out.as_str());
        assert_eq!(
            again.ids().collect::<Vec<_>>(),
            ks.ids().collect::<Vec<_>>()
        );
        for id in ks.ids() {
            assert_eq!(again.get(&id), ks.get(&id));
        }
        // Header only; CRLF tolerated; a file without a final newline.
        assert!(KeyStore::parse(&format!("{HEADER}\n")).unwrap().is_empty());
        assert!(KeyStore::parse(HEADER).unwrap().is_empty());
        let crlf = format!("{HEADER}\r\nccccccdbjrgf {PID} {AES}\r\n");
        assert_eq!(KeyStore::parse(&crlf).unwrap().len(), 1);
        assert_eq!(
            KeyStore::parse(&format!("{HEADER}\nccccccdbjrgf {PID} {AES}"))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            KeyStore::default().to_text().as_str(),
            format!("{HEADER}\n")
        );
    }

    #[test]
    fn every_parse_error_names_the_line_and_never_the_text() {
        let good = format!("ccccccdbjrgf {PID} {AES}");
        let cases: Vec<(String, usize, &str)> = vec![
            (String::new(), 1, "missing header"),
            (format!("{good}\n"), 1, "missing header"),
            ("# pam_yubiotp key store v2\n".to_string(), 1, "unsupported"),
            (
                "#pam_yubiotp key store v1\n".to_string(),
                1,
                "missing header",
            ),
            (
                text(&["# ok", &format!("ccccccdbjrgf {PID}")]),
                3,
                "3 fields",
            ),
            (text(&[&format!("{good} extra")]), 2, "found 4"),
            (text(&["", "", "lonely"]), 4, "found 1"),
            (text(&[&format!("ccccccdbjrg {PID} {AES}")]), 2, "odd"),
            (
                text(&[&format!("ccccccdbjrga {PID} {AES}")]),
                2,
                "not modhex",
            ),
            (
                text(&[&format!("{} {PID} {AES}", "c".repeat(34))]),
                2,
                "longer than 32",
            ),
            (
                text(&[&format!("ccccccdbjrgf 8792ebfe26 {AES}")]),
                2,
                "private id",
            ),
            (
                text(&[&format!("ccccccdbjrgf 8792ebfe26c {AES}")]),
                2,
                "private id",
            ),
            (
                text(&[&format!("ccccccdbjrgf 8792ebfe26zz {AES}")]),
                2,
                "private id",
            ),
            (
                text(&[&format!(
                    "ccccccdbjrgf {PID} ecde18dbe76fbd0c33330f1c354871"
                )]),
                2,
                "AES key",
            ),
            (
                text(&[&format!("ccccccdbjrgf {PID} {AES}00")]),
                2,
                "AES key",
            ),
            (
                text(&[&format!(
                    "ccccccdbjrgf {PID} ecde18dbe76fbd0c33330f1c354871dx"
                )]),
                2,
                "AES key",
            ),
            (
                text(&[&format!(
                    "ccccccdbjrgf {PID} ecde18dbe76fbd0c33330f1c354871d\u{e9}"
                )]),
                2,
                "AES key",
            ),
            (
                text(&[&good, "# x", &format!("CCCCCCDBJRGF {PID} {AES}")]),
                4,
                "duplicate public id ccccccdbjrgf (first on line 2)",
            ),
            (
                text(&[&format!("- {PID} {AES}"), &format!("- {PID} {AES}")]),
                3,
                "duplicate",
            ),
        ];
        for (input, line, reason) in &cases {
            let err = KeyStore::parse(input).unwrap_err();
            assert_eq!(err.line, *line, "{input:?} → {err}");
            assert!(err.reason.contains(reason), "{input:?} → {err}");
            let shown = format!("{err} {err:?}");
            for secret in [PID, AES, "8792ebfe26", "ecde18dbe76fbd"] {
                assert!(!shown.contains(secret), "{shown} leaks {secret}");
            }
        }
    }

    #[test]
    fn api_insert_remove_get() {
        let mut ks = KeyStore::parse(&text(&["# keep me"])).unwrap();
        assert!(ks.is_empty());
        let (a, b) = (key(1), key(2));
        assert!(ks.insert(a.id, a.km.clone()).is_none());
        assert!(ks.insert(b.id, b.km.clone()).is_none());
        assert_eq!(ks.len(), 2);
        // Replacing returns the old material and keeps the line in place.
        let old = ks.insert(a.id, b.km.clone()).unwrap();
        assert_eq!(old, a.km);
        assert_eq!(ks.get(&a.id), Some(&b.km));
        let t = ks.to_text();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "# keep me");
        assert!(lines[2].starts_with(&a.id.to_modhex()));
        assert!(lines[3].starts_with(&b.id.to_modhex()));
        assert_eq!(ks.remove(&a.id), Some(b.km.clone()));
        assert_eq!(ks.remove(&a.id), None);
        assert!(!ks.contains(&a.id) && ks.contains(&b.id));
        assert_eq!(ks.ids().collect::<Vec<_>>(), vec![b.id]);
        assert_eq!(ks.to_text().lines().count(), 3);
    }

    #[test]
    fn debug_and_errors_never_show_secrets() {
        let k = key(7);
        let mut ks = KeyStore::default();
        ks.insert(k.id, k.km.clone());
        let aes = k.km.aes_key.expose_hex();
        let pid = k.km.private_id.expose_hex();
        for s in [format!("{ks:?}"), format!("{ks:#?}")] {
            assert!(s.contains(&k.id.to_modhex()), "{s}");
            assert!(!s.contains(&aes) && !s.contains(&pid), "{s}");
        }
        // A corrupt line that holds a real key: the error has neither.
        let d = tempdir();
        let p = d.path().join("keys");
        write_file(
            &p,
            format!(
                "{HEADER}\n{} {pid} {aes}\n{} {pid}x {aes}\n",
                k.id,
                key(8).id
            )
            .as_bytes(),
            0o600,
        );
        let shown = format!("{:?}", KeyStore::load(&p));
        assert!(
            shown.contains("line 3") || shown.contains("line: 3"),
            "{shown}"
        );
        assert!(!shown.contains(&aes) && !shown.contains(&pid), "{shown}");
    }

    #[test]
    fn loads_a_good_store_with_each_private_mode() {
        let d = tempdir();
        let p = d.path().join("keys");
        let (a, b) = (key(1), key(2));
        for mode in [0o600, 0o400, 0o700] {
            write_keystore(&p, &[&a, &b]);
            chmod(&p, mode);
            let ks = KeyStore::load(&p).unwrap();
            assert_eq!(ks.len(), 2, "mode {mode:o}");
            assert_eq!(ks.get(&b.id), Some(&b.km));
        }
    }

    #[test]
    fn missing_file_or_directory_is_not_found() {
        let d = tempdir();
        let p = d.path().join("keys");
        match KeyStore::load(&p) {
            Err(StoreError::Open(OpenError::NotFound(q))) => assert_eq!(q, p),
            other => panic!("{other:?}"),
        }
        let q = d.path().join("nodir").join("keys");
        assert!(matches!(
            KeyStore::load(&q),
            Err(StoreError::Open(OpenError::NotFound(_)))
        ));
    }

    /// R175: group/other bits.
    #[test]
    fn refuses_group_or_world_access() {
        let d = tempdir();
        let p = d.path().join("keys");
        write_keystore(&p, &[&key(1)]);
        for mode in [0o640, 0o604, 0o644, 0o660, 0o606, 0o610, 0o601, 0o666] {
            chmod(&p, mode);
            let (path, v) = expect_untrusted(KeyStore::load(&p));
            assert_eq!(path, p);
            assert_eq!(v, Violation::Mode(mode), "mode {mode:o}");
        }
    }

    /// R175: owner.
    #[test]
    fn refuses_a_store_not_owned_by_root() {
        let d = tempdir();
        let p = d.path().join("keys");
        write_keystore(&p, &[&key(1)]);
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let (_, v) = expect_untrusted(KeyStore::load(&p));
        assert_eq!(v, Violation::Owner(65534, "root"));
        // Group ownership alone does not matter while the mode is 0600.
        std::os::unix::fs::chown(&p, Some(0), Some(65534)).unwrap();
        assert!(KeyStore::load(&p).is_ok());
    }

    /// R175 + R099: a parent writable by non-root, and /tmp itself.
    #[test]
    fn refuses_an_untrusted_directory_chain() {
        let d = tempdir();
        let open = d.path().join("open");
        fs::create_dir(&open).unwrap();
        let p = open.join("keys");
        write_keystore(&p, &[&key(1)]);
        for mode in [0o777, 0o775, 0o757, 0o1777] {
            chmod(&open, mode);
            let (path, v) = expect_untrusted(KeyStore::load(&p));
            assert_eq!((path.as_path(), v), (open.as_path(), Violation::Mode(mode)));
        }
        chmod(&open, 0o755);
        std::os::unix::fs::chown(&open, Some(65534), None).unwrap();
        let (path, v) = expect_untrusted(KeyStore::load(&p));
        assert_eq!((path, v), (open.clone(), Violation::Owner(65534, "root")));
        std::os::unix::fs::chown(&open, Some(0), None).unwrap();
        assert!(KeyStore::load(&p).is_ok());

        // Under /tmp (world-writable, sticky): refused, naming /tmp.
        let t = tempfile::tempdir_in("/tmp").unwrap();
        let p = t.path().join("keys");
        write_keystore(&p, &[&key(1)]);
        let (path, v) = expect_untrusted(KeyStore::load(&p));
        assert_eq!(path, Path::new("/tmp"));
        assert!(matches!(v, Violation::Mode(m) if m & 0o002 != 0), "{v:?}");
    }

    /// R177: symlink (even to a good file), FIFO, hardlink, huge, directory.
    #[test]
    fn refuses_symlink_fifo_hardlink_huge_and_directory() {
        let d = tempdir();
        let good = d.path().join("good");
        write_keystore(&good, &[&key(1)]);

        let link = d.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert_eq!(
            expect_untrusted(KeyStore::load(&link)).1,
            Violation::Symlink
        );

        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let f2 = fifo.clone();
        let r = within("loading a FIFO", move || {
            KeyStore::load(&f2).map(|k| k.len())
        });
        assert_eq!(expect_untrusted(r).1, Violation::NotRegular("FIFO"));

        let hard = d.path().join("hard");
        fs::hard_link(&good, &hard).unwrap();
        assert_eq!(
            expect_untrusted(KeyStore::load(&hard)).1,
            Violation::HardLinked(2)
        );
        fs::remove_file(&hard).unwrap();

        let huge = d.path().join("huge");
        let f = File::create(&huge).unwrap();
        f.set_len(1 << 30).unwrap();
        drop(f);
        chmod(&huge, 0o600);
        let h2 = huge.clone();
        let r = within("loading a 1 GB sparse file", move || {
            KeyStore::load(&h2).map(|k| k.len())
        });
        assert_eq!(
            expect_untrusted(r).1,
            Violation::TooLarge {
                size: 1 << 30,
                max: 4 << 20
            }
        );
        // Just over the cap is refused too; the cap itself is not.
        let f = File::options().write(true).open(&huge).unwrap();
        f.set_len((4 << 20) + 1).unwrap();
        assert!(matches!(
            expect_untrusted(KeyStore::load(&huge)).1,
            Violation::TooLarge { .. }
        ));

        let dir = d.path().join("dir");
        fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        assert_eq!(
            expect_untrusted(KeyStore::load(&dir)).1,
            Violation::NotRegular("directory")
        );
    }

    #[test]
    fn corrupt_file_names_path_and_line() {
        let d = tempdir();
        let p = d.path().join("keys");
        write_file(
            &p,
            format!("{HEADER}\n# c\n\nccccccdbjrgf {PID} {AES}\nccccccdbjrgg {PID}\n").as_bytes(),
            0o600,
        );
        let (path, line, reason) = expect_corrupt(KeyStore::load(&p));
        assert_eq!((path, line), (p.clone(), 5));
        assert!(reason.contains("3 fields"), "{reason}");

        let mut bytes = format!("{HEADER}\n# c\n").into_bytes();
        bytes.extend_from_slice(b"# \xff\xfe\n");
        write_file(&p, &bytes, 0o600);
        let (_, line, reason) = expect_corrupt(KeyStore::load(&p));
        assert_eq!((line, reason.as_str()), (3, "not valid UTF-8"));
    }

    #[test]
    fn update_creates_a_private_store_and_its_lock() {
        let d = tempdir();
        let p = d.path().join("keys");
        let k = key(1);
        let n = KeyStore::update(&p, |ks| {
            assert!(ks.is_empty());
            ks.insert(k.id, k.km.clone());
            Ok(ks.len())
        })
        .unwrap();
        assert_eq!(n, 1);
        let meta = fs::symlink_metadata(&p).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.uid(), 0);
        let lock = d.path().join("keys.lock");
        let lmeta = fs::symlink_metadata(&lock).unwrap();
        assert!(lmeta.is_file());
        assert_eq!(lmeta.mode() & 0o077, 0);
        assert!(fs::read_to_string(&p).unwrap().starts_with(HEADER));
        assert_eq!(KeyStore::load(&p).unwrap().get(&k.id), Some(&k.km));
        // Only the store and its lock: no temp left behind.
        let mut names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["keys", "keys.lock"]);
    }

    #[test]
    fn update_keeps_comments_and_writes_nothing_on_error() {
        let d = tempdir();
        let p = d.path().join("keys");
        let (a, b) = (key(1), key(2));
        let original = format!(
            "{HEADER}\n# owner: ops\n{} {} {}\n",
            a.id,
            a.km.private_id.expose_hex(),
            a.km.aes_key.expose_hex()
        );
        write_file(&p, original.as_bytes(), 0o600);
        // An edit that fails writes nothing.
        let r: Result<(), _> = KeyStore::update(&p, |ks| {
            ks.remove(&a.id);
            Err(StoreError::Unknown(b.id))
        });
        assert!(matches!(r, Err(StoreError::Unknown(id)) if id == b.id));
        assert_eq!(fs::read_to_string(&p).unwrap(), original);
        // A no-op edit does not rewrite the file (same inode).
        let ino = fs::metadata(&p).unwrap().ino();
        KeyStore::update(&p, |_| Ok(())).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
        // A real edit keeps the comment and appends.
        KeyStore::update(&p, |ks| {
            ks.insert(b.id, b.km.clone());
            Ok(())
        })
        .unwrap();
        let now = fs::read_to_string(&p).unwrap();
        assert!(now.starts_with(&original), "{now}");
        assert_eq!(now.lines().count(), 4);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn update_refuses_corrupt_untrusted_or_homeless_stores() {
        let d = tempdir();
        let p = d.path().join("keys");
        write_file(&p, b"not a key store\n", 0o600);
        let called = Cell::new(false);
        let (_, line, _) = expect_corrupt(KeyStore::update(&p, |_| {
            called.set(true);
            Ok(())
        }));
        assert_eq!(line, 1);
        assert!(!called.get());
        assert_eq!(fs::read(&p).unwrap(), b"not a key store\n");

        write_keystore(&p, &[&key(1)]);
        chmod(&p, 0o644);
        let before = fs::read(&p).unwrap();
        assert_eq!(
            expect_untrusted(KeyStore::update(&p, |_| Ok(()))).1,
            Violation::Mode(0o644)
        );
        assert_eq!(fs::read(&p).unwrap(), before);

        let gone = d.path().join("missing-dir").join("keys");
        assert!(matches!(
            KeyStore::update(&gone, |_| Ok(())),
            Err(StoreError::Open(OpenError::NotFound(_)))
        ));
        assert!(!gone.parent().unwrap().exists());

        // A symlink planted at the lock path is not followed.
        let e = tempdir();
        let victim = e.path().join("victim");
        write_file(&victim, b"x", 0o600);
        std::os::unix::fs::symlink(&victim, e.path().join("keys.lock")).unwrap();
        assert_eq!(
            expect_untrusted(KeyStore::update(&e.path().join("keys"), |_| Ok(()))).1,
            Violation::Symlink
        );
        assert!(!e.path().join("keys").exists());
    }

    #[test]
    fn update_removes_stale_temps_only() {
        let d = tempdir();
        let p = d.path().join("keys");
        let stale = d.path().join(format!(".keys.tmp-{}", "ab".repeat(16)));
        let other = d.path().join(".keys.tmp-notrandom");
        write_file(&stale, b"half a key stor", 0o600);
        write_file(&other, b"x", 0o600);
        KeyStore::update(&p, |ks| {
            ks.insert(key(1).id, key(1).km);
            Ok(())
        })
        .unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
    }

    /// No lost update: 16 threads each add a different key at once.
    #[test]
    fn concurrent_updates_lose_nothing() {
        let d = tempdir();
        let p = Arc::new(d.path().join("keys"));
        let barrier = Arc::new(Barrier::new(16));
        let handles: Vec<_> = (0..16u8)
            .map(|n| {
                let (p, barrier) = (Arc::clone(&p), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let k = key(n);
                    barrier.wait();
                    KeyStore::update(&p, |ks| {
                        ks.insert(k.id, k.km.clone());
                        Ok(())
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let ks = KeyStore::load(&p).unwrap();
        assert_eq!(ks.len(), 16);
        for n in 0..16 {
            assert_eq!(ks.get(&key(n).id), Some(&key(n).km));
        }
    }

    /// SIGKILL at the real rename(2) of a key store update (strace fault
    /// injection): the old store stays, the temp is cleaned next time.
    #[test]
    fn update_killed_at_rename_keeps_the_old_store() {
        maybe_child();
        if !strace_available() {
            eprintln!("SKIPPED: strace is not installed");
            return;
        }
        let d = tempdir();
        let p = d.path().join("keys");
        write_keystore(&p, &[&key(1)]);
        let before = fs::read(&p).unwrap();
        let status = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null"])
            .args(["-e", "trace=rename,renameat,renameat2"])
            .args(["-e", "inject=rename,renameat,renameat2:signal=SIGKILL"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "keystore::update_killed_at_rename_keeps_the_old_store",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "keystore-add")
            .env("ST_KEYS", &p)
            .env("ST_KEY", "2")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert_eq!(fs::read(&p).unwrap(), before);
        let ks = KeyStore::load(&p).unwrap();
        assert!(ks.contains(&key(1).id) && !ks.contains(&key(2).id));
        let is_temp = |e: &fs::DirEntry| e.file_name().to_str().unwrap().starts_with(".keys.tmp-");
        let n_temps = || {
            fs::read_dir(d.path())
                .unwrap()
                .filter(|e| is_temp(e.as_ref().unwrap()))
                .count()
        };
        assert_eq!(n_temps(), 1, "the killed writer's temp is there");
        KeyStore::update(&p, |ks| {
            ks.insert(key(2).id, key(2).km);
            Ok(())
        })
        .unwrap();
        assert_eq!(n_temps(), 0);
        assert_eq!(KeyStore::load(&p).unwrap().len(), 2);
    }
}

// ─────────────────────── counter state: basics ───────────────────────

mod state {
    use super::*;

    #[test]
    fn state_format_is_strict() {
        assert_eq!(parse_state(b"v1 0 0\n"), Ok(Counter::new(0, 0)));
        assert_eq!(parse_state(b"v1 12 3\n"), Ok(Counter::new(12, 3)));
        assert_eq!(
            parse_state(b"v1 32767 255\n"),
            Ok(Counter::new(0x7fff, 255))
        );
        assert_eq!(format_state(Counter::new(0x7fff, 255)), "v1 32767 255\n");
        let bad: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"v1 12 3", "truncated"),
            (b"v1 12", "truncated"),
            (b"v1 12\n", "expected"),
            (b"v1 12 3 4\n", "expected"),
            (b"v1 12 3\n\n", "trailing"),
            (b"v1 12 3\nv1 13 0\n", "trailing"),
            (b"v1 12 3\ngarbage", "truncated"),
            (b"v1 12 3 \n", "expected"),
            (b"v1  12 3\n", "expected"),
            (b" v1 12 3\n", "missing version"),
            (b"V1 12 3\n", "missing version"),
            (b"v2 12 3\n", "unsupported"),
            (b"v1 32768 0\n", "above 32767"),
            (b"v1 65535 0\n", "above 32767"),
            (b"v1 99999999999999999999 0\n", "above 32767"),
            (b"v1 1 256\n", "above 255"),
            (b"v1 -1 0\n", "not a decimal"),
            (b"v1 +1 0\n", "not a decimal"),
            (b"v1 1 -0\n", "not a decimal"),
            (b"v1 0x10 0\n", "not a decimal"),
            (b"v1 012 3\n", "leading zero"),
            (b"v1 12 03\n", "leading zero"),
            (b"v1 1.5 3\n", "not a decimal"),
            (b"v1 a b\n", "not a decimal"),
            (b"v1\t12\t3\n", "missing version"),
            (b"v1 12 3\r\n", "session counter is not"),
            (b"v1 \xff 3\n", "not a decimal"),
            (b"\0\0\0\0\0\0\0\n", "missing version"),
        ];
        for (input, reason) in bad {
            let e: ParseError = parse_state(input).unwrap_err();
            assert_eq!(e.line, 1);
            assert!(
                e.reason.contains(reason),
                "{:?}: {} (wanted {reason})",
                String::from_utf8_lossy(input),
                e.reason
            );
        }
    }

    #[test]
    fn names_never_collide_and_ids_lists_them() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let empty = PublicId::from_modhex("").unwrap();
        let short = PublicId::from_modhex("cc").unwrap();
        let std_id = PublicId::from_modhex("ccccccdbjrgf").unwrap();
        let long = PublicId::from_modhex(&"v".repeat(32)).unwrap();
        let all = [empty, short, std_id, long];
        let paths: Vec<PathBuf> = all.iter().map(|i| s.path_of(i)).collect();
        assert_eq!(paths[0], s.dir().join("id-.state"));
        assert_eq!(paths[2], s.dir().join("id-ccccccdbjrgf.state"));
        let mut uniq = paths.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 4);
        for (n, id) in all.iter().enumerate() {
            s.init(id, Counter::new(n as u16 + 1, 0)).unwrap();
        }
        for (n, id) in all.iter().enumerate() {
            assert_eq!(s.read(id).unwrap(), Counter::new(n as u16 + 1, 0));
        }
        // Unrelated files are not ids.
        write_file(&s.dir().join("README"), b"x", 0o600);
        write_file(&s.dir().join("id-CC.state"), b"v1 1 1\n", 0o600);
        write_file(&s.dir().join("id-xyz.state"), b"v1 1 1\n", 0o600);
        let mut expected = all.to_vec();
        expected.sort();
        assert_eq!(s.ids().unwrap(), expected);
        assert_eq!(fs::read_to_string(s.path_of(&std_id)).unwrap(), "v1 3 0\n");
    }

    /// R068: missing state is never (0, 0).
    #[test]
    fn missing_state_is_never_accepted() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(1);
        match s.read(&k.id) {
            Err(StoreError::StateMissing { path, id }) => {
                assert_eq!((path, id), (s.path_of(&k.id), k.id));
            }
            other => panic!("{other:?}"),
        }
        let called = Cell::new(false);
        let r = s.check_and_advance(&k.id, |_| {
            called.set(true);
            Ok::<_, ()>(Counter::new(1, 1))
        });
        assert!(matches!(r, Err(StoreError::StateMissing { .. })), "{r:?}");
        assert!(!called.get(), "decide must not run without state");
        assert!(matches!(
            advance(&s, &k, &otp(&k, 1, 1)),
            Err(StoreError::StateMissing { .. })
        ));
        assert!(!s.path_of(&k.id).exists(), "no state was invented");
    }

    /// R096: every kind of corruption fails closed, leaves the file as it
    /// was, and does not touch other keys.
    #[test]
    fn corrupt_state_fails_closed_and_is_left_untouched() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let (k, other) = (key(1), key(2));
        s.init(&other.id, Counter::new(1, 0)).unwrap();
        let variants: &[&[u8]] = &[
            b"",
            b"v1 5",
            b"v1 5 3",
            b"v1 5 3\ngarbage\n",
            b"v1 5 3 trailing\n",
            b"v1 40000 3\n",
            b"v1 5 300\n",
            b"v1 -5 3\n",
            b"v1 five 3\n",
            b"v9 5 3\n",
            b"{\"use\":5,\"session\":3}\n",
            b"\x8f\x1c\xaa\x00\x13\x37random",
        ];
        for bytes in variants {
            let path = s.path_of(&k.id);
            write_file(&path, bytes, 0o600);
            let mtime = fs::metadata(&path).unwrap().mtime_nsec();
            let (p, line, _) = expect_corrupt(s.read(&k.id));
            assert_eq!((p, line), (path.clone(), 1));
            let called = Cell::new(false);
            let r = s.check_and_advance(&k.id, |_| {
                called.set(true);
                Ok::<_, ()>(Counter::new(0x7fff, 255))
            });
            expect_corrupt(r);
            assert!(!called.get());
            expect_corrupt(advance(&s, &k, &otp(&k, 9, 9)));
            assert_eq!(fs::read(&path).unwrap(), *bytes, "file left for forensics");
            assert_eq!(fs::metadata(&path).unwrap().mtime_nsec(), mtime);
            // The other key is unaffected.
            assert_eq!(s.read(&other.id).unwrap(), Counter::new(1, 0));
        }
        // Bigger than any state file: refused by size before parsing.
        write_file(&s.path_of(&k.id), &[b'1'; 300], 0o600);
        assert!(matches!(
            expect_untrusted(s.read(&k.id)).1,
            Violation::TooLarge { size: 300, .. }
        ));
        assert_eq!(
            advance(&s, &other, &otp(&other, 1, 1)).unwrap(),
            Ok(Counter::new(1, 1))
        );
    }

    /// R097: symlink, hardlink, FIFO, directory, owner, mode.
    #[test]
    fn untrusted_state_files_are_refused() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(1);
        let path = s.path_of(&k.id);
        let elsewhere = d.path().join("elsewhere");
        write_file(&elsewhere, b"v1 1 0\n", 0o600);
        let token = otp(&k, 5, 0);

        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(expect_untrusted(s.read(&k.id)).1, Violation::Symlink);
        assert_eq!(
            expect_untrusted(advance(&s, &k, &token)).1,
            Violation::Symlink
        );
        assert_eq!(fs::read(&elsewhere).unwrap(), b"v1 1 0\n");
        fs::remove_file(&path).unwrap();

        fs::hard_link(&elsewhere, &path).unwrap();
        assert_eq!(
            expect_untrusted(advance(&s, &k, &token)).1,
            Violation::HardLinked(2)
        );
        assert_eq!(fs::read(&elsewhere).unwrap(), b"v1 1 0\n");
        fs::remove_file(&path).unwrap();

        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let s2 = s.clone();
        let k2 = k.clone();
        let r = within("advancing with a FIFO as state", move || {
            advance(&s2, &k2, &otp(&k2, 5, 0))
        });
        assert_eq!(expect_untrusted(r).1, Violation::NotRegular("FIFO"));
        fs::remove_file(&path).unwrap();

        fs::create_dir(&path).unwrap();
        assert_eq!(
            expect_untrusted(advance(&s, &k, &token)).1,
            Violation::NotRegular("directory")
        );
        fs::remove_dir(&path).unwrap();

        write_file(&path, b"v1 1 0\n", 0o600);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        assert_eq!(
            expect_untrusted(advance(&s, &k, &token)).1,
            Violation::Owner(65534, "root")
        );
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();

        for mode in [0o644, 0o640, 0o604, 0o660] {
            chmod(&path, mode);
            assert_eq!(
                expect_untrusted(advance(&s, &k, &token)).1,
                Violation::Mode(mode)
            );
        }
        chmod(&path, 0o600);
        assert_eq!(advance(&s, &k, &token).unwrap(), Ok(Counter::new(5, 0)));
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.nlink()),
            (0o600, 0, 1)
        );
        assert_eq!(STATE_POLICY.forbidden_mode, 0o077);
    }

    /// The stable lock file is checked like a state file: a user who could
    /// open it could hold the lock forever (R084), and a planted FIFO or
    /// symlink is never opened.
    #[test]
    fn lock_files_are_checked() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(1);
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        let lock = s.lock_path_of(&k.id);
        assert_eq!(lock, s.dir().join(format!("id-{}.lock", k.id)));
        let meta = fs::symlink_metadata(&lock).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o600, 0));
        let token = otp(&k, 1, 1);
        for mode in [0o644, 0o604] {
            chmod(&lock, mode);
            assert_eq!(
                expect_untrusted(advance(&s, &k, &token)).1,
                Violation::Mode(mode)
            );
        }
        fs::remove_file(&lock).unwrap();
        nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (s2, k2) = (s.clone(), k.clone());
        let r = within("locking a FIFO", move || advance(&s2, &k2, &otp(&k2, 1, 1)));
        assert_eq!(expect_untrusted(r).1, Violation::NotRegular("FIFO"));
        fs::remove_file(&lock).unwrap();
        let victim = d.path().join("victim");
        write_file(&victim, b"", 0o600);
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        assert_eq!(
            expect_untrusted(advance(&s, &k, &token)).1,
            Violation::Symlink
        );
        fs::remove_file(&lock).unwrap();
        // A missing lock file is simply created again.
        assert_eq!(advance(&s, &k, &token).unwrap(), Ok(Counter::new(1, 1)));
        assert!(lock.exists());
    }

    /// R098/R099: the state directory and its ancestors.
    #[test]
    fn state_directory_checks() {
        let d = tempdir();
        let dir = d.path().join("state");
        assert!(matches!(
            CounterStore::open(&dir),
            Err(StoreError::Open(OpenError::NotFound(_)))
        ));
        assert!(!dir.exists(), "open never creates");

        let s = CounterStore::create_dir(&dir).unwrap();
        let meta = fs::symlink_metadata(&dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o700, 0));
        assert_eq!(s.dir(), dir);
        CounterStore::create_dir(&dir).unwrap(); // idempotent
        CounterStore::open(&dir).unwrap();

        for mode in [0o777, 0o770, 0o702, 0o1777] {
            chmod(&dir, mode);
            let (p, v) = expect_untrusted(CounterStore::open(&dir));
            assert_eq!((p, v), (dir.clone(), Violation::Mode(mode)));
            expect_untrusted(CounterStore::create_dir(&dir));
        }
        chmod(&dir, 0o755); // readable is fine, writable is not
        CounterStore::open(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        assert_eq!(
            expect_untrusted(CounterStore::open(&dir)).1,
            Violation::Owner(65534, "root")
        );
        std::os::unix::fs::chown(&dir, Some(0), None).unwrap();

        let file = d.path().join("file");
        write_file(&file, b"", 0o600);
        assert_eq!(
            expect_untrusted(CounterStore::open(&file)).1,
            Violation::NotDirectory
        );

        // A writable parent: open and create_dir refuse, nothing is made.
        let open = d.path().join("open");
        fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let inner = open.join("state");
        let (p, _) = expect_untrusted(CounterStore::create_dir(&inner));
        assert_eq!(p, open);
        assert!(!inner.exists());
        fs::create_dir(&inner).unwrap();
        chmod(&inner, 0o700);
        assert_eq!(expect_untrusted(CounterStore::open(&inner)).0, open);

        // Missing parent.
        assert!(matches!(
            CounterStore::create_dir(&d.path().join("no").join("state")),
            Err(StoreError::Open(OpenError::NotFound(_)))
        ));

        // Under /tmp.
        let t = tempfile::tempdir_in("/tmp").unwrap();
        let (p, _) = expect_untrusted(CounterStore::create_dir(&t.path().join("state")));
        assert_eq!(p, Path::new("/tmp"));
    }

    #[test]
    fn admin_init_set_remove() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(1);
        s.init(&k.id, Counter::new(3, 4)).unwrap();
        assert_eq!(fs::read_to_string(s.path_of(&k.id)).unwrap(), "v1 3 4\n");
        // init never overwrites, so it never lowers.
        assert!(
            matches!(s.init(&k.id, Counter::new(0, 0)), Err(StoreError::Exists(id)) if id == k.id)
        );
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(3, 4));

        // set: forward, same, lower (refused, then forced).
        assert_eq!(
            s.set(&k.id, Counter::new(4, 0), false).unwrap(),
            Some(Counter::new(3, 4))
        );
        assert_eq!(
            s.set(&k.id, Counter::new(4, 0), false).unwrap(),
            Some(Counter::new(4, 0))
        );
        match s.set(&k.id, Counter::new(3, 255), false) {
            Err(StoreError::WouldLower {
                id,
                current,
                requested,
            }) => {
                assert_eq!(
                    (id, current, requested),
                    (k.id, Counter::new(4, 0), Counter::new(3, 255))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(4, 0));
        assert_eq!(
            s.set(&k.id, Counter::new(1, 0), true).unwrap(),
            Some(Counter::new(4, 0))
        );
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(1, 0));

        // set on missing state creates it.
        let k2 = key(2);
        assert_eq!(s.set(&k2.id, Counter::new(2, 2), false).unwrap(), None);
        assert_eq!(s.read(&k2.id).unwrap(), Counter::new(2, 2));

        // Corrupt state: only a forced set replaces it.
        write_file(&s.path_of(&k2.id), b"garbage", 0o600);
        expect_corrupt(s.set(&k2.id, Counter::new(9, 9), false));
        assert_eq!(fs::read(s.path_of(&k2.id)).unwrap(), b"garbage");
        assert_eq!(s.set(&k2.id, Counter::new(9, 9), true).unwrap(), None);
        assert_eq!(s.read(&k2.id).unwrap(), Counter::new(9, 9));
        // Untrusted (loose mode) state: same.
        chmod(&s.path_of(&k2.id), 0o644);
        expect_untrusted(s.set(&k2.id, Counter::new(10, 0), false));
        assert_eq!(s.set(&k2.id, Counter::new(10, 0), true).unwrap(), None);
        assert_eq!(
            fs::metadata(s.path_of(&k2.id)).unwrap().mode() & 0o7777,
            0o600
        );

        // remove: the state goes, the lock file stays.
        s.remove(&k.id).unwrap();
        assert!(matches!(
            s.read(&k.id),
            Err(StoreError::StateMissing { .. })
        ));
        assert!(s.lock_path_of(&k.id).exists());
        assert!(matches!(s.remove(&k.id), Err(StoreError::Unknown(id)) if id == k.id));
        assert_eq!(s.ids().unwrap(), vec![k2.id]);
        // A state created after removal works again.
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        assert_eq!(
            advance(&s, &k, &otp(&k, 1, 1)).unwrap(),
            Ok(Counter::new(1, 1))
        );
    }

    /// The module's own local backend over real files.
    #[test]
    fn local_backend_over_real_stores() {
        let d = tempdir();
        let keys = d.path().join("keys");
        let (k, unknown) = (key(1), key(2));
        KeyStore::update(&keys, |ks| {
            ks.insert(k.id, k.km.clone());
            Ok(())
        })
        .unwrap();
        let ks = KeyStore::load(&keys).unwrap();
        let s = new_state_dir(d.path());
        let t = otp(&k, 2, 0);
        assert!(matches!(
            local::validate(&t, &ks, &s),
            LocalVerdict::Fault(StoreError::StateMissing { .. })
        ));
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        assert!(
            matches!(local::validate(&t, &ks, &s), LocalVerdict::Accepted(c) if c == Counter::new(2, 0))
        );
        assert!(matches!(
            local::validate(&t, &ks, &s),
            LocalVerdict::Rejected(Rejection::Replayed { .. })
        ));
        assert!(matches!(
            local::validate(&otp(&unknown, 5, 0), &ks, &s),
            LocalVerdict::NotHeld
        ));
    }
}

// ───────────────────────── replay and ordering ─────────────────────────

mod replay {
    use super::*;

    fn setup(start: Counter) -> (TempDir, CounterStore, TestKey) {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(1);
        s.init(&k.id, start).unwrap();
        (d, s, k)
    }

    /// R060/R061/R062/R063.
    #[test]
    fn equal_lower_and_higher_counters() {
        let (_d, s, k) = setup(Counter::new(5, 3));
        let t1 = otp(&k, 5, 4);
        assert_eq!(advance(&s, &k, &t1).unwrap(), Ok(Counter::new(5, 4)));
        // Same OTP again: replay, state unchanged.
        match advance(&s, &k, &t1).unwrap() {
            Err(Rejection::Replayed { presented, last }) => {
                assert_eq!((presented, last), (Counter::new(5, 4), Counter::new(5, 4)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(5, 4));
        // Lower session, lower use counter, older OTP after newer.
        assert!(is_replayed(&advance(&s, &k, &otp(&k, 5, 2))));
        assert!(is_replayed(&advance(&s, &k, &otp(&k, 4, 200))));
        assert!(is_replayed(&advance(&s, &k, &otp(&k, 5, 3))));
        // Replug: use + 1, session 0.
        assert_eq!(
            advance(&s, &k, &otp(&k, 6, 0)).unwrap(),
            Ok(Counter::new(6, 0))
        );
        let t3 = otp(&k, 6, 2);
        let t2 = otp(&k, 6, 1);
        assert_eq!(advance(&s, &k, &t3).unwrap(), Ok(Counter::new(6, 2)));
        assert!(is_replayed(&advance(&s, &k, &t2)), "older after newer");
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(6, 2));
        assert_eq!(fs::read_to_string(s.path_of(&k.id)).unwrap(), "v1 6 2\n");
        assert!(temps(&s, &k.id).is_empty());
    }

    /// R064: session wrap.
    #[test]
    fn session_wrap() {
        let (_d, s, k) = setup(Counter::new(5, 0xff));
        assert!(is_replayed(&advance(&s, &k, &otp(&k, 5, 0))));
        assert_eq!(
            advance(&s, &k, &otp(&k, 6, 0)).unwrap(),
            Ok(Counter::new(6, 0))
        );
    }

    /// R065: the ceiling.
    #[test]
    fn counter_ceiling() {
        let (_d, s, k) = setup(Counter::new(0x7ffe, 9));
        assert_eq!(
            advance(&s, &k, &otp(&k, 0x7fff, 0)).unwrap(),
            Ok(Counter::new(0x7fff, 0))
        );
        s.set(&k.id, Counter::new(0x7fff, 0xff), false).unwrap();
        assert_eq!(
            fs::read_to_string(s.path_of(&k.id)).unwrap(),
            "v1 32767 255\n"
        );
        for (u, ses) in [(0x7fff, 0xff), (0x7fff, 0), (0, 0), (1, 1)] {
            assert!(is_replayed(&advance(&s, &k, &otp(&k, u, ses))));
        }
    }

    /// Wrong key material: rejected before any write.
    #[test]
    fn bad_crc_and_foreign_private_id_write_nothing() {
        let (_d, s, k) = setup(Counter::new(1, 0));
        let ino = fs::metadata(s.path_of(&k.id)).unwrap().ino();
        let mut other = key(1);
        other.km.aes_key = AesKey::from_bytes([0x11; 16]);
        let r = advance(&s, &other, &otp(&k, 2, 0)).unwrap();
        assert_eq!(r, Err(Rejection::BadCrc));
        let mut same_aes = key(1);
        same_aes.km.private_id = PrivateId::from_bytes([9; 6]);
        let r = advance(&s, &same_aes, &otp(&k, 2, 0)).unwrap();
        assert_eq!(r, Err(Rejection::PrivateIdMismatch));
        assert_eq!(fs::metadata(s.path_of(&k.id)).unwrap().ino(), ino);
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(1, 0));
    }

    /// A decide that returns a counter not above the stored one is never
    /// committed, whatever it claims.
    #[test]
    fn a_decision_that_does_not_advance_is_refused() {
        let (_d, s, k) = setup(Counter::new(5, 5));
        for requested in [Counter::new(5, 5), Counter::new(5, 4), Counter::new(0, 0)] {
            match s.check_and_advance(&k.id, |_| Ok::<_, ()>(requested)) {
                Err(StoreError::NotNewer {
                    id,
                    current,
                    requested: r,
                }) => {
                    assert_eq!((id, current, r), (k.id, Counter::new(5, 5), requested));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(s.read(&k.id).unwrap(), Counter::new(5, 5));
        }
        assert_eq!(
            s.check_and_advance(&k.id, |last| {
                assert_eq!(last, Counter::new(5, 5));
                Err::<Counter, _>("no")
            })
            .unwrap(),
            Err("no")
        );
    }

    /// R100-lite: a long pseudo-random sequence against a reference model.
    #[test]
    fn random_sequence_matches_the_model() {
        let (_d, s, k) = setup(Counter::new(1, 0));
        let mut model = Counter::new(1, 0);
        let mut x: u32 = 0x1234_5678;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let c = Counter::new(1 + (x % 6) as u16, (x >> 8) as u8);
            let r = advance(&s, &k, &otp(&k, c.use_counter(), c.session())).unwrap();
            if c > model {
                assert_eq!(r, Ok(c));
                model = c;
            } else {
                assert!(
                    matches!(r, Err(Rejection::Replayed { .. })),
                    "{c} after {model}"
                );
            }
            assert_eq!(s.read(&k.id).unwrap(), model);
        }
    }

    /// R101: temp files are 0600, root's, one link, randomly named; a
    /// symlink planted at a guessable name is never followed.
    #[test]
    fn temp_files_are_private_unpredictable_and_never_follow_symlinks() {
        let (_d, s, k) = setup(Counter::new(1, 0));
        let victim = s.dir().join("..").join("victim");
        write_file(&victim, b"precious", 0o600);
        let prefix = CounterStore::temp_prefix_of(&k.id);
        let guessable = s.dir().join(prefix.trim_end_matches('-'));
        std::os::unix::fs::symlink(&victim, &guessable).unwrap();
        let pattern_link = s.dir().join(format!("{prefix}{}", "0".repeat(32)));
        std::os::unix::fs::symlink(&victim, &pattern_link).unwrap();

        let seen: Mutex<Vec<(String, u32, u32, u64)>> = Mutex::new(Vec::new());
        for session in 1..=3u8 {
            let t = otp(&k, 1, session);
            let r = s.check_and_advance_with_hook(
                &k.id,
                |last| verify_offline(&t, &k.km, last).map(|f| f.counter),
                &|step| {
                    if step == CommitStep::TempWritten {
                        let ts = temps(&s, &k.id);
                        assert_eq!(ts.len(), 1, "{ts:?}");
                        let m = fs::symlink_metadata(&ts[0]).unwrap();
                        assert!(m.is_file());
                        let name = ts[0].file_name().unwrap().to_str().unwrap().to_string();
                        seen.lock()
                            .unwrap()
                            .push((name, m.mode() & 0o7777, m.uid(), m.nlink()));
                    }
                },
            );
            assert_eq!(r.unwrap(), Ok(Counter::new(1, session)));
        }
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 3);
        let mut names: Vec<&String> = seen.iter().map(|s| &s.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3, "temp names repeat: {seen:?}");
        for (name, mode, uid, nlink) in &seen {
            let random = name.strip_prefix(&prefix).unwrap();
            assert_eq!(random.len(), 32);
            assert!(random.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!((*mode, *uid, *nlink), (0o600, 0, 1));
        }
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(
            !pattern_link.exists() && fs::symlink_metadata(&pattern_link).is_err(),
            "a symlink with a temp name is removed, not followed"
        );
        assert!(
            fs::symlink_metadata(&guessable)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

// ──────────────────────────── concurrency ────────────────────────────

mod concurrency {
    use super::*;

    /// R081: the same OTP from 16 threads at once.
    #[test]
    fn same_otp_in_16_threads_succeeds_once() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(1);
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        for round in 1..=5u8 {
            let barrier = Arc::new(Barrier::new(16));
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let (s, k, barrier) = (s.clone(), k.clone(), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        let t = otp(&k, 2, round);
                        barrier.wait();
                        advance(&s, &k, &t)
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
            assert_eq!(ok, 1, "{results:?}");
            for r in &results {
                assert!(
                    matches!(
                        r,
                        Ok(Ok(_))
                            | Ok(Err(Rejection::Replayed { .. }))
                            | Err(StoreError::LockTimeout { .. })
                    ),
                    "{r:?}"
                );
            }
            assert_eq!(s.read(&k.id).unwrap(), Counter::new(2, round));
        }
    }

    /// R080: the same OTP from 24 processes at once.
    #[test]
    fn same_otp_in_24_processes_succeeds_once() {
        maybe_child();
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(3);
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        for round in 1..=3u8 {
            let go = d.path().join(format!("go{round}"));
            let c = Counter::new(1, round);
            let children = spawn_advancers(
                "concurrency::same_otp_in_24_processes_succeeds_once",
                s.dir(),
                3,
                c,
                &go,
                24,
            );
            std::thread::sleep(Duration::from_millis(200));
            write_file(&go, b"", 0o600);
            let codes = codes(children);
            assert_eq!(
                codes.iter().filter(|c| **c == ACCEPTED).count(),
                1,
                "{codes:?}"
            );
            assert!(
                codes
                    .iter()
                    .all(|c| [ACCEPTED, REPLAYED, LOCK_TIMEOUT].contains(c)),
                "{codes:?}"
            );
            assert_eq!(s.read(&k.id).unwrap(), c);
            assert!(temps(&s, &k.id).is_empty());
        }
    }

    /// R082: 100 distinct fresh OTPs at once, in shuffled order.
    #[test]
    fn one_hundred_distinct_otps_lose_no_update() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(4);
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        let mut order: Vec<u8> = (1..=100).collect();
        let mut x: u32 = 0x9e37_79b9;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            order.swap(i, x as usize % (i + 1));
        }
        let committed = Arc::new(Mutex::new(Vec::new()));
        let barrier = Arc::new(Barrier::new(order.len()));
        let handles: Vec<_> = order
            .iter()
            .map(|&session| {
                let (s, k) = (s.clone(), k.clone());
                let (barrier, committed) = (Arc::clone(&barrier), Arc::clone(&committed));
                std::thread::spawn(move || {
                    let t = otp(&k, 2, session);
                    barrier.wait();
                    let r = s.check_and_advance(&k.id, |last| {
                        let fresh = verify_offline(&t, &k.km, last).map(|f| f.counter);
                        if let Ok(c) = fresh {
                            // Runs under the lock: this is commit order.
                            committed.lock().unwrap().push(c);
                        }
                        fresh
                    });
                    (session, r)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let committed = committed.lock().unwrap().clone();
        let accepted: Vec<Counter> = results
            .iter()
            .filter_map(|(_, r)| match r {
                Ok(Ok(c)) => Some(*c),
                Ok(Err(Rejection::Replayed { .. })) | Err(StoreError::LockTimeout { .. }) => None,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(!accepted.is_empty());
        assert!(committed.windows(2).all(|w| w[0] < w[1]), "{committed:?}");
        let mut sorted = accepted.clone();
        sorted.sort();
        assert_eq!(
            sorted, committed,
            "every accepted OTP was committed, in order"
        );
        let max = *committed.last().unwrap();
        assert_eq!(s.read(&k.id).unwrap(), max);
        for session in 1..=100 {
            assert!(is_replayed(&advance(&s, &k, &otp(&k, 2, session))));
        }
        assert!(temps(&s, &k.id).is_empty());
    }

    /// R083: two processes race through the same 200 OTPs, pausing between
    /// read and rename; no OTP is ever accepted twice.
    #[test]
    fn two_processes_never_accept_the_same_otp() {
        maybe_child();
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(5);
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        let go = d.path().join("go");
        let children: Vec<_> = (0..2)
            .map(|_| {
                child(
                    "concurrency::two_processes_never_accept_the_same_otp",
                    "sequence",
                )
                .env("ST_DIR", s.dir())
                .env("ST_KEY", "5")
                .env("ST_N", "200")
                .env("ST_GO", &go)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        write_file(&go, b"", 0o600);
        let mut all = Vec::new();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            let stdout = String::from_utf8(out.stdout).unwrap();
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("ACCEPTED "))
                .unwrap_or_else(|| panic!("no result in {stdout}"));
            all.extend(
                line.split(',')
                    .filter(|x| !x.is_empty())
                    .map(|x| x.parse::<u8>().unwrap()),
            );
        }
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "an OTP was accepted twice");
        assert_eq!(all.last(), Some(&200));
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(1, 200));
    }

    fn hold_lock(test: &str, lock: &Path, release: &Path) -> std::process::Child {
        let mut c = child(test, "hold")
            .env("ST_LOCK", lock)
            .env("ST_RELEASE", release)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The harness prints its own text first; wait for the marker line
        // (or EOF if the child failed).
        let locked = BufReader::new(c.stdout.as_mut().unwrap())
            .lines()
            .map_while(Result::ok)
            .any(|l| l == "LOCKED");
        assert!(locked, "the holder did not get the lock");
        c
    }

    /// R084: a lock held elsewhere → LockTimeout within the bound; after
    /// release, success.
    #[test]
    fn lock_held_by_another_process_times_out_then_succeeds() {
        maybe_child();
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(6);
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        let release = d.path().join("release");
        let mut holder = hold_lock(
            "concurrency::lock_held_by_another_process_times_out_then_succeeds",
            &s.lock_path_of(&k.id),
            &release,
        );
        let t = otp(&k, 1, 1);
        let start = Instant::now();
        let r = advance(&s, &k, &t);
        let waited = start.elapsed();
        match r {
            Err(StoreError::LockTimeout { path, secs }) => {
                assert_eq!((path, secs), (s.lock_path_of(&k.id), 5));
            }
            other => panic!("{other:?}"),
        }
        assert!(waited < HANG, "waited {waited:?}");
        // Another key is not blocked (no global lock).
        let other = key(7);
        s.init(&other.id, Counter::new(1, 0)).unwrap();
        assert_eq!(
            advance(&s, &other, &otp(&other, 1, 1)).unwrap(),
            Ok(Counter::new(1, 1))
        );
        // A shorter timeout is honoured too.
        let quick = s.clone().with_lock_timeout(Duration::from_millis(50));
        assert!(matches!(
            advance(&quick, &k, &t),
            Err(StoreError::LockTimeout { secs: 1, .. })
        ));
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(1, 0));

        write_file(&release, b"", 0o600);
        assert!(holder.wait().unwrap().success());
        assert_eq!(advance(&s, &k, &t).unwrap(), Ok(Counter::new(1, 1)));
    }

    /// R085: a lock holder that is SIGKILLed releases the lock at once.
    #[test]
    fn killed_lock_holder_releases_the_lock() {
        maybe_child();
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(8);
        s.init(&k.id, Counter::new(1, 0)).unwrap();
        let release = d.path().join("release");
        let mut holder = hold_lock(
            "concurrency::killed_lock_holder_releases_the_lock",
            &s.lock_path_of(&k.id),
            &release,
        );
        let now = s.clone().with_lock_timeout(Duration::ZERO);
        assert!(matches!(
            advance(&now, &k, &otp(&k, 1, 1)),
            Err(StoreError::LockTimeout { .. })
        ));
        holder.kill().unwrap();
        assert_eq!(holder.wait().unwrap().signal(), Some(libc::SIGKILL));
        // One attempt, no waiting.
        assert_eq!(
            advance(&now, &k, &otp(&k, 1, 1)).unwrap(),
            Ok(Counter::new(1, 1))
        );
    }
}

// ─────────────────────────── crash safety ───────────────────────────

mod crash {
    use super::*;

    /// R090: abort(3) at every commit step; the next call sees the old
    /// state (before the rename) or the new one (after), never a torn
    /// one; the OTP is accepted exactly once overall; leftovers are
    /// removed by the next advance.
    #[test]
    fn killed_at_every_commit_step() {
        maybe_child();
        for step in CommitStep::ALL {
            let d = tempdir();
            let s = new_state_dir(d.path());
            let k = key(9);
            let old = Counter::new(3, 7);
            let new = Counter::new(3, 8);
            s.init(&k.id, old).unwrap();
            let status = child("crash::killed_at_every_commit_step", "crash")
                .env("ST_DIR", s.dir())
                .env("ST_KEY", "9")
                .env("ST_USE", "3")
                .env("ST_SESSION", "8")
                .env("ST_STEP", format!("{step:?}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert_eq!(status.signal(), Some(libc::SIGABRT), "{step:?}: {status:?}");
            let committed = matches!(step, CommitStep::Renamed | CommitStep::DirSynced);
            let state = s.read(&k.id).unwrap_or_else(|e| panic!("{step:?}: {e}"));
            assert_eq!(state, if committed { new } else { old }, "{step:?}");
            let left = temps(&s, &k.id);
            let expect_temp = matches!(
                step,
                CommitStep::TempPartial | CommitStep::TempWritten | CommitStep::TempSynced
            );
            assert_eq!(left.len(), usize::from(expect_temp), "{step:?}: {left:?}");
            if step == CommitStep::TempPartial {
                let bytes = fs::read(&left[0]).unwrap();
                assert!(!bytes.is_empty() && bytes.len() < format_state(new).len());
            }
            // The retry: accepted once if the crash came before the rename,
            // a replay after it.
            let r = advance(&s, &k, &otp(&k, 3, 8)).unwrap();
            if committed {
                assert!(
                    matches!(r, Err(Rejection::Replayed { .. })),
                    "{step:?}: {r:?}"
                );
            } else {
                assert_eq!(r, Ok(new), "{step:?}");
            }
            assert!(is_replayed(&advance(&s, &k, &otp(&k, 3, 8))));
            assert_eq!(s.read(&k.id).unwrap(), new);
            assert!(
                temps(&s, &k.id).is_empty(),
                "{step:?}: stale temp not cleaned"
            );
        }
    }

    /// R090 (e) with the real syscall: strace kills the child at rename(2).
    #[test]
    fn killed_at_the_rename_syscall() {
        maybe_child();
        if !strace_available() {
            eprintln!("SKIPPED: strace is not installed (apt-get install strace)");
            return;
        }
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(10);
        s.init(&k.id, Counter::new(2, 0)).unwrap();
        let status = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null"])
            .args(["-e", "trace=rename,renameat,renameat2"])
            .args(["-e", "inject=rename,renameat,renameat2:signal=SIGKILL"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::killed_at_the_rename_syscall",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "advance")
            .env("ST_DIR", s.dir())
            .env("ST_KEY", "10")
            .env("ST_USE", "2")
            .env("ST_SESSION", "1")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(2, 0));
        let left = temps(&s, &k.id);
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(
            fs::read(&left[0]).unwrap(),
            b"v1 2 1\n",
            "temp was complete"
        );
        assert_eq!(
            advance(&s, &k, &otp(&k, 2, 1)).unwrap(),
            Ok(Counter::new(2, 1))
        );
        assert!(temps(&s, &k.id).is_empty());
        assert!(is_replayed(&advance(&s, &k, &otp(&k, 2, 1))));
    }
}

// ──────────────────────────── disk faults ────────────────────────────

mod faults {
    use super::*;

    fn io_errno(r: &Result<Result<Counter, Rejection>, StoreError>) -> (&'static str, Option<i32>) {
        match r {
            Err(StoreError::Io { op, source, .. }) => (*op, source.raw_os_error()),
            other => panic!("expected Io, got {other:?}"),
        }
    }

    /// R092: a full file system: error, old state intact, temp removed.
    #[test]
    fn disk_full_keeps_the_old_state() {
        let d = tempdir();
        let mnt = d.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs"])
            .arg(&mnt)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
            return;
        }
        let _guard = Mount(mnt.clone());
        let s = CounterStore::create_dir(&mnt.join("state")).unwrap();
        let k = key(11);
        s.init(&k.id, Counter::new(4, 0)).unwrap();
        let filler = mnt.join("filler");
        let mut f = File::create(&filler).unwrap();
        let mut full = false;
        for _ in 0..64 {
            if let Err(e) = std::io::Write::write_all(&mut f, &[0u8; 1024]) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
                full = true;
                break;
            }
        }
        assert!(full, "the 16 KiB tmpfs never filled");
        drop(f);
        let r = advance(&s, &k, &otp(&k, 4, 1));
        let (op, errno) = io_errno(&r);
        assert_eq!(errno, Some(libc::ENOSPC), "{op}");
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(4, 0));
        assert!(
            temps(&s, &k.id).is_empty(),
            "temp removed after the failure"
        );
        fs::remove_file(&filler).unwrap();
        assert_eq!(
            advance(&s, &k, &otp(&k, 4, 1)).unwrap(),
            Ok(Counter::new(4, 1))
        );
    }

    /// R094: rename fails (the state file is immutable): error, old state.
    #[test]
    fn rename_failure_keeps_the_old_state() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(12);
        s.init(&k.id, Counter::new(4, 0)).unwrap();
        let Some(guard) = Immutable::set(&s.path_of(&k.id)) else {
            eprintln!("SKIPPED: chattr +i is not supported on this file system");
            return;
        };
        let r = advance(&s, &k, &otp(&k, 4, 1));
        assert_eq!(io_errno(&r), ("rename", Some(libc::EPERM)));
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(4, 0));
        assert!(temps(&s, &k.id).is_empty());
        drop(guard);
        assert_eq!(
            advance(&s, &k, &otp(&k, 4, 1)).unwrap(),
            Ok(Counter::new(4, 1))
        );
    }

    /// R095: the state directory cannot be written (immutable).
    #[test]
    fn unwritable_state_dir_keeps_the_old_state() {
        let d = tempdir();
        let s = new_state_dir(d.path());
        let k = key(13);
        s.init(&k.id, Counter::new(4, 0)).unwrap();
        let Some(guard) = Immutable::set(s.dir()) else {
            eprintln!("SKIPPED: chattr +i is not supported on this file system");
            return;
        };
        let r = advance(&s, &k, &otp(&k, 4, 1));
        assert_eq!(io_errno(&r), ("create temp file", Some(libc::EPERM)));
        assert_eq!(s.read(&k.id).unwrap(), Counter::new(4, 0));
        drop(guard);
        assert_eq!(
            advance(&s, &k, &otp(&k, 4, 1)).unwrap(),
            Ok(Counter::new(4, 1))
        );
    }
}

// ──────────────────────────── properties ────────────────────────────

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The state parser never panics, and whatever it accepts is the
        /// one canonical spelling of that counter (so it is strict).
        #[test]
        fn state_parse_is_total_and_canonical(
            bytes in proptest::collection::vec(any::<u8>(), 0..24),
            u in 0u16..=0x7fff,
            s in any::<u8>(),
        ) {
            if let Ok(c) = parse_state(&bytes) {
                let canonical = format_state(c);
                prop_assert_eq!(canonical.as_bytes(), &bytes[..]);
            }
            let c = Counter::new(u, s);
            prop_assert_eq!(parse_state(format_state(c).as_bytes()), Ok(c));
        }

        /// Near-miss state texts: digits and separators shuffled around.
        #[test]
        fn state_parse_near_misses(text in "v[0-9 ]{0,3}[0-9 \\-+]{0,7}\n?") {
            if let Ok(c) = parse_state(text.as_bytes()) {
                prop_assert_eq!(format_state(c), text);
            }
        }

        /// The key store parser never panics and its errors never quote
        /// the input.
        #[test]
        fn keystore_parse_is_total(body in "[ -~\t\n]{0,300}") {
            let input = format!("{HEADER}\n{body}");
            // (A duplicate's public id is named on purpose: it is not secret.)
            if let Err(e) = KeyStore::parse(&input).map_err(|e| e.reason)
                && !e.starts_with("duplicate public id")
            {
                for field in body.split_ascii_whitespace().filter(|f| f.len() >= 12) {
                    prop_assert!(!e.contains(field), "{} quotes {}", e, field);
                }
            }
        }

        /// Any set of keys survives to_text → parse unchanged.
        #[test]
        fn keystore_round_trip(
            keys in proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..=16),
                (any::<[u8; 6]>(), any::<[u8; 16]>()),
                0..8,
            )
        ) {
            let mut ks = KeyStore::default();
            for (id, (pid, aes)) in &keys {
                ks.insert(
                    PublicId::from_bytes(id).unwrap(),
                    KeyMaterial {
                        aes_key: AesKey::from_bytes(*aes),
                        private_id: PrivateId::from_bytes(*pid),
                    },
                );
            }
            let back = KeyStore::parse(&ks.to_text()).unwrap();
            prop_assert_eq!(back.len(), keys.len());
            for id in ks.ids() {
                prop_assert_eq!(back.get(&id), ks.get(&id));
            }
            let (a, b) = (back.to_text(), ks.to_text());
            prop_assert_eq!(a.as_str(), b.as_str());
        }
    }
}
