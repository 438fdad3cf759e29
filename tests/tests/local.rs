//! `mode=local` end to end: the built module through the real libpam
//! (pam_wrapper for service files and log capture, nss_wrapper for users),
//! one SPEC §6 row or security-catalogue case per test.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use pam_yubiotp::store::CounterStore;
use yubiotp_core::Counter;
use yubiotp_tests::{Answer, RunOpts, TestKey, User, World, code, is_root, write_mode};

/// alice (key 1) and bob (key 2), central authfile, local mode.
struct Setup {
    w: World,
    alice: TestKey,
    bob: TestKey,
}

fn setup_with(extra_args: &str) -> Setup {
    let mut w = World::new();
    w.add_user("alice", 2001);
    w.add_user("bob", 2002);
    w.add_user("carol", 2003);
    let alice = TestKey::new(1);
    let bob = TestKey::new(2);
    w.add_key(&alice, Counter::new(1, 0));
    w.add_key(&bob, Counter::new(1, 0));
    w.write_authfile(&format!(
        "# test mapping\nalice:{}\nbob:{}\n",
        alice.id, bob.id
    ));
    w.local_config();
    w.simple_service(extra_args);
    Setup { w, alice, bob }
}

fn setup() -> Setup {
    setup_with("")
}

fn answer(a: impl Into<Answer>) -> RunOpts {
    RunOpts {
        answers: vec![a.into()],
        ..RunOpts::default()
    }
}

fn auth(w: &World, user: &str, a: impl Into<Answer>) -> yubiotp_tests::Run {
    w.run("yubiotp-test", user, &answer(a))
}

fn stored(s: &Setup, key: &TestKey) -> Counter {
    CounterStore::open(&s.w.state)
        .unwrap()
        .read(&key.id)
        .unwrap()
}

#[test]
fn fresh_otp_is_accepted_and_committed() {
    let mut s = setup();
    let otp = s.alice.next();
    let r = auth(&s.w, "alice", otp.as_str());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(stored(&s, &s.alice), s.alice.counter);
    assert_eq!(
        r.prompts,
        vec![(1, "YubiKey OTP: ".to_string())],
        "one echo-off prompt"
    );
    let lines = r.log_lines();
    assert!(
        lines.iter().any(|l| l.contains("outcome=success")
            && l.contains("backend=local")
            && l.contains(&s.alice.id.to_string())),
        "summary line: {lines:?}"
    );
    // The host's threads and fds are back where they were.
    assert_eq!(r.threads.0, r.threads.1);
    assert_eq!(r.fds.0, r.fds.1, "fd leak: {}", r.stdout);
}

#[test]
fn replay_older_and_rollover() {
    let mut s = setup();
    let first = s.alice.next();
    let second = s.alice.next();
    assert_eq!(auth(&s.w, "alice", second.as_str()).auth(), code::SUCCESS);
    // The same OTP twice.
    auth(&s.w, "alice", second.as_str()).assert_refused(code::AUTH_ERR);
    // An older OTP after a newer one.
    auth(&s.w, "alice", first.as_str()).assert_refused(code::AUTH_ERR);
    assert_eq!(stored(&s, &s.alice), Counter::new(1, 2));
    // Session counter rollover into the use counter.
    let at_255 = s.alice.otp_at(Counter::new(1, 255));
    let wrapped = s.alice.otp_at(Counter::new(2, 0));
    let same_use_wrapped = s.alice.otp_at(Counter::new(1, 0));
    assert_eq!(auth(&s.w, "alice", at_255.as_str()).auth(), code::SUCCESS);
    auth(&s.w, "alice", same_use_wrapped.as_str()).assert_refused(code::AUTH_ERR);
    assert_eq!(auth(&s.w, "alice", wrapped.as_str()).auth(), code::SUCCESS);
    assert_eq!(stored(&s, &s.alice), Counter::new(2, 0));
    let r = auth(&s.w, "alice", wrapped.as_str());
    r.assert_refused(code::AUTH_ERR);
    assert!(
        r.log_lines().iter().any(|l| l.contains("replayed")),
        "{:?}",
        r.log_lines()
    );
}

#[test]
fn caps_lock_flag_bit_is_ignored() {
    let s = setup();
    let k = &s.alice;
    // use word 0x8003 = flag + use counter 3: fresh after (1,0).
    let flagged = yubiotp_core::mint_token(&k.id, &k.key, Counter::new(3, 0), true, 7, 9);
    assert_eq!(
        auth(&s.w, "alice", flagged.to_uppercase().as_str()).auth(),
        code::SUCCESS
    );
    assert_eq!(stored(&s, k), Counter::new(3, 0));
    // 0x8002 is older than 3 once the flag is masked.
    let older = yubiotp_core::mint_token(&k.id, &k.key, Counter::new(2, 5), true, 7, 9);
    auth(&s.w, "alice", older.as_str()).assert_refused(code::AUTH_ERR);
}

#[test]
fn malformed_otps_are_auth_err_and_touch_nothing() {
    let mut s = setup();
    let good = s.alice.next();
    let mut wrong_char = good.clone();
    wrong_char.replace_range(20..21, "a");
    let cases: Vec<(&str, Answer)> = vec![
        ("empty", Answer::from("")),
        ("43 chars", Answer::from(&good[..43])),
        ("45 chars", Answer::from(format!("{good}c"))),
        ("non-modhex", Answer::from(wrong_char)),
        ("64 KiB", Answer::from("c".repeat(64 << 10))),
        (
            "non-UTF-8",
            Answer::Bytes(b"\xff\xfe\xfdcccccccccccccccccccccccccccccccccccccccc".to_vec()),
        ),
        (
            "url injection",
            Answer::from(format!("{}&sl=0", &good[..40])),
        ),
        (
            "ansi",
            Answer::from("\x1b[31mccccccccccccccccccccccccccccccccccccc"),
        ),
    ];
    for (name, a) in cases {
        let r = auth(&s.w, "alice", a);
        assert_ne!(r.auth(), code::SUCCESS, "{name}");
        assert_ne!(r.auth(), code::IGNORE, "{name}");
        assert_eq!(r.auth(), code::AUTH_ERR, "{name}: {}", r.everything());
    }
    assert_eq!(stored(&s, &s.alice), Counter::new(1, 0), "state untouched");
    // The good OTP still works afterwards.
    assert_eq!(auth(&s.w, "alice", good.as_str()).auth(), code::SUCCESS);
}

#[test]
fn bad_crc_and_wrong_private_id() {
    let s = setup();
    // Minted with another AES key: decrypts to garbage, CRC fails.
    let mut forged = TestKey::new(9);
    forged.id = s.alice.id;
    let r = auth(&s.w, "alice", forged.next().as_str());
    r.assert_refused(code::AUTH_ERR);
    assert!(
        r.log_lines().iter().any(|l| l.contains("CRC")),
        "{:?}",
        r.log_lines()
    );
    // Right AES key, private id off by one bit: CRC fine, id wrong.
    let mut clone = s.alice.clone();
    let mut pid = *clone.key.private_id.expose_bytes();
    pid[5] ^= 1;
    clone.key.private_id = yubiotp_core::PrivateId::from_bytes(pid);
    let r = auth(&s.w, "alice", clone.next().as_str());
    r.assert_refused(code::AUTH_ERR);
    assert!(
        r.log_lines().iter().any(|l| l.contains("private id")),
        "{:?}",
        r.log_lines()
    );
    assert_eq!(stored(&s, &s.alice), Counter::new(1, 0));
}

#[test]
fn unmapped_and_other_users_keys() {
    let mut s = setup();
    // An unknown public id.
    let mut stranger = TestKey::new(7);
    auth(&s.w, "alice", stranger.next().as_str()).assert_refused(code::AUTH_ERR);
    // Bob's fresh OTP typed as alice: refused, and bob's state untouched.
    let bobs = s.bob.next();
    let r = auth(&s.w, "alice", bobs.as_str());
    r.assert_refused(code::AUTH_ERR);
    assert!(
        r.log_lines().iter().any(|l| l.contains("not mapped")),
        "{:?}",
        r.log_lines()
    );
    assert_eq!(stored(&s, &s.bob), Counter::new(1, 0));
    assert_eq!(auth(&s.w, "bob", bobs.as_str()).auth(), code::SUCCESS);
}

#[test]
fn unknown_user_and_user_without_key_are_not_prompted() {
    let s = setup();
    let r = auth(&s.w, "mallory", "x");
    r.assert_refused(code::USER_UNKNOWN);
    assert!(r.prompts.is_empty(), "no prompt for unknown users");
    let r = auth(&s.w, "carol", "x");
    r.assert_refused(code::USER_UNKNOWN);
    assert!(r.prompts.is_empty());
    for hostile in [
        "alice:cccc",
        "../../etc/shadow",
        "alice\nroot",
        "-schallenge",
        "/root",
    ] {
        auth(&s.w, hostile, "x").assert_refused(code::USER_UNKNOWN);
    }
}

#[test]
fn nullok_ignores_only_users_positively_without_keys() {
    let s = setup_with("nullok");
    // Alone in the stack, PAM_IGNORE makes libpam answer PAM_PERM_DENIED:
    // a nullok stack needs another module that succeeds (documented).
    let r = auth(&s.w, "carol", "x");
    assert_eq!(r.auth(), code::PERM_DENIED, "{}", r.everything());
    assert!(
        r.log_lines().iter().any(|l| l.contains("outcome=ignore")),
        "{:?}",
        r.log_lines()
    );
    assert!(r.prompts.is_empty());
    // In the designed stack (our module, then one that succeeds) carol
    // gets in, and nothing else does.
    s.w.service(
        "yubiotp-test",
        "auth required @MODULE@ @CONFIG@ nullok\nauth required pam_permit.so\n",
    );
    assert_eq!(auth(&s.w, "carol", "x").auth(), code::SUCCESS);
    // PAM_DISALLOW_NULL_AUTHTOK overrides nullok.
    let r = s.w.run(
        "yubiotp-test",
        "carol",
        &RunOpts {
            answers: vec!["x".into()],
            disallow_null: true,
            ..RunOpts::default()
        },
    );
    r.assert_refused(code::USER_UNKNOWN);
    // With a central authfile a name passwd does not know is mapped as
    // written (virtual users, SPEC §4): mallory has no line in a clean file,
    // so "no key" is established and nullok ignores the module, as
    // pam_yubico does; the rest of the stack (here pam_permit, in real life
    // the password module) decides.
    let r = auth(&s.w, "mallory", "x");
    assert!(
        r.log_lines().iter().any(|l| l.contains("outcome=ignore")),
        "{:?}",
        r.log_lines()
    );
    auth(&s.w, "alice", "x").assert_refused(code::AUTH_ERR);
    // A malformed line that names carol (an inline comment, a typo) or
    // that cannot be attributed is never "no key" (CVE-2025-23013 pattern).
    let good = fs::read_to_string(s.w.authfile()).unwrap();
    for bad in [
        format!("{good}carol:{}   # carol's key\n", s.alice.id),
        format!("{good}carol:cccccccccc\n"),
        format!("{good}\u{0}carol:{}\n", s.alice.id),
    ] {
        s.w.write_authfile(&bad);
        let r = auth(&s.w, "carol", "x");
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(
            r.log_lines().iter().any(|l| l.contains("malformed")),
            "{:?}",
            r.log_lines()
        );
    }
    s.w.write_authfile(&good);
    // An unreadable mapping is never "no key".
    fs::remove_file(s.w.authfile()).unwrap();
    let r = auth(&s.w, "carol", "x");
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.log_lines()
            .iter()
            .any(|l| l.contains("outcome=authinfo_unavail"))
    );
    auth(&s.w, "alice", "x").assert_refused(code::AUTHINFO_UNAVAIL);
}

/// A separator typo in the central file (`daemon ccccccdbjrgf`) must not
/// make `daemon` keyless: in the stack an admin writes for nullok, that
/// would log them in with no OTP asked.
#[test]
fn separator_typo_never_drops_the_second_factor() {
    let mut s = setup_with("nullok");
    s.w.add_user("daemon", 2010);
    s.w.service(
        "yubiotp-test",
        "auth [success=done ignore=ignore default=die] @MODULE@ @CONFIG@ nullok\nauth required pam_permit.so\n",
    );
    let good = fs::read_to_string(s.w.authfile()).unwrap();
    for sep in [" ", ";", "=", ",", " ; "] {
        s.w.write_authfile(&format!("{good}daemon{sep}{}\n", s.bob.id));
        let r = auth(&s.w, "daemon", "x");
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(r.prompts.is_empty(), "no prompt: {sep:?}");
        assert!(
            r.log_lines()
                .iter()
                .any(|l| l.contains("line 4") && l.contains("use ':' between the user")),
            "{sep:?}: {:?}",
            r.log_lines()
        );
        // carol (no line at all) is keyless too, so equally unavailable.
        auth(&s.w, "carol", "x").assert_refused(code::AUTHINFO_UNAVAIL);
        // Keyed users are unaffected.
        let otp = s.alice.next();
        assert_eq!(auth(&s.w, "alice", otp.as_str()).auth(), code::SUCCESS);
    }
    // Fixed, daemon has bob's key and no way around it.
    s.w.write_authfile(&format!("{good}daemon:{}\n", s.bob.id));
    auth(&s.w, "daemon", "x").assert_refused(code::AUTH_ERR);
    assert_eq!(auth(&s.w, "carol", "x").auth(), code::SUCCESS, "nullok");
}

#[test]
fn state_missing_or_corrupt_fails_closed() {
    let mut s = setup();
    let store = CounterStore::open(&s.w.state).unwrap();
    let path = store.path_of(&s.alice.id);
    let original = fs::read(&path).unwrap();
    for (name, bytes) in [
        ("empty", b"".to_vec()),
        ("garbage", b"\x00\x01garbage\xff".to_vec()),
        ("truncated", original[..original.len() / 2].to_vec()),
    ] {
        write_mode(&path, &bytes, 0o600);
        let r = auth(&s.w, "alice", s.alice.next().as_str());
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "{name}: corrupt state left for forensics"
        );
    }
    fs::remove_file(&path).unwrap();
    let r = auth(&s.w, "alice", s.alice.next().as_str());
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.log_lines().iter().any(|l| l.contains("counter reset")),
        "{:?}",
        r.log_lines()
    );
}

#[test]
fn key_mapped_but_not_in_key_store() {
    let s = setup();
    let mut ghost = TestKey::new(5);
    s.w.write_authfile(&format!("alice:{}:{}\n", s.alice.id, ghost.id));
    auth(&s.w, "alice", ghost.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
}

#[test]
fn insecure_or_strange_files_fail_closed() {
    let mut s = setup();
    let keystore = s.w.keystore();
    let authfile = s.w.authfile();
    // World-readable key store.
    fs::set_permissions(&keystore, fs::Permissions::from_mode(0o644)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::set_permissions(&keystore, fs::Permissions::from_mode(0o600)).unwrap();
    // World-writable mapping.
    fs::set_permissions(&authfile, fs::Permissions::from_mode(0o666)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::set_permissions(&authfile, fs::Permissions::from_mode(0o644)).unwrap();
    // Symlinked mapping.
    let real = s.w.etc.join("real-mapping");
    fs::rename(&authfile, &real).unwrap();
    std::os::unix::fs::symlink(&real, &authfile).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::remove_file(&authfile).unwrap();
    // A FIFO: must return, not hang (the harness bounds the wait).
    nix_mkfifo(&authfile);
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::remove_file(&authfile).unwrap();
    // 1 GB sparse mapping.
    let f = fs::File::create(&authfile).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    fs::set_permissions(&authfile, fs::Permissions::from_mode(0o644)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::remove_file(&authfile).unwrap();
    fs::rename(&real, &authfile).unwrap();
    // Symlinked key store.
    let real_keys = s.w.etc.join("real-keys");
    fs::rename(&keystore, &real_keys).unwrap();
    std::os::unix::fs::symlink(&real_keys, &keystore).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::remove_file(&keystore).unwrap();
    fs::rename(&real_keys, &keystore).unwrap();
    // State directory writable by others.
    fs::set_permissions(&s.w.state, fs::Permissions::from_mode(0o777)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::set_permissions(&s.w.state, fs::Permissions::from_mode(0o700)).unwrap();
    // Everything restored: the next OTP works.
    assert_eq!(
        auth(&s.w, "alice", s.alice.next().as_str()).auth(),
        code::SUCCESS
    );
}

fn nix_mkfifo(p: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("644")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn configuration_errors_are_service_err() {
    let mut s = setup();
    let otp = s.alice.next();
    for args in [
        "nulok",
        "mode=clowd",
        "alwaysok",
        "token_id_length=13",
        "timeout=5s",
        "debug=1",
        "authfile=relative/path",
    ] {
        s.w.simple_service(args);
        auth(&s.w, "alice", otp.as_str()).assert_refused(code::SERVICE_ERR);
    }
    s.w.simple_service("");
    // Config file problems.
    write_mode(&s.w.config(), b"mode = \"local\"\nbogus = 1\n", 0o600);
    auth(&s.w, "alice", otp.as_str()).assert_refused(code::SERVICE_ERR);
    s.w.local_config();
    fs::set_permissions(s.w.config(), fs::Permissions::from_mode(0o666)).unwrap();
    auth(&s.w, "alice", otp.as_str()).assert_refused(code::SERVICE_ERR);
    fs::set_permissions(s.w.config(), fs::Permissions::from_mode(0o600)).unwrap();
    s.w.service(
        "yubiotp-test",
        "auth required @MODULE@ config=/nonexistent/yubiotp.toml\n",
    );
    auth(&s.w, "alice", otp.as_str()).assert_refused(code::SERVICE_ERR);
    // Nothing was consumed: the OTP still works with a good config.
    s.w.simple_service("");
    assert_eq!(auth(&s.w, "alice", otp.as_str()).auth(), code::SUCCESS);
}

#[test]
fn unknown_arguments_never_log_their_value() {
    let mut s = setup();
    let otp = s.alice.next();
    let key = "mG5be6ZJU1qBGz24yPh/ESM3UdU=";
    for (args, shown) in [
        (format!("key:{key}"), "\"key...\" (value not shown)"),
        (format!("[key {key}]"), "\"key...\" (value not shown)"),
        (key.to_string(), "(value not shown)"),
        ("mG5b+/x=".to_string(), "\"m...\" (value not shown)"),
        (
            "zq3vk9x0d2mfa8wy7tq1ln4c".to_string(),
            "(24 characters, not shown)",
        ),
    ] {
        s.w.simple_service(&args);
        let r = auth(&s.w, "alice", otp.as_str());
        r.assert_refused(code::SERVICE_ERR);
        let all = r.everything();
        let log = r.log_lines().join("\n");
        // The summary line quotes its reason, escaping the inner quotes.
        let shown = shown.replace('"', "\\\"");
        assert!(
            log.contains("unknown argument") && log.contains(&shown),
            "{args}: {log}"
        );
        for secret in [
            key,
            &key[1..12],
            "mG5b+/x=",
            "G5b",
            "zq3vk9x0d2mfa8wy7tq1ln4c",
            "3vk9x0d2",
        ] {
            assert!(
                !all.contains(secret),
                "{args}: {secret} reached the output: {all}"
            );
        }
    }
    s.w.simple_service("");
    assert_eq!(auth(&s.w, "alice", otp.as_str()).auth(), code::SUCCESS);
}

#[test]
fn token_id_length_zero_is_a_configuration_error() {
    let mut s = setup();
    let otp = s.alice.next();
    s.w.simple_service("token_id_length=0");
    let r = auth(&s.w, "alice", otp.as_str());
    r.assert_refused(code::SERVICE_ERR);
    assert!(
        r.log_lines().join("\n").contains("token_id_length"),
        "{}",
        r.everything()
    );
    s.w.simple_service("");
    s.w.write_config(
        "mode = \"local\"\ntoken_id_length = 0\nauthfile = \"@ETC@/authorized_yubikeys\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n",
    );
    let r = auth(&s.w, "alice", otp.as_str());
    r.assert_refused(code::SERVICE_ERR);
    assert!(
        r.log_lines().join("\n").contains("token_id_length"),
        "{}",
        r.everything()
    );
    s.w.local_config();
    assert_eq!(auth(&s.w, "alice", otp.as_str()).auth(), code::SUCCESS);
}

#[test]
fn conversation_failures_are_conv_err() {
    let mut s = setup();
    let otp = s.alice.next();
    for a in [Answer::ConvErr, Answer::NullResp, Answer::NullStr] {
        auth(&s.w, "alice", a).assert_refused(code::CONV_ERR);
    }
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            no_conv: true,
            ..RunOpts::default()
        },
    );
    if r.rc.first().map(|(_, c)| *c) == Some(code::SUCCESS) {
        r.assert_refused(code::CONV_ERR);
    }
    assert_eq!(stored(&s, &s.alice), Counter::new(1, 0));
    assert_eq!(auth(&s.w, "alice", otp.as_str()).auth(), code::SUCCESS);
}

#[test]
fn setcred_and_acct_mgmt() {
    let mut s = setup();
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![s.alice.next().into()],
            ops: Some("authenticate,setcred,acct_mgmt".into()),
            ..RunOpts::default()
        },
    );
    assert_eq!(
        r.rc[1..],
        [
            ("authenticate".to_string(), code::SUCCESS),
            ("setcred".to_string(), code::SUCCESS),
            // acct_mgmt IGNORE alone in the account stack: libpam says PERM_DENIED.
            ("acct_mgmt".to_string(), code::PERM_DENIED),
        ]
    );
}

#[test]
fn three_attempts_in_one_process() {
    let mut s = setup();
    let good = s.alice.next();
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![
                "wrong".into(),
                Answer::from(&good[..43]),
                good.as_str().into(),
            ],
            repeat: 3,
            ..RunOpts::default()
        },
    );
    assert_eq!(
        r.auths(),
        vec![code::AUTH_ERR, code::AUTH_ERR, code::SUCCESS]
    );
    assert_eq!(r.prompts.len(), 3, "a new prompt each time");
    assert_eq!(r.fds.0, r.fds.1, "no fd leak over three attempts");
}

#[test]
fn sshd_placeholder_password_is_never_an_otp() {
    let s = setup();
    let r = auth(
        &s.w,
        "alice",
        Answer::Bytes(b"\x08\n\r\x7fINCORRECT".to_vec()),
    );
    r.assert_refused(code::AUTH_ERR);
    assert!(
        r.log_lines().iter().any(|l| l.contains("placeholder")),
        "{:?}",
        r.log_lines()
    );
}

#[test]
fn password_plus_otp_in_one_prompt_hands_the_password_on() {
    let mut s = setup();
    s.w.service(
        "yubiotp-test",
        "auth required @MODULE@ @CONFIG@\nauth required @WRAPPER@/pam_get_items.so\n",
    );
    let otp = s.alice.next();
    let r = auth(&s.w, "alice", format!("hunter2{otp}"));
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(
        r.env.get("PAM_AUTHTOK").map(Vec::as_slice),
        Some(&b"hunter2"[..])
    );
    assert!(!r.everything().contains("hunter2"), "password never logged");
}

#[test]
fn try_first_pass_and_use_first_pass() {
    let mut s = setup();
    let stack = |opt: &str| {
        format!(
            "auth required @WRAPPER@/pam_set_items.so\nauth required @MODULE@ @CONFIG@ {opt}\nauth required @WRAPPER@/pam_get_items.so\n"
        )
    };
    let with_tok = |tok: String| RunOpts {
        env: vec![("PAM_AUTHTOK".into(), tok)],
        ..RunOpts::default()
    };
    // try_first_pass: password+OTP from PAM_AUTHTOK, no prompt.
    s.w.service("yubiotp-test", &stack("try_first_pass"));
    let otp = s.alice.next();
    let r =
        s.w.run("yubiotp-test", "alice", &with_tok(format!("s3cret{otp}")));
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert!(r.prompts.is_empty());
    assert_eq!(
        r.env.get("PAM_AUTHTOK").map(Vec::as_slice),
        Some(&b"s3cret"[..])
    );
    // try_first_pass: a plain password in PAM_AUTHTOK → prompt for the OTP.
    let otp = s.alice.next();
    let mut opts = with_tok("s3cret".into());
    opts.answers = vec![otp.as_str().into()];
    let r = s.w.run("yubiotp-test", "alice", &opts);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(r.prompts.len(), 1);
    // use_first_pass: no OTP in PAM_AUTHTOK → AUTH_ERR without a prompt.
    s.w.service("yubiotp-test", &stack("use_first_pass"));
    let r = s.w.run("yubiotp-test", "alice", &with_tok("s3cret".into()));
    r.assert_refused(code::AUTH_ERR);
    assert!(r.prompts.is_empty());
    // use_first_pass with sshd's placeholder password.
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &with_tok("\x08\n\r\x7fINCORRECT".into()),
    );
    r.assert_refused(code::AUTH_ERR);
    let otp = s.alice.next();
    let r = s.w.run("yubiotp-test", "alice", &with_tok(otp.clone()));
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert!(!r.everything().contains("s3cret"));
}

#[test]
fn custom_prompt() {
    let mut s = setup();
    s.w.service(
        "yubiotp-test",
        "auth required @MODULE@ @CONFIG@ [prompt=Touch your key: ]\n",
    );
    let r = auth(&s.w, "alice", s.alice.next().as_str());
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(r.prompts, vec![(1, "Touch your key: ".to_string())]);
}

#[test]
fn secrets_never_reach_logs_or_messages() {
    let mut s = setup_with("debug");
    let aes_hex = s.alice.key.aes_key.expose_hex();
    let pid_hex = s.alice.key.private_id.expose_hex();
    let mut otps = Vec::new();
    let mut runs = Vec::new();
    let fresh = s.alice.next();
    otps.push(fresh.clone());
    runs.push(auth(&s.w, "alice", fresh.as_str()));
    runs.push(auth(&s.w, "alice", fresh.as_str())); // replay
    let bobs = s.bob.next();
    otps.push(bobs.clone());
    runs.push(auth(&s.w, "alice", bobs.as_str())); // not mapped
    let pw = format!("Pa55w0rd{}", s.alice.next());
    otps.push(pw[8..].to_string());
    runs.push(auth(&s.w, "alice", pw.as_str()));
    runs.push(auth(&s.w, "alice", "Pa55w0rdNoOtpHere"));
    fs::remove_file(CounterStore::open(&s.w.state).unwrap().path_of(&s.alice.id)).unwrap();
    let unavail = s.alice.next();
    otps.push(unavail.clone());
    runs.push(auth(&s.w, "alice", unavail.as_str()));
    for r in &runs {
        let all = r.everything().to_lowercase();
        assert!(!all.contains(&aes_hex), "AES key leaked");
        assert!(!all.contains(&pid_hex), "private id leaked");
        assert!(!all.contains("pa55w0rd"), "password leaked");
        for otp in &otps {
            assert!(!all.contains(&otp[12..]), "OTP ciphertext leaked: {all}");
        }
        assert!(!r.log_lines().is_empty(), "the run logged its summary");
    }
}

#[test]
fn hundred_processes_one_otp_exactly_one_success() {
    let mut s = setup();
    let otp = s.alice.next();
    let go = s.w.dir.path().join("go");
    let opts = RunOpts {
        answers: vec![otp.as_str().into()],
        confdir: true,
        wait_for: Some(go.clone()),
        ..RunOpts::default()
    };
    let children: Vec<_> = (0..100)
        .map(|_| s.w.spawn("yubiotp-test", "alice", &opts))
        .collect();
    fs::write(&go, b"").unwrap();
    let results: Vec<i32> = children.into_iter().map(|c| c.finish().auth()).collect();
    let ok = results.iter().filter(|c| **c == code::SUCCESS).count();
    assert_eq!(ok, 1, "exactly one success: {results:?}");
    assert!(
        results
            .iter()
            .all(|c| *c == code::SUCCESS || *c == code::AUTH_ERR || *c == code::AUTHINFO_UNAVAIL)
    );
    assert!(!results.contains(&code::IGNORE));
    assert_eq!(stored(&s, &s.alice), s.alice.counter);
}

/// Runs alice's authentication with `otp` under strace, injecting `inject`
/// (an strace fault spec) into `syscalls`; `None` when strace is missing.
fn under_strace(w: &World, otp: &str, syscalls: &str, inject: &str) -> Option<yubiotp_tests::Run> {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("SKIP: strace not installed (scripts/setup.sh installs it)");
        return None;
    }
    let wrap = [
        "strace".to_string(),
        "-f".into(),
        "-qq".into(),
        "-o".into(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={syscalls}"),
        "-e".into(),
        format!("inject={syscalls}:{inject}"),
    ];
    Some(w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![otp.into()],
            confdir: true,
            wrap: wrap.to_vec(),
            ..RunOpts::default()
        },
    ))
}

#[test]
fn kill_between_temp_write_and_rename_leaves_old_or_new_state() {
    let mut s = setup();
    let otp = s.alice.next();
    let before = fs::read(CounterStore::open(&s.w.state).unwrap().path_of(&s.alice.id)).unwrap();
    // SIGKILL the application at its first rename(2): the temp file is
    // written and synced, the rename never happens.
    let Some(r) = under_strace(
        &s.w,
        &otp,
        "rename,renameat,renameat2",
        "signal=SIGKILL:when=1",
    ) else {
        return;
    };
    assert!(
        r.rc.iter().all(|(op, _)| op != "authenticate"),
        "killed before returning: {}",
        r.everything()
    );
    let store = CounterStore::open(&s.w.state).unwrap();
    assert_eq!(
        fs::read(store.path_of(&s.alice.id)).unwrap(),
        before,
        "old state intact"
    );
    assert_eq!(store.read(&s.alice.id).unwrap(), Counter::new(1, 0));
    // The OTP was never accepted, so it is accepted once now; the stray
    // temp file is cleaned up and never parsed as state.
    assert_eq!(auth(&s.w, "alice", otp.as_str()).auth(), code::SUCCESS);
    auth(&s.w, "alice", otp.as_str()).assert_refused(code::AUTH_ERR);
    let leftovers: Vec<_> = fs::read_dir(&s.w.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "stray temp files: {leftovers:?}");
}

// ---- per-user mapping files (~/.yubico/authorized_yubikeys) ----

fn per_user_setup() -> (Setup, User) {
    let s = setup();
    s.w.write_config(
        "mode = \"local\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n",
    );
    let alice = User {
        name: "alice".into(),
        uid: 2001,
        home: s.w.dir.path().join("home/alice"),
    };
    let dir = alice.home.join(".yubico");
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(2001), Some(2001)).unwrap();
    let file = dir.join("authorized_yubikeys");
    write_mode(&file, format!("alice:{}\n", s.alice.id).as_bytes(), 0o644);
    std::os::unix::fs::chown(&file, Some(2001), Some(2001)).unwrap();
    (s, alice)
}

#[test]
fn per_user_file_read_as_the_user() {
    if !is_root() {
        eprintln!("SKIP: needs root to chown test homes");
        return;
    }
    let (mut s, alice) = per_user_setup();
    let file = alice.home.join(".yubico/authorized_yubikeys");
    assert_eq!(
        auth(&s.w, "alice", s.alice.next().as_str()).auth(),
        code::SUCCESS
    );
    // Lines for other users in alice's file grant nothing to them.
    write_mode(
        &file,
        format!("alice:{}\nbob:{}\n", s.alice.id, s.alice.id).as_bytes(),
        0o644,
    );
    std::os::unix::fs::chown(&file, Some(2001), Some(2001)).unwrap();
    auth(&s.w, "bob", s.alice.next().as_str()).assert_refused(code::USER_UNKNOWN);
    // Root-owned 0600: root could read it, alice cannot — and we read as alice.
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    // Owned by another user.
    std::os::unix::fs::chown(&file, Some(2002), Some(2002)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    // Group-writable.
    std::os::unix::fs::chown(&file, Some(2001), Some(2001)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    // A symlink to a root-only file.
    let secret = s.w.etc.join("shadowish");
    write_mode(&secret, format!("alice:{}\n", s.alice.id).as_bytes(), 0o600);
    fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&secret, &file).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::remove_file(&file).unwrap();
    // A FIFO.
    nix_mkfifo(&file);
    std::os::unix::fs::chown(&file, Some(2001), Some(2001)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::remove_file(&file).unwrap();
    // Oversized: 64 KiB + 1.
    write_mode(&file, &vec![b'#'; (64 << 10) + 1], 0o644);
    std::os::unix::fs::chown(&file, Some(2001), Some(2001)).unwrap();
    auth(&s.w, "alice", s.alice.next().as_str()).assert_refused(code::AUTHINFO_UNAVAIL);
    fs::remove_file(&file).unwrap();
    // Missing file: the user positively has no key.
    auth(&s.w, "alice", "x").assert_refused(code::USER_UNKNOWN);
    s.w.service(
        "yubiotp-test",
        "auth required @MODULE@ @CONFIG@ nullok\nauth required pam_permit.so\n",
    );
    let r = auth(&s.w, "alice", "x");
    assert_eq!(
        r.auth(),
        code::SUCCESS,
        "nullok + permit: {}",
        r.everything()
    );
    assert!(r.log_lines().iter().any(|l| l.contains("outcome=ignore")));
    // A world-writable home is not trusted, even with nullok.
    fs::set_permissions(&alice.home, fs::Permissions::from_mode(0o777)).unwrap();
    auth(&s.w, "alice", "x").assert_refused(code::AUTHINFO_UNAVAIL);
    fs::set_permissions(&alice.home, fs::Permissions::from_mode(0o755)).unwrap();
    // A missing home is not "no key", even with nullok.
    fs::rename(&alice.home, s.w.dir.path().join("moved")).unwrap();
    auth(&s.w, "alice", "x").assert_refused(code::AUTHINFO_UNAVAIL);
}

#[test]
fn environment_of_the_caller_changes_nothing() {
    let mut s = setup();
    // HOME and XDG pointing at a planted mapping for mallory's key.
    let mut planted = TestKey::new(8);
    let fake_home = s.w.dir.path().join("fakehome");
    fs::create_dir_all(fake_home.join(".yubico")).unwrap();
    fs::write(
        fake_home.join(".yubico/authorized_yubikeys"),
        format!("alice:{}\n", planted.id),
    )
    .unwrap();
    let env: Vec<(String, String)> = [
        ("HOME", fake_home.display().to_string()),
        ("XDG_CONFIG_HOME", fake_home.display().to_string()),
        ("RUST_LOG", "trace".into()),
        ("RUST_BACKTRACE", "1".into()),
        ("USER", "root".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![planted.next().into()],
            env: env.clone(),
            ..RunOpts::default()
        },
    );
    r.assert_refused(code::AUTH_ERR);
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![s.alice.next().into()],
            env,
            ..RunOpts::default()
        },
    );
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
}

#[test]
fn non_root_caller_cannot_use_local_mode() {
    if !is_root() {
        eprintln!("SKIP: needs root to switch to an unprivileged caller");
        return;
    }
    let mut s = setup();
    let as_alice = |w: &World, otp: String| {
        w.run(
            "yubiotp-test",
            "alice",
            &RunOpts {
                answers: vec![otp.into()],
                wrap: vec![
                    "setpriv".into(),
                    "--reuid=2001".into(),
                    "--regid=2001".into(),
                    "--clear-groups".into(),
                ],
                ..RunOpts::default()
            },
        )
    };
    fs::set_permissions(&s.w.etc, fs::Permissions::from_mode(0o755)).unwrap();
    // The config (0600) is unreadable for the screen-locker-like caller:
    // not a configuration mistake, so AUTHINFO_UNAVAIL, saying why.
    let r = as_alice(&s.w, s.alice.next());
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.log_lines().iter().any(|l| l.contains("needs root")),
        "{}",
        r.everything()
    );
    // A config readable by the caller (it holds no secret): the key store
    // (0600) is not.
    fs::set_permissions(s.w.config(), fs::Permissions::from_mode(0o644)).unwrap();
    let r = as_alice(&s.w, s.alice.next());
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.log_lines().iter().any(|l| l.contains("needs root")),
        "{}",
        r.everything()
    );
}

#[test]
fn failing_fsync_is_unavailable_and_keeps_the_old_state() {
    let mut s = setup();
    let otp = s.alice.next();
    let path = CounterStore::open(&s.w.state).unwrap().path_of(&s.alice.id);
    let before = fs::read(&path).unwrap();
    // Every fsync/fdatasync of the application fails with EIO (a dying disk).
    let Some(r) = under_strace(&s.w, &otp, "fsync,fdatasync", "error=EIO") else {
        return;
    };
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert_eq!(fs::read(&path).unwrap(), before, "old state intact");
    // Nothing was accepted, so the OTP is still good once the disk is.
    assert_eq!(auth(&s.w, "alice", otp.as_str()).auth(), code::SUCCESS);
    auth(&s.w, "alice", otp.as_str()).assert_refused(code::AUTH_ERR);
}
