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
use pam_yubiotp::store::{CounterStore, KeyStore, StoreError};

pub mod online;

/// Runs `check`.
///
/// # Errors
/// Problems found (exit 1).
pub fn run(args: &CheckArgs, g: &GlobalArgs) -> CliResult {
    let mut problems: Vec<String> = Vec::new();
    let (loaded, cfg_err) = settings::load_for_check(g)?;
    match &cfg_err {
        Some(e) => problems.push(e.to_string()),
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
                    "the mapping is in LDAP ({}): {}; the files are not read",
                    l.uris
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    l.describe("USER")
                ));
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
            return finish(&problems);
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
    } else {
        note("cloud mode: the key store and counter state are not used");
    }
    check_pam_lines(&args.pamdir, &mut problems);
    finish(&problems)
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
    let ks = match KeyStore::load(keystore) {
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

fn finish(problems: &[String]) -> CliResult {
    for p in problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!("ok: no problems found");
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{} problem(s) found",
            problems.len()
        )))
    }
}
