//! `ykmap check`: audits the setup the way the module will see it. One
//! line per problem on stdout; exit 1 when there is any.

use std::collections::BTreeMap;

use yubiotp_core::PublicId;

use pam_yubiotp::config::Mode;
use pam_yubiotp::fs_policy::OpenError;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::cmd::map::read_central;
use crate::error::{CliError, CliResult};
use crate::note;
use crate::settings;
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
            if args.online {
                online::run(&s, &mut problems);
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
    finish(&problems)
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
