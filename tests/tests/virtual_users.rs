//! Virtual users (SPEC §4): with a central authfile, a user mapped there is
//! validated even though the passwd database (nss_wrapper's file) does not
//! know them — OpenVPN, FreeRADIUS, vsftpd/dovecot with pam_userdb — in
//! cloud, local and hybrid modes, through the real libpam. The
//! harness-style checks: fresh OTP accepted, replay refused, another
//! user's key refused, unmapped user, malformed OTP, server down.

use yubiotp_core::Counter;
use yubiotp_tests::{Run, RunOpts, TestKey, World, code};
use yubiotp_testsupport::{Behavior, Config, MockServer, TEST_KEY_B64, test_key};

struct Setup {
    w: World,
    vpn1: TestKey,
    vpn2: TestKey,
}

/// `vpn1` and `vpn2@example.org` are only in the authfile; `alice` is in
/// passwd with no key. `urls` empty: local mode.
fn setup(mode: &str, url: Option<&str>, extra: &str) -> Setup {
    let mut w = World::new();
    w.add_user("alice", 2001);
    let vpn1 = TestKey::new(1);
    let vpn2 = TestKey::new(2);
    w.write_authfile(&format!(
        "# virtual users\nvpn1:{}\nvpn2@example.org:{}\n",
        vpn1.id, vpn2.id
    ));
    if mode != "cloud" {
        w.add_key(&vpn1, Counter::new(1, 0));
        w.add_key(&vpn2, Counter::new(1, 0));
    }
    let cloud = url.map_or(String::new(), |u| {
        format!("[cloud]\nid = 42\nkey = \"{TEST_KEY_B64}\"\nurls = [\"{u}\"]\ntimeout = 3\n")
    });
    w.write_config(&format!(
        "mode = \"{mode}\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n{cloud}[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n"
    ));
    w.simple_service(extra);
    Setup { w, vpn1, vpn2 }
}

fn auth(w: &World, user: &str, otp: &str) -> Run {
    w.run(
        "yubiotp-test",
        user,
        &RunOpts {
            answers: vec![otp.into()],
            ..RunOpts::default()
        },
    )
}

fn server(b: Behavior) -> MockServer {
    MockServer::start(Config::new(b).key(&test_key())).unwrap()
}

/// A port nothing listens on (bound, then closed).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/wsapi/2.0/verify")
}

/// What every mode shares: acceptance, another user's key, unmapped
/// virtual user (with and without nullok), malformed OTP.
fn common_checks(s: &mut Setup) {
    let otp = s.vpn1.next();
    let r = auth(&s.w, "vpn1", &otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    let otp = s.vpn2.next();
    let r = auth(&s.w, "vpn2@example.org", &otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    // vpn1 typing vpn2's key.
    let r = auth(&s.w, "vpn1", &s.vpn2.next());
    r.assert_refused(code::AUTH_ERR);
    assert!(r.everything().contains("not mapped to this user"));
    // A name in neither passwd nor the authfile; alice in passwd only.
    for user in ["ghost", "alice"] {
        let r = auth(&s.w, user, &s.vpn1.next());
        r.assert_refused(code::USER_UNKNOWN);
        assert!(r.prompts.is_empty(), "no prompt for a user without a key");
    }
    // Malformed OTPs.
    for bad in ["", "x", "cccccccccccccccccccccccccccccccccccccccccccc!"] {
        auth(&s.w, "vpn1", bad).assert_refused(code::AUTH_ERR);
    }
}

#[test]
fn cloud_mode() {
    let m = server(Behavior::Ok);
    let mut s = setup("cloud", Some(&m.url()), "");
    common_checks(&mut s);
    // The server says the OTP was seen before.
    let replayed = server(Behavior::Status("REPLAYED_OTP".into()));
    let mut s2 = setup("cloud", Some(&replayed.url()), "");
    let otp = s2.vpn1.next();
    auth(&s2.w, "vpn1", &otp).assert_refused(code::AUTH_ERR);
    // The server is down.
    let mut s3 = setup("cloud", Some(&dead_url()), "");
    let otp = s3.vpn1.next();
    auth(&s3.w, "vpn1", &otp).assert_refused(code::AUTHINFO_UNAVAIL);
}

#[test]
fn local_mode() {
    let mut s = setup("local", None, "");
    common_checks(&mut s);
    // Replay of the last accepted OTP, and of an older one.
    let otp = s.vpn1.next();
    assert_eq!(auth(&s.w, "vpn1", &otp).auth(), code::SUCCESS);
    auth(&s.w, "vpn1", &otp).assert_refused(code::AUTH_ERR);
}

#[test]
fn hybrid_mode() {
    let m = server(Behavior::Ok);
    let mut s = setup("hybrid", Some(&m.url()), "");
    common_checks(&mut s);
    let otp = s.vpn1.next();
    assert_eq!(auth(&s.w, "vpn1", &otp).auth(), code::SUCCESS);
    auth(&s.w, "vpn1", &otp).assert_refused(code::AUTH_ERR);
    // The server down: hybrid falls back to the local key store (MODES),
    // and the local counters still refuse a replay.
    let mut s3 = setup("hybrid", Some(&dead_url()), "");
    let otp = s3.vpn1.next();
    let r = auth(&s3.w, "vpn1", &otp);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert!(r.log_lines().iter().any(|l| l.contains("backend=local")));
    auth(&s3.w, "vpn1", &otp).assert_refused(code::AUTH_ERR);
}

#[test]
fn nullok_and_per_user_files() {
    // nullok: a virtual user without a line in a clean authfile is "no
    // key", as for a passwd user, so the module is ignored (pam_yubico
    // does the same); the rest of the stack decides.
    let mut s = setup("local", None, "");
    s.w.service(
        "yubiotp-test",
        "auth required @MODULE@ @CONFIG@ nullok\nauth required pam_deny.so\n",
    );
    let r = auth(&s.w, "ghost", "x");
    r.assert_refused(code::AUTH_ERR);
    assert!(r.log_lines().iter().any(|l| l.contains("outcome=ignore")));
    // A malformed line: never "no key", virtual or not.
    s.w.write_authfile(&format!("vpn1:{}\nvpn2 typo\n", s.vpn1.id));
    auth(&s.w, "ghost", "x").assert_refused(code::AUTHINFO_UNAVAIL);
    // The mapped virtual user is validated in the same stack.
    let otp = s.vpn1.next();
    let r = auth(&s.w, "vpn1", &otp);
    r.assert_refused(code::AUTH_ERR); // pam_deny after us: our success counted, deny fails
    assert!(r.log_lines().iter().any(|l| l.contains("outcome=success")));
    // Without an authfile a per-user file needs a home: passwd is asked,
    // and a name it does not know is USER_UNKNOWN, even with nullok.
    s.w.write_config(
        "mode = \"local\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n",
    );
    let r = auth(&s.w, "vpn1", &s.vpn1.next());
    r.assert_refused(code::USER_UNKNOWN);
    assert!(r.everything().contains("not in the passwd database"));
}
