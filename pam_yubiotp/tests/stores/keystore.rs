//! Stores: key store.

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
