//! `ykmap` with shared counters (`[counters] store = "etcd"`) against a
//! real etcd member started here: `key add` seeds the shared value,
//! `counter show` shows both, `counter reset` sets both, `check --online`
//! probes the store.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use yubiotp_core::{AesKey, Counter, KeyMaterial, PrivateId, PublicId, mint_token};
use yubiotp_testsupport::etcd::{self, EtcdCluster};

const AES: &str = "ecde18dbe76fbd0c33330f1c354871db";
const PRIV: &str = "8792ebfe26cc";
const ID: &str = "vvcccccccccb";

fn otp(c: Counter) -> String {
    let key = KeyMaterial {
        aes_key: AesKey::from_hex(AES).unwrap(),
        private_id: PrivateId::from_hex(PRIV).unwrap(),
    };
    mint_token(&PublicId::from_modhex(ID).unwrap(), &key, c, false, 1, 2)
}

fn ykmap(config: &Path, args: &[&str], stdin: &str) -> (Option<i32>, String) {
    let out = yubiotp_testsupport::run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_ykmap"))
            .arg("--config")
            .arg(config)
            .args(args),
        stdin.as_bytes(),
    );
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
fn key_add_seeds_show_shows_reset_sets_check_probes() {
    if !nix::unistd::geteuid().is_root() || !etcd::available() {
        eprintln!("skipped: needs root and etcd (scripts/setup.sh)");
        return;
    }
    let mut cluster = EtcdCluster::start(1);
    let dir = yubiotp_testsupport::tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("yubiotp.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"local\"\n[local]\nkeystore = \"{d}/keys\"\nstatedir = \"{d}/state\"\n[counters]\nstore = \"etcd\"\nendpoints = [\"{e}\"]\n",
            d = dir.path().display(),
            e = cluster.endpoints()[0]
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = format!("/yubiotp/counters/{ID}");

    let first = otp(Counter::new(5, 2));
    let (rc, text) = ykmap(
        &config,
        &[
            "key",
            "add",
            ID,
            "--aes-key",
            "-",
            "--private-id",
            "-",
            "--otp",
            &first,
        ],
        &format!("{AES}\n{PRIV}\n"),
    );
    assert_eq!(rc, Some(0), "{text}");
    assert!(
        text.contains("shared counter seeded at use=5 session=2"),
        "{text}"
    );
    assert_eq!(cluster.get(0, &key).as_deref(), Some("v1 00005 002"));

    // The store is newer than a seed: never lowered.
    cluster.put(0, &key, "v1 00006 000");
    let (rc, text) = ykmap(&config, &["counter", "show", ID], "");
    assert_eq!(rc, Some(0), "{text}");
    assert!(
        text.contains("use=5 session=2  shared use=6 session=0"),
        "{text}"
    );

    let (rc, text) = ykmap(
        &config,
        &["counter", "reset", ID, "--otp", &otp(Counter::new(7, 0))],
        "",
    );
    assert_eq!(rc, Some(0), "{text}");
    assert!(
        text.contains("shared counter set to use=7 session=0"),
        "{text}"
    );
    assert_eq!(cluster.get(0, &key).as_deref(), Some("v1 00007 000"));

    let (rc, text) = ykmap(&config, &["check", "--online"], "");
    assert!(
        text.contains("shared counters: reachable, authenticated"),
        "{rc:?} {text}"
    );
    cluster.stop(0);
    let (rc, text) = ykmap(&config, &["check", "--online"], "");
    assert_eq!(rc, Some(1), "{text}");
    assert!(text.contains("shared counters unreachable"), "{text}");
}
