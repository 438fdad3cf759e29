//! Stores: replay and ordering.

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
                    let ts: Vec<_> = temps(&s, &k.id)
                        .into_iter()
                        .filter(|t| *t != pattern_link)
                        .collect();
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
    // A login removes only the temp its lock file notes (no directory
    // listing per login); an admin write under the lock removes the rest.
    s.set(&k.id, Counter::new(1, 3), false).unwrap();
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
