//! On-disk state shared by the module and `ykmap`: the key store (AES keys
//! and private ids, root-only) and the counter state (last accepted
//! counters per public id, updated atomically and durably).
//!
//! Both stores follow the same rules:
//!
//! - every trusted file is read through [`crate::fs_policy`]: its directory
//!   chain is root-owned and not group/other-writable, the file itself is a
//!   regular, root-owned file without group/other bits, with one link, opened
//!   `O_NOFOLLOW | O_NONBLOCK` and read with a size cap;
//! - every change is a locked read-modify-write through [`crate::atomic`]:
//!   an exclusive `flock(2)` on a *stable*, root-owned lock file next to the
//!   data, taken with a bounded wait ([`LOCK_TIMEOUT`]); then a temp file
//!   with an unpredictable name in the same directory (mode 0600), `fsync`,
//!   `rename` over the data file, `fsync` of the directory. A failure
//!   anywhere is an error: nothing is retried and nothing is assumed to
//!   have succeeded;
//! - errors name paths, line numbers and public ids, never file contents.

pub mod counters;
pub mod etcd;
pub mod keydir;
pub mod keystore;
pub mod shared;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use yubiotp_core::PublicId;

pub use crate::atomic::CommitStep;
pub use counters::CounterStore;
pub use keystore::KeyStore;

use crate::fs_policy::{OpenError, Owner};

/// A fault of the key store or the counter state. Messages name paths,
/// line numbers and public ids, never file contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or directory could not be opened safely.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The file parsed badly.
    #[error("{path}: line {line}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when not line-based).
        line: usize,
        /// What is wrong (never the line's text).
        reason: String,
    },
    /// A key in the key store has no counter state.
    #[error("{path}: counter state for {id} is missing; run `ykmap counter reset {id} --otp OTP`")]
    StateMissing {
        /// The expected state file.
        path: PathBuf,
        /// The key.
        id: PublicId,
    },
    /// Another process held the lock too long.
    #[error("{path}: lock not acquired within {secs} s")]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// Seconds waited.
        secs: u64,
    },
    /// A write, sync, rename or lock failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`write`, `fsync`, `rename`, …).
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The key store exists in both layouts with different keys.
    #[error(
        "{file} and {dir} both exist and differ; the module reads only {dir}: move {file} away \
         (or remove {dir} and run `ykmap key migrate` again)",
        file = file.display(),
        dir = dir.display()
    )]
    BothLayouts {
        /// The old single file.
        file: PathBuf,
        /// The key directory.
        dir: PathBuf,
    },
    /// The entry already exists.
    #[error("{0} already exists")]
    Exists(PublicId),
    /// The entry does not exist.
    #[error("{0} is not in the store")]
    Unknown(PublicId),
    /// A counter change that would move backwards.
    #[error("{id}: refusing to lower the counter from {current} to {requested}")]
    WouldLower {
        /// The key.
        id: PublicId,
        /// Stored counter.
        current: yubiotp_core::Counter,
        /// Requested counter.
        requested: yubiotp_core::Counter,
    },
    /// A counter advance whose new value is not strictly newer than the
    /// stored one (equal or lower); nothing was written.
    #[error("{id}: refusing to commit {requested}, which is not newer than the stored {current}")]
    NotNewer {
        /// The key.
        id: PublicId,
        /// Stored counter.
        current: yubiotp_core::Counter,
        /// Counter the caller asked to commit.
        requested: yubiotp_core::Counter,
    },
}

/// Why a store file's text is not valid: a 1-based line number and a
/// reason that never quotes the line (it may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }

    pub(crate) fn at(self, path: &Path) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            line: self.line,
            reason: self.reason,
        }
    }
}

/// Longest wait for a store lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Who may own a store's lock files: root only (a user who could open
/// one could hold the lock forever).
pub(crate) const LOCK_OWNER: Owner = Owner::Root;
