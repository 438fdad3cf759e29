//! The privileged verifier end to end: the built .so through the real
//! libpam (pam_wrapper), the PAM application running as an unprivileged
//! user (`setpriv --reuid`), and the real setuid helper — the test build
//! `yubiotp-test-verify`, copied root:root 4755 into a root-owned scratch
//! directory with its config beside it (its one compiled-in difference).
//!
//! The helper runs without nss_wrapper (the loader drops LD_PRELOAD for a
//! setuid program and the module clears its environment), so the callers
//! are real system accounts that every Debian has: `nobody` (65534),
//! `daemon` (1) and `bin` (2, keyless). Nothing is added to the machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use pam_yubiotp::store::CounterStore;
use pam_yubiotp::verifier::exit;
use yubiotp_core::Counter;
use yubiotp_tests::{Answer, Run, RunOpts, TestKey, World, code, is_root, write_mode};

const HELPER: &str = env!("CARGO_BIN_EXE_yubiotp-test-verify");

struct Fx {
    w: World,
    /// The setuid copy.
    helper: PathBuf,
    /// nobody's key.
    a: TestKey,
    /// daemon's key.
    b: TestKey,
    ratedir: PathBuf,
}

const NOBODY: u32 = 65534;
const DAEMON: u32 = 1;

fn setup(mode: &str, extra_toml: &str, pam_extra: &str) -> Option<Fx> {
    if !is_root() {
        eprintln!("SKIP: needs root for the setuid helper and setpriv");
        return None;
    }
    let mut w = World::new();
    w.add_user("nobody", NOBODY);
    w.add_user("daemon", DAEMON);
    w.add_user("bin", 2);
    let a = TestKey::new(1);
    let b = TestKey::new(2);
    w.add_key(&a, Counter::new(1, 0));
    w.add_key(&b, Counter::new(1, 0));
    w.write_authfile(&format!("nobody:{}\ndaemon:{}\n", a.id, b.id));
    let libexec = w.dir.path().join("libexec");
    let helper = yubiotp_tests::setuid_copy(HELPER, &libexec, "yubiotp-verify");
    let ratedir = w.dir.path().join("run");
    let cloud = if mode == "hybrid" {
        // No server answers: hybrid falls back to the local store.
        "[cloud]\nid = 1\nkey = \"mG5be6ZJU1qBGz24yPh/ESM3UdU=\"\nurls = [\"http://127.0.0.1:1/wsapi/2.0/verify\"]\ntimeout = 1\n"
    } else {
        ""
    };
    let toml = format!(
        "mode = \"{mode}\"\nauthfile = \"{etc}/authorized_yubikeys\"\n{cloud}[local]\nkeystore = \"{etc}/keys\"\nstatedir = \"{state}\"\n[verifier]\nfailure_delay = 0\nratelimit_dir = \"{rate}\"\n{extra_toml}",
        etc = w.etc.display(),
        state = w.state.display(),
        rate = ratedir.display(),
    );
    write_mode(&libexec.join("yubiotp.toml"), toml.as_bytes(), 0o600);
    w.service(
        "screenlocker",
        &format!(
            "auth required @MODULE@ verifier={} {pam_extra}\naccount required @MODULE@\n",
            helper.display()
        ),
    );
    Some(Fx {
        w,
        helper,
        a,
        b,
        ratedir,
    })
}

fn as_uid(uid: u32) -> Vec<String> {
    vec![
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
    ]
}

/// The screen locker of `uid` authenticating `user` with `otp`.
fn lock(f: &Fx, uid: u32, user: &str, otp: &str) -> Run {
    lock_with(f, uid, user, otp, Vec::new())
}

fn lock_with(f: &Fx, uid: u32, user: &str, otp: &str, env: Vec<(String, String)>) -> Run {
    f.w.run(
        "screenlocker",
        user,
        &RunOpts {
            answers: vec![Answer::from(otp)],
            wrap: as_uid(uid),
            env,
            ..RunOpts::default()
        },
    )
}

fn stored(f: &Fx, key: &TestKey) -> Counter {
    CounterStore::open(&f.w.state)
        .unwrap()
        .read(&key.id)
        .unwrap()
}

fn log_has(r: &Run, what: &str) -> bool {
    r.log_lines().iter().any(|l| l.contains(what))
}

fn accepts_fresh_refuses_replay_and_another_users_otp(mode: &str) {
    let Some(mut f) = setup(mode, "", "") else {
        return;
    };
    let otp = f.a.next();
    let r = lock(&f, NOBODY, "nobody", &otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert!(log_has(&r, "backend=verifier"), "{}", r.everything());
    assert_eq!(stored(&f, &f.a), f.a.counter, "consumed before accepted");
    // The same OTP again: a replay.
    lock(&f, NOBODY, "nobody", &otp).assert_refused(code::AUTH_ERR);
    // daemon's OTP typed into nobody's locker: not nobody's key.
    let theirs = f.b.next();
    let r = lock(&f, NOBODY, "nobody", &theirs);
    r.assert_refused(code::AUTH_ERR);
    assert!(log_has(&r, "not mapped"), "{}", r.everything());
    assert_eq!(
        stored(&f, &f.b),
        Counter::new(1, 0),
        "daemon's OTP not consumed"
    );
}

#[test]
fn local_accepts_fresh_refuses_replay_and_another_users_otp() {
    accepts_fresh_refuses_replay_and_another_users_otp("local");
}

#[test]
fn hybrid_accepts_fresh_refuses_replay_and_another_users_otp() {
    accepts_fresh_refuses_replay_and_another_users_otp("hybrid");
}

#[test]
fn a_locker_that_ignores_sigchld_still_gets_the_verdict() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    // With SIGCHLD at SIG_IGN the kernel would reap the helper and its exit
    // status would be lost; the module holds SIG_DFL during the wait.
    let otp = f.a.next();
    let run = |otp: &str| {
        f.w.run(
            "screenlocker",
            "nobody",
            &RunOpts {
                answers: vec![Answer::from(otp)],
                wrap: as_uid(NOBODY),
                sigchld_ignore: true,
                ..RunOpts::default()
            },
        )
    };
    let r = run(&otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(r.children, "none", "the helper was reaped");
    run(&otp).assert_refused(code::AUTH_ERR);
}

#[test]
fn nullok_lets_a_keyless_user_through_and_only_with_nullok() {
    let Some(f) = setup("local", "", "nullok") else {
        return;
    };
    let otp = TestKey::new(9).otp_at(Counter::new(1, 1));
    let r = lock(&f, 2, "bin", &otp);
    // Alone in the stack PAM_IGNORE leaves libpam without a verdict (it
    // says PAM_PERM_DENIED): the module's own answer is in its log line.
    assert_ne!(r.auth(), code::SUCCESS);
    assert!(log_has(&r, "outcome=ignore"), "{}", r.everything());
    f.w.service(
        "screenlocker",
        &format!(
            "auth required @MODULE@ verifier={} nullok\nauth required pam_permit.so\n",
            f.helper.display()
        ),
    );
    let r = lock(&f, 2, "bin", &otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    let r = f.w.run(
        "screenlocker",
        "bin",
        &RunOpts {
            answers: vec![Answer::from(otp.as_str())],
            wrap: as_uid(2),
            disallow_null: true,
            ..RunOpts::default()
        },
    );
    r.assert_refused(code::USER_UNKNOWN);
    let Some(f) = setup("local", "", "") else {
        return;
    };
    lock(&f, 2, "bin", &otp).assert_refused(code::USER_UNKNOWN);
}

#[test]
fn asking_for_another_user_is_refused_without_consuming() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    let otp = f.b.next();
    // nobody's process asks about daemon with daemon's valid OTP.
    let r = lock(&f, NOBODY, "daemon", &otp);
    r.assert_refused(code::AUTH_ERR);
    assert!(log_has(&r, "may verify only itself"), "{}", r.everything());
    assert_eq!(stored(&f, &f.b), Counter::new(1, 0), "not consumed");
    // daemon itself can still use it.
    let r = lock(&f, DAEMON, "daemon", &otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
}

#[test]
fn the_callers_environment_changes_nothing() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    let env: Vec<(String, String)> = [
        ("HOME", "/nonexistent"),
        ("YUBIOTP_CONFIG", "/tmp/evil.toml"),
        ("YUBIOTP_KEYSTORE", "/tmp/keys"),
        ("http_proxy", "http://127.0.0.1:9/"),
        ("https_proxy", "http://127.0.0.1:9/"),
        ("HTTPS_PROXY", "http://127.0.0.1:9/"),
        ("ALL_PROXY", "http://127.0.0.1:9/"),
        ("LD_LIBRARY_PATH", "/nonexistent"),
        ("LD_AUDIT", "/nonexistent/audit.so"),
        ("MALLOC_CHECK_", "3"),
        ("TZ", "/nonexistent"),
        ("HOSTALIASES", "/nonexistent"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    let otp = f.a.next();
    let r = lock_with(&f, NOBODY, "nobody", &otp, env.clone());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    // The helper run directly with that environment: it reads none of it.
    let otp = f.a.next();
    let (rc, _) = direct(&f, NOBODY, &["nobody", "test"], Input::Line(&otp), &env);
    assert_eq!(rc, Some(i32::from(exit::ACCEPTED)));
    assert_eq!(stored(&f, &f.a), f.a.counter);
}

enum Input<'a> {
    Line(&'a str),
    Bytes(Vec<u8>),
    Closed,
    Tty(&'a str),
}

/// Runs the setuid helper directly as `uid` (the way a hostile caller
/// would): returns its exit code and stdout.
fn direct(
    f: &Fx,
    uid: u32,
    args: &[&str],
    input: Input<'_>,
    env: &[(String, String)],
) -> (Option<i32>, String) {
    let helper = f.helper.display().to_string();
    let mut cmd = Command::new("setpriv");
    cmd.args(as_uid(uid).iter().skip(1));
    match &input {
        Input::Closed => {
            let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
            cmd.args([
                "/bin/sh",
                "-c",
                &format!("exec {helper} {} <&-", quoted.join(" ")),
            ]);
        }
        Input::Tty(_) => {
            let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
            // script(1) gives the command a pseudo-terminal as stdin.
            cmd.args([
                "script",
                "-qec",
                &format!("{helper} {}", quoted.join(" ")),
                "/dev/null",
            ]);
        }
        _ => {
            cmd.arg(&helper).args(args);
        }
    }
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", "/usr/bin:/bin");
    let bytes = match input {
        Input::Line(s) => format!("{s}\n").into_bytes(),
        Input::Tty(s) => format!("{s}\n").into_bytes(),
        Input::Bytes(b) => b,
        Input::Closed => Vec::new(),
    };
    let out = yubiotp_testsupport::run_with_stdin(&mut cmd, &bytes);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn misuse_is_refused_tty_huge_closed_stdin_and_wrong_argc() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    let otp = f.a.next();
    let misuse = Some(i32::from(exit::MISUSE));
    let (rc, out) = direct(
        &f,
        NOBODY,
        &["nobody", "t"],
        Input::Bytes(vec![b'c'; 1 << 20]),
        &[],
    );
    assert_eq!(rc, misuse, "huge stdin: {out}");
    let (rc, out) = direct(&f, NOBODY, &["nobody", "t"], Input::Closed, &[]);
    assert_eq!(rc, misuse, "closed stdin: {out}");
    if Command::new("script").arg("-V").output().is_ok() {
        let (rc, out) = direct(&f, NOBODY, &["nobody", "t"], Input::Tty(&otp), &[]);
        // script(1) passes the helper's exit code through (-e).
        assert_eq!(rc, misuse, "tty: {out}");
        assert!(out.contains("terminal"), "{out}");
    } else {
        eprintln!("SKIP (tty case): script(1) missing");
    }
    for args in [&["nobody"][..], &["nobody", "t", "extra"][..], &[][..]] {
        let (rc, out) = direct(&f, NOBODY, args, Input::Line(&otp), &[]);
        assert_eq!(rc, misuse, "{args:?}: {out}");
    }
    let three_lines = format!("{otp}\nx\ny\n").into_bytes();
    let (rc, _) = direct(&f, NOBODY, &["nobody", "t"], Input::Bytes(three_lines), &[]);
    assert_eq!(rc, misuse, "three lines");
    // A password line this config does not call for: the PAM line and the
    // file disagree, a configuration error, not the user's failure.
    let two_lines = format!("{otp}\n{otp}\n").into_bytes();
    let (rc, _) = direct(&f, NOBODY, &["nobody", "t"], Input::Bytes(two_lines), &[]);
    assert_eq!(rc, Some(i32::from(exit::CONFIG_ERROR)), "two lines");
    // None of that consumed the OTP.
    assert_eq!(stored(&f, &f.a), Counter::new(1, 0));
    let (rc, _) = direct(&f, NOBODY, &["nobody", "t"], Input::Line(&otp), &[]);
    assert_eq!(rc, Some(i32::from(exit::ACCEPTED)));
}

#[test]
fn a_missing_helper_fails_closed_and_is_named() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    f.w.service(
        "screenlocker",
        "auth required @MODULE@ verifier=/nonexistent/yubiotp-verify\n",
    );
    let otp = f.a.next();
    let r = lock(&f, NOBODY, "nobody", &otp);
    assert_ne!(r.auth(), code::SUCCESS);
    assert_ne!(r.auth(), code::IGNORE);
    assert!(
        log_has(&r, "/nonexistent/yubiotp-verify is missing"),
        "{}",
        r.everything()
    );
}

#[test]
fn sigkill_of_the_helper_mid_commit_leaves_old_or_new_and_no_replay() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("SKIP: strace not installed (scripts/setup.sh installs it)");
        return;
    }
    let before = stored(&f, &f.a);
    let otp = f.a.next();
    // strace (root) follows setpriv → the driver → the setuid helper and
    // kills the first process that calls rename(2): the helper committing
    // the counter (the driver never renames).
    let mut wrap: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=rename,renameat,renameat2",
        "-e",
        "inject=rename,renameat,renameat2:signal=SIGKILL:when=1",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    wrap.extend(as_uid(NOBODY));
    let r = f.w.run(
        "screenlocker",
        "nobody",
        &RunOpts {
            answers: vec![Answer::from(otp.as_str())],
            wrap,
            confdir: true,
            ..RunOpts::default()
        },
    );
    let rc = r.auth();
    assert_eq!(
        rc,
        code::AUTHINFO_UNAVAIL,
        "killed helper: {}",
        r.everything()
    );
    let after = stored(&f, &f.a);
    assert!(after == before || after == f.a.counter, "torn: {after:?}");
    let again = lock(&f, NOBODY, "nobody", &otp);
    if after == f.a.counter {
        again.assert_refused(code::AUTH_ERR);
    } else {
        assert_eq!(again.auth(), code::SUCCESS, "{}", again.everything());
    }
    lock(&f, NOBODY, "nobody", &otp).assert_refused(code::AUTH_ERR);
    let next = f.a.next();
    assert_eq!(lock(&f, NOBODY, "nobody", &next).auth(), code::SUCCESS);
}

#[test]
fn the_rate_limit_triggers_without_consuming_and_success_clears_it() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    let wrong = f.b.otp_at(Counter::new(1, 1));
    // Four failures, then a success: the count is cleared.
    for _ in 0..4 {
        lock(&f, NOBODY, "nobody", &wrong).assert_refused(code::AUTH_ERR);
    }
    assert!(f.ratedir.join(NOBODY.to_string()).exists());
    let ok = f.a.next();
    assert_eq!(lock(&f, NOBODY, "nobody", &ok).auth(), code::SUCCESS);
    assert!(
        !f.ratedir.join(NOBODY.to_string()).exists(),
        "success clears"
    );
    // Five more: locked out; a valid OTP is refused and not consumed.
    for _ in 0..5 {
        lock(&f, NOBODY, "nobody", &wrong).assert_refused(code::AUTH_ERR);
    }
    let consumed = stored(&f, &f.a);
    let fresh = f.a.next();
    let r = lock(&f, NOBODY, "nobody", &fresh);
    r.assert_refused(code::AUTH_ERR);
    assert!(log_has(&r, "too many failures"), "{}", r.everything());
    assert_eq!(stored(&f, &f.a), consumed, "refused without validating");
    // Another uid is not affected.
    let theirs = f.b.next();
    assert_eq!(lock(&f, DAEMON, "daemon", &theirs).auth(), code::SUCCESS);
    let dir = fs::metadata(&f.ratedir).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
}

#[test]
fn parallel_attempts_of_one_uid_are_counted_one_at_a_time() {
    let Some(f) = setup("local", "", "") else {
        return;
    };
    let wrong = f.b.otp_at(Counter::new(1, 1));
    // Eight helpers at once: each attempt holds the uid's lock until it is
    // counted, so five are validated and the other three find the lockout.
    let codes: Vec<Option<i32>> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| direct(&f, NOBODY, &["nobody", "t"], Input::Line(&wrong), &[]).0))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let count = |code: u8| {
        codes
            .iter()
            .filter(|c| **c == Some(i32::from(code)))
            .count()
    };
    assert_eq!(
        (count(exit::REJECTED), count(exit::RATE_LIMITED)),
        (5, 3),
        "{codes:?}"
    );
}

#[test]
fn the_lockout_ends_after_its_time() {
    let Some(mut f) = setup("local", "window = 0.3\nmax_backoff = 0.3\n", "") else {
        return;
    };
    let wrong = f.b.otp_at(Counter::new(1, 1));
    for _ in 0..5 {
        lock(&f, NOBODY, "nobody", &wrong).assert_refused(code::AUTH_ERR);
    }
    let fresh = f.a.next();
    // Bounded: 0.3 s of lockout, each round takes a process start.
    let mut accepted = false;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (rc, _) = direct(&f, NOBODY, &["nobody", "t"], Input::Line(&fresh), &[]);
        if rc == Some(i32::from(exit::ACCEPTED)) {
            accepted = true;
            break;
        }
        assert_eq!(rc, Some(i32::from(exit::RATE_LIMITED)));
    }
    assert!(accepted, "the lockout never ended");
}

#[test]
fn fifty_concurrent_lockers_one_otp_exactly_one_success() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    let otp = f.a.next();
    let go = f.w.dir.path().join("go");
    let runs: Vec<_> = (0..50)
        .map(|_| {
            f.w.spawn(
                "screenlocker",
                "nobody",
                &RunOpts {
                    answers: vec![Answer::from(otp.as_str())],
                    wrap: as_uid(NOBODY),
                    confdir: true,
                    wait_for: Some(go.clone()),
                    ..RunOpts::default()
                },
            )
        })
        .collect();
    fs::write(&go, b"").unwrap();
    let codes: Vec<i32> = runs.into_iter().map(|r| r.finish().auth()).collect();
    let ok = codes.iter().filter(|c| **c == code::SUCCESS).count();
    assert_eq!(ok, 1, "{codes:?}");
    assert!(!codes.contains(&code::IGNORE));
    assert_eq!(stored(&f, &f.a), f.a.counter);
}

#[test]
fn root_asks_in_process_and_the_helper_is_only_for_others() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    // Root may ask the helper about anyone (like unix_chkpwd).
    let otp = f.b.next();
    let (rc, _) = direct_root(&f, &["daemon", "t"], &otp);
    assert_eq!(rc, Some(i32::from(exit::ACCEPTED)));
    assert_eq!(stored(&f, &f.b), f.b.counter);
}

fn direct_root(f: &Fx, args: &[&str], otp: &str) -> (Option<i32>, String) {
    let out = yubiotp_testsupport::run_with_stdin(
        Command::new(&f.helper).args(args).env_clear(),
        format!("{otp}\n").as_bytes(),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Debian 12's common-auth (as in stacks.rs): pam_unix, then deny/permit.
const COMMON_AUTH: &str = "\
auth\t[success=1 default=ignore]\tpam_unix.so nullok
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
";
/// `openssl passwd -6 -salt ykotpalice alice-pw` (the stacks.rs hash).
const PW: &str = "alice-pw";
const PW_HASH: &str = "$6$ykotpalice$vK9hh0aJ6oKk0uOCsuCR1EWcYJckCvu4ddSfkpL1VZitdF9/UW0iEKwGoJR1RQ/lFJBT7V9CR.ozDPBsSyYdp.";

/// etc/pam.d/screenlocker.otp verbatim (the include pointed at the test's
/// common-auth, the module at the setuid test helper), run as the locked
/// user `nobody`: the password through the real pam_unix, then the OTP
/// through the helper. This is the case stacks.rs's coverage test names
/// for that file.
#[test]
fn screenlocker_recipe_as_the_unprivileged_user() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    let recipe =
        fs::read_to_string(yubiotp_tests::repo().join("etc/pam.d/screenlocker.otp")).unwrap();
    assert!(recipe.contains("@include common-auth\nauth       required   pam_yubiotp.so\n"));
    f.w.service("common-auth", COMMON_AUTH);
    let text = recipe
        .replace(
            "@include common-auth",
            &format!("@include {}", f.w.services.join("common-auth").display()),
        )
        .replace(
            "pam_yubiotp.so",
            &format!("@MODULE@ verifier={}", f.helper.display()),
        );
    f.w.service("swaylock", &text);
    // nobody with a password hash in the (nss_wrapper) passwd file, which
    // pam_unix checks in process for the caller's own user.
    let passwd = f.w.dir.path().join("passwd-hashed");
    fs::write(
        &passwd,
        format!("root:x:0:0:root:/root:/bin/sh\nnobody:{PW_HASH}:{NOBODY}:{NOBODY}:nobody:/nonexistent:/bin/sh\n"),
    )
    .unwrap();
    let unlock = |f: &Fx, answers: &[&str]| {
        f.w.run(
            "swaylock",
            "nobody",
            &RunOpts {
                answers: answers.iter().map(|a| Answer::from(*a)).collect(),
                wrap: as_uid(NOBODY),
                env: vec![("NSS_WRAPPER_PASSWD".into(), passwd.display().to_string())],
                ..RunOpts::default()
            },
        )
    };
    let otp = f.a.next();
    let r = unlock(&f, &[PW, &otp]);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(r.prompts.len(), 2, "password, then OTP: {:?}", r.prompts);
    unlock(&f, &[PW, &otp]).assert_refused(code::AUTH_ERR);
    let theirs = f.b.next();
    unlock(&f, &[PW, &theirs]).assert_refused(code::AUTH_ERR);
    let next = f.a.next();
    let r = unlock(&f, &["wrong-pw", &next]);
    assert_ne!(r.auth(), code::SUCCESS);
    assert_ne!(r.auth(), code::IGNORE);
}

/// `ykmap verify` run by a user who is not root takes the same way as a
/// screen locker: their own OTP is accepted once (and consumed), a replay
/// and another user's name are refused.
#[test]
fn ykmap_verify_as_a_user_asks_the_helper() {
    let Some(mut f) = setup("local", "", "") else {
        return;
    };
    let ykmap = |user: &str, otp: &str| {
        let out = yubiotp_testsupport::run_with_stdin(
            Command::new("setpriv")
                .args(as_uid(NOBODY).iter().skip(1))
                .arg(env!("CARGO_BIN_EXE_yubiotp-test-ykmap"))
                .args(["verify", user, "-", "--verifier"])
                .arg(&f.helper)
                .env_clear()
                .env("PATH", "/usr/bin:/bin"),
            format!("{otp}\n").as_bytes(),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let otp = f.a.next();
    let (code, stdout, stderr) = ykmap("nobody", &otp);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("PAM_SUCCESS"), "{stdout}");
    assert_eq!(stored(&f, &f.a), f.a.counter, "consumed");
    // The same OTP again: a replay.
    let (code, stdout, stderr) = ykmap("nobody", &otp);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("PAM_AUTH_ERR"), "{stdout}");
    assert!(!stdout.contains("PAM_SUCCESS") && !stdout.contains("PAM_IGNORE"));
    // Asking for daemon with daemon's fresh OTP: refused, not consumed.
    let before = stored(&f, &f.b);
    let theirs = f.b.next();
    let (code, stdout, _) = ykmap("daemon", &theirs);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(!stdout.contains("PAM_SUCCESS") && !stdout.contains("PAM_IGNORE"));
    assert_eq!(
        stored(&f, &f.b),
        before,
        "another user's OTP is not consumed"
    );
}
