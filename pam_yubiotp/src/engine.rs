//! The mode policy (SPEC §1): which backend decides, and when hybrid falls
//! back to local. Its result is a [`Verdict`]; an [`Accepted`] can only be
//! made here, so nothing else in the crate can produce PAM_SUCCESS.

use yubiotp_core::Token;

use crate::backend::local::{self, LocalVerdict};
use crate::backend::{CloudBackend, CloudVerdict};
use crate::config::{Mode, Settings};
use crate::host::{Level, Log};
use crate::store::{CounterStore, KeyStore, StoreError};

/// Proof that an OTP was accepted. Its field is private, so the only
/// constructor is in this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    backend: &'static str,
}

impl Accepted {
    /// Which backend accepted: `cloud`, `local`, or `cloud+local`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

/// What validation concluded.
#[derive(Debug)]
pub enum Verdict {
    /// Valid and fresh; any counter commit already happened.
    Accepted(Accepted),
    /// A definitive no (PAM_AUTH_ERR), with the reason for the log.
    Rejected(String),
    /// No definitive answer (PAM_AUTHINFO_UNAVAIL), with the reason.
    Unavailable(String),
}

fn describe_store_error(e: &StoreError) -> String {
    if let StoreError::Open(crate::fs_policy::OpenError::PermissionDenied(p)) = e {
        let uid = nix::unistd::geteuid();
        if !uid.is_root() {
            return format!(
                "local mode needs root: {} is unreadable for uid {uid}",
                p.display()
            );
        }
    }
    e.to_string()
}

fn open_local(settings: &Settings) -> Result<(KeyStore, CounterStore), String> {
    let keys = KeyStore::load(&settings.local.keystore).map_err(|e| describe_store_error(&e))?;
    let counters =
        CounterStore::open(&settings.local.statedir).map_err(|e| describe_store_error(&e))?;
    Ok((keys, counters))
}

fn from_local(v: LocalVerdict, token: &Token, backend: &'static str) -> Verdict {
    match v {
        LocalVerdict::Accepted(_) => Verdict::Accepted(Accepted { backend }),
        LocalVerdict::Rejected(r) => Verdict::Rejected(r.to_string()),
        LocalVerdict::NotHeld => Verdict::Unavailable(format!(
            "key {} is mapped but not in the key store",
            token.public_id
        )),
        LocalVerdict::Fault(e) => Verdict::Unavailable(describe_store_error(&e)),
    }
}

fn local_only(settings: &Settings, token: &Token) -> Verdict {
    match open_local(settings) {
        Ok((keys, counters)) => {
            from_local(local::validate(token, &keys, &counters), token, "local")
        }
        Err(why) => Verdict::Unavailable(why),
    }
}

/// Validates a token whose public id is already known to be mapped to the
/// user. `cloud` must be present in cloud and hybrid modes.
#[must_use]
pub fn validate(
    settings: &Settings,
    token: &Token,
    cloud: Option<&dyn CloudBackend>,
    log: &dyn Log,
) -> Verdict {
    if settings.mode == Mode::Local {
        return local_only(settings, token);
    }
    let Some(cloud) = cloud else {
        return Verdict::Unavailable("internal: no cloud backend".to_string());
    };
    let answer = cloud.verify(token);
    match (settings.mode, answer) {
        (_, CloudVerdict::Rejected { server, status }) => {
            Verdict::Rejected(format!("{status} from {server}"))
        }
        (Mode::Cloud | Mode::Local, CloudVerdict::Ok { .. }) => {
            Verdict::Accepted(Accepted { backend: "cloud" })
        }
        (Mode::Cloud | Mode::Local, CloudVerdict::NoAnswer { summary }) => {
            Verdict::Unavailable(summary)
        }
        (Mode::Hybrid, CloudVerdict::Ok { server, signed, .. }) => {
            hybrid_after_ok(settings, token, &server, signed, log)
        }
        (Mode::Hybrid, CloudVerdict::NoAnswer { summary }) => {
            log.log(
                Level::Warning,
                &format!("no definitive cloud answer ({summary}); trying the local key store"),
            );
            match open_local(settings) {
                Ok((keys, counters)) => match local::validate(token, &keys, &counters) {
                    LocalVerdict::NotHeld => Verdict::Unavailable(format!(
                        "{summary}; key {} is not held locally",
                        token.public_id
                    )),
                    v => from_local(v, token, "local"),
                },
                Err(why) => Verdict::Unavailable(format!("{summary}; {why}")),
            }
        }
    }
}

/// Hybrid, after a cloud `OK`: a key held locally must also pass the local
/// check and have its counters committed before we accept, so the local
/// fallback can never accept an OTP the cloud already saw. An unsigned OK
/// never advances local counters on its own: the local check decides.
fn hybrid_after_ok(
    settings: &Settings,
    token: &Token,
    server: &str,
    signed: bool,
    log: &dyn Log,
) -> Verdict {
    // A hybrid host may hold no keys at all: a key store that does not exist
    // holds nothing. One that exists but cannot be trusted or read fails
    // closed, since it might hold this key.
    let keys = match KeyStore::load(&settings.local.keystore) {
        Ok(keys) => keys,
        Err(StoreError::Open(crate::fs_policy::OpenError::NotFound(_))) => {
            return no_key_store(settings, token, server);
        }
        Err(e) => {
            return Verdict::Unavailable(format!(
                "cloud OK from {server}, but the local key store cannot be checked: {}",
                describe_store_error(&e)
            ));
        }
    };
    let Some(key) = keys.get(&token.public_id) else {
        return Verdict::Accepted(Accepted { backend: "cloud" });
    };
    let counters = match CounterStore::open(&settings.local.statedir) {
        Ok(c) => c,
        Err(e) => {
            return Verdict::Unavailable(format!(
                "cloud OK from {server}, but the local counters cannot be updated: {}",
                describe_store_error(&e)
            ));
        }
    };
    match local::check_and_commit(token, key, &counters) {
        LocalVerdict::Accepted(_) if signed => Verdict::Accepted(Accepted {
            backend: "cloud+local",
        }),
        LocalVerdict::Accepted(_) => Verdict::Accepted(Accepted { backend: "local" }),
        LocalVerdict::Rejected(r) => {
            log.log(
                Level::Err,
                &format!(
                    "{server} accepted an OTP of {} that the local check refuses ({r}); \
                     possible compromised or impersonated validation server",
                    token.public_id
                ),
            );
            Verdict::Rejected(format!("cloud OK overruled locally: {r}"))
        }
        v @ (LocalVerdict::NotHeld | LocalVerdict::Fault(_)) => from_local(v, token, "local"),
    }
}

/// Hybrid, after a cloud `OK`, when the key store was not found: the key
/// is not held locally only if its counter state is absent too. A key
/// store that vanished (or an `ENOENT` from a failing disk or a path
/// lookup) while the key's counter state is still there must not let the
/// OTP through without advancing the local counters, or the fallback could
/// accept it again later.
fn no_key_store(settings: &Settings, token: &Token, server: &str) -> Verdict {
    let state = CounterStore::open(&settings.local.statedir).and_then(|c| c.read(&token.public_id));
    match state {
        Err(StoreError::Open(crate::fs_policy::OpenError::NotFound(_)))
        | Err(StoreError::StateMissing { .. }) => Verdict::Accepted(Accepted { backend: "cloud" }),
        Ok(_) => Verdict::Unavailable(format!(
            "cloud OK from {server}, but the local key store is missing while {} has counter state",
            token.public_id
        )),
        Err(e) => Verdict::Unavailable(format!(
            "cloud OK from {server}, but the local key store is missing and the counter state of {} cannot be checked: {}",
            token.public_id,
            describe_store_error(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Outcome, code};

    /// SPEC §6, one row per variant: the only PAM_SUCCESS comes from an
    /// `Accepted`, and no failure maps to PAM_SUCCESS or PAM_IGNORE except
    /// the designed `nullok` row.
    #[test]
    fn spec_result_table() {
        let rows: Vec<(Outcome, i32)> = vec![
            (
                Outcome::Success(Accepted { backend: "local" }),
                code::SUCCESS,
            ),
            (Outcome::AuthErr("replayed".into()), code::AUTH_ERR),
            (Outcome::UserUnknown("no key".into()), code::USER_UNKNOWN),
            (Outcome::Ignore("nullok".into()), code::IGNORE),
            (
                Outcome::AuthInfoUnavail("down".into()),
                code::AUTHINFO_UNAVAIL,
            ),
            (Outcome::ServiceErr("config".into()), code::SERVICE_ERR),
            (Outcome::ConvErr("conv".into()), code::CONV_ERR),
        ];
        for (outcome, expected) in &rows {
            assert_eq!(outcome.pam_code(), *expected, "{outcome:?}");
            let is_success = matches!(outcome, Outcome::Success(_));
            assert_eq!(outcome.pam_code() == code::SUCCESS, is_success);
            let is_ignore = matches!(outcome, Outcome::Ignore(_));
            assert_eq!(outcome.pam_code() == code::IGNORE, is_ignore);
        }
        use pam::constants::PamResultCode as P;
        for (ours, libpam) in [
            (code::SUCCESS, P::PAM_SUCCESS),
            (code::AUTH_ERR, P::PAM_AUTH_ERR),
            (code::IGNORE, P::PAM_IGNORE),
            (code::USER_UNKNOWN, P::PAM_USER_UNKNOWN),
            (code::AUTHINFO_UNAVAIL, P::PAM_AUTHINFO_UNAVAIL),
            (code::SERVICE_ERR, P::PAM_SERVICE_ERR),
            (code::CONV_ERR, P::PAM_CONV_ERR),
        ] {
            assert_eq!(ours, libpam as i32);
        }
    }
}
