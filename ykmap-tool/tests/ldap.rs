//! `ykmap map list USER` and `ykmap check [--online]` with the mapping in a
//! real slapd (testsupport's `Slapd`, on 127.0.0.1).
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use yubiotp_testsupport::Slapd;
use yubiotp_testsupport::slapd::{self, BIND_DN, BIND_PW, PEOPLE};

const ID: &str = "ccccccdbjrgf";

fn ykmap(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ykmap"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn list_and_check_read_the_directory() {
    if !slapd::available() {
        eprintln!("slapd not installed (scripts/setup.sh): skipped");
        return;
    }
    let d = Slapd::start(&format!(
        "dn: uid=alice,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: yubiKeyUser\nuid: alice\ncn: a\nsn: a\nyubiKeyId: {ID}\n\n"
    ))
    .unwrap();
    let dir = yubiotp_testsupport::tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("yubiotp.toml");
    let write = |pw: &str| {
        std::fs::write(
            &config,
            format!(
                "mode = \"local\"\n[local]\nkeystore = \"{d}/keys\"\nstatedir = \"{d}\"\n[ldap]\nuri = \"{uri}\"\nbasedn = \"{PEOPLE}\"\nuser_attr = \"uid\"\nyubi_attr = \"yubiKeyId\"\nbind_user = \"{BIND_DN}\"\nbind_password = \"{pw}\"\n",
                d = dir.path().display(),
                uri = d.uri()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write(BIND_PW);
    let (rc, text) = ykmap(&config, &["map", "list", "alice"]);
    assert_eq!(rc, Some(0), "{text}");
    assert!(text.contains(&format!("alice:{ID}")), "{text}");
    assert!(text.contains("uid=alice,ou=people"), "{text}");
    let (rc, text) = ykmap(&config, &["map", "list", "bob"]);
    assert_eq!(rc, Some(1), "{text}");
    let (rc, text) = ykmap(&config, &["map", "add", "bob", ID]);
    assert_eq!(rc, Some(2), "{text}");
    assert!(text.contains("edit the directory"), "{text}");

    let (_, text) = ykmap(&config, &["check", "--online"]);
    assert!(text.contains("the mapping is in LDAP"), "{text}");
    assert!(text.contains("bind and search answered"), "{text}");
    assert!(!text.contains(BIND_PW));

    write("wrong-one");
    let (rc, text) = ykmap(&config, &["check", "--online"]);
    assert_eq!(rc, Some(1), "{text}");
    assert!(text.contains("invalidCredentials"), "{text}");
    assert!(!text.contains("wrong-one"));
}

#[test]
fn check_describes_bind_as_user_and_searches_anonymously_online() {
    if !slapd::available() {
        eprintln!("slapd not installed (scripts/setup.sh): skipped");
        return;
    }
    let d = Slapd::start(&format!(
        "dn: uid=alice,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: yubiKeyUser\nuid: alice\ncn: a\nsn: a\nuserPassword: alice-pw-77\nyubiKeyId: {ID}\n\n"
    ))
    .unwrap();
    let dir = yubiotp_testsupport::tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("yubiotp.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"local\"\n[local]\nkeystore = \"{d}/keys\"\nstatedir = \"{d}\"\n[ldap]\nuri = \"{uri}\"\nbasedn = \"{PEOPLE}\"\nuser_attr = \"uid\"\nyubi_attr = \"yubiKeyId\"\nbind_as_user = true\n",
            d = dir.path().display(),
            uri = d.uri()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, text) = ykmap(&config, &["check"]);
    assert!(
        text.contains("bind as the user, \"uid=USER,ou=people,dc=example,dc=org\""),
        "{text}"
    );
    assert!(text.contains("a wrong password is PAM_AUTH_ERR"), "{text}");
    let (_, text) = ykmap(&config, &["check", "--online"]);
    assert!(text.contains("searches anonymously"), "{text}");
    assert!(
        text.contains("connection and anonymous search (no bind) answered cleanly"),
        "{text}"
    );
    let (rc, text) = ykmap(&config, &["map", "list", "alice"]);
    assert_eq!(rc, Some(0), "{text}");
    assert!(text.contains("searches anonymously"), "{text}");
    assert!(text.contains(&format!("alice:{ID}")), "{text}");
}
