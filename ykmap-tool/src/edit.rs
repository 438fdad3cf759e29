//! Locked, atomic, durable edits of small text files (the mapping files
//! and software key files): an exclusive `flock` on a stable lock file
//! beside the target, then a temporary file in the same directory
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`), `fsync`, `rename` over the target
//! and `fsync` of the directory. Readers see the old file or the new one,
//! never a mix; a crash leaves the old file and at worst a stray temporary
//! file, which the next edit removes while it holds the lock.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::libc;

use crate::error::{CliError, CliResult};

/// How long to wait for another editor's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Owner and mode to give a file the edit creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFile {
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
}

/// The name pieces of a target file: its directory and file name.
fn split(path: &Path) -> CliResult<(PathBuf, String)> {
    let dir = match path.parent() {
        Some(d) if d.as_os_str().is_empty() => Path::new("."),
        Some(d) => d,
        None => {
            return Err(CliError::input(format!(
                "{}: not a file path",
                path.display()
            )));
        }
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            CliError::input(format!("{}: file name must be valid UTF-8", path.display()))
        })?
        .to_string();
    Ok((dir.to_path_buf(), name))
}

/// The lock file used for `path`: `.NAME.lock` in the same directory.
///
/// # Errors
/// When `path` has no file name.
pub fn lock_path(path: &Path) -> CliResult<PathBuf> {
    let (dir, name) = split(path)?;
    Ok(dir.join(format!(".{name}.lock")))
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.ykmap-tmp.")
}

fn fail(path: &Path, what: &str, e: &io::Error) -> CliError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return CliError::failed(format!(
            "{}: is a symlink; refusing to follow it",
            path.display()
        ));
    }
    CliError::failed(format!("{}: {what}: {e}", path.display()))
}

/// A held exclusive lock; released when dropped (the file is closed).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the exclusive lock of `lock` (created 0600 if missing, never
/// through a symlink), waiting up to [`LOCK_WAIT`].
///
/// # Errors
/// When the lock file cannot be opened or the lock is not acquired in time.
pub fn lock_file(lock: &Path) -> CliResult<Lock> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(lock)
        .map_err(|e| fail(lock, "open lock file", &e))?;
    let meta = file.metadata().map_err(|e| fail(lock, "stat", &e))?;
    if !meta.is_file() {
        return Err(CliError::failed(format!(
            "{}: lock file is not a regular file",
            lock.display()
        )));
    }
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if waited < LOCK_WAIT => {
                std::thread::sleep(step);
                waited += step;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CliError::failed(format!(
                    "{}: still locked by another process after {} s",
                    lock.display(),
                    LOCK_WAIT.as_secs()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fail(lock, "lock", &e)),
        }
    }
}

/// Removes temporary files left by interrupted edits of `name` in `dir`.
/// Only safe while holding the lock (no live editor has one then).
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix));
        // remove_file never follows a symlink; directories are left alone.
        if is_temp && entry.file_type().is_ok_and(|t| !t.is_dir()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An existing target file: its bytes and the metadata to keep.
#[derive(Debug)]
pub struct Existing {
    /// The content.
    pub bytes: Vec<u8>,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// Reads `path` without following a symlink, refusing anything but a
/// regular, singly linked file of at most `max` bytes. `Ok(None)` when it
/// does not exist.
///
/// # Errors
/// An untrusted or unreadable file.
pub fn read_existing(path: &Path, max: u64) -> CliResult<Option<Existing>> {
    let before = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(path, "stat", &e)),
    };
    if before.file_type().is_symlink() {
        return Err(CliError::failed(format!(
            "{}: is a symlink; refusing to edit through it",
            path.display()
        )));
    }
    if !before.is_file() {
        return Err(CliError::failed(format!(
            "{}: is not a regular file",
            path.display()
        )));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| fail(path, "open", &e))?;
    let meta = file.metadata().map_err(|e| fail(path, "stat", &e))?;
    if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) || !meta.is_file() {
        return Err(CliError::failed(format!(
            "{}: changed while being opened",
            path.display()
        )));
    }
    if meta.nlink() > 1 {
        return Err(CliError::failed(format!(
            "{}: has {} hard links; refusing to edit it",
            path.display(),
            meta.nlink()
        )));
    }
    if meta.len() > max {
        return Err(CliError::failed(format!(
            "{}: is {} bytes, larger than the {max}-byte limit",
            path.display(),
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| fail(path, "read", &e))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return Err(CliError::failed(format!(
            "{}: grew past the {max}-byte limit while being read",
            path.display()
        )));
    }
    Ok(Some(Existing {
        bytes,
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
    }))
}

/// Writes `bytes` to `path` atomically: temp file in the same directory
/// (never through a symlink), owner and mode set, `fsync`, `rename`,
/// `fsync` of the directory. `keep` gives the owner and mode to keep from
/// an existing file; otherwise the file is created with `new.mode` and the
/// caller's file-system identity as owner. The caller holds the lock.
///
/// # Errors
/// Any I/O failure; the temporary file is removed and the target untouched.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    keep: Option<&Existing>,
    new: NewFile,
) -> CliResult<()> {
    let (dir, name) = split(path)?;
    let pid = std::process::id();
    let mut attempt = 0u32;
    let (tmp_path, mut tmp) = loop {
        let candidate = dir.join(format!("{}{pid}.{attempt}", temp_prefix(&name)));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&candidate)
        {
            Ok(f) => break (candidate, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(fail(&candidate, "create temporary file", &e)),
        }
    };
    let result = (|| -> CliResult<()> {
        tmp.write_all(bytes)
            .map_err(|e| fail(&tmp_path, "write", &e))?;
        if let Some(old) = keep {
            std::os::unix::fs::fchown(&tmp, Some(old.uid), Some(old.gid))
                .map_err(|e| fail(&tmp_path, "chown", &e))?;
        }
        let mode = keep.map_or(new.mode, |o| o.mode);
        tmp.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| fail(&tmp_path, "chmod", &e))?;
        tmp.sync_all().map_err(|e| fail(&tmp_path, "fsync", &e))?;
        test_hook_before_rename();
        std::fs::rename(&tmp_path, path).map_err(|e| fail(path, "rename", &e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
        return result;
    }
    sync_dir(&dir)
}

/// `fsync` of a directory, so a rename in it is durable.
///
/// # Errors
/// When the directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> CliResult<()> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| fail(dir, "open directory", &e))?;
    d.sync_all().map_err(|e| fail(dir, "fsync directory", &e))
}

/// Test builds only: with `YKMAP_TEST_PAUSE_BEFORE_RENAME` set, stop for a
/// minute between the durable temporary file and the rename, so a test can
/// kill the process right there.
fn test_hook_before_rename() {
    #[cfg(debug_assertions)]
    if std::env::var_os("YKMAP_TEST_PAUSE_BEFORE_RENAME").is_some() {
        eprintln!("ykmap: test hook: paused before rename");
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Edits `path` under its lock: `change` gets the current content (`None`
/// when the file does not exist) and returns the new content (`None` to
/// leave the file alone) and a value to hand back.
///
/// # Errors
/// The lock, the read, `change` itself, or the write failed; then the file
/// is unchanged.
pub fn edit_locked<T>(
    path: &Path,
    max: u64,
    new: NewFile,
    change: impl FnOnce(Option<&[u8]>) -> CliResult<(Option<Vec<u8>>, T)>,
) -> CliResult<T> {
    let (dir, name) = split(path)?;
    let _lock = lock_file(&lock_path(path)?)?;
    remove_stale_temps(&dir, &name);
    let existing = read_existing(path, max)?;
    let (bytes, value) = change(existing.as_ref().map(|e| e.bytes.as_slice()))?;
    if let Some(bytes) = bytes {
        write_atomic(path, &bytes, existing.as_ref(), new)?;
    }
    Ok(value)
}
