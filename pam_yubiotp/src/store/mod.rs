//! On-disk state shared by the module and `ykmap`: the key store (AES keys
//! and private ids, root-only) and the counter state (last accepted
//! counters per public id, updated atomically and durably).

pub mod counters;
pub mod keystore;

use std::io;
use std::path::PathBuf;

use yubiotp_core::PublicId;

pub use counters::CounterStore;
pub use keystore::KeyStore;

use crate::fs_policy::OpenError;

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
}
