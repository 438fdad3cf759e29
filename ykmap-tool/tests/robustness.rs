//! Process-level tests of the properties transcripts cannot show:
//! concurrent edits, interrupted edits, hostile imports, secrets never
//! printed, concurrent software-key OTPs, per-user files written as the
//! user. Temp dirs come from `yubiotp_testsupport::tempdir()` (the module refuses
//! world-writable ancestors such as /tmp).
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use yubiotp_core::{Token, decrypt, serial_to_public_id};
use yubiotp_testsupport::tempdir;

const AES: &str = "ecde18dbe76fbd0c33330f1c354871db";
const UID: &str = "8792ebfe26cc";

fn ykmap(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ykmap"));
    c.current_dir(dir)
        .env_remove("YKMAP_TEST_PAUSE_BEFORE_RENAME")
        .stdin(Stdio::null());
    c
}

fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    yubiotp_testsupport::run_with_stdin(ykmap(dir).args(args), stdin)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A directory with a local-mode config; returns the common flags.
fn setup(dir: &Path) -> Vec<String> {
    std::fs::write(dir.join("yk.toml"), "mode = \"local\"\n").unwrap();
    [
        "--config",
        "yk.toml",
        "--authfile",
        "authfile",
        "--keystore",
        "keys",
        "--statedir",
        "state",
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

fn args<'a>(g: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    g.iter()
        .map(String::as_str)
        .chain(rest.iter().copied())
        .collect()
}

#[test]
fn concurrent_map_add_from_20_processes_loses_no_line() {
    let d = tempdir();
    let g = setup(d.path());
    std::fs::write(d.path().join("authfile"), "# shared\n").unwrap();
    let children: Vec<_> = (0..20u32)
        .map(|i| {
            let id = serial_to_public_id(1000 + i).to_string();
            ykmap(d.path())
                .args(args(&g, &["map", "add", &format!("user{i}"), &id]))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let content = std::fs::read_to_string(d.path().join("authfile")).unwrap();
    assert!(content.starts_with("# shared\n"));
    for i in 0..20u32 {
        let line = format!("user{i}:{}", serial_to_public_id(1000 + i));
        assert_eq!(
            content.lines().filter(|l| *l == line).count(),
            1,
            "{line}\n{content}"
        );
    }
    assert_eq!(content.lines().count(), 21);
}

#[test]
fn a_leftover_temp_file_changes_nothing_and_is_cleaned_up() {
    let d = tempdir();
    let g = setup(d.path());
    let before = "# keep me\r\nroot:ccccccdbjrgf\r\n";
    std::fs::write(d.path().join("authfile"), before).unwrap();
    let stale = d
        .path()
        .join(format!(".authfile.ykmap-tmp.{}", "0a".repeat(16)));
    std::fs::write(&stale, "root:vvvvvvvvvvvv\n").unwrap();
    let o = run(d.path(), &args(&g, &["map", "list"]), b"");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "root:ccccccdbjrgf\n");
    assert_eq!(
        std::fs::read_to_string(d.path().join("authfile")).unwrap(),
        before
    );
    let o = run(
        d.path(),
        &args(&g, &["map", "add", "root", "vvcccccccccb"]),
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !stale.exists(),
        "the stale temp file is removed under the lock"
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("authfile")).unwrap(),
        "# keep me\r\nroot:ccccccdbjrgf:vvcccccccccb\r\n"
    );
}

#[test]
fn killed_between_write_and_rename_leaves_the_old_file() {
    let d = tempdir();
    let g = setup(d.path());
    let before = "root:ccccccdbjrgf\n";
    let path = d.path().join("authfile");
    std::fs::write(&path, before).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut child = ykmap(d.path())
        .args(args(&g, &["map", "add", "root", "vvcccccccccb"]))
        .env("YKMAP_TEST_PAUSE_BEFORE_RENAME", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "child ended before the hook"
        );
        if line.contains("paused before rename") {
            break;
        }
    }
    // The new content is written and synced in the temp file; kill now.
    let temps: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".authfile.ykmap-tmp.")
        })
        .collect();
    assert_eq!(temps.len(), 1);
    assert!(
        std::fs::read_to_string(temps[0].path())
            .unwrap()
            .contains("vvcccccccccb")
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
    // The next edit takes over cleanly and keeps the mode.
    let o = run(
        d.path(),
        &args(&g, &["map", "add", "root", "vvcccccccccd"]),
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "root:ccccccdbjrgf:vvcccccccccd\n"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
    assert!(!temps[0].path().exists());
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("state")] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            if e.file_type().unwrap().is_file() {
                out.push((
                    e.path().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_imports_are_refused_fast_and_change_nothing() {
    let d = tempdir();
    let g = setup(d.path());
    let o = run(
        d.path(),
        &args(
            &g,
            &[
                "key",
                "add",
                "ccccccdbjrgf",
                "--aes-key",
                "-",
                "--private-id",
                "-",
            ],
        ),
        format!("{AES}\n{UID}\n").as_bytes(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let good = format!("1,vvcccccccccb,{UID},{AES},,x,\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a line of 10^6 columns", ",".repeat(1_000_000).into_bytes()),
        (
            "10^6 lines of 2 columns",
            "a,b\n".repeat(1_000_000).into_bytes(),
        ),
        (
            "more than 4 MiB",
            format!("{good}{}", "#".repeat(5 << 20)).into_bytes(),
        ),
        (
            "a NUL byte",
            format!("{good}2,vvcccccccccd,{UID},{AES}\0,,x,\n").into_bytes(),
        ),
        ("invalid UTF-8", [good.as_bytes(), b"\xff\xfe\n"].concat()),
        (
            "a short AES key",
            format!("{good}2,vvcccccccccd,{UID},{},,x,\n", &AES[..30]).into_bytes(),
        ),
        (
            "a long private id",
            format!("{good}2,vvcccccccccd,{UID}00,{AES},,x,\n").into_bytes(),
        ),
        (
            "a short public id",
            format!("{good}2,vvcccccccd,{UID},{AES},,x,\n").into_bytes(),
        ),
        ("duplicate ids", format!("{good}{good}").into_bytes()),
        (
            "an id already in the store",
            format!("2198612,ccccccdbjrgf,{UID},{AES},,x,\n").into_bytes(),
        ),
        (
            "an unterminated quote",
            format!("{good}\"2,vvcccccccccd,{UID},{AES}\n").into_bytes(),
        ),
        (
            "a ykpersonalize block without key",
            b"fixed: m:vvcccccccccb\nuid: 8792ebfe26cc\n".to_vec(),
        ),
    ];
    let before = snapshot(d.path());
    for (what, input) in cases {
        std::fs::write(d.path().join("in.csv"), &input).unwrap();
        for source in ["in.csv", "-"] {
            let o = run(d.path(), &args(&g, &["key", "import", source]), &input);
            assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.lines().count(), 1, "{what}: {err}");
            assert!(o.stdout.is_empty(), "{what}");
            assert!(
                !err.contains(UID) && !err.contains(&AES[..16]),
                "{what}: {err}"
            );
            std::fs::remove_file(d.path().join("in.csv")).ok();
            assert_eq!(snapshot(d.path()), before, "{what}: files changed");
            std::fs::write(d.path().join("in.csv"), &input).unwrap();
        }
        std::fs::remove_file(d.path().join("in.csv")).unwrap();
    }
}

#[test]
fn secrets_never_appear_in_any_output() {
    let d = tempdir();
    let g = setup(d.path());
    let aes2 = "00112233445566778899aabbccddeeff";
    let uid2 = "0a1b2c3d4e5f";
    let secrets = [AES, UID, aes2, uid2, &AES[..16], &aes2[..16]];
    let mut outputs = Vec::new();
    let mut go = |a: &[&str], stdin: &str| {
        let o = run(d.path(), &args(&g, a), stdin.as_bytes());
        outputs.push((a.join(" "), text(&o)));
    };
    go(
        &[
            "key",
            "add",
            "vvcccccccccb",
            "--aes-key",
            AES,
            "--private-id",
            UID,
        ],
        "",
    );
    go(
        &[
            "key",
            "add",
            "vvcccccccccd",
            "--aes-key",
            "-",
            "--private-id",
            "-",
        ],
        &format!("{aes2}\n{uid2}\n"),
    );
    go(
        &[
            "key",
            "add",
            "vvcccccccccd",
            "--aes-key",
            "-",
            "--private-id",
            "-",
        ],
        &format!("{aes2}\n{uid2}\n"),
    );
    go(
        &[
            "key",
            "add",
            "vvccccccccce",
            "--aes-key",
            &AES[..31],
            "--private-id",
            UID,
        ],
        "",
    );
    go(
        &[
            "key",
            "add",
            "vvccccccccce",
            "--aes-key",
            AES,
            "--private-id",
            &format!("{UID}0"),
        ],
        "",
    );
    go(
        &[
            "key",
            "add",
            "vvccccccccce",
            "--aes-key",
            &AES.replace('e', "x"),
            "--private-id",
            UID,
        ],
        "",
    );
    go(
        &["key", "import", "-"],
        &format!("1,vvccccccccdb,{uid2},{AES},,x,\n2,vvccccccccdc,{UID},{aes2}\n"),
    );
    go(
        &["key", "import", "-"],
        &format!("1,vvccccccccdd,{uid2},{AES}f,,x,\n"),
    );
    go(
        &["key", "import", "-", "--force"],
        &format!("Yubico OTP,d,1,vvccccccccdd,{UID},{aes2},,,0\n"),
    );
    go(
        &["key", "import", "-"],
        &format!(
            "fixed: m:vvccccccccde\nuid: {UID}\nkey: h:{}\n",
            &aes2[..30]
        ),
    );
    go(&["key", "list"], "");
    go(&["softkey", "new", "soft.key", "--register"], "");
    go(&["softkey", "show", "soft.key"], "");
    go(&["check"], "");
    std::fs::write(
        d.path().join("vec.key"),
        format!("format = 1\npublic_id = vvcccccccccb\naes_key = {AES}\nprivate_id = {UID}\nuse_counter = 3\nsession_counter = 0\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        d.path().join("vec.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let otp = String::from_utf8(run(d.path(), &["softkey", "otp", "vec.key"], b"").stdout).unwrap();
    let otp = otp.trim();
    let mut go = |a: &[&str], stdin: &str| {
        let o = run(d.path(), &args(&g, a), stdin.as_bytes());
        outputs.push((a.join(" "), text(&o)));
    };
    go(&["otp", "decode", otp], "");
    go(&["otp", "decode", otp, "--aes-key", AES], "");
    go(&["otp", "decode", otp, "--aes-key", aes2], "");
    go(&["counter", "reset", "vvcccccccccb", "--otp", otp], "");
    go(
        &[
            "key",
            "add",
            "vvcccccccccb",
            "--force",
            "--aes-key",
            aes2,
            "--private-id",
            UID,
            "--otp",
            otp,
        ],
        "",
    );
    std::fs::write(d.path().join("vec.key"), "format = 1\naes_key = 0123\n").unwrap();
    go(&["softkey", "show", "vec.key"], "");
    assert_eq!(outputs.len(), 20);
    for (cmd, out) in &outputs {
        let lower = out.to_lowercase();
        for s in secrets {
            assert!(!lower.contains(s), "`ykmap {cmd}` printed a secret:\n{out}");
        }
    }
    // The key store does hold them: one file per key, 0600, in a 0700
    // directory.
    let dir = d.path().join("keys.d");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    let mut ks = String::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        ks.push_str(&std::fs::read_to_string(&p).unwrap());
    }
    assert!(ks.contains(AES) && ks.contains(aes2));
}

#[test]
fn concurrent_softkey_otps_are_all_different() {
    let d = tempdir();
    let o = run(d.path(), &["softkey", "new", "k"], b"");
    assert!(o.status.success(), "{}", text(&o));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let dir = d.path().to_path_buf();
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| {
                        let o = run(&dir, &["softkey", "otp", "k"], b"");
                        assert!(o.status.success(), "{}", text(&o));
                        String::from_utf8(o.stdout).unwrap().trim().to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut otps: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(otps.len(), 64);
    let key = ykmap::softkey::SoftKey::parse(&std::fs::read_to_string(d.path().join("k")).unwrap())
        .unwrap();
    let mut counters: Vec<_> = otps
        .iter()
        .map(|o| {
            let t = Token::parse(o, 12).unwrap();
            let p = decrypt(&t.ciphertext, &key.key.aes_key);
            assert!(p.crc_ok && p.private_id == key.key.private_id);
            p.counter()
        })
        .collect();
    otps.sort();
    otps.dedup();
    assert_eq!(otps.len(), 64, "an OTP was printed twice");
    counters.sort();
    counters.dedup();
    assert_eq!(counters.len(), 64, "two OTPs share counters");
    assert_eq!(key.last, yubiotp_core::Counter::new(1, 63));
}

fn nss_wrapper() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("libnss_wrapper.so"))
    .find(|p| p.exists())
}

#[test]
fn per_user_file_is_written_as_the_user_and_never_through_a_symlink() {
    let Some(lib) = nss_wrapper() else {
        eprintln!("skipped: libnss_wrapper.so not installed (scripts/setup.sh installs it)");
        return;
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    let d = tempdir();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.path().join("yk.toml"), "mode = \"local\"\n").unwrap();
    let home = d.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(4242), Some(4242)).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        d.path().join("passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nykuser:x:4242:4242::{}:/bin/sh\n",
            home.display()
        ),
    )
    .unwrap();
    std::fs::write(d.path().join("group"), "root:x:0:\nykuser:x:4242:\n").unwrap();
    let wrapped = |a: &[&str]| {
        ykmap(d.path())
            .args(["--config", "yk.toml"])
            .args(a)
            .env("LD_PRELOAD", &lib)
            .env("NSS_WRAPPER_PASSWD", d.path().join("passwd"))
            .env("NSS_WRAPPER_GROUP", d.path().join("group"))
            .output()
            .unwrap()
    };
    let o = wrapped(&["map", "add", "ykuser", "vvcccccccccb"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = home.join(".yubico");
    let file = dir.join("authorized_yubikeys");
    let (dm, fm) = (
        std::fs::metadata(&dir).unwrap(),
        std::fs::metadata(&file).unwrap(),
    );
    assert_eq!(
        (dm.uid(), dm.gid(), dm.mode() & 0o7777),
        (4242, 4242, 0o700)
    );
    assert_eq!(
        (fm.uid(), fm.gid(), fm.mode() & 0o7777),
        (4242, 4242, 0o600)
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "ykuser:vvcccccccccb\n"
    );
    let o = wrapped(&["map", "list", "ykuser"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "ykuser:vvcccccccccb\n",
        "{}",
        text(&o)
    );
    // A symlink planted by the user is never followed.
    let target = d.path().join("root-owned");
    std::fs::write(&target, "precious\n").unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    let o = wrapped(&["map", "add", "ykuser", "vvcccccccccd"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("symlink"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    // Unknown users are refused when there is no central file.
    let o = wrapped(&["map", "add", "nosuchuser", "vvcccccccccd"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}
