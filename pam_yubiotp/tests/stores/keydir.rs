//! Stores: the per-key key store (`<keystore>.d`), its migration from the
//! single file, and logins of different keys never waiting on each other.

use super::concurrency::hold_lock;
use super::*;
use pam_yubiotp::store::keydir::{self, Keys, Layout, Migrated};

fn dir_store(d: &Path, keys: &[&TestKey]) -> PathBuf {
    let ks = d.join("keys");
    keydir::update(&ks, &|_| {}, |e| {
        for k in keys {
            e.insert(k.id, k.km.clone());
        }
        Ok(())
    })
    .unwrap();
    ks
}

#[test]
fn a_new_store_is_a_private_directory_of_one_file_per_key() {
    let d = tempdir();
    let (a, b) = (key(1), key(2));
    let ks = dir_store(d.path(), &[&a, &b]);
    let dir = keydir::dir_of(&ks).unwrap();
    assert_eq!(
        keydir::layout(&ks).unwrap(),
        Layout {
            dir: true,
            file: false
        }
    );
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    let f = dir.join(a.id.to_modhex());
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o600);
    let one = keydir::load_one(&ks, &a.id).unwrap();
    assert_eq!((one.len(), one.get(&a.id)), (1, Some(&a.km)));
    assert!(keydir::load_one(&ks, &key(3).id).unwrap().is_empty());
    let all = Keys::open(&ks).unwrap();
    assert_eq!(all.ids(), vec![a.id, b.id]);
    all.verify_all().unwrap();
    // Removal and replacement, no temp file left.
    keydir::update(&ks, &|_| {}, |e| {
        assert!(e.remove(&a.id));
        assert!(e.insert(b.id, a.km.clone()));
        Ok(())
    })
    .unwrap();
    assert!(keydir::load_one(&ks, &a.id).unwrap().is_empty());
    assert_eq!(
        keydir::load_one(&ks, &b.id).unwrap().get(&b.id),
        Some(&a.km)
    );
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![b.id.to_modhex()]);
}

#[test]
fn a_key_file_renamed_to_another_id_or_loosened_is_refused() {
    let d = tempdir();
    let (a, b) = (key(1), key(2));
    let ks = dir_store(d.path(), &[&a]);
    let dir = keydir::dir_of(&ks).unwrap();
    fs::rename(dir.join(a.id.to_modhex()), dir.join(b.id.to_modhex())).unwrap();
    let (_, _, reason) = expect_corrupt(keydir::load_one(&ks, &b.id));
    assert!(reason.contains("another public id"), "{reason}");
    fs::rename(dir.join(b.id.to_modhex()), dir.join(a.id.to_modhex())).unwrap();
    chmod(&dir.join(a.id.to_modhex()), 0o640);
    let (_, v) = expect_untrusted(keydir::load_one(&ks, &a.id));
    assert!(matches!(v, Violation::Mode(0o640)));
    chmod(&dir.join(a.id.to_modhex()), 0o600);
    chmod(&dir, 0o750);
    let (p, _) = expect_untrusted(keydir::load_one(&ks, &a.id));
    assert_eq!(p, dir);
}

#[test]
fn migration_moves_the_file_into_the_directory_and_the_directory_wins() {
    let d = tempdir();
    let (a, b) = (key(1), key(2));
    let ks = d.path().join("keys");
    write_keystore(&ks, &[&a, &b]);
    // Until migrated, the single file is read (and edited) as before.
    assert_eq!(
        keydir::load_one(&ks, &a.id).unwrap().get(&a.id),
        Some(&a.km)
    );
    keydir::update(&ks, &|_| {}, |e| {
        e.insert(key(3).id, key(3).km.clone());
        Ok(())
    })
    .unwrap();
    assert!(!keydir::layout(&ks).unwrap().dir);
    assert_eq!(keydir::migrate(&ks).unwrap(), Migrated::Done(3));
    assert_eq!(
        keydir::layout(&ks).unwrap(),
        Layout {
            dir: true,
            file: false
        }
    );
    for k in [&a, &b, &key(3)] {
        assert_eq!(
            keydir::load_one(&ks, &k.id).unwrap().get(&k.id),
            Some(&k.km)
        );
    }
    assert_eq!(keydir::migrate(&ks).unwrap(), Migrated::Already);
    // Both present (a crash after the directory rename): same keys → the
    // next migrate removes the file; different keys → refused, and the
    // module reads only the directory.
    write_keystore(&ks, &[&a, &b, &key(3)]);
    assert_eq!(keydir::migrate(&ks).unwrap(), Migrated::Done(3));
    assert!(!ks.exists());
    let c = key(4);
    write_keystore(&ks, &[&c]);
    assert!(keydir::load_one(&ks, &c.id).unwrap().is_empty());
    assert!(matches!(
        keydir::migrate(&ks),
        Err(StoreError::BothLayouts { .. })
    ));
    assert!(ks.exists());
}

#[test]
fn migration_of_a_corrupt_file_writes_nothing() {
    let d = tempdir();
    let ks = d.path().join("keys");
    write_file(&ks, format!("{HEADER}\nnot a key\n").as_bytes(), 0o600);
    let (_, line, _) = expect_corrupt(keydir::migrate(&ks));
    assert_eq!(line, 2);
    assert!(!keydir::layout(&ks).unwrap().dir);
    let left: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().contains(".d.tmp-")),
        "{left:?}"
    );
}

/// Logins for different keys never wait on each other: another process
/// holds key A's counter lock and the key store's writer lock, and a whole
/// local login (key file read, check, durable commit) for key B succeeds
/// while A's times out. Structural: no timing is asserted.
#[test]
fn a_held_key_does_not_block_another_keys_login() {
    maybe_child();
    let d = tempdir();
    let (a, b) = (key(11), key(12));
    let ks = dir_store(d.path(), &[&a, &b]);
    let s = new_state_dir(d.path());
    assert_eq!(
        s.init_many(&[a.id, b.id], Counter::new(1, 0)).unwrap(),
        vec![a.id, b.id]
    );
    let test = "keydir::a_held_key_does_not_block_another_keys_login";
    let release = d.path().join("release");
    // init_many takes no per-key lock: the lock file appears with the first
    // login; make it now, as that login would (0600).
    write_file(&s.lock_path_of(&a.id), b"", 0o600);
    let mut holder_a = hold_lock(test, &s.lock_path_of(&a.id), &release);
    let mut holder_store = hold_lock(test, &d.path().join("keys.lock"), &release);
    let login = |k: &TestKey, store: &CounterStore, use_counter: u16| {
        let token = otp(k, use_counter, 1);
        let keys = keydir::load_one(&ks, &token.public_id).unwrap();
        local::look_up_and_check(&token, &keys, store, None)
    };
    assert!(matches!(
        login(&b, &s, 1),
        LocalVerdict::Accepted(c) if c == Counter::new(1, 1)
    ));
    let quick = s.clone().with_lock_timeout(Duration::from_millis(50));
    assert!(matches!(
        login(&a, &quick, 1),
        LocalVerdict::Fault(StoreError::LockTimeout { .. })
    ));
    write_file(&release, b"", 0o600);
    assert!(holder_a.wait().unwrap().success());
    assert!(holder_store.wait().unwrap().success());
    assert!(matches!(login(&a, &s, 1), LocalVerdict::Accepted(_)));
    // The same OTP again: exactly one acceptance.
    assert!(matches!(login(&a, &s, 1), LocalVerdict::Rejected(_)));
}

/// A new store is built in a private temp directory and renamed into
/// place whole: a failing edit leaves no store, a crashed run's temp
/// directory is removed by the next first write, and no temp directory is
/// left after a good one.
#[test]
fn a_new_store_appears_whole_or_not_at_all() {
    let d = tempdir();
    let ks = d.path().join("keys");
    let dir = keydir::dir_of(&ks).unwrap();
    let stale = d.path().join(format!(".keys.d.tmp-{}", "ab".repeat(16)));
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("junk"), "x").unwrap();
    let (a, b) = (key(1), key(2));
    let failed: Result<(), _> = keydir::update(&ks, &|_| {}, |e| {
        e.insert(a.id, a.km.clone());
        Err(pam_yubiotp::store::StoreError::Exists(a.id))
    });
    assert!(failed.is_err());
    assert!(!dir.exists(), "a failed first edit makes no store");
    // Steps seen by the hook: the directory is not there before the
    // files are durable.
    let seen = std::cell::RefCell::new(Vec::new());
    keydir::update(
        &ks,
        &|step| seen.borrow_mut().push((step, dir.exists())),
        |e| {
            e.insert(a.id, a.km.clone());
            e.insert(b.id, b.km.clone());
            Ok(())
        },
    )
    .unwrap();
    assert!(
        seen.borrow().iter().all(|(_, there)| !there),
        "{:?}",
        seen.borrow()
    );
    let left: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temp directories left: {left:?}");
    let all = Keys::open(&ks).unwrap();
    assert_eq!(all.ids(), vec![a.id, b.id]);
    all.verify_all().unwrap();
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    assert_eq!(
        fs::metadata(dir.join(b.id.to_modhex())).unwrap().mode() & 0o7777,
        0o600
    );
}
