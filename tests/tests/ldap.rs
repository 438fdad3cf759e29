//! LDAP as the mapping source, end to end: the built module through the
//! real libpam (C driver, pam_wrapper, nss_wrapper) against a real
//! OpenLDAP slapd started by each test on 127.0.0.1 (testsupport's
//! `Slapd`: own slapd.conf and mdb database in a scratch dir, test CA,
//! killed on drop). Local mode validates the OTP, so a success proves the
//! key came from the directory.

use std::net::TcpListener;

use yubiotp_core::Counter;
use yubiotp_tests::{Answer, Run, RunOpts, TestKey, World, code};
use yubiotp_testsupport::Slapd;
use yubiotp_testsupport::slapd::{self, BIND_DN, BIND_PW, PEOPLE, ldif_line};

/// (user name, key seed, attribute style?, prefix style?) of the entries.
const PEOPLE_ENTRIES: &[(&str, u8)] = &[
    ("alice", 1),
    ("we)(ird*", 3),
    ("a,b", 4),
    ("back\\slash", 5),
    ("jürgen", 6),
];

fn escape_dn(v: &str) -> String {
    pam_yubiotp::ldap::proto::escape_dn_value(v)
}

fn person(dn: &str, uid: &str, extra: &str) -> String {
    format!(
        "{}objectClass: inetOrgPerson\nobjectClass: yubiKeyUser\n{}cn: x\nsn: x\n{extra}\n",
        ldif_line("dn", dn),
        ldif_line("uid", uid)
    )
}

fn directory() -> String {
    let mut l = String::new();
    for (name, seed) in PEOPLE_ENTRIES {
        let id = TestKey::new(*seed).id;
        l.push_str(&person(
            &format!("uid={},{PEOPLE}", escape_dn(name)),
            name,
            &format!("yubiKeyId: {id}\n"),
        ));
    }
    // bob: prefix style in description, beside an unrelated value.
    let bob = TestKey::new(2).id;
    l.push_str(&person(
        &format!("uid=bob,{PEOPLE}"),
        "bob",
        &format!("description: office 3\ndescription: yubikey:{bob}\n"),
    ));
    // carol: no key attribute at all.
    l.push_str(&person(&format!("uid=carol,{PEOPLE}"), "carol", ""));
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
];

struct Setup {
    w: World,
    dir: Slapd,
}

fn start() -> Option<Slapd> {
    if !slapd::available() {
        eprintln!("slapd not installed (scripts/setup.sh): skipped");
        return None;
    }
    Some(Slapd::start(&directory()).unwrap())
}

/// A world whose config is local mode plus `[ldap]` = `ldap`; `@URI@`,
/// `@LDAPS@`, `@CA@`, `@BADCA@` are replaced.
fn setup(dir: Slapd, ldap: &str, args: &str) -> Setup {
    let mut w = World::new();
    for (i, u) in USERS.iter().enumerate() {
        w.add_user(u, 3001 + u32::try_from(i).unwrap());
    }
    for seed in 1..=7 {
        w.add_key(&TestKey::new(seed), Counter::new(1, 0));
    }
    let ldap = ldap
        .replace("@URI@", &dir.uri())
        .replace("@LDAPS@", &dir.ldaps_uri())
        .replace("@CA@", &dir.cafile.display().to_string())
        .replace("@BADCA@", &dir.unknown_cafile.display().to_string());
    w.write_config(&format!(
        "mode = \"local\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n[ldap]\n{ldap}"
    ));
    w.simple_service(args);
    Setup { w, dir }
}

const DN_STYLE: &str = "uri = \"@URI@\"\nbasedn = \"ou=people,dc=example,dc=org\"\nuser_attr = \"uid\"\nyubi_attr = \"yubiKeyId\"\n";
const FILTER_STYLE: &str = "uri = \"@URI@\"\nbasedn = \"dc=example,dc=org\"\nfilter = \"(&(objectClass=inetOrgPerson)(uid=%u))\"\nyubi_attr = \"yubiKeyId\"\n";

fn otp(seed: u8) -> String {
    let mut k = TestKey::new(seed);
    k.counter = Counter::new(2, 0);
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
    // Not in the directory at all (the DN's parent exists): also no key.
    login(&s, "nobody-in-ldap", 1).assert_refused(code::USER_UNKNOWN);
    let s = setup(s.dir, DN_STYLE, "nullok");
    ignored(&login(&s, "carol", 1));
    ignored(&login(&s, "nobody-in-ldap", 1));
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
