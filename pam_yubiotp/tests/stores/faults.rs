//! Stores: disk faults.

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
