//! The shared counters' trait: "advance if newer, else tell me the stored
//! value", implemented by the etcd store ([`super::etcd::EtcdStore`]). The
//! local step (`backend::local`) asks it inside the key's local
//! `check_and_advance`, under the key's lock, so an OTP is accepted only
//! above both the local and the shared value.
//!
//! The journal (`<statedir>/journal/`, root-only, the same file format as
//! the counter state) holds counters accepted while the shared store was
//! unreachable under `counters.unavailable = "local"`; they are pushed
//! (max-merge, idempotent) on the next successful contact.

use std::io;
use std::path::{Path, PathBuf};

use yubiotp_core::{Counter, PublicId};

use super::{CounterStore, LOCK_OWNER, LOCK_TIMEOUT, StoreError};
use crate::atomic::{io_error, lock_exclusive, open_error, sync_dir};

/// What an advance did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The new value is stored (it was strictly newer).
    Advanced,
    /// Nothing written: the stored value (equal or newer) is this.
    Stale(Counter),
}

/// Why a shared store gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedError {
    /// Nothing was written: no member answered, or refused us, before the
    /// conditional write was sent (`counters.unavailable` decides).
    Unreachable(String),
    /// The write was sent but its outcome is unknown (timeout, member lost,
    /// garbage reply): always PAM_AUTHINFO_UNAVAIL.
    Unknown(String),
}

impl core::fmt::Display for SharedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unreachable(w) => write!(f, "shared counters unreachable: {w}"),
            Self::Unknown(w) => write!(f, "shared counter write outcome unknown: {w}"),
        }
    }
}

/// A counter store: advance if newer, else tell me the stored value.
pub trait Counters {
    /// Stores `new` for `id` if it is strictly above the stored value (an
    /// absent value counts as below everything for a shared store).
    ///
    /// # Errors
    /// [`SharedError`] when no answer is known.
    fn advance(&mut self, id: &PublicId, new: Counter) -> Result<Advance, SharedError>;

    /// The stored value (`None`: absent).
    ///
    /// # Errors
    /// [`SharedError`] when no answer is known.
    fn get(&mut self, id: &PublicId) -> Result<Option<Counter>, SharedError>;
}

/// The journal directory of a state directory.
#[must_use]
pub fn journal_dir(statedir: &Path) -> PathBuf {
    statedir.join("journal")
}

/// The root-only queue of counters accepted while the store was down.
#[derive(Debug)]
pub struct Journal {
    store: CounterStore,
}

impl Journal {
    /// Opens (creating it, mode 0700, if missing) `<statedir>/journal`.
    ///
    /// # Errors
    /// The directory is untrusted or cannot be created.
    pub fn open(statedir: &Path) -> Result<Self, StoreError> {
        CounterStore::create_dir(&journal_dir(statedir)).map(|store| Self { store })
    }

    /// Opens an existing journal; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// The directory is untrusted.
    pub fn open_existing(statedir: &Path) -> Result<Option<Self>, StoreError> {
        let dir = journal_dir(statedir);
        match std::fs::symlink_metadata(&dir) {
            Ok(_) => CounterStore::open(&dir).map(|store| Some(Self { store })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(open_error(&dir, e)),
        }
    }

    /// Records `counter` for `id`, keeping the larger of it and what is
    /// already queued (max-merge), durably.
    ///
    /// # Errors
    /// A write failed.
    pub fn record(&self, id: &PublicId, counter: Counter) -> Result<(), StoreError> {
        match self.store.set(id, counter, false) {
            Ok(_) | Err(StoreError::WouldLower { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Everything queued, and the entries that cannot be read (they stay
    /// queued; the caller logs them).
    ///
    /// # Errors
    /// The directory cannot be listed.
    #[allow(clippy::type_complexity)]
    pub fn pending(
        &self,
    ) -> Result<(Vec<(PublicId, Counter)>, Vec<(PublicId, StoreError)>), StoreError> {
        let (mut out, mut unreadable) = (Vec::new(), Vec::new());
        for id in self.store.ids()? {
            match self.store.read(&id) {
                Ok(c) => out.push((id, c)),
                Err(e) => unreadable.push((id, e)),
            }
        }
        Ok((out, unreadable))
    }

    /// Removes `id`'s entry if it still holds `pushed` (a higher value
    /// queued meanwhile stays).
    ///
    /// # Errors
    /// The lock, the removal or the directory `fsync` failed.
    pub fn done(&self, id: &PublicId, pushed: Counter) -> Result<(), StoreError> {
        let _lock = lock_exclusive(&self.store.lock_path_of(id), LOCK_OWNER, LOCK_TIMEOUT)?;
        match self.store.read(id) {
            Ok(c) if c <= pushed => {}
            Ok(_) | Err(StoreError::StateMissing { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        let path = self.store.path_of(id);
        std::fs::remove_file(&path).map_err(|e| io_error(&path, "remove", e))?;
        sync_dir(self.store.dir())
    }
}
