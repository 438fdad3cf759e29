//! The mode policy (SPEC §1): which backend decides, and when hybrid falls
//! back to local. Its result is a [`Verdict`]; an [`Accepted`] can only be
//! made here, so nothing else in the crate can produce PAM_SUCCESS.

use yubiotp_core::Token;

use crate::backend::local::{self, Fleet, LocalVerdict};
use crate::backend::{CloudBackend, CloudVerdict};
use crate::config::{Mode, Settings};
use crate::host::{Level, Log};
use crate::store::{CounterStore, KeyStore, StoreError, keydir};

/// Which backend decided an acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A validation server's `OK` (no local key, or cloud mode).
    Cloud,
    /// The local key store and counters (local mode, or hybrid's fallback
    /// or unsigned-OK path).
    Local,
    /// Hybrid: a signed cloud `OK`, confirmed and committed locally.
    CloudAndLocal,
    /// The privileged verifier (`yubiotp-verify`) ran this engine as root
    /// and answered "accepted" (exit 0) for a caller that is not root.
    Verifier,
}

impl Backend {
    /// The name in the log line: `cloud`, `local`, `cloud+local`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Cloud => "cloud",
            Self::Local => "local",
            Self::CloudAndLocal => "cloud+local",
            Self::Verifier => "verifier",
        }
    }
}

/// Proof that an OTP was accepted. Its field is private, so the only
/// constructor is in this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    backend: Backend,
}

impl Accepted {
    /// Which backend accepted.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The verifier helper's exit 0: the helper built its own `Accepted`
    /// in this engine (the OTP consumed there) before it answered. Only
    /// [`crate::verifier::ask`]'s answer mapping calls this.
    pub(crate) fn from_verifier() -> Self {
        Accepted {
            backend: Backend::Verifier,
        }
    }

    /// An acceptance for the SPEC §6 table test, which lives beside
    /// `outcome.rs`; no non-test code can call it.
    #[cfg(test)]
    pub(crate) fn for_table_test() -> Self {
        Accepted {
            backend: Backend::Local,
        }
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

/// The key store holding at most the token's key (only that key is read
/// and decoded from a `<keystore>.d` store), and the counter state.
fn open_local(settings: &Settings, token: &Token) -> Result<(KeyStore, CounterStore), String> {
    let keys = keydir::load_one(&settings.local.keystore, &token.public_id)
        .map_err(|e| describe_store_error(&e))?;
    let counters =
        CounterStore::open(&settings.local.statedir).map_err(|e| describe_store_error(&e))?;
    Ok((keys, counters))
}

fn from_local(v: LocalVerdict, token: &Token, backend: Backend) -> Verdict {
    match v {
        LocalVerdict::Accepted(_) => Verdict::Accepted(Accepted { backend }),
        LocalVerdict::Rejected(r) => Verdict::Rejected(r.to_string()),
        LocalVerdict::NotHeld => Verdict::Unavailable(format!(
            "key {} is mapped but not in the key store",
            token.public_id
        )),
        LocalVerdict::Fault(e) => Verdict::Unavailable(describe_store_error(&e)),
        LocalVerdict::Unavailable(why) => Verdict::Unavailable(why),
    }
}

/// The shared counters of this attempt, when `[counters]` is set.
fn fleet<'a>(settings: &'a Settings, log: &'a dyn Log) -> Option<Fleet<'a>> {
    settings.shared.as_ref().map(|s| Fleet {
        settings: s,
        statedir: &settings.local.statedir,
        log,
    })
}

fn local_only(settings: &Settings, token: &Token, log: &dyn Log) -> Verdict {
    match open_local(settings, token) {
        Ok((keys, counters)) => from_local(
            local::look_up_and_check(token, &keys, &counters, fleet(settings, log)),
            token,
            Backend::Local,
        ),
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
        return local_only(settings, token, log);
    }
    let Some(cloud) = cloud else {
        return Verdict::Unavailable("internal: no cloud backend".to_string());
    };
    let answer = cloud.verify(token);
    match (settings.mode, answer) {
        (
            Mode::Hybrid,
            CloudVerdict::Rejected {
                server,
                status,
                authenticated: true,
            },
        ) if status == "REPLAYED_OTP" => hybrid_after_replayed(settings, token, &server, log),
        (_, CloudVerdict::Rejected { server, status, .. }) => {
            Verdict::Rejected(format!("{status} from {server}"))
        }
        (Mode::Cloud | Mode::Local, CloudVerdict::Ok { .. }) => Verdict::Accepted(Accepted {
            backend: Backend::Cloud,
        }),
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
            match open_local(settings, token) {
                Ok((keys, counters)) => {
                    match local::look_up_and_check(token, &keys, &counters, fleet(settings, log)) {
                        LocalVerdict::NotHeld => Verdict::Unavailable(format!(
                            "{summary}; key {} is not held locally",
                            token.public_id
                        )),
                        v => from_local(v, token, Backend::Local),
                    }
                }
                Err(why) => Verdict::Unavailable(format!("{summary}; {why}")),
            }
        }
    }
}

/// The key store and counter state, when the token's key is held locally.
/// A hybrid host may hold no keys at all: a key store that does not exist
/// holds nothing (`Ok(None)`). One that exists but cannot be trusted or read
/// is an error, since it might hold this key.
fn held_locally(
    settings: &Settings,
    token: &Token,
) -> Result<Option<(KeyStore, CounterStore)>, String> {
    let keys = match keydir::load_one(&settings.local.keystore, &token.public_id) {
        Ok(keys) => keys,
        Err(StoreError::Open(crate::fs_policy::OpenError::NotFound(_))) => {
            return no_key_store(settings, token);
        }
        Err(e) => {
            return Err(format!(
                "the local key store cannot be checked: {}",
                describe_store_error(&e)
            ));
        }
    };
    if keys.get(&token.public_id).is_none() {
        // With one file per key, a missing key file is the same hazard as
        // a missing store (`ykmap key remove` removes the state too).
        return no_key_store(settings, token);
    }
    match CounterStore::open(&settings.local.statedir) {
        Ok(counters) => Ok(Some((keys, counters))),
        Err(e) => Err(format!(
            "the local counters cannot be updated: {}",
            describe_store_error(&e)
        )),
    }
}

/// When the key store, or the key's file in it, was not found: the key is
/// not held locally only if its counter state is absent too. A key store that vanished (or an
/// `ENOENT` from a failing disk or a path lookup, found by the fault sweep)
/// while the key's counter state is still there must not let a cloud answer
/// through without the local counters, or the fallback could accept the
/// OTP again later.
fn no_key_store(
    settings: &Settings,
    token: &Token,
) -> Result<Option<(KeyStore, CounterStore)>, String> {
    let state = CounterStore::open(&settings.local.statedir).and_then(|c| c.read(&token.public_id));
    match state {
        Err(
            StoreError::Open(crate::fs_policy::OpenError::NotFound(_))
            | StoreError::StateMissing { .. },
        ) => Ok(None),
        Ok(_) => Err(format!(
            "the local key store is missing while {} has counter state",
            token.public_id
        )),
        Err(e) => Err(format!(
            "the local key store is missing and the counter state of {} cannot be checked: {}",
            token.public_id,
            describe_store_error(&e)
        )),
    }
}

/// Hybrid, after an authenticated (signed, otp and nonce echoed) cloud
/// `REPLAYED_OTP`: the cloud has seen this OTP, so a key held locally whose
/// local check passes has those counters committed before the reject, and
/// a later fallback cannot accept it. A failed commit is unavailable.
fn hybrid_after_replayed(
    settings: &Settings,
    token: &Token,
    server: &str,
    log: &dyn Log,
) -> Verdict {
    let rejected = || Verdict::Rejected(format!("REPLAYED_OTP from {server}"));
    let (keys, counters) = match held_locally(settings, token) {
        Ok(Some(held)) => held,
        Ok(None) => return rejected(),
        Err(why) => {
            return Verdict::Unavailable(format!(
                "REPLAYED_OTP from {server}, but {why}, so a fallback could accept it"
            ));
        }
    };
    let Some(key) = keys.get(&token.public_id) else {
        return rejected();
    };
    // With shared counters the fleet's value moves too: another host's
    // local fallback must refuse this OTP as well.
    match local::check_and_commit(token, key, &counters, fleet(settings, log)) {
        LocalVerdict::Accepted(c) => {
            log.log(
                Level::Warning,
                &format!(
                    "{server} says this OTP of {} was used before; local counters advanced to \
                     {c} so the local fallback refuses it too",
                    token.public_id
                ),
            );
            rejected()
        }
        LocalVerdict::Rejected(_) | LocalVerdict::NotHeld => rejected(),
        LocalVerdict::Fault(e) => Verdict::Unavailable(format!(
            "REPLAYED_OTP from {server}, but the local counters cannot be advanced: {}",
            describe_store_error(&e)
        )),
        LocalVerdict::Unavailable(why) => Verdict::Unavailable(format!(
            "REPLAYED_OTP from {server}, but the local counters cannot be advanced: {why}"
        )),
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
    let (keys, counters) = match held_locally(settings, token) {
        Ok(Some(held)) => held,
        Ok(None) => {
            return Verdict::Accepted(Accepted {
                backend: Backend::Cloud,
            });
        }
        Err(why) => return Verdict::Unavailable(format!("cloud OK from {server}, but {why}")),
    };
    let Some(key) = keys.get(&token.public_id) else {
        return Verdict::Accepted(Accepted {
            backend: Backend::Cloud,
        });
    };
    // A cloud OK advances the shared counters too, as it does the local ones.
    match local::check_and_commit(token, key, &counters, fleet(settings, log)) {
        LocalVerdict::Accepted(_) if signed => Verdict::Accepted(Accepted {
            backend: Backend::CloudAndLocal,
        }),
        LocalVerdict::Accepted(_) => Verdict::Accepted(Accepted {
            backend: Backend::Local,
        }),
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
        v @ (LocalVerdict::NotHeld | LocalVerdict::Fault(_) | LocalVerdict::Unavailable(_)) => {
            from_local(v, token, Backend::Local)
        }
    }
}
