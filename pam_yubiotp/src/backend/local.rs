//! Offline validation: key store lookup, decrypt and check in the core,
//! then the shared counters (when `[counters]` is set: the conditional
//! write is the decision), then a locked, durable local counter advance.
//! An OTP is accepted only above `max(local, shared)`.

use std::path::Path;

use yubiotp_core::{KeyMaterial, Rejection, Token, verify_offline};

use crate::config::{SharedSettings, Unavailable};
use crate::host::{Level, Log};
use crate::store::etcd::EtcdStore;
use crate::store::shared::{Advance, Counters as _, Journal, SharedError};
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
    /// The shared counters gave no answer (unknown outcome, or unreachable
    /// with `unavailable = "deny"`).
    Unavailable(String),
}

/// The shared counters of one attempt, when `[counters]` is configured.
#[derive(Clone, Copy)]
pub struct Fleet<'a> {
    /// The `[counters]` settings.
    pub settings: &'a SharedSettings,
    /// The local state directory (its `journal/` queue).
    pub statedir: &'a Path,
    /// Where degraded acceptances and push failures are logged.
    pub log: &'a dyn Log,
}

impl core::fmt::Debug for Fleet<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fleet").finish_non_exhaustive()
    }
}

enum Why {
    Rejected(Rejection),
    Unavailable(String),
}

/// Pushes the journal (max-merge) to a store that just answered, within
/// its deadline; what fails stays queued.
fn drain(store: &mut EtcdStore<'_>, fleet: Fleet<'_>) {
    let journal = match Journal::open_existing(fleet.statedir) {
        Ok(Some(j)) => j,
        Ok(None) => return,
        Err(e) => {
            fleet
                .log
                .log(Level::Err, &format!("counters: journal: {e}"));
            return;
        }
    };
    // A journaled counter that is never pushed lets other hosts accept the
    // OTP again: whatever cannot be read or listed is logged.
    let pending = match journal.pending() {
        Ok((pending, unreadable)) => {
            for (id, e) in unreadable {
                fleet.log.log(
                    Level::Err,
                    &format!("counters: journal entry of {id} cannot be read, not pushed: {e}"),
                );
            }
            pending
        }
        Err(e) => {
            fleet.log.log(
                Level::Err,
                &format!("counters: journal not listed, nothing pushed: {e}"),
            );
            return;
        }
    };
    for (id, c) in pending {
        match store.push(&id, c) {
            Ok(_) => {
                if let Err(e) = journal.done(&id, c) {
                    fleet
                        .log
                        .log(Level::Err, &format!("counters: journal: {e}"));
                }
                fleet.log.log(
                    Level::Notice,
                    &format!("counters: pushed journaled {c} of {id} to the shared store"),
                );
            }
            Err(e) => {
                fleet
                    .log
                    .log(Level::Warning, &format!("counters: journal of {id}: {e}"));
                return;
            }
        }
    }
}

/// Checks `token` with `key` against the stored counters (local, then
/// shared when `fleet` is given) and commits the new counter durably when
/// it is fresh.
#[must_use]
pub fn check_and_commit(
    token: &Token,
    key: &KeyMaterial,
    counters: &CounterStore,
    fleet: Option<Fleet<'_>>,
) -> LocalVerdict {
    let id = token.public_id;
    let mut store = match fleet.map(|f| EtcdStore::new(f.settings)).transpose() {
        Ok(s) => s,
        // A trust or identity file that cannot be used is a setup fault,
        // never the store being down: unavailable under either policy.
        Err(e) => return LocalVerdict::Unavailable(e.to_string()),
    };
    let mut contacted = false;
    let result = counters.check_and_advance(&id, |last| {
        let fresh = verify_offline(token, key, last).map_err(Why::Rejected)?;
        let Some(fleet) = fleet else {
            return Ok(fresh.counter);
        };
        let outcome = match store.as_mut() {
            Some(s) => s.advance(&id, fresh.counter),
            None => Err(SharedError::Unknown("internal: no store".into())),
        };
        match outcome {
            Ok(Advance::Advanced) => {
                contacted = true;
                Ok(fresh.counter)
            }
            Ok(Advance::Stale(stored)) => {
                contacted = true;
                Err(Why::Rejected(Rejection::Replayed {
                    presented: fresh.counter,
                    last: stored,
                }))
            }
            Err(e @ SharedError::Unknown(_)) => Err(Why::Unavailable(e.to_string())),
            Err(e @ SharedError::Unreachable(_)) => match fleet.settings.unavailable {
                Unavailable::Deny => Err(Why::Unavailable(e.to_string())),
                Unavailable::Local => {
                    let journaled =
                        Journal::open(fleet.statedir).and_then(|j| j.record(&id, fresh.counter));
                    if let Err(j) = journaled {
                        return Err(Why::Unavailable(format!("{e}; journal: {j}")));
                    }
                    fleet.log.log(
                        Level::Warning,
                        &format!(
                            "degraded: {e}; {id} accepted at {} on the local counters alone \
                             (journaled, pushed on the next contact)",
                            fresh.counter
                        ),
                    );
                    Ok(fresh.counter)
                }
            },
        }
    });
    if let (true, Some(s), Some(f)) = (contacted, store.as_mut(), fleet) {
        drain(s, f);
    }
    match result {
        Ok(Ok(counter)) => LocalVerdict::Accepted(counter),
        Ok(Err(Why::Rejected(r))) => LocalVerdict::Rejected(r),
        Ok(Err(Why::Unavailable(w))) => LocalVerdict::Unavailable(w),
        Err(e) => LocalVerdict::Fault(e),
    }
}

/// The whole local step: look the key up, then [`check_and_commit`].
#[must_use]
pub fn look_up_and_check(
    token: &Token,
    keys: &KeyStore,
    counters: &CounterStore,
    fleet: Option<Fleet<'_>>,
) -> LocalVerdict {
    match keys.get(&token.public_id) {
        Some(key) => check_and_commit(token, key, counters, fleet),
        None => LocalVerdict::NotHeld,
    }
}
