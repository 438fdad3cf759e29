//! Resource limits a caller controls (any user can lower them before
//! exec'ing `su`): the module fails closed under each — the host is not
//! killed, the answer is PAM_AUTHINFO_UNAVAIL (never SUCCESS or IGNORE),
//! the counter state is unchanged, and the same OTP is accepted once the
//! limit is gone. The limits are set with util-linux `prlimit`, which
//! execs the application with them.

use std::fs;
use std::os::unix::process::ExitStatusExt;

use pam_yubiotp::store::CounterStore;
use yubiotp_core::Counter;
use yubiotp_tests::{RunOpts, TestKey, World, code};

struct Setup {
    w: World,
    alice: TestKey,
}

fn setup() -> Setup {
    let mut w = World::new();
    w.add_user("alice", 2001);
    let alice = TestKey::new(1);
    w.add_key(&alice, Counter::new(1, 0));
    w.write_authfile(&format!("alice:{}\n", alice.id));
    w.local_config();
    w.simple_service("");
    Setup { w, alice }
}

fn have_prlimit() -> bool {
    let ok = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: prlimit (util-linux) not installed");
    }
    ok
}

/// Alice's authentication with `otp`, the application run under
/// `prlimit LIMIT` (e.g. `--fsize=0`), or without a limit for `None`.
fn auth(s: &Setup, otp: &str, limit: Option<&str>) -> yubiotp_tests::Run {
    let wrap = limit.map_or_else(Vec::new, |l| vec!["prlimit".to_string(), l.to_string()]);
    auth_wrapped(s, otp, wrap)
}

fn auth_wrapped(s: &Setup, otp: &str, wrap: Vec<String>) -> yubiotp_tests::Run {
    s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![otp.into()],
            // pam_wrapper copies files at start-up, which a low limit may
            // break before the module runs.
            confdir: true,
            wrap,
            ..RunOpts::default()
        },
    )
}

/// The process ended by itself (exit 0), not by a signal such as SIGXFSZ.
fn assert_survived(r: &yubiotp_tests::Run) {
    let status = r.status.unwrap();
    assert_eq!(
        status.signal(),
        None,
        "the host was killed\n{}",
        r.everything()
    );
    assert_eq!(status.code(), Some(0), "{}", r.everything());
}

fn stored(s: &Setup) -> Counter {
    CounterStore::open(&s.w.state)
        .unwrap()
        .read(&s.alice.id)
        .unwrap()
}

fn state_bytes(s: &Setup) -> Vec<u8> {
    fs::read(CounterStore::open(&s.w.state).unwrap().path_of(&s.alice.id)).unwrap()
}

/// Under `limit` the attempt is PAM_AUTHINFO_UNAVAIL with the state
/// untouched; without it the same OTP is accepted exactly once.
fn fails_closed_then_recovers(limit: &str) {
    fails_closed_then_recovers_wrapped(limit, &["prlimit".to_string(), limit.to_string()]);
}

fn fails_closed_then_recovers_wrapped(what: &str, wrap: &[String]) {
    let mut s = setup();
    let otp = s.alice.next();
    let before = state_bytes(&s);
    let r = auth_wrapped(&s, &otp, wrap.to_vec());
    assert_survived(&r);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    let limit = what;
    assert_eq!(state_bytes(&s), before, "{limit}: counter state unchanged");
    let leftovers: Vec<_> = fs::read_dir(&s.w.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{limit}: temp files left: {leftovers:?}"
    );
    let r = auth(&s, &otp, None);
    assert_survived(&r);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    let again = auth(&s, &otp, None);
    again.assert_refused(code::AUTH_ERR);
    assert_eq!(stored(&s), s.alice.counter);
}

#[test]
fn file_size_limit_zero_is_unavailable_not_sigxfsz() {
    if !have_prlimit() {
        return;
    }
    fails_closed_then_recovers("--fsize=0");
}

#[test]
fn file_size_limit_below_the_state_is_unavailable() {
    if !have_prlimit() {
        return;
    }
    // `v1 2 0\n` is 7 bytes.
    fails_closed_then_recovers("--fsize=3");
}

/// Under a limit that may or may not be enough (libpam itself may fail
/// to load the module): the host survives, the answer is never
/// PAM_IGNORE, a PAM_SUCCESS only ever comes with the counter committed,
/// and any failure leaves the state as it was and the OTP usable.
fn never_a_false_answer(wrap: &[String]) {
    let mut s = setup();
    let otp = s.alice.next();
    let before = state_bytes(&s);
    let r = auth_wrapped(&s, &otp, wrap.to_vec());
    let status = r.status.unwrap();
    assert_eq!(
        status.signal(),
        None,
        "{wrap:?}: killed\n{}",
        r.everything()
    );
    let rc = r.auths();
    if !rc.is_empty() {
        // The application got as far as pam_authenticate: it must end
        // normally (a limit so low that ld.so cannot start it is exit 127).
        assert_eq!(status.code(), Some(0), "{wrap:?}\n{}", r.everything());
    }
    assert!(!rc.contains(&code::IGNORE), "{wrap:?}: {rc:?}");
    let store = CounterStore::open(&s.w.state).unwrap();
    if rc == [code::SUCCESS] {
        assert_eq!(
            store.read(&s.alice.id).unwrap(),
            s.alice.counter,
            "{wrap:?}"
        );
        auth(&s, &otp, None).assert_refused(code::AUTH_ERR);
        return;
    }
    assert!(!rc.contains(&code::SUCCESS), "{wrap:?}: {rc:?}");
    assert_eq!(state_bytes(&s), before, "{wrap:?}: state unchanged");
    let again = auth(&s, &otp, None);
    assert_survived(&again);
    assert_eq!(
        again.auth(),
        code::SUCCESS,
        "{wrap:?}\n{}",
        again.everything()
    );
}

#[test]
fn few_file_descriptors_never_give_a_false_answer() {
    if !have_prlimit() {
        return;
    }
    for n in 3..=10 {
        never_a_false_answer(&["prlimit".to_string(), format!("--nofile={n}")]);
        // The same with one descriptor already taken by the caller.
        never_a_false_answer(&[
            "sh".to_string(),
            "-c".to_string(),
            format!("exec 4</dev/null; exec prlimit --nofile={n} \"$0\" \"$@\""),
        ]);
    }
}

/// No RLIMIT_NOFILE lets libpam load the module yet starves the module's
/// own opens (loading needs as many descriptors at once as a commit), so
/// the module's EMFILE path is driven by strace: every open of alice's
/// counter lock fails with EMFILE.
#[test]
fn emfile_on_the_modules_own_open_is_unavailable() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("SKIP: strace not installed (scripts/setup.sh installs it)");
        return;
    }
    let mut s = setup();
    let lock = CounterStore::open(&s.w.state)
        .unwrap()
        .lock_path_of(&s.alice.id);
    let otp = s.alice.next();
    let before = state_bytes(&s);
    let wrap: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-P",
        &lock.display().to_string(),
        "-e",
        "trace=open,openat",
        "-e",
        "inject=open,openat:error=EMFILE",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let r = auth_wrapped(&s, &otp, wrap);
    assert_survived(&r);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert_eq!(state_bytes(&s), before, "state unchanged");
    assert_eq!(auth(&s, &otp, None).auth(), code::SUCCESS);
    auth(&s, &otp, None).assert_refused(code::AUTH_ERR);
}

#[test]
fn small_address_space_never_gives_a_false_answer() {
    if !have_prlimit() {
        return;
    }
    // From "libc cannot be mapped" through "libpam cannot load the
    // module" to "enough".
    for kb in (3_000..=12_000).step_by(500) {
        never_a_false_answer(&["prlimit".to_string(), format!("--as={}", kb * 1000)]);
    }
}

#[test]
fn no_core_dumps_change_nothing() {
    if !have_prlimit() {
        return;
    }
    let mut s = setup();
    let otp = s.alice.next();
    let r = auth(&s, &otp, Some("--core=0"));
    assert_survived(&r);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    let r = auth(&s, &otp, Some("--core=0"));
    assert_survived(&r);
    r.assert_refused(code::AUTH_ERR);
    assert_eq!(stored(&s), s.alice.counter);
}
