//! Offline validation: key store lookup, decrypt and check in the core,
//! then a locked, durable counter advance.

use yubiotp_core::{KeyMaterial, Rejection, Token, verify_offline};

use crate::store::{CounterStore, KeyStore, StoreError};

/// The local backend's answer.
#[derive(Debug)]
pub enum LocalVerdict {
    /// Fresh, and the new counter is on disk.
    Accepted(yubiotp_core::Counter),
    /// A definitive no.
    Rejected(Rejection),
    /// The key is not in the key store.
    NotHeld,
    /// A store fault: no verdict possible.
    Fault(StoreError),
}

/// Checks `token` with `key` against the stored counters and commits the new
/// counter durably when it is fresh.
#[must_use]
pub fn check_and_commit(token: &Token, key: &KeyMaterial, counters: &CounterStore) -> LocalVerdict {
    match counters.check_and_advance(&token.public_id, |last| {
        verify_offline(token, key, last).map(|fresh| fresh.counter)
    }) {
        Ok(Ok(counter)) => LocalVerdict::Accepted(counter),
        Ok(Err(rejection)) => LocalVerdict::Rejected(rejection),
        Err(e) => LocalVerdict::Fault(e),
    }
}

/// The whole local step: look the key up, then [`check_and_commit`].
#[must_use]
pub fn look_up_and_check(token: &Token, keys: &KeyStore, counters: &CounterStore) -> LocalVerdict {
    match keys.get(&token.public_id) {
        Some(key) => check_and_commit(token, key, counters),
        None => LocalVerdict::NotHeld,
    }
}
