//! Stores: crash safety.

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
