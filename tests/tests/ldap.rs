//! LDAP as the mapping source, end to end: the built module through the
//! real libpam (C driver, pam_wrapper, nss_wrapper) against a real
//! OpenLDAP slapd started by each test on 127.0.0.1 (testsupport's
//! `Slapd`: own slapd.conf and mdb database in a scratch dir, test CA,
//! killed on drop). Local mode validates the OTP, so a success proves the
//! key came from the directory. Every person entry has a `userPassword`
//! ([`password`]) for the `ldap.bind_as_user` tests, which run against a
//! slapd that shows `yubiKeyId` only to the entry's own bind.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use yubiotp_core::Counter;
use yubiotp_tests::{Answer, Run, RunOpts, TestKey, World, code, is_root, write_mode};
use yubiotp_testsupport::Slapd;
use yubiotp_testsupport::slapd::{self, BIND_DN, BIND_PW, PEOPLE, SlapdOptions, ldif_line};

/// (user name, key seed) of the entries below [`PEOPLE`].
const PEOPLE_ENTRIES: &[(&str, u8)] = &[
    ("alice", 1),
    ("we)(ird*", 3),
    ("a,b", 4),
    ("back\\slash", 5),
    ("jürgen", 6),
    ("p+q", 8),
];

/// The entry `uid=x,ou=other,ou=people,…`, key seed 9: what the user name
/// `x,ou=other` would bind as if the DN were pasted together unescaped.
const OTHER_X: (&str, u8) = ("x", 9);

/// The `userPassword` of the entry whose key seed is `seed`.
fn password(seed: u8) -> String {
    format!("Pw{seed}-only-in-ldap")
}

fn escape_dn(v: &str) -> String {
    pam_yubiotp::ldap::proto::escape_dn_value(v)
}

fn person(dn: &str, uid: &str, seed: u8, extra: &str) -> String {
    format!(
        "{}objectClass: inetOrgPerson\nobjectClass: yubiKeyUser\n{}cn: x\nsn: x\nuserPassword: {}\n{extra}\n",
        ldif_line("dn", dn),
        ldif_line("uid", uid),
        password(seed)
    )
}

fn directory() -> String {
    let mut l = String::new();
    for (name, seed) in PEOPLE_ENTRIES {
        let id = TestKey::new(*seed).id;
        l.push_str(&person(
            &format!("uid={},{PEOPLE}", escape_dn(name)),
            name,
            *seed,
            &format!("yubiKeyId: {id}\n"),
        ));
    }
    l.push_str(&format!(
        "dn: ou=other,{PEOPLE}\nobjectClass: organizationalUnit\nou: other\n\n"
    ));
    l.push_str(&person(
        &format!("uid={},ou=other,{PEOPLE}", OTHER_X.0),
        OTHER_X.0,
        OTHER_X.1,
        &format!("yubiKeyId: {}\n", TestKey::new(OTHER_X.1).id),
    ));
    // bob: prefix style in description, beside an unrelated value.
    let bob = TestKey::new(2).id;
    l.push_str(&person(
        &format!("uid=bob,{PEOPLE}"),
        "bob",
        2,
        &format!("description: office 3\ndescription: yubikey:{bob}\n"),
    ));
    // carol: no key attribute at all (her password is seed 10's).
    l.push_str(&person(&format!("uid=carol,{PEOPLE}"), "carol", 10, ""));
    // nobody (the system account the verifier test runs as): key 11.
    l.push_str(&person(
        &format!("uid=nobody,{PEOPLE}"),
        "nobody",
        11,
        &format!("yubiKeyId: {}\n", TestKey::new(11).id),
    ));
    // dave: two entries (people and staff).
    let dave = TestKey::new(7).id;
    l.push_str(&format!(
        "dn: ou=staff,{}\nobjectClass: organizationalUnit\nou: staff\n\n",
        slapd::SUFFIX
    ));
    for ou in [PEOPLE.to_string(), format!("ou=staff,{}", slapd::SUFFIX)] {
        l.push_str(&person(
            &format!("uid=dave,{ou}"),
            "dave",
            7,
            &format!("yubiKeyId: {dave}\n"),
        ));
    }
    l
}

const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "we)(ird*",
    "a,b",
    "back\\slash",
    "jürgen",
    "*",
    "alice)(uid=*",
    "nobody-in-ldap",
    "p+q",
    "x,ou=other",
];

struct Setup {
    w: World,
    dir: Slapd,
}

fn start() -> Option<Slapd> {
    start_with(SlapdOptions::default())
}

fn start_with(opts: SlapdOptions) -> Option<Slapd> {
    if !slapd::available() {
        eprintln!("slapd not installed (scripts/setup.sh): skipped");
        return None;
    }
    Some(Slapd::start_with(&directory(), opts).unwrap())
}

/// A world (users, keys) whose config is local mode plus `[ldap]` = `ldap`.
fn world(ldap: &str, args: &str) -> World {
    let mut w = World::new();
    for (i, u) in USERS.iter().enumerate() {
        w.add_user(u, 3001 + u32::try_from(i).unwrap());
    }
    for seed in 1..=9 {
        w.add_key(&TestKey::new(seed), Counter::new(1, 0));
    }
    w.write_config(&format!(
        "mode = \"local\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n[ldap]\n{ldap}"
    ));
    w.simple_service(args);
    w
}

/// [`world`] for `dir`: `@URI@`, `@LDAPS@`, `@CA@`, `@BADCA@` are replaced.
fn setup(dir: Slapd, ldap: &str, args: &str) -> Setup {
    let ldap = ldap
        .replace("@URI@", &dir.uri())
        .replace("@LDAPS@", &dir.ldaps_uri())
        .replace("@CA@", &dir.cafile.display().to_string())
        .replace("@BADCA@", &dir.unknown_cafile.display().to_string());
    Setup {
        w: world(&ldap, args),
        dir,
    }
}

const DN_STYLE: &str = "uri = \"@URI@\"\nbasedn = \"ou=people,dc=example,dc=org\"\nuser_attr = \"uid\"\nyubi_attr = \"yubiKeyId\"\n";
const FILTER_STYLE: &str = "uri = \"@URI@\"\nbasedn = \"dc=example,dc=org\"\nfilter = \"(&(objectClass=inetOrgPerson)(uid=%u))\"\nyubi_attr = \"yubiKeyId\"\n";

fn otp(seed: u8) -> String {
    otp_n(seed, 0)
}

/// The `n`-th fresh OTP of key `seed` (each above the store's 1/0).
fn otp_n(seed: u8, n: u8) -> String {
    let mut k = TestKey::new(seed);
    k.counter = Counter::new(2, n);
    k.next()
}

fn login(s: &Setup, user: &str, seed: u8) -> Run {
    s.w.run(
        "yubiotp-test",
        user,
        &RunOpts {
            answers: vec![Answer::from(otp(seed))],
            ..RunOpts::default()
        },
    )
}

fn ok(r: &Run) {
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert!(
        !r.everything().contains(BIND_PW),
        "bind password in the output"
    );
}

/// The module said PAM_IGNORE (alone in the stack libpam then answers
/// PAM_PERM_DENIED: a nullok stack needs another module that succeeds).
fn ignored(r: &Run) {
    assert_eq!(r.auth(), code::PERM_DENIED, "{}", r.everything());
    assert!(
        r.log_lines().iter().any(|l| l.contains("outcome=ignore")),
        "{:?}",
        r.log_lines()
    );
}

#[test]
fn attribute_style_with_bind_dn_and_password() {
    let Some(d) = start() else { return };
    let s = setup(
        d,
        &format!("{DN_STYLE}bind_user = \"{BIND_DN}\"\nbind_password = \"{BIND_PW}\"\n"),
        "debug",
    );
    let r = login(&s, "alice", 1);
    ok(&r);
    assert_eq!(r.threads.0, r.threads.1, "no thread left behind");
    assert_eq!(r.fds.0, r.fds.1, "fd leak: {}", r.stdout);
    // Another user's key is not alice's.
    login(&s, "alice", 2).assert_refused(code::AUTH_ERR);
}

#[test]
fn prefix_style_anonymous_filter_search() {
    let Some(d) = start() else { return };
    let s = setup(
        d,
        "uri = \"@URI@\"\nbasedn = \"dc=example,dc=org\"\nfilter = \"(uid=%u)\"\nyubi_attr = \"description\"\nyubi_attr_prefix = \"yubikey:\"\n",
        "",
    );
    ok(&login(&s, "bob", 2));
    // alice has no description value with the prefix: positively no key.
    login(&s, "alice", 1).assert_refused(code::USER_UNKNOWN);
}

#[test]
fn starttls_and_ldaps_with_the_test_ca() {
    let Some(d) = start() else { return };
    let s = setup(
        d,
        &format!(
            "{DN_STYLE}starttls = true\ncacertfile = \"@CA@\"\nbind_user = \"{BIND_DN}\"\nbind_password = \"{BIND_PW}\"\n"
        ),
        "",
    );
    ok(&login(&s, "alice", 1));
    let s = setup(
        s.dir,
        &DN_STYLE
            .replace("@URI@", "@LDAPS@")
            .replace("uri =", "cacertfile = \"@CA@\"\nuri ="),
        "",
    );
    ok(&login(&s, "alice", 1));
}

#[test]
fn untrusted_ca_is_unavailable_even_with_nullok() {
    let Some(d) = start() else { return };
    let s = setup(
        d,
        &DN_STYLE
            .replace("@URI@", "@LDAPS@")
            .replace("uri =", "cacertfile = \"@BADCA@\"\nuri ="),
        "nullok",
    );
    let r = login(&s, "carol", 1);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(r.everything().contains("TLS"), "{}", r.everything());
    let s = setup(
        s.dir,
        &format!("{DN_STYLE}starttls = true\ncacertfile = \"@BADCA@\"\n"),
        "nullok",
    );
    login(&s, "alice", 1).assert_refused(code::AUTHINFO_UNAVAIL);
}

#[test]
fn wrong_bind_password_is_unavailable_and_never_logged() {
    let Some(d) = start() else { return };
    let s = setup(
        d,
        &format!("{DN_STYLE}bind_user = \"{BIND_DN}\"\nbind_password = \"wrong-Pw-8812\"\n"),
        "nullok debug",
    );
    let r = login(&s, "carol", 1);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.everything().contains("invalidCredentials"),
        "{}",
        r.everything()
    );
    assert!(!r.everything().contains("wrong-Pw-8812"));
}

#[test]
fn secrets_on_the_pam_line_are_refused() {
    let Some(d) = start() else { return };
    let s = setup(d, DN_STYLE, "ldap_bind_password=Leaked-77 nullok");
    let r = login(&s, "alice", 1);
    r.assert_refused(code::SERVICE_ERR);
    assert!(
        r.everything().contains("never accepted on the PAM line"),
        "{}",
        r.everything()
    );
    assert!(!r.everything().contains("Leaked-77"));
    let s = setup(s.dir, DN_STYLE, "ldap_clientkeyfile=/etc/x.key");
    login(&s, "alice", 1).assert_refused(code::SERVICE_ERR);
}

#[test]
fn no_key_attribute_is_no_key_and_ignore_with_nullok() {
    let Some(d) = start() else { return };
    let s = setup(d, DN_STYLE, "");
    login(&s, "carol", 1).assert_refused(code::USER_UNKNOWN);
    // Not in the directory at all (the DN's parent exists): unknown.
    login(&s, "nobody-in-ldap", 1).assert_refused(code::USER_UNKNOWN);
    let s = setup(s.dir, DN_STYLE, "nullok");
    ignored(&login(&s, "carol", 1));
    // nullok does not skip a user the directory does not show this bind:
    // an ACL hiding the entry gives the same answer as no entry.
    login(&s, "nobody-in-ldap", 1).assert_refused(code::USER_UNKNOWN);
    let s = setup(s.dir, FILTER_STYLE, "nullok");
    login(&s, "nobody-in-ldap", 1).assert_refused(code::USER_UNKNOWN);
    // A base DN that does not exist is not "no key".
    let s = setup(s.dir, &DN_STYLE.replace("ou=people", "ou=nosuch"), "nullok");
    login(&s, "carol", 1).assert_refused(code::AUTHINFO_UNAVAIL);
}

#[test]
fn several_entries_are_ambiguous_and_unavailable() {
    let Some(d) = start() else { return };
    let s = setup(d, FILTER_STYLE, "nullok");
    let r = login(&s, "dave", 7);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(r.everything().contains("ambiguous"), "{}", r.everything());
}

#[test]
fn special_user_names_match_only_themselves() {
    let Some(d) = start() else { return };
    let mut s = setup(d, FILTER_STYLE, "");
    for style in [FILTER_STYLE, DN_STYLE] {
        s = setup(s.dir, style, "");
        for (name, seed) in PEOPLE_ENTRIES {
            ok(&login(&s, name, *seed));
        }
        // Filter and DN injection attempts find no entry: positively no key
        // (USER_UNKNOWN), never alice's key.
        for evil in ["*", "alice)(uid=*"] {
            login(&s, evil, 1).assert_refused(code::USER_UNKNOWN);
        }
    }
}

#[test]
fn directory_down_is_unavailable_even_with_nullok() {
    let Some(mut d) = start() else { return };
    d.stop();
    let s = setup(d, DN_STYLE, "nullok");
    let r = login(&s, "carol", 1);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(r.everything().contains("connect"), "{}", r.everything());
}

#[test]
fn server_that_never_answers_hits_the_deadline() {
    let Some(d) = start() else { return };
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hung.local_addr().unwrap().port();
    let s = setup(
        d,
        &format!(
            "{}connection_timeout = 1\n",
            DN_STYLE.replace("@URI@", &format!("ldap://127.0.0.1:{port}"))
        ),
        "nullok",
    );
    let r = login(&s, "carol", 1);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(r.everything().contains("timed out"), "{}", r.everything());
    assert_eq!(r.threads.0, r.threads.1);
    drop(hung);
}

#[test]
fn several_uris_are_tried_in_order() {
    let Some(d) = start() else { return };
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = setup(
        d,
        &DN_STYLE.replace(
            "\"@URI@\"",
            &format!("[\"ldap://127.0.0.1:{dead}\", \"@URI@\"]"),
        ),
        "",
    );
    ok(&login(&s, "alice", 1));
}

// ------------------------------------------------------- bind_as_user

/// The DN style, binding as the user.
const AS_USER: &str = "uri = \"@URI@\"\nbasedn = \"ou=people,dc=example,dc=org\"\nuser_attr = \"uid\"\nyubi_attr = \"yubiKeyId\"\nbind_as_user = true\n";

/// A slapd that shows `yubiKeyId` only to the entry's own bind.
fn private_keys() -> Option<Slapd> {
    start_with(SlapdOptions {
        private_keys: true,
        ..SlapdOptions::default()
    })
}

fn typed(s: &Setup, user: &str, answer: String) -> Run {
    s.w.run(
        "yubiotp-test",
        user,
        &RunOpts {
            answers: vec![Answer::from(answer)],
            ..RunOpts::default()
        },
    )
}

/// Nothing the run showed (stdout, stderr with the debug syslog lines)
/// holds `secret`.
fn never_shown(r: &Run, secret: &str) {
    assert!(
        !r.everything().contains(secret),
        "the password reached the output:\n{}",
        r.everything()
    );
}

#[test]
fn bind_as_user_password_and_otp_in_one_prompt() {
    let Some(d) = private_keys() else { return };
    // Anonymous, the same directory shows alice without a key: the bind
    // as alice is what finds it.
    let s = setup(d, DN_STYLE, "");
    login(&s, "alice", 1).assert_refused(code::USER_UNKNOWN);
    let filter_style = AS_USER.replace(
        "user_attr = \"uid\"\n",
        "user_attr = \"uid\"\nfilter = \"(&(objectClass=inetOrgPerson)(uid=%u))\"\n",
    );
    let mut s = s;
    for (n, style) in [AS_USER.to_string(), filter_style].iter().enumerate() {
        s = setup(s.dir, style, "debug");
        s.w.service(
            "yubiotp-test",
            "auth required @MODULE@ @CONFIG@ debug\nauth required @WRAPPER@/pam_get_items.so\n",
        );
        let pw = password(1);
        let n = u8::try_from(n).unwrap();
        let r = typed(&s, "alice", format!("{pw}{}", otp_n(1, n)));
        assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
        assert_eq!(
            r.env.get("PAM_AUTHTOK").map(Vec::as_slice),
            Some(pw.as_bytes()),
            "the password goes on to the next module"
        );
        never_shown(&r, &pw);
        assert_eq!(r.threads.0, r.threads.1, "no thread left behind");
        // Another user's key is still not alice's.
        typed(&s, "alice", format!("{pw}{}", otp_n(2, n))).assert_refused(code::AUTH_ERR);
    }
}

#[test]
fn bind_as_user_takes_the_password_from_pam_authtok() {
    let Some(d) = private_keys() else { return };
    let s = setup(d, AS_USER, "");
    let stack = |opt: &str| {
        format!(
            "auth required @WRAPPER@/pam_set_items.so\nauth required @MODULE@ @CONFIG@ {opt} debug\n"
        )
    };
    let pw = password(1);
    // try_first_pass: the password alone in PAM_AUTHTOK (pam_unix before
    // us), the OTP at the prompt.
    s.w.service("yubiotp-test", &stack("try_first_pass"));
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            env: vec![("PAM_AUTHTOK".into(), pw.clone())],
            answers: vec![Answer::from(otp_n(1, 0))],
            ..RunOpts::default()
        },
    );
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(r.prompts.len(), 1, "only the OTP is asked for");
    never_shown(&r, &pw);
    // use_first_pass: password and OTP in PAM_AUTHTOK, no prompt.
    s.w.service("yubiotp-test", &stack("use_first_pass"));
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            env: vec![("PAM_AUTHTOK".into(), format!("{pw}{}", otp_n(1, 1)))],
            ..RunOpts::default()
        },
    );
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert!(r.prompts.is_empty());
    never_shown(&r, &pw);
}

#[test]
fn bind_as_user_wrong_password_is_auth_err_and_never_logged() {
    let Some(d) = private_keys() else { return };
    let s = setup(d, AS_USER, "nullok debug");
    let wrong = "Wrong-Pw-3318";
    for user in ["alice", "carol"] {
        let r = typed(&s, user, format!("{wrong}{}", otp(1)));
        r.assert_refused(code::AUTH_ERR);
        assert!(
            r.everything().contains("invalidCredentials"),
            "{}",
            r.everything()
        );
        never_shown(&r, wrong);
    }
    // A user the directory does not know cannot bind either: AUTH_ERR,
    // never "no key" (nullok does not let them through).
    typed(&s, "nobody-in-ldap", format!("{wrong}{}", otp(1))).assert_refused(code::AUTH_ERR);
    // The OTP was not consumed by the failures.
    ok(&typed(&s, "alice", format!("{}{}", password(1), otp(1))));
    // The right password and no key: "no key" as in the other modes, so
    // nullok applies — only once the search ran.
    ignored(&typed(&s, "carol", format!("{}{}", password(10), otp(1))));
    let s = setup(s.dir, AS_USER, "debug");
    typed(&s, "carol", format!("{}{}", password(10), otp(1))).assert_refused(code::USER_UNKNOWN);
}

#[test]
fn bind_as_user_without_a_password_is_unavailable_even_with_nullok() {
    let Some(d) = private_keys() else { return };
    let s = setup(d, AS_USER, "nullok");
    for user in ["alice", "carol"] {
        let r = typed(&s, user, otp(1));
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(
            r.everything()
                .contains("ldap.bind_as_user needs the user's password"),
            "{}",
            r.everything()
        );
    }
    // use_first_pass with the OTP alone in PAM_AUTHTOK: that is no
    // password either.
    s.w.service(
        "yubiotp-test",
        "auth required @WRAPPER@/pam_set_items.so\nauth required @MODULE@ @CONFIG@ use_first_pass nullok\n",
    );
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            env: vec![("PAM_AUTHTOK".into(), otp(1))],
            ..RunOpts::default()
        },
    );
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    // None of it consumed the OTP.
    s.w.simple_service("nullok");
    ok(&typed(&s, "alice", format!("{}{}", password(1), otp(1))));
}

#[test]
fn bind_as_user_escapes_the_user_name_in_the_bind_dn() {
    let Some(d) = private_keys() else { return };
    let s = setup(d, AS_USER, "");
    for (name, seed) in PEOPLE_ENTRIES {
        let r = typed(&s, name, format!("{}{}", password(*seed), otp(*seed)));
        ok(&r);
    }
    // "x,ou=other" pasted unescaped would be uid=x,ou=other,ou=people,…,
    // an entry whose password and key these are. Escaped, it names no
    // entry: the bind fails.
    let (x, seed) = OTHER_X;
    let r = typed(
        &s,
        &format!("{x},ou=other"),
        format!("{}{}", password(seed), otp(seed)),
    );
    r.assert_refused(code::AUTH_ERR);
    never_shown(&r, &password(seed));
}

#[test]
fn bind_as_user_through_the_verifier_for_a_caller_that_is_not_root() {
    if !is_root() {
        eprintln!("SKIP: needs root for the setuid helper and setpriv");
        return;
    }
    let Some(d) = private_keys() else { return };
    // The helper runs without nss_wrapper: the caller is the system's
    // `nobody` (65534), whose entry is in the directory with key 11.
    let mut w = World::new();
    w.add_user("nobody", 65534);
    w.add_key(&TestKey::new(11), Counter::new(1, 0));
    let libexec = w.dir.path().join("libexec");
    let helper = yubiotp_tests::setuid_copy(
        env!("CARGO_BIN_EXE_yubiotp-test-verify"),
        &libexec,
        "yubiotp-verify",
    );
    let toml = format!(
        "mode = \"local\"\n[local]\nkeystore = \"{etc}/keys\"\nstatedir = \"{state}\"\n[verifier]\nfailure_delay = 0\nratelimit_dir = \"{dir}/run\"\n[ldap]\n{ldap}",
        etc = w.etc.display(),
        state = w.state.display(),
        dir = w.dir.path().display(),
        ldap = AS_USER.replace("@URI@", &d.uri()),
    );
    write_mode(&libexec.join("yubiotp.toml"), toml.as_bytes(), 0o600);
    let service = |extra: &str| {
        w.service(
            "screenlocker",
            &format!(
                "auth required @MODULE@ verifier={} {extra}\n",
                helper.display()
            ),
        );
    };
    let lock = |answer: String| {
        w.run(
            "screenlocker",
            "nobody",
            &RunOpts {
                answers: vec![Answer::from(answer)],
                wrap: vec![
                    "setpriv".into(),
                    "--reuid=65534".into(),
                    "--regid=65534".into(),
                    "--clear-groups".into(),
                ],
                ..RunOpts::default()
            },
        )
    };
    let pw = password(11);
    // The PAM line says the mapping binds as the user: the password goes
    // to the helper as its second stdin line.
    service("ldap_bind_as_user");
    let r = lock(format!("Wrong-Pw-5521{}", otp_n(11, 0)));
    r.assert_refused(code::AUTH_ERR);
    never_shown(&r, "Wrong-Pw-5521");
    let r = lock(otp_n(11, 0));
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.everything().contains("needs the user's password"),
        "{}",
        r.everything()
    );
    let r = lock(format!("{pw}{}", otp_n(11, 0)));
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    never_shown(&r, &pw);
    // Without the flag the caller sends no password: the helper says why.
    service("");
    let r = lock(format!("{pw}{}", otp_n(11, 1)));
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.everything().contains("caller sent none"),
        "{}",
        r.everything()
    );
    never_shown(&r, &pw);
    // LDAP options on the PAM line beside the flag (the uri only in the
    // root-only file): this side does not resolve the helper's settings,
    // so they are no configuration error here.
    service("ldap_bind_as_user ldapdn=ou=people,dc=example,dc=org user_attr=uid");
    let r = lock(format!("{pw}{}", otp_n(11, 2)));
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
}

// ------------------------------------------------- client certificate

/// The `[ldap]` lines naming the files [`put_client_files`] writes.
const CLIENT_FILES: &str =
    "clientcertfile = \"@ETC@/ldap-client.pem\"\nclientkeyfile = \"@ETC@/ldap-client.key\"\n";

/// Copies the client certificate and key into the world's etc (root-owned
/// when the tests run as root; the key with `key_mode`).
fn put_client_files(s: &Setup, key_mode: u32) {
    let etc = &s.w.etc;
    write_mode(
        &etc.join("ldap-client.pem"),
        &std::fs::read(&s.dir.client_cert).unwrap(),
        0o644,
    );
    write_mode(
        &etc.join("ldap-client.key"),
        &std::fs::read(&s.dir.client_key).unwrap(),
        key_mode,
    );
}

#[test]
fn client_certificate_over_ldaps_and_starttls() {
    let Some(d) = start_with(SlapdOptions {
        verify_client: true,
        ..SlapdOptions::default()
    }) else {
        return;
    };
    let starttls = format!("{DN_STYLE}starttls = true\ncacertfile = \"@CA@\"\n");
    let ldaps = DN_STYLE
        .replace("@URI@", "@LDAPS@")
        .replace("uri =", "cacertfile = \"@CA@\"\nuri =");
    let mut s = setup(d, &starttls, "");
    for style in [&starttls, &ldaps] {
        // With the certificate: the server lets us in.
        s = setup(s.dir, &format!("{style}{CLIENT_FILES}"), "");
        put_client_files(&s, 0o600);
        ok(&login(&s, "alice", 1));
        // Without it: unavailable, even for a keyless user with nullok.
        s = setup(s.dir, style, "nullok");
        let r = login(&s, "carol", 1);
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(r.everything().contains("TLS"), "{}", r.everything());
    }
}

#[test]
fn client_key_file_must_be_root_owned_and_private() {
    let Some(d) = start_with(SlapdOptions {
        verify_client: true,
        ..SlapdOptions::default()
    }) else {
        return;
    };
    let style = format!("{DN_STYLE}starttls = true\ncacertfile = \"@CA@\"\n");
    let mut s = setup(d, &style, "nullok");
    for mode in [0o640, 0o604, 0o660] {
        s = setup(s.dir, &format!("{style}{CLIENT_FILES}"), "nullok");
        put_client_files(&s, mode);
        let r = login(&s, "carol", 1);
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(
            r.everything().contains("ldap.clientkeyfile"),
            "{mode:o}: {}",
            r.everything()
        );
    }
    if is_root() {
        s = setup(s.dir, &format!("{style}{CLIENT_FILES}"), "nullok");
        put_client_files(&s, 0o600);
        let key = s.w.etc.join("ldap-client.key");
        std::os::unix::fs::chown(&key, Some(3001), Some(3001)).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let r = login(&s, "carol", 1);
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(
            r.everything().contains("ldap.clientkeyfile"),
            "{}",
            r.everything()
        );
    } else {
        eprintln!("SKIP (owner case): needs root to chown");
    }
}

// ------------------------------------------------ plaintext refusal

/// TEST-NET-1 (RFC 5737): not loopback, and nothing answers there.
const REMOTE: &str = "192.0.2.1";

fn remote(scheme_extra: &str, args: &str) -> World {
    world(
        &format!(
            "{}connection_timeout = 1\n{scheme_extra}",
            DN_STYLE.replace("@URI@", &format!("ldap://{REMOTE}"))
        ),
        args,
    )
}

fn remote_login(w: &World) -> Run {
    w.run(
        "yubiotp-test",
        "carol",
        &RunOpts {
            answers: vec![Answer::from(otp(1))],
            ..RunOpts::default()
        },
    )
}

#[test]
fn plaintext_to_a_remote_server_is_refused_without_connecting() {
    let r = remote_login(&remote("", "nullok"));
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.everything().contains("refusing plaintext LDAP")
            && r.everything().contains("not connecting"),
        "{}",
        r.everything()
    );
    assert!(!r.everything().contains("connect: "), "{}", r.everything());
    // With TLS (StartTLS, ldaps://) or allow_plaintext, plaintext is not
    // the reason: the connection is tried (and fails).
    for extra in [
        "starttls = true\n".to_string(),
        "allow_plaintext = true\n".to_string(),
    ] {
        let r = remote_login(&remote(&extra, "nullok"));
        r.assert_refused(code::AUTHINFO_UNAVAIL);
        assert!(
            r.everything().contains("connect: "),
            "{extra}: {}",
            r.everything()
        );
        assert!(
            !r.everything().contains("plaintext"),
            "{extra}: {}",
            r.everything()
        );
    }
    let w = world(
        &format!(
            "{}connection_timeout = 1\n",
            DN_STYLE.replace("@URI@", &format!("ldaps://{REMOTE}"))
        ),
        "nullok",
    );
    let r = remote_login(&w);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(r.everything().contains("connect: "), "{}", r.everything());
    assert!(!r.everything().contains("plaintext"), "{}", r.everything());
}
