//! `ykmap check --online`: ask each validation server about a well-formed
//! dummy OTP that no key ever typed, one server at a time, through the same
//! code path as a login.
//!
//! A `BAD_OTP` (or `REPLAYED_OTP`) answer echoing our OTP means the server
//! is reachable and accepted our client id and request signature: a
//! Validation Protocol 2.0 server checks `id` and `h` before it looks at the
//! OTP. Anything else is a problem worth an admin's attention.

use std::cell::RefCell;

use yubiotp_core::{CIPHERTEXT_CHARS, Token};

use pam_yubiotp::backend::cloud::CloudValidator;
use pam_yubiotp::backend::{CloudBackend, CloudVerdict};
use pam_yubiotp::config::{CloudSettings, Settings};
use pam_yubiotp::host::{Level, Log};

use crate::note;

/// What one server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The URL (no query string).
    pub url: String,
    /// True when the server answered as a correctly configured one should.
    pub ok: bool,
    /// One line for the admin.
    pub detail: String,
}

#[derive(Default)]
struct Collect(RefCell<Vec<(Level, String)>>);

impl Log for Collect {
    fn log(&self, level: Level, line: &str) {
        self.0.borrow_mut().push((level, line.to_string()));
    }
}

/// The dummy OTP: public id and ciphertext all `c` (zero bytes).
fn dummy_token(token_id_length: usize) -> Option<Token> {
    let text = "c".repeat(token_id_length + CIPHERTEXT_CHARS);
    Token::parse(&text, token_id_length).ok()
}

/// Probes every URL of `settings`, one at a time.
#[must_use]
pub fn probe(settings: &CloudSettings, token_id_length: usize) -> Vec<ProbeReport> {
    let Some(token) = dummy_token(token_id_length) else {
        return vec![ProbeReport {
            url: "-".into(),
            ok: false,
            detail: format!("token_id_length {token_id_length} is not usable"),
        }];
    };
    (0..settings.urls().len())
        .filter_map(|i| settings.only_url(i))
        .map(|one| {
            let url = one.urls().first().map(ToString::to_string).unwrap_or_default();
            let log = Collect::default();
            let verdict = CloudValidator::new(&one, &log, false).verify(&token);
            let (ok, detail) = match verdict {
                CloudVerdict::Rejected { status, .. } => (
                    true,
                    format!("reachable; client id and request signature accepted ({status} for a dummy OTP, as expected)"),
                ),
                CloudVerdict::Ok { .. } => (
                    false,
                    "the server ACCEPTED a dummy OTP: it cannot be trusted".to_string(),
                ),
                CloudVerdict::NoAnswer { summary } => {
                    let worst = log
                        .0
                        .borrow()
                        .iter()
                        .filter(|(l, _)| *l <= Level::Warning)
                        .map(|(_, line)| line.trim_start_matches("cloud: ").to_string())
                        .next_back();
                    (false, worst.unwrap_or(summary))
                }
            };
            ProbeReport {
                url,
                ok,
                detail,
            }
        })
        .collect()
}

/// A server that answered as it should: a line on stdout, or a note on
/// stderr with `--json` (stdout is then the one JSON document).
fn reached(line: &str) {
    if crate::json() {
        note(line);
    } else {
        println!("{line}");
    }
}

/// `--online`: asks each validation server about a dummy OTP; a server
/// that answered as it should is [`reached`], any other answer is added to
/// `problems`.
pub fn run(s: &Settings, problems: &mut Vec<String>) {
    match crate::cmd::shared::probe(s) {
        Some(Ok(line)) => reached(&line),
        Some(Err(p)) => problems.push(p),
        None => {}
    }
    let Some(cloud) = &s.cloud else {
        note(&format!(
            "--online: mode={} asks no validation server",
            s.mode.name()
        ));
        return;
    };
    for r in probe(cloud, s.token_id_length) {
        if r.ok {
            reached(&format!("{}: {}", r.url, r.detail));
        } else {
            problems.push(format!("{}: {}", r.url, r.detail));
        }
    }
}

/// The user name `--online` searches for: one no directory should hold.
pub const LDAP_PROBE_USER: &str = "ykmap-online-check";

/// `--online` with an LDAP mapping: binds and runs one search (for
/// [`LDAP_PROBE_USER`]), as the module would; a clean answer (entry or no
/// entry) is printed, anything else is a problem. With
/// `ldap.bind_as_user` there is no user's password to bind with: the
/// check connects (TLS, client certificate, failover as the module) and
/// runs the same search anonymously, and says so.
pub fn ldap(l: &pam_yubiotp::ldap::LdapSettings, problems: &mut Vec<String>) {
    let what = if pam_yubiotp::session::binds_as_user(l) {
        note(crate::cmd::map::ldap_anonymous_note());
        "connection and anonymous search (no bind)"
    } else {
        "bind and search"
    };
    match pam_yubiotp::ldap::query(l, LDAP_PROBE_USER, None) {
        Ok(pam_yubiotp::ldap::Answer::Entry(f)) => reached(&format!(
            "{}: {what} answered (an entry {:?} for {LDAP_PROBE_USER})",
            f.server, f.dn
        )),
        Ok(pam_yubiotp::ldap::Answer::NoEntry(why)) => reached(&format!(
            "LDAP: {what} answered cleanly ({why} for {LDAP_PROBE_USER})"
        )),
        Ok(pam_yubiotp::ldap::Answer::Refused(why)) | Err(why) => problems.push(why),
    }
}
