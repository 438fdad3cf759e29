//! `make install` / `scripts/install.sh`, `make uninstall` and `make deb`:
//! install into a temporary DESTDIR, check every file, mode and owner, and
//! that uninstall brings the tree back to exactly what was there before
//! (keys, counter state and an edited config excepted, which are kept).
//!
//! Most tests run `scripts/install.sh` against a fake cargo target
//! directory holding the built module (and a stand-in ykmap), so they do not
//! need a release build; `make_install_uninstall_and_deb` runs the real
//! `make install`, `make uninstall` and `make deb` (release build included).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yubiotp_tests::{is_root, module_path, repo};

/// One entry of a tree snapshot: kind, permission bits, owner, content.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    content: Vec<u8>,
}

/// Every path under `root` (relative, with a leading `/`), not following
/// symlinks.
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            let kind = if m.is_dir() {
                'd'
            } else if m.file_type().is_symlink() {
                'l'
            } else {
                'f'
            };
            let content = if kind == 'f' {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.insert(
                rel,
                Entry {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    content,
                },
            );
            if kind == 'd' {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The stand-in resolver helper of [`fake_target`].
const FAKE_RESOLVE: &str = "#!/bin/sh\necho end\n";

/// A fake cargo target directory: release/libpam_yubiotp.so (the built
/// module), stand-in release/yubiotp-resolve and yubiotp-verify and, if asked, stand-in
/// release/ykmap and release/yubiotp-ssh.
fn fake_target(dir: &Path, with_ykmap: bool) -> PathBuf {
    let t = dir.join("target");
    fs::create_dir_all(t.join("release")).unwrap();
    fs::copy(module_path(), t.join("release/libpam_yubiotp.so")).unwrap();
    fs::write(t.join("release/yubiotp-resolve"), FAKE_RESOLVE).unwrap();
    fs::write(t.join("release/yubiotp-verify"), FAKE_RESOLVE).unwrap();
    if with_ykmap {
        fs::write(t.join("release/ykmap"), "#!/bin/sh\necho ykmap stand-in\n").unwrap();
        fs::set_permissions(t.join("release/ykmap"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(t.join("release/yubiotp-ssh"), FAKE_RESOLVE).unwrap();
    }
    t
}

fn script(name: &str, destdir: &Path, target: &Path, extra: &[(&str, &str)]) -> Output {
    let mut c = Command::new(repo().join("scripts").join(name));
    c.env("DESTDIR", destdir)
        .env("TARGET_DIR", target)
        .env_remove("PREFIX")
        .env_remove("PAMDIR")
        .env_remove("FORCE")
        .env_remove("CARGO_TARGET_DIR");
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{}\n{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

/// The PAM module directory as the system reports it (what install.sh asks).
fn system_pam_dir() -> String {
    let out = Command::new("pkg-config")
        .args(["--variable=libdir", "pam"])
        .output();
    match out {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => {
            format!("{}/security", String::from_utf8_lossy(&o.stdout).trim())
        }
        _ => {
            // No pam.pc: install.sh falls back to where pam_unix.so is.
            [
                "/lib/x86_64-linux-gnu/security",
                "/usr/lib/x86_64-linux-gnu/security",
                "/lib64/security",
                "/lib/security",
            ]
            .iter()
            .find(|d| Path::new(d).join("pam_unix.so").exists())
            .unwrap()
            .to_string()
        }
    }
}

/// What install.sh must add, path → (kind, mode, source content if any).
fn expected_files(
    prefix: &str,
    pam_dir: &str,
    with_ykmap: bool,
) -> BTreeMap<String, (char, u32, Option<Vec<u8>>)> {
    let mut m = BTreeMap::new();
    let mut file = |path: String, mode: u32, src: Option<PathBuf>| {
        m.insert(path, ('f', mode, src.map(|s| fs::read(s).unwrap())));
    };
    file(
        format!("{pam_dir}/pam_yubiotp.so"),
        0o644,
        Some(module_path()),
    );
    if with_ykmap {
        file(format!("{prefix}/sbin/ykmap"), 0o755, None);
        file(format!("{prefix}/bin/yubiotp-ssh"), 0o755, None);
        for c in [
            "bash-completion/completions/ykmap",
            "zsh/vendor-completions/_ykmap",
            "fish/vendor_completions.d/ykmap.fish",
        ] {
            file(format!("{prefix}/share/{c}"), 0o644, None);
        }
    }
    // Content not compared: a stand-in here, the release build in
    // make_install_uninstall_and_deb.
    file("/usr/libexec/yubiotp/yubiotp-resolve".into(), 0o755, None);
    // Setuid root (root:root when installed as root and in the .deb).
    file("/usr/libexec/yubiotp/yubiotp-verify".into(), 0o4755, None);
    for e in fs::read_dir(repo().join("man")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(section) = name
            .rsplit('.')
            .next()
            .filter(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_digit()))
        {
            file(
                format!("{prefix}/share/man/man{section}/{name}"),
                0o644,
                Some(p),
            );
        }
    }
    let doc = format!("{prefix}/share/doc/pam_yubiotp");
    file(
        format!("{doc}/recipes.md"),
        0o644,
        Some(repo().join("docs/recipes.md")),
    );
    if repo().join("README.md").exists() {
        file(
            format!("{doc}/README.md"),
            0o644,
            Some(repo().join("README.md")),
        );
    }
    file(
        format!("{doc}/examples/yubiotp.toml"),
        0o644,
        Some(repo().join("etc/yubiotp.toml")),
    );
    file(
        format!("{doc}/examples/authorized_yubikeys.example"),
        0o644,
        Some(repo().join("etc/authorized_yubikeys.example")),
    );
    for sub in ["pam.d", "sshd_config.d"] {
        for e in fs::read_dir(repo().join("etc").join(sub)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            file(format!("{doc}/examples/{sub}/{name}"), 0o644, Some(p));
        }
    }
    file(
        "/usr/share/pam_yubiotp/pam-configs/yubiotp".into(),
        0o644,
        Some(repo().join("etc/pam-configs/yubiotp")),
    );
    file(
        "/etc/yubiotp/yubiotp.toml".into(),
        0o600,
        Some(repo().join("etc/yubiotp.toml")),
    );
    file(
        format!("{prefix}/share/pam_yubiotp/install-manifest"),
        0o644,
        None,
    );
    m.insert("/etc/yubiotp".into(), ('d', 0o700, None));
    m.insert("/var/lib/yubiotp".into(), ('d', 0o700, None));
    m
}

/// Checks the installed tree: every expected file with its mode, owner and
/// content; and nothing else added except parent directories (0755).
fn check_installed(
    before: &BTreeMap<String, Entry>,
    after: &BTreeMap<String, Entry>,
    expected: &BTreeMap<String, (char, u32, Option<Vec<u8>>)>,
    kept_config: Option<&Entry>,
) {
    let owner = if is_root() { Some(0) } else { None };
    for (path, (kind, mode, content)) in expected {
        if path == "/etc/yubiotp/yubiotp.toml"
            && let Some(kept) = kept_config
        {
            assert_eq!(
                after.get(path),
                Some(kept),
                "an existing config is never overwritten"
            );
            continue;
        }
        let e = after
            .get(path)
            .unwrap_or_else(|| panic!("{path} not installed"));
        assert_eq!(e.kind, *kind, "{path}");
        assert_eq!(e.mode, *mode, "{path}: mode {:o}", e.mode);
        if let Some(uid) = owner {
            assert_eq!((e.uid, e.gid), (uid, uid), "{path}: owner");
        }
        if let Some(c) = content {
            assert!(&e.content == c, "{path}: content differs from its source");
        }
    }
    for (path, e) in after {
        if before.get(path) == Some(e) || expected.contains_key(path) {
            continue;
        }
        assert!(
            e.kind == 'd' && e.mode == 0o755 && before.get(path).is_none(),
            "unexpected change at {path}: {e:?}"
        );
        assert!(
            expected.keys().any(|x| x.starts_with(&format!("{path}/"))),
            "{path} was created but holds nothing installed"
        );
    }
    for path in before.keys() {
        assert!(after.contains_key(path), "install removed {path}");
    }
}

#[test]
fn install_into_empty_destdir_then_uninstall_leaves_nothing() {
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    let target = fake_target(tmp.path(), true);
    let before = BTreeMap::new();
    let err = succeeded(&script("install.sh", &dest, &target, &[]));
    assert!(
        err.contains("ykmap check && ykmap enable"),
        "tells how to enable: {err}"
    );
    let after = snapshot(&dest);
    let pam_dir = system_pam_dir();
    check_installed(
        &before,
        &after,
        &expected_files("/usr", &pam_dir, true),
        None,
    );
    // The manifest lists exactly what was added.
    let manifest = fs::read_to_string(dest.join("usr/share/pam_yubiotp/install-manifest")).unwrap();
    for path in after.keys() {
        assert!(
            manifest.lines().any(|l| l.split(' ').nth(1) == Some(path)),
            "{path} not in the manifest"
        );
    }
    // A second install changes nothing (and remembers what the first created).
    succeeded(&script("install.sh", &dest, &target, &[]));
    assert_eq!(snapshot(&dest), after);
    succeeded(&script("uninstall.sh", &dest, &target, &[]));
    assert_eq!(snapshot(&dest), before, "uninstall left something behind");
}

#[test]
fn uninstall_keeps_keys_state_and_edited_config_and_what_was_there() {
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    let target = fake_target(tmp.path(), false);
    // Pre-existing: an unrelated man page, an edited config with its dir.
    fs::create_dir_all(dest.join("usr/share/man/man8")).unwrap();
    fs::write(dest.join("usr/share/man/man8/other.8"), ".TH OTHER 8\n").unwrap();
    fs::create_dir_all(dest.join("etc/yubiotp")).unwrap();
    fs::set_permissions(dest.join("etc/yubiotp"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(dest.join("etc/yubiotp/yubiotp.toml"), "mode = \"local\"\n").unwrap();
    fs::set_permissions(
        dest.join("etc/yubiotp/yubiotp.toml"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let before = snapshot(&dest);
    let out = script("install.sh", &dest, &target, &[]);
    let err = succeeded(&out);
    assert!(
        err.contains("ykmap is not installed"),
        "warns about ykmap: {err}"
    );
    assert!(err.contains("exists: kept"), "{err}");
    let after = snapshot(&dest);
    check_installed(
        &before,
        &after,
        &expected_files("/usr", &system_pam_dir(), false),
        before.get("/etc/yubiotp/yubiotp.toml"),
    );
    // The admin adds keys and state after installing.
    fs::write(dest.join("etc/yubiotp/keys"), "secret\n").unwrap();
    fs::write(dest.join("var/lib/yubiotp/ccccccbcdccb"), "1 0\n").unwrap();
    let out = script("uninstall.sh", &dest, &target, &[]);
    let err = succeeded(&out);
    // /etc/yubiotp was there before (not ours); /var/lib/yubiotp is ours but holds state.
    assert!(
        err.contains("kept /var/lib/yubiotp (counter state"),
        "{err}"
    );
    assert!(!err.contains("kept /etc/yubiotp"), "{err}");
    let left = snapshot(&dest);
    let mut expect = before.clone();
    for p in [
        "/etc/yubiotp/keys",
        "/var",
        "/var/lib",
        "/var/lib/yubiotp",
        "/var/lib/yubiotp/ccccccbcdccb",
    ] {
        expect.insert(
            p.into(),
            left.get(p).unwrap_or_else(|| panic!("{p} removed")).clone(),
        );
    }
    assert_eq!(left, expect, "exactly what was there, plus keys and state");
    assert_eq!(
        fs::read(dest.join("etc/yubiotp/yubiotp.toml")).unwrap(),
        b"mode = \"local\"\n"
    );
}

#[test]
fn an_installed_config_is_kept_once_edited() {
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    let target = fake_target(tmp.path(), false);
    succeeded(&script("install.sh", &dest, &target, &[]));
    let config = dest.join("etc/yubiotp/yubiotp.toml");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("mode = \"local\"\n");
    fs::write(&config, &text).unwrap();
    // Installing again keeps the edit, and uninstall keeps the file.
    succeeded(&script("install.sh", &dest, &target, &[]));
    assert_eq!(fs::read_to_string(&config).unwrap(), text);
    let err = succeeded(&script("uninstall.sh", &dest, &target, &[]));
    assert!(
        err.contains("kept /etc/yubiotp/yubiotp.toml: it was edited"),
        "{err}"
    );
    let left: Vec<String> = snapshot(&dest).into_keys().collect();
    assert_eq!(left, ["/etc", "/etc/yubiotp", "/etc/yubiotp/yubiotp.toml"]);
    assert_eq!(fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn prefix_and_pamdir_are_honoured() {
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    let target = fake_target(tmp.path(), true);
    let extra = [("PREFIX", "/usr/local"), ("PAMDIR", "/usr/lib/security")];
    succeeded(&script("install.sh", &dest, &target, &extra));
    let after = snapshot(&dest);
    check_installed(
        &BTreeMap::new(),
        &after,
        &expected_files("/usr/local", "/usr/lib/security", true),
        None,
    );
    // Fixed paths do not follow PREFIX: the module's defaults and pam-auth-update's.
    for p in [
        "/etc/yubiotp",
        "/var/lib/yubiotp",
        "/usr/share/pam_yubiotp/pam-configs/yubiotp",
    ] {
        assert!(after.contains_key(p), "{p}");
    }
    succeeded(&script("uninstall.sh", &dest, &target, &extra));
    assert!(snapshot(&dest).is_empty());
    // Relative paths are refused.
    let out = script("install.sh", &dest, &target, &[("PREFIX", "usr")]);
    assert!(!out.status.success());
}

#[test]
fn uninstall_refuses_while_a_pam_stack_uses_the_module() {
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    let target = fake_target(tmp.path(), false);
    succeeded(&script("install.sh", &dest, &target, &[]));
    fs::create_dir_all(dest.join("etc/pam.d")).unwrap();
    fs::write(
        dest.join("etc/pam.d/sshd"),
        "# a comment about pam_yubiotp.so\nauth required pam_yubiotp.so\n",
    )
    .unwrap();
    let installed = snapshot(&dest);
    let out = script("uninstall.sh", &dest, &target, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/etc/pam.d/sshd") && err.contains("lock"),
        "{err}"
    );
    assert_eq!(snapshot(&dest), installed, "nothing removed");
    // A commented-out line does not count.
    fs::write(
        dest.join("etc/pam.d/sshd"),
        "#auth required pam_yubiotp.so\n",
    )
    .unwrap();
    succeeded(&script("uninstall.sh", &dest, &target, &[]));
    assert!(
        !dest
            .join("usr/share/pam_yubiotp/pam-configs/yubiotp")
            .exists()
    );
    // FORCE=1 removes it anyway.
    succeeded(&script("install.sh", &dest, &target, &[]));
    fs::write(
        dest.join("etc/pam.d/sshd"),
        "auth required pam_yubiotp.so\n",
    )
    .unwrap();
    succeeded(&script("uninstall.sh", &dest, &target, &[("FORCE", "1")]));
    assert!(
        !dest
            .join(system_pam_dir().trim_start_matches('/'))
            .join("pam_yubiotp.so")
            .exists()
    );
}

#[test]
fn uninstall_refuses_a_tampered_manifest() {
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    let target = fake_target(tmp.path(), false);
    succeeded(&script("install.sh", &dest, &target, &[]));
    let manifest = dest.join("usr/share/pam_yubiotp/install-manifest");
    let original = fs::read_to_string(&manifest).unwrap();
    fs::create_dir_all(dest.join("etc")).unwrap();
    fs::write(dest.join("etc/precious"), "x").unwrap();
    for evil in [
        "file /etc/yubiotp/../precious",
        "file etc/precious",
        "bogus /etc/precious",
        "file /etc/./precious",
    ] {
        fs::write(&manifest, format!("{original}{evil}\n")).unwrap();
        let installed = snapshot(&dest);
        let out = script("uninstall.sh", &dest, &target, &[]);
        assert!(!out.status.success(), "accepted {evil}");
        assert_eq!(snapshot(&dest), installed, "{evil}: nothing removed");
    }
    fs::write(&manifest, original).unwrap();
    succeeded(&script("uninstall.sh", &dest, &target, &[]));
    assert!(dest.join("etc/precious").exists());
}

#[test]
fn install_refuses_without_a_built_module() {
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    let out = script("install.sh", &dest, &tmp.path().join("no-target"), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("build first"));
    assert!(!dest.exists() || snapshot(&dest).is_empty());
}

/// The cargo target directory this test binary was built in.
fn cargo_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test>
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn make(args: &[&str], dest: &Path) -> Output {
    let mut cmd = Command::new("make");
    // What cargo set for this test (CARGO_PKG_*, CARGO_MANIFEST_DIR, ...)
    // would make the nested release build look stale.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME")
            || k == "CARGO"
            || k.starts_with("RUSTC")
            || k == "OUT_DIR"
        {
            cmd.env_remove(&k);
        }
    }
    cmd.arg("-C")
        .arg(repo())
        .args(args)
        .arg(format!("DESTDIR={}", dest.display()))
        .env("CARGO_TARGET_DIR", cargo_target_dir())
        .env_remove("PREFIX")
        .env_remove("PAMDIR")
        .output()
        .unwrap()
}

#[test]
fn make_install_uninstall_and_deb() {
    if Command::new("make").arg("--version").output().is_err() {
        eprintln!("SKIP: make not installed");
        return;
    }
    let tmp = yubiotp_testsupport::tempdir();
    let dest = tmp.path().join("root");
    succeeded(&make(&["install"], &dest));
    let after = snapshot(&dest);
    let module = format!("{}/pam_yubiotp.so", system_pam_dir());
    let release = fs::read(cargo_target_dir().join("release/libpam_yubiotp.so")).unwrap();
    assert!(
        after.get(&module).unwrap().content == release,
        "the release build is installed"
    );
    assert_eq!(after.get(&module).unwrap().mode, 0o644);
    succeeded(&make(&["uninstall"], &dest));
    assert!(snapshot(&dest).is_empty(), "make uninstall left something");

    // The .deb: built by dpkg-buildpackage over debian/, the install.sh
    // layout with Debian's conventions (docs in /usr/share/doc/<package>,
    // compressed man pages, stripped binaries, detached debug symbols).
    if Command::new("dpkg-buildpackage")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: dpkg-buildpackage not installed, no .deb");
        return;
    }
    let deb = build_deb(tmp.path());
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let in_deb: BTreeSet<String> = listing
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols[1], "root/root", "{l}");
            cols[5]
                .trim_start_matches('.')
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .collect();
    let multiarch = String::from_utf8(
        Command::new("dpkg-architecture")
            .arg("-qDEB_HOST_MULTIARCH")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for p in [
        format!("/lib/{}/security/pam_yubiotp.so", multiarch.trim()),
        "/usr/sbin/ykmap".into(),
        "/usr/share/bash-completion/completions/ykmap".into(),
        "/usr/share/zsh/vendor-completions/_ykmap".into(),
        "/usr/share/fish/vendor_completions.d/ykmap.fish".into(),
        "/usr/libexec/yubiotp/yubiotp-resolve".into(),
        "/usr/share/man/man8/pam_yubiotp.8.gz".into(),
        "/usr/share/man/man8/ykmap.8.gz".into(),
        "/usr/share/man/man5/yubiotp.toml.5.gz".into(),
        "/usr/share/doc/libpam-yubiotp/copyright".into(),
        "/usr/share/doc/libpam-yubiotp/changelog.gz".into(),
        "/usr/share/pam_yubiotp/pam-configs/yubiotp".into(),
        "/etc/yubiotp/yubiotp.toml".into(),
        "/var/lib/yubiotp".into(),
    ] {
        assert!(in_deb.contains(&p), "{p} in the .deb:\n{listing}");
    }
    for p in [
        "/usr/share/pam-configs/yubiotp",
        "/usr/share/pam_yubiotp/install-manifest",
    ] {
        assert!(!in_deb.contains(p), "{p} not in the .deb");
    }
    for (path, mode) in [
        ("./etc/yubiotp/", "drwx------"),
        ("./etc/yubiotp/yubiotp.toml", "-rw-------"),
        ("./var/lib/yubiotp/", "drwx------"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{path} {mode}\n{listing}"
        );
    }
    let info = Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    for field in [
        "Package: libpam-yubiotp",
        "Depends: ",
        "libpam-runtime",
        "ca-certificates",
        " md5sums",
    ] {
        assert!(info.contains(field), "{field}\n{info}");
    }
    let dbgsym = deb.replace("libpam-yubiotp_", "libpam-yubiotp-dbgsym_");
    assert!(
        Path::new(&dbgsym).exists(),
        "detached debug symbols: {dbgsym}"
    );
    let ctrl = tmp.path().join("control");
    succeeded(
        &Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(&ctrl)
            .output()
            .unwrap(),
    );
    assert_eq!(
        fs::read_to_string(ctrl.join("conffiles")).unwrap(),
        "/etc/yubiotp/yubiotp.toml\n"
    );
    for s in ["prerm", "postrm"] {
        succeeded(
            &Command::new("sh")
                .arg("-n")
                .arg(ctrl.join(s))
                .output()
                .unwrap(),
        );
    }
    // prerm decides whether it may remove before it disables the profile.
    let prerm = fs::read_to_string(ctrl.join("prerm")).unwrap();
    let refuse = prerm.find("exit 1").unwrap();
    assert!(refuse < prerm.find("pam-auth-update --package --remove").unwrap());
    // lintian: no error, no warning (the overrides are the 0700/0600 modes).
    if Command::new("lintian").arg("--version").output().is_ok() {
        let out = Command::new("lintian")
            .args(["--fail-on", "error,warning", "--tag-display-limit", "0"])
            .arg(&deb)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lintian:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("SKIP: lintian not installed");
    }
    // Reproducible: a second build (the workspace crates compiled again)
    // gives the same bytes.
    let first = fs::read(&deb).unwrap();
    let _ = Command::new("cargo")
        .args([
            "clean",
            "--release",
            "-p",
            "pam_yubiotp",
            "-p",
            "ykmap-tool",
        ])
        .env("CARGO_TARGET_DIR", cargo_target_dir().join("deb-build"))
        .current_dir(cargo_target_dir().join("deb/src/libpam-yubiotp"))
        .output();
    let again = build_deb(tmp.path());
    assert!(fs::read(&again).unwrap() == first, "two builds, one .deb");
    if is_root() {
        dpkg_into_a_fake_root(tmp.path(), &deb);
    } else {
        eprintln!("SKIP: installing the .deb into a fake root needs root");
    }
}

/// `make deb`; the .deb's path.
fn build_deb(tmp: &Path) -> String {
    let out = make(&["deb"], &tmp.join("unused"));
    succeeded(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.ends_with(".deb"))
        .unwrap()
        .trim()
        .to_string()
}

/// dpkg --root: install (nothing enabled: the profile is out of
/// pam-auth-update's sight and `ykmap enable` refuses the unconfigured
/// example), refuse removal while a stack uses the module, refuse purge
/// while the key store holds keys, then purge everything.
fn dpkg_into_a_fake_root(tmp: &Path, deb: &str) {
    let root = tmp.join("dpkg-root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc/pam.d"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    fs::write(root.join("var/lib/dpkg/available"), "").unwrap();
    let dpkg = |args: &[&str], env: &[(&str, &str)]| {
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args([
                "--force-script-chrootless",
                "--force-depends",
                "--log=/dev/null",
            ])
            .args(args)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    succeeded(&dpkg(&["-i", deb], &[]));
    assert!(root.join("etc/yubiotp/yubiotp.toml").exists());
    assert!(!root.join("usr/share/pam-configs/yubiotp").exists());
    let out = Command::new(root.join("usr/sbin/ykmap"))
        .arg("enable")
        .arg("--root")
        .arg(&root)
        .arg("--config")
        .arg(root.join("etc/yubiotp/yubiotp.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!root.join("usr/share/pam-configs/yubiotp").exists());
    fs::write(root.join("etc/yubiotp/keys"), "secret\n").unwrap();
    fs::write(root.join("var/lib/yubiotp/ccccccbcdccb"), "1 0\n").unwrap();
    fs::write(
        root.join("etc/pam.d/sshd"),
        "auth required pam_yubiotp.so\n",
    )
    .unwrap();
    let out = dpkg(&["-r", "libpam-yubiotp"], &[]);
    assert!(
        !out.status.success(),
        "removal refused while /etc/pam.d/sshd uses the module"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("still use pam_yubiotp.so"));
    fs::remove_file(root.join("etc/pam.d/sshd")).unwrap();
    // Purge refuses while the key store holds keys, naming the backup.
    let out = dpkg(&["-P", "libpam-yubiotp"], &[]);
    assert!(!out.status.success(), "purge refused while keys exist");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tar -C / -czf") && err.contains("PAM_YUBIOTP_PURGE_KEYS=yes"),
        "{err}"
    );
    assert!(root.join("etc/yubiotp/keys").exists());
    succeeded(&dpkg(
        &["-P", "libpam-yubiotp"],
        &[("PAM_YUBIOTP_PURGE_KEYS", "yes")],
    ));
    let left: Vec<String> = snapshot(&root)
        .into_keys()
        .filter(|p| !p.starts_with("/var/lib/dpkg"))
        .collect();
    assert_eq!(left, ["/etc", "/etc/pam.d", "/var", "/var/lib"]);
}
