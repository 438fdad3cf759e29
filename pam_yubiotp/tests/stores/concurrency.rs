//! Stores: concurrency.

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

pub(super) fn hold_lock(test: &str, lock: &Path, release: &Path) -> std::process::Child {
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
