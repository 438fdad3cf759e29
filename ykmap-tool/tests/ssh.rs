//! `ykmap ssh check` against a scripted `sshd -T` and private PAM stacks.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SSHD_T_GOOD: &str = "usepam yes\nkbdinteractiveauthentication yes\npasswordauthentication no\npubkeyauthentication yes\nauthenticationmethods publickey,keyboard-interactive:pam\n";

fn fake_sshd(dir: &Path, output: &str) -> std::path::PathBuf {
    let p = dir.join("sshd");
    std::fs::write(&p, format!("#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn check(dir: &Path, sshd_t: &str, stack: &str) -> (Option<i32>, String) {
    let pam = dir.join("pam.d");
    std::fs::create_dir_all(&pam).unwrap();
    std::fs::write(pam.join("sshd"), stack).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ykmap"))
        .args(["ssh", "check", "--sshd"])
        .arg(fake_sshd(dir, sshd_t))
        .arg("--pam-dir")
        .arg(&pam)
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
fn good_and_bad_setups() {
    let dir = yubiotp_testsupport::tempdir();
    let good_stack = "auth required pam_yubiotp.so\naccount include common-account\n";
    let (rc, text) = check(dir.path(), SSHD_T_GOOD, good_stack);
    assert_eq!(rc, Some(0), "{text}");
    assert!(text.contains("no problem"), "{text}");

    let (rc, text) = check(
        dir.path(),
        &SSHD_T_GOOD.replace("usepam yes", "usepam no"),
        good_stack,
    );
    assert_eq!(rc, Some(1), "{text}");
    assert!(text.to_lowercase().contains("usepam"), "{text}");

    let (rc, text) = check(
        dir.path(),
        SSHD_T_GOOD,
        "auth required pam_unix.so\nauth required pam_yubiotp.so\n",
    );
    assert_eq!(rc, Some(1), "{text}");
    assert!(text.contains("password"), "{text}");

    let (rc, text) = check(dir.path(), SSHD_T_GOOD, "auth required pam_unix.so\n");
    assert_eq!(rc, Some(1), "{text}");
    assert!(text.contains("pam_yubiotp"), "{text}");

    let (rc, text) = check(
        dir.path(),
        SSHD_T_GOOD,
        "auth sufficient pam_permit.so\nauth required pam_yubiotp.so\n",
    );
    assert_eq!(rc, Some(1), "{text}");
    assert!(
        text.contains("sufficient") || text.contains("skip"),
        "{text}"
    );
}
