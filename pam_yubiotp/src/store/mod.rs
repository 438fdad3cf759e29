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
//! - every change is a locked read-modify-write: an exclusive `flock(2)` on a
//!   *stable* lock file next to the data (never on the data file, which the
//!   `rename` replaces), taken with a bounded wait; then a temp file with an
//!   unpredictable name in the same directory (`O_CREAT | O_EXCL |
//!   O_NOFOLLOW | O_CLOEXEC`, mode 0600), `fsync`, `rename` over the data
//!   file, `fsync` of the directory. A failure anywhere is an error: nothing
//!   is retried and nothing is assumed to have succeeded;
//! - errors name paths, line numbers and public ids, never file contents.

pub mod counters;
pub mod keystore;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use yubiotp_core::PublicId;

pub use counters::{CommitStep, CounterStore};
pub use keystore::KeyStore;

use crate::fs_policy::{FilePolicy, OpenError, Owner, Violation, check_file};

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

/// Longest single pause between two lock attempts.
const LOCK_MAX_PAUSE: Duration = Duration::from_millis(20);

/// What a lock file must look like: root-owned, private (a user who can
/// open it could hold the lock forever), regular, one link.
const LOCK_POLICY: FilePolicy = FilePolicy {
    owner: Owner::Root,
    forbidden_mode: 0o077,
    max_size: 4096,
};

/// Random characters in a temp file name (hex of 16 random bytes).
const TEMP_RANDOM_CHARS: usize = 32;

/// Maps an `open(2)` error the way `fs_policy` does, so "absent",
/// "no permission" and "symlink" stay distinguishable.
pub(crate) fn open_error(path: &Path, e: io::Error) -> StoreError {
    let path = path.to_path_buf();
    StoreError::Open(match e.kind() {
        io::ErrorKind::NotFound => OpenError::NotFound(path),
        io::ErrorKind::PermissionDenied => OpenError::PermissionDenied(path),
        _ if e.raw_os_error() == Some(libc::ELOOP) => {
            OpenError::Untrusted(path, Violation::Symlink)
        }
        _ => OpenError::Io(path, e),
    })
}

pub(crate) fn io_error(path: &Path, op: &'static str, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The directory a file lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Opens (creating it 0600 if needed) the lock file `path` without
/// following a symlink or blocking on a FIFO, checks the descriptor, and
/// takes an exclusive `flock` on it, polling for at most `timeout`. The lock
/// is released when the returned file is dropped, on every path.
pub(crate) fn lock_exclusive(path: &Path, timeout: Duration) -> Result<File, StoreError> {
    // Look first, so a device or FIFO planted at the name is never opened.
    match std::fs::symlink_metadata(path) {
        Ok(meta) => check_file(&meta, &LOCK_POLICY)
            .map_err(|v| StoreError::Open(OpenError::Untrusted(path.to_path_buf(), v)))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(open_error(path, e)),
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| open_error(path, e))?;
    check_file(&meta, &LOCK_POLICY)
        .map_err(|v| StoreError::Open(OpenError::Untrusted(path.to_path_buf(), v)))?;

    let start = Instant::now();
    let deadline = start.checked_add(timeout).unwrap_or(start);
    let mut pause = Duration::from_millis(1);
    // Every pause but the last is at least 1 ms, so this bounds the loop
    // even if the clock misbehaves.
    let max_attempts = usize::try_from(timeout.as_millis())
        .unwrap_or(usize::MAX)
        .saturating_add(3);
    for _ in 0..max_attempts {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io_error(path, "lock", e)),
        }
        let now = Instant::now();
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        std::thread::sleep(pause.min(left));
        pause = pause.saturating_mul(2).min(LOCK_MAX_PAUSE);
    }
    Err(StoreError::LockTimeout {
        path: path.to_path_buf(),
        secs: timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0),
    })
}

/// 32 lower-case hex characters from the OS random generator.
fn random_suffix(dir: &Path) -> Result<String, StoreError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; TEMP_RANDOM_CHARS / 2];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| {
            io_error(
                dir,
                "random temp name",
                io::Error::other("no OS randomness"),
            )
        })?;
    Ok(yubiotp_core::hex::encode(&bytes))
}

/// True when `name` is `prefix` followed by exactly the random part of a
/// temp name (32 lower-case hex characters).
pub(crate) fn is_temp_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == TEMP_RANDOM_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Removes leftover temp files named `prefix` + random part in `dir`
/// (from a writer that crashed before its `rename`). They are never read.
/// Call only while holding the lock that guards their target.
pub(crate) fn remove_stale_temps(dir: &Path, prefix: &str) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "list", e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| is_temp_name(n, prefix)) {
            // unlink(2) removes a symlink itself, never its target. A
            // leftover that cannot be removed is harmless: it is never read.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// `fsync` of a directory, so a `rename` or `unlink` in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| io_error(dir, "open directory for fsync", e))?;
    d.sync_all()
        .map_err(|e| io_error(dir, "fsync directory", e))
}

/// Durably replaces `target` (in `dir`) with `contents`: a new temp file
/// `dir/<prefix><random>` (`O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`,
/// mode 0600), write, `fsync`, `rename`, `fsync(dir)`. `hook` is told each
/// step as it completes (tests use it to crash at a chosen point). The temp
/// file is removed on any failure before the rename. Returns only after the
/// directory `fsync` succeeded.
pub(crate) fn replace_durably(
    dir: &Path,
    target: &Path,
    prefix: &str,
    contents: &[u8],
    hook: &dyn Fn(CommitStep),
) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{prefix}{}", random_suffix(dir)?));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, "create temp file", e))?;
    let written = (|| {
        // Exactly 0600 whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(&tmp, "chmod temp file", e))?;
        let (first, rest) = contents.split_at(contents.len() / 2);
        file.write_all(first)
            .map_err(|e| io_error(&tmp, "write", e))?;
        hook(CommitStep::TempPartial);
        file.write_all(rest)
            .map_err(|e| io_error(&tmp, "write", e))?;
        hook(CommitStep::TempWritten);
        file.sync_all().map_err(|e| io_error(&tmp, "fsync", e))?;
        hook(CommitStep::TempSynced);
        std::fs::rename(&tmp, target).map_err(|e| io_error(target, "rename", e))
    })();
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    hook(CommitStep::Renamed);
    sync_dir(dir)?;
    hook(CommitStep::DirSynced);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        let r = "0123456789abcdef0123456789abcdef";
        assert!(is_temp_name(&format!("x.tmp-{r}"), "x.tmp-"));
        assert!(!is_temp_name(&format!("x.tmp-{r}0"), "x.tmp-"));
        assert!(!is_temp_name("x.tmp-0123", "x.tmp-"));
        assert!(!is_temp_name(
            &format!("x.tmp-{}", r.to_uppercase()),
            "x.tmp-"
        ));
        assert!(!is_temp_name(&format!("y.tmp-{r}"), "x.tmp-"));
    }

    #[test]
    fn suffixes_differ() {
        let d = Path::new(".");
        let a = random_suffix(d).unwrap();
        let b = random_suffix(d).unwrap();
        assert_eq!(a.len(), TEMP_RANDOM_CHARS);
        assert_ne!(a, b);
    }
}
