//! The shared counters (`[counters]`, etcd) for `ykmap`: `key add/import`
//! seed them (never lower), `counter show` shows them beside the local
//! state, `counter reset` sets them, `check --online` probes the store.

use pam_yubiotp::config::Settings;
use pam_yubiotp::store::etcd::EtcdStore;
use pam_yubiotp::store::shared::{Advance, Counters as _};
use yubiotp_core::{Counter, PublicId};

use crate::error::{CliError, CliResult};

fn store(settings: &Settings) -> CliResult<Option<EtcdStore<'_>>> {
    settings
        .shared
        .as_ref()
        .map(|s| EtcdStore::new(s).map_err(|e| CliError::failed(e.to_string())))
        .transpose()
}

/// Seeds `id`'s shared counter with `c` (never lowering it); the text for
/// the admin, or `None` without `[counters]`.
///
/// # Errors
/// The store gave no answer.
pub fn seed(settings: &Settings, id: &PublicId, c: Counter) -> CliResult<Option<String>> {
    let Some(mut s) = store(settings)? else {
        return Ok(None);
    };
    match s.advance(id, c) {
        Ok(Advance::Advanced) => Ok(Some(format!("shared counter seeded at {c}"))),
        Ok(Advance::Stale(cur)) => Ok(Some(format!("shared counter kept at {cur}"))),
        Err(e) => Err(CliError::failed(format!("{id}: {e}"))),
    }
}

/// The shared value for `counter show`, or `None` without `[counters]`.
///
/// # Errors
/// The store gave no answer.
pub fn show(settings: &Settings, id: &PublicId) -> CliResult<Option<String>> {
    let Some(mut s) = store(settings)? else {
        return Ok(None);
    };
    match s.get(id) {
        Ok(Some(c)) => Ok(Some(c.to_string())),
        Ok(None) => Ok(Some("absent".to_string())),
        Err(e) => Err(CliError::failed(format!("{id}: {e}"))),
    }
}

/// Sets `id`'s shared counter to `c` (`force`: even lower), for
/// `counter reset`.
///
/// # Errors
/// The store gave no answer, or it holds a newer value and `force` is off.
pub fn reset(
    settings: &Settings,
    id: &PublicId,
    c: Counter,
    force: bool,
) -> CliResult<Option<String>> {
    let Some(mut s) = store(settings)? else {
        return Ok(None);
    };
    if force {
        s.put(id, c)
            .map_err(|e| CliError::failed(format!("{id}: {e}")))?;
        return Ok(Some(format!("shared counter set to {c}")));
    }
    match s.advance(id, c) {
        Ok(Advance::Advanced) => Ok(Some(format!("shared counter set to {c}"))),
        Ok(Advance::Stale(cur)) if cur == c => Ok(Some(format!("shared counter already {c}"))),
        Ok(Advance::Stale(cur)) => Err(CliError::failed(format!(
            "{id}: the shared counter ({cur}) is newer than {c}: use a fresh OTP, or --force"
        ))),
        Err(e) => Err(CliError::failed(format!("{id}: {e}"))),
    }
}

/// `check --online`: reachable, authenticated, prefix writable. `None`
/// without `[counters]`.
#[must_use]
pub fn probe(settings: &Settings) -> Option<Result<String, String>> {
    let shared = settings.shared.as_ref()?;
    let mut s = match EtcdStore::new(shared) {
        Ok(s) => s,
        Err(e) => return Some(Err(e.to_string())),
    };
    Some(
        s.probe()
            .map(|()| {
                format!(
                    "shared counters: reachable, authenticated, {}probe written",
                    shared.prefix
                )
            })
            .map_err(|e| format!("shared counters: {e}")),
    )
}
