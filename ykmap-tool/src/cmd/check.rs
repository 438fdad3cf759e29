//! `ykmap check`: audits the setup the way the module will see it. One
//! line per problem on stdout; exit 1 when there is any.

use std::collections::BTreeMap;
use std::path::Path;

use yubiotp_core::PublicId;

use pam_yubiotp::config::Mode;
use pam_yubiotp::fs_policy::OpenError;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::cmd::map::read_central;
use crate::error::{CliError, CliResult};
use crate::settings;
use crate::{note, warn};
use pam_yubiotp::store::keydir::{self, Keys, Layout};
use pam_yubiotp::store::{CounterStore, StoreError};

pub mod online;

/// Runs `check`.
///
/// # Errors
/// Problems found (exit 1).
pub fn run(args: &CheckArgs, g: &GlobalArgs) -> CliResult {
    let problems = audit(args, g)?;
    next_step(&problems, &args.pamdir);
    let (loaded, cfg_err) = settings::load_for_check(g)?;
    if crate::json() {
        // {"ok", "config_loads", "problems": [text, …]}; the exit status
        // is the same as without --json.
        crate::print_json(&serde_json::json!({
            "ok": problems.is_empty(),
            "config_loads": cfg_err.is_none(),
            "problems": problems,
        }));
    }
    if cfg_err.is_some() {
        if !crate::json() {
            for p in &problems {
                println!("{p}");
            }
        }
        // Exit 2: the configuration itself does not load.
        return Err(CliError::input(format!(
            "{}: the configuration does not load ({} problem(s) found)",
            loaded.path.display(),
            problems.len()
        )));
    }
    finish(&problems)
}

/// Keys whose values are one of a few words ([`unquoted_hint`] may show
/// them).
const WORD_VALUED: &[&str] = &["mode", "store", "unavailable", "prompt"];

/// A hint for a TOML file that does not parse because a string value was
/// written without quotes (`mode = local`): the line and how to write it.
fn unquoted_hint(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().enumerate().take(10_000).find_map(|(n, line)| {
        let (key, value) = line.split_once('=')?;
        let (key, value) = (key.trim(), value.trim());
        let bare = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
            && !matches!(value, "true" | "false" | "inf" | "nan");
        (bare && !key.starts_with('#') && !key.is_empty()).then(|| {
            // The value is shown only for options whose values are a fixed
            // set of words; any other may be a secret (`bind_password = x`).
            let shown = if WORD_VALUED.contains(&key) {
                value
            } else {
                "..."
            };
            format!(
                "{}:{}: hint: TOML strings need quotes: write {key} = \"{shown}\"",
                path.display(),
                n + 1
            )
        })
    })
}

/// Says which setup step is missing, on stderr: fixing the problems found,
/// or installing and enabling the pam-auth-update profile (`ykmap enable`,
/// which refuses while any problem is left).
fn next_step(problems: &[String], pamdir: &Path) {
    let root = pamdir
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("/"));
    let profile = root.join(crate::cmd::enable::PROFILE_DIR).join("yubiotp");
    if !problems.is_empty() {
        note(&format!(
            "step missing: fix the problems listed; `ykmap enable` (which installs the \
             pam-auth-update profile {}) refuses until there are none",
            profile.display()
        ));
    } else if !profile.exists() {
        note(&format!(
            "step missing: the pam-auth-update profile {} is not installed: run `ykmap \
             enable` to install and enable it (or add pam_yubiotp.so to a PAM stack by hand)",
            profile.display()
        ));
    }
}

/// Every problem `check` finds, without printing them.
///
/// # Errors
/// When the command line's paths cannot be used.
pub fn audit(args: &CheckArgs, g: &GlobalArgs) -> CliResult<Vec<String>> {
    let mut problems: Vec<String> = Vec::new();
    let (loaded, cfg_err) = settings::load_for_check(g)?;
    match &cfg_err {
        Some(e) => {
            problems.push(e.to_string());
            if let Some(hint) = unquoted_hint(&loaded.path) {
                problems.push(hint);
            }
        }
        None if loaded.file.is_none() => note(&format!(
            "{} does not exist: built-in defaults are used",
            loaded.path.display()
        )),
        None => {}
    }
    let mode = match loaded.resolve() {
        Ok(s) => {
            for w in &s.warnings {
                note(w);
            }
            if let Some(l) = &s.ldap {
                note(&format!(
                    "the mapping is in LDAP ({}): {}; bind {}; the files are not read",
                    l.uris
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    l.describe("USER"),
                    l.describe_bind("USER")
                ));
                if pam_yubiotp::session::binds_as_user(l) {
                    note(
                        "ldap.bind_as_user: the OTP and the password are asked for before the \
                         directory is (a user without a key is prompted too); a wrong password \
                         is PAM_AUTH_ERR, none at all PAM_AUTHINFO_UNAVAIL",
                    );
                }
            }
            if args.online {
                online::run(&s, &mut problems);
                if let Some(l) = &s.ldap {
                    online::ldap(l, &mut problems);
                }
            }
            Some(s.mode)
        }
        Err(e) => {
            if cfg_err.is_none() {
                problems.push(e.to_string());
                loaded.mode()
            } else {
                // The file did not load: its mode is unknown, so audit
                // everything.
                None
            }
        }
    };
    let settings = match loaded.paths() {
        Ok(s) => s,
        Err(e) => {
            problems.push(e.to_string());
            return Ok(problems);
        }
    };

    // The mapping.
    let mut mapped: BTreeMap<PublicId, Vec<String>> = BTreeMap::new();
    match &settings.authfile {
        Some(path) => match read_central(path) {
            Ok(Some(m)) => {
                for p in &m.problems {
                    problems.push(format!("{}:{}: {}", path.display(), p.line, p.reason));
                }
                for e in &m.entries {
                    if matches!(nix::unistd::User::from_name(&e.user), Ok(None)) {
                        warn(&format!(
                            "{}: user {} is not in the passwd database (fine for a virtual \
                             user of a central authfile, a typo otherwise)",
                            path.display(),
                            e.user
                        ));
                    }
                    for k in &e.keys {
                        let users = mapped.entry(*k).or_default();
                        if !users.contains(&e.user) {
                            users.push(e.user.clone());
                        }
                    }
                }
                for (k, users) in &mapped {
                    if users.len() > 1 {
                        problems.push(format!(
                            "key {k} is mapped to several users: {}",
                            users.join(", ")
                        ));
                    }
                }
            }
            Ok(None) => problems.push(format!(
                "authfile {}: does not exist (every login fails with PAM_AUTHINFO_UNAVAIL)",
                path.display()
            )),
            Err(e) => problems.push(e.to_string()),
        },
        None => note(
            "no central authfile: per-user ~/.yubico/authorized_yubikeys files are not audited",
        ),
    }

    // The key store and counter state (local and hybrid modes).
    if mode.is_none_or(Mode::uses_local) {
        check_local(&settings, &mapped, &mut problems);
        if let Some(w) = verifier_warning(Path::new(pam_yubiotp::verifier::DEFAULT_HELPER)) {
            warn(&w);
        }
    } else {
        note("cloud mode: the key store and counter state are not used");
    }
    check_pam_lines(&args.pamdir, &mut problems);
    Ok(problems)
}

/// What is wrong with the setuid verifier at `path` for callers that are
/// not root (screen lockers, `ykmap verify` as a user), or `None` when it
/// is a root-owned regular file with the setuid bit, not writable by group
/// or other. A warning, not a problem: a host without such callers works.
#[must_use]
pub fn verifier_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let why = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "is missing".to_string(),
        Err(e) => format!("cannot be examined: {e}"),
        Ok(m) if !m.file_type().is_file() => "is not a regular file".to_string(),
        Ok(m) if m.uid() != 0 => format!("is owned by uid {}, not root", m.uid()),
        Ok(m) if m.mode() & 0o4000 == 0 => format!(
            "has mode {:04o}, without the setuid bit (make it 4755)",
            m.mode() & 0o7777
        ),
        Ok(m) if m.mode() & 0o022 != 0 => format!(
            "has mode {:04o}: writable by group or other",
            m.mode() & 0o7777
        ),
        Ok(_) => return None,
    };
    Some(format!(
        "verifier {} {why}: in local and hybrid mode, callers that are not root \
         (screen lockers, ykmap verify as a user) cannot validate OTPs",
        path.display()
    ))
}

/// Linux-PAM before 1.6.0 reads a configuration line with `fgets` into a
/// `BUF_SIZE` (1024) byte buffer (libpam/pam_handlers.c): 1023 bytes of
/// text, and the rest of a longer line is read as a line of its own.
pub const PAM_LINE_MAX: usize = 1023;
/// How close to [`PAM_LINE_MAX`] a line may come before a warning.
pub const PAM_LINE_MARGIN: usize = 64;

/// Warns about `pam_yubiotp.so` lines in `dir` near libpam's line length
/// limit (a problem when over it: arguments at the end are lost). Lines
/// continued with a backslash count together. A missing or unreadable
/// directory or file is skipped: the module's own checks cover the rest.
fn check_pam_lines(dir: &Path, problems: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in files.iter().take(10_000) {
        let Ok(text) = std::fs::read(file) else {
            continue;
        };
        let mut start_line = 0;
        let mut len = 0;
        let mut has_module = false;
        for (n, physical) in text.split(|b| *b == b'\n').enumerate() {
            if len == 0 {
                start_line = n + 1;
            }
            len += physical.len();
            let comment = physical.trim_ascii_start().starts_with(b"#");
            has_module |= !comment && physical.windows(14).any(|w| w == b"pam_yubiotp.so");
            if !comment && physical.trim_ascii_end().ends_with(b"\\") {
                continue;
            }
            if has_module {
                let at = format!("{}:{start_line}", file.display());
                if len > PAM_LINE_MAX {
                    problems.push(format!(
                        "{at}: the pam_yubiotp.so line is {len} bytes; Linux-PAM before 1.6.0 \
                         cuts lines at {PAM_LINE_MAX} bytes and reads the rest as another line, \
                         losing arguments: move settings to the TOML file"
                    ));
                } else if len + PAM_LINE_MARGIN > PAM_LINE_MAX {
                    warn(&format!(
                        "{at}: the pam_yubiotp.so line is {len} bytes, within \
                         {PAM_LINE_MARGIN} of the {PAM_LINE_MAX}-byte line limit of Linux-PAM \
                         before 1.6.0: move settings to the TOML file"
                    ));
                }
            }
            len = 0;
            has_module = false;
        }
    }
}

fn check_local(
    settings: &pam_yubiotp::config::Settings,
    mapped: &BTreeMap<PublicId, Vec<String>>,
    problems: &mut Vec<String>,
) {
    let keystore = &settings.local.keystore;
    match keydir::layout(keystore) {
        Ok(Layout {
            dir: true,
            file: true,
        }) => problems.push(format!(
            "key store: both {} (old single file) and {} exist; the module reads only {}: \
             run `ykmap key migrate` (it removes the file when both hold the same keys)",
            keystore.display(),
            dir_shown(keystore),
            dir_shown(keystore)
        )),
        Ok(Layout {
            dir: false,
            file: true,
        }) => warn(&format!(
            "key store {} is in the old single-file format: every login reads all keys; run \
             `ykmap key migrate` to move it to {}",
            keystore.display(),
            dir_shown(keystore)
        )),
        _ => {}
    }
    let ks = match Keys::open(keystore).and_then(|ks| ks.verify_all().map(|()| ks)) {
        Ok(ks) => Some(ks),
        Err(StoreError::Open(OpenError::NotFound(_))) => {
            problems.push(format!("key store {}: does not exist", keystore.display()));
            None
        }
        Err(e) => {
            problems.push(format!("key store: {e}"));
            None
        }
    };
    let counters = match CounterStore::open(&settings.local.statedir) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(format!("counter state: {e}"));
            None
        }
    };
    let Some(ks) = ks else {
        return;
    };
    for (k, users) in mapped {
        if !ks.contains(k) {
            problems.push(format!(
                "key {k} (mapped to {}) is not in the key store {}",
                users.join(", "),
                keystore.display()
            ));
        }
    }
    let Some(counters) = counters else {
        return;
    };
    for id in ks.ids() {
        match counters.read(&id) {
            Ok(_) => {}
            Err(StoreError::StateMissing { .. }) => problems.push(format!(
                "key {id}: no counter state (the module refuses it; run `ykmap counter reset \
                 {id} --otp OTP`)"
            )),
            Err(e) => problems.push(format!("key {id}: counter state: {e}")),
        }
    }
    if let Ok(ids) = counters.ids() {
        for id in ids.iter().filter(|id| !ks.contains(id)) {
            note(&format!(
                "counter state for {id}, which is not in the key store"
            ));
        }
    }
}

fn dir_shown(keystore: &std::path::Path) -> String {
    keydir::dir_of(keystore).map_or_else(|_| "KEYSTORE.d".to_string(), |d| d.display().to_string())
}

fn finish(problems: &[String]) -> CliResult {
    if !crate::json() {
        for p in problems {
            println!("{p}");
        }
    }
    if problems.is_empty() {
        if !crate::json() {
            println!("ok: no problems found");
        }
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{} problem(s) found",
            problems.len()
        )))
    }
}

#[cfg(test)]
mod verifier_tests {
    use super::verifier_warning;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_or_non_setuid_helper_is_named() {
        let w = verifier_warning(std::path::Path::new("/nonexistent/yubiotp-verify")).unwrap();
        assert!(w.contains("is missing"), "{w}");
        let dir = yubiotp_testsupport::tempdir();
        let p = dir.path().join("yubiotp-verify");
        std::fs::write(&p, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        if nix::unistd::geteuid().is_root() {
            let w = verifier_warning(&p).unwrap();
            assert!(w.contains("without the setuid bit"), "{w}");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
            assert_eq!(verifier_warning(&p), None);
        } else {
            assert!(verifier_warning(&p).unwrap().contains("not root"));
        }
    }
}
