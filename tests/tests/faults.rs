//! Faults around the counter state, end to end through the real libpam
//! (issue 10, item 7): a stopped lock holder, and the hybrid key store
//! vanishing while the key's counter state is still there (found by
//! scripts/faultsweep.sh). The sweep itself is a script, not a test.

use std::fs;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use pam_yubiotp::store::CounterStore;
use yubiotp_core::Counter;
use yubiotp_tests::{Run, RunOpts, TestKey, World, code};
use yubiotp_testsupport::{Behavior, Config, MockServer, TEST_KEY_B64, test_key};

fn world(mode: &str, url: Option<&str>) -> (World, TestKey) {
    let mut w = World::new();
    w.add_user("alice", 2001);
    let key = TestKey::new(1);
    w.add_key(&key, Counter::new(1, 0));
    w.write_authfile(&format!("alice:{}\n", key.id));
    let cloud = url.map_or(String::new(), |u| {
        format!("[cloud]\nid = 42\nkey = \"{TEST_KEY_B64}\"\nurls = [\"{u}\"]\ntimeout = 3\n")
    });
    w.write_config(&format!(
        "mode = \"{mode}\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n{cloud}[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n"
    ));
    w.simple_service("");
    (w, key)
}

fn auth(w: &World, otp: &str) -> Run {
    w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![otp.into()],
            ..RunOpts::default()
        },
    )
}

/// A shell that takes the exclusive `flock` on `lock` (the same lock the
/// module takes) and then stops itself with SIGSTOP, holding it.
struct StoppedHolder(Child);

impl StoppedHolder {
    fn start(lock: &std::path::Path) -> Self {
        let child = Command::new("sh")
            .arg("-c")
            .arg("exec 9<>\"$1\" && flock -x 9 && kill -STOP $$")
            .arg("sh")
            .arg(lock)
            .spawn()
            .expect("sh");
        let pid = child.id();
        // Wait (bounded) until it is stopped: state T in /proc/PID/stat.
        let start = Instant::now();
        loop {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
            if state == Some(Some('T')) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "lock holder never stopped: {stat}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self(child)
    }
}

impl Drop for StoppedHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stopped_lock_holder_makes_the_login_fail_closed_not_wait_forever() {
    for mode in ["local", "hybrid"] {
        let server = MockServer::start(Config::new(Behavior::Ok).key(&test_key())).unwrap();
        let (w, mut key) = world(mode, (mode == "hybrid").then(|| server.url()).as_deref());
        let store = CounterStore::open(&w.state).unwrap();
        let holder = StoppedHolder::start(&store.lock_path_of(&key.id));
        let otp = key.next();
        // The harness bounds the wait (it kills the driver after 120 s);
        // the module gives up on the lock by itself.
        let r = auth(&w, &otp);
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(
            r.log_lines().iter().any(|l| l.contains("lock")),
            "{mode}: says why: {:?}",
            r.log_lines()
        );
        assert_eq!(store.read(&key.id).unwrap(), Counter::new(1, 0), "{mode}");
        drop(holder);
        // Nothing was accepted: the OTP works once the holder is gone.
        let r = auth(&w, &otp);
        assert_eq!(r.auth(), code::SUCCESS, "{mode}: {}", r.everything());
        auth(&w, &otp).assert_refused(code::AUTH_ERR);
    }
}

#[test]
fn hybrid_missing_key_store_with_the_keys_counter_state_is_unavailable() {
    let server = MockServer::start(Config::new(Behavior::Ok).key(&test_key())).unwrap();
    let url = server.url();
    let (w, mut key) = world("hybrid", Some(&url));
    // The key store is gone (moved away, or a lookup failed with ENOENT)
    // but the key's counter state is there: the key is held locally, so a
    // cloud OK must not be accepted without advancing it.
    let moved = w.etc.join("keys.moved");
    fs::rename(w.keystore(), &moved).unwrap();
    let otp = key.next();
    let r = auth(&w, &otp);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    let store = CounterStore::open(&w.state).unwrap();
    assert_eq!(store.read(&key.id).unwrap(), Counter::new(1, 0));
    // Back in place: the OTP is accepted once, and the fallback (cloud
    // down) refuses it afterwards.
    fs::rename(&moved, w.keystore()).unwrap();
    assert_eq!(auth(&w, &otp).auth(), code::SUCCESS);
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/v", l.local_addr().unwrap().port())
    };
    w.write_config(&fs::read_to_string(w.config()).unwrap().replace(&url, &down));
    auth(&w, &otp).assert_refused(code::AUTH_ERR);
    // A host with neither key store nor counter state for the key still
    // takes the cloud's word (SPEC §1: hybrid may hold no keys).
    let (w2, mut key2) = world("hybrid", Some(&url));
    fs::remove_file(w2.keystore()).unwrap();
    fs::remove_file(CounterStore::open(&w2.state).unwrap().path_of(&key2.id)).unwrap();
    let r = auth(&w2, &key2.next());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
}

#[test]
fn hybrid_missing_key_file_with_the_keys_counter_state_is_unavailable() {
    // The per-key layout: one key's file gone (deleted by hand, a lookup
    // failing with ENOENT) while its counter state is there is the same
    // hazard as the whole store gone.
    let server = MockServer::start(Config::new(Behavior::Ok).key(&test_key())).unwrap();
    let (w, mut key) = world("hybrid", Some(&server.url()));
    pam_yubiotp::store::keydir::migrate(&w.keystore()).unwrap();
    let file = pam_yubiotp::store::keydir::dir_of(&w.keystore())
        .unwrap()
        .join(key.id.to_modhex());
    let moved = w.etc.join("keyfile.moved");
    fs::rename(&file, &moved).unwrap();
    let otp = key.next();
    let r = auth(&w, &otp);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert_eq!(
        CounterStore::open(&w.state).unwrap().read(&key.id).unwrap(),
        Counter::new(1, 0)
    );
    fs::rename(&moved, &file).unwrap();
    let r = auth(&w, &otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_ne!(
        CounterStore::open(&w.state).unwrap().read(&key.id).unwrap(),
        Counter::new(1, 0),
        "accepted with the local counters advanced"
    );
}

/// One long-running host doing more pam_start/pam_end cycles than there
/// are pthread TLS keys (1024), hybrid (its cloud check runs threads): the
/// module must not be reloaded each time
/// (it is linked `-z nodelete`), or std's per-load key runs out and the
/// host aborts ("out of TLS keys"). Found by scripts/soak.sh.
#[test]
fn a_long_running_host_survives_more_logins_than_tls_keys() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let server = MockServer::start(Config::new(Behavior::Ok).key(&test_key())).unwrap();
    let (w, mut key) = world("hybrid", Some(&server.url()));
    let mut child = Command::new(yubiotp_tests::driver_path())
        .args(["--serve", "--confdir"])
        .arg(&w.services)
        .env_clear()
        .env("LD_PRELOAD", yubiotp_tests::NSS_WRAPPER)
        .env("NSS_WRAPPER_PASSWD", w.dir.path().join("passwd"))
        .env("NSS_WRAPPER_GROUP", w.dir.path().join("group"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut results = Vec::new();
    let mut line = String::new();
    for _ in 0..1100 {
        let otp: String = key.next().bytes().map(|b| format!("{b:02x}")).collect();
        writeln!(input, "yubiotp-test alice {otp}").unwrap();
        input.flush().unwrap();
        // The prompt line, then the result (bounded: at most 4 lines).
        for _ in 0..4 {
            line.clear();
            if output.read_line(&mut line).unwrap() == 0 || line.starts_with("result ") {
                break;
            }
        }
        if !line.starts_with("result ") {
            break;
        }
        results.push(
            line.trim_end()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<i32>()
                .unwrap(),
        );
    }
    drop(input);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the host died: {status:?} after {} logins",
        results.len()
    );
    assert_eq!(results.len(), 1100);
    assert!(results.iter().all(|c| *c == code::SUCCESS), "{results:?}");
}
