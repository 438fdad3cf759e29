//! Stores: counter state: basics.

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
    assert!(matches!(s.init(&k.id, Counter::new(0, 0)), Err(StoreError::Exists(id)) if id == k.id));
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
        local::look_up_and_check(&t, &ks, &s, None),
        LocalVerdict::Fault(StoreError::StateMissing { .. })
    ));
    s.init(&k.id, Counter::new(1, 0)).unwrap();
    assert!(
        matches!(local::look_up_and_check(&t, &ks, &s, None), LocalVerdict::Accepted(c) if c == Counter::new(2, 0))
    );
    assert!(matches!(
        local::look_up_and_check(&t, &ks, &s, None),
        LocalVerdict::Rejected(Rejection::Replayed { .. })
    ));
    assert!(matches!(
        local::look_up_and_check(&otp(&unknown, 5, 0), &ks, &s, None),
        LocalVerdict::NotHeld
    ));
}
