//! How `ykmap` names and edits the files it writes. The writing itself is
//! the module's one crash-safe primitive, [`pam_yubiotp::atomic`] (lock,
//! temp file, `fsync`, `rename`, directory `fsync`), the same code that
//! commits the key store and the counter state; here are only the names
//! and limits of the tool's own files:
//!
//! - the lock of `NAME` is `.NAME.lock` in the same directory, waited for
//!   at most [`LOCK_WAIT`];
//! - its temp files are `.NAME.ykmap-tmp.<32 random hex>`; a crash leaves
//!   the old file and at worst one of them, which the next edit removes
//!   while it holds the lock;
//! - [`hook`], the crash hook passed to every write: in debug builds, with
//!   `YKMAP_TEST_PAUSE_BEFORE_RENAME` set, it stops for a minute between
//!   the durable temp file and the rename, so a test can kill the process
//!   right there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pam_yubiotp::atomic::{self, CommitStep, EditTarget, Perms};
use pam_yubiotp::fs_policy::Owner;

use crate::error::{CliError, CliResult};

/// How long to wait for another editor's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The file name of `path`, or an input error.
fn name(path: &Path) -> CliResult<&str> {
    atomic::file_name(path).map_err(|_| {
        CliError::input(format!(
            "{}: not a file path with a UTF-8 name",
            path.display()
        ))
    })
}

/// The lock file used for `path`: `.NAME.lock` in the same directory.
///
/// # Errors
/// When `path` has no UTF-8 file name.
pub fn lock_path(path: &Path) -> CliResult<PathBuf> {
    Ok(atomic::parent_dir(path).join(format!(".{}.lock", name(path)?)))
}

/// The name prefix of `path`'s temp files.
///
/// # Errors
/// When `path` has no UTF-8 file name.
pub fn temp_prefix(path: &Path) -> CliResult<String> {
    Ok(format!(".{}.ykmap-tmp.", name(path)?))
}

/// The crash hook of every `ykmap` write (see the module documentation).
pub fn hook(step: CommitStep) {
    #[cfg(debug_assertions)]
    if step == CommitStep::TempSynced
        && std::env::var_os("YKMAP_TEST_PAUSE_BEFORE_RENAME").is_some()
    {
        eprintln!("ykmap: test hook: paused before rename");
        std::thread::sleep(Duration::from_secs(60));
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// Edits `path` under its lock (held by a file `lock_owner` may own):
/// `change` gets the current content (`None` when the file does not
/// exist) and returns the new content (`None` to leave the file alone) and
/// a value to hand back. An existing file keeps its owner and mode; a new
/// one gets `new_mode` and the caller's file-system identity.
///
/// # Errors
/// The lock, the read, `change` itself, or the write failed; then the file
/// is unchanged.
pub fn edit_locked<T>(
    path: &Path,
    max: u64,
    new_mode: u32,
    lock_owner: Owner,
    change: impl FnOnce(Option<&[u8]>) -> CliResult<(Option<Vec<u8>>, T)>,
) -> CliResult<T> {
    let target = EditTarget {
        path: path.to_path_buf(),
        lock: lock_path(path)?,
        lock_owner,
        lock_timeout: LOCK_WAIT,
        temp_prefix: temp_prefix(path)?,
        max_size: max,
        new_perms: Perms {
            mode: new_mode,
            owner: None,
        },
    };
    atomic::edit_locked(&target, &hook, change)
}
