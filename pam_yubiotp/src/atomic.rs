//! The one crash-safe write-and-lock primitive, shared by the key store,
//! the counter state and every `ykmap` edit (mapping files, software key
//! files).
//!
//! - A change is a locked read-modify-write: an exclusive `flock(2)` on a
//!   *stable* lock file next to the data (never on the data file, which the
//!   `rename` replaces), opened `O_NOFOLLOW | O_NONBLOCK`, checked against a
//!   [`FilePolicy`] (owner as given, private, regular, one link) and taken
//!   with a bounded wait ([`lock_exclusive`]).
//! - Under the lock, temp files left by a writer that crashed are removed
//!   ([`remove_stale_temps`]): exactly `<prefix><32 lower-case hex>`, never
//!   anything else.
//! - The new content goes to a temp file with an unpredictable name in the
//!   same directory (`O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`), gets its
//!   owner and mode, is written, `fsync`ed, `rename`d over the target, and
//!   the directory is `fsync`ed ([`replace_durably`]). Before writing, the
//!   caller's `RLIMIT_FSIZE` is checked: a write the limit would cut short
//!   (and answer with `SIGXFSZ`, which kills the process, e.g. a PAM host
//!   run by a user who lowered the limit) is refused as an error instead.
//! - A failure anywhere is an error: nothing is retried and nothing is
//!   assumed to have succeeded. Readers never lock: they see the old file
//!   or the new one.
//! - One crash hook: every step of a write is reported to a
//!   `&dyn Fn(CommitStep)` ([`CommitStep`]); production passes [`no_hook`],
//!   crash tests stop or kill the process at the step they want.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::fs_policy::{self, FilePolicy, OpenError, Owner, Violation, check_file};
use crate::store::StoreError;

/// The points of a durable write, in order. Tests pass a hook to stop the
/// process at one of them; production code passes [`no_hook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitStep {
    /// The lock is held.
    Locked,
    /// The current content was read (and the decision is about to run).
    Read,
    /// Half of the new content is in the temp file.
    TempPartial,
    /// All of it is in the temp file, not yet `fsync`ed.
    TempWritten,
    /// The temp file is `fsync`ed, not yet renamed.
    TempSynced,
    /// The temp file replaced the target; the directory is not yet
    /// `fsync`ed.
    Renamed,
    /// The directory is `fsync`ed: the write is durable.
    DirSynced,
}

impl CommitStep {
    /// Every step, in order.
    pub const ALL: [Self; 7] = [
        Self::Locked,
        Self::Read,
        Self::TempPartial,
        Self::TempWritten,
        Self::TempSynced,
        Self::Renamed,
        Self::DirSynced,
    ];
}

/// The crash hook that does nothing.
pub fn no_hook(_: CommitStep) {}

/// Longest single pause between two lock attempts.
const LOCK_MAX_PAUSE: Duration = Duration::from_millis(20);

/// Random characters in a temp file name (hex of 16 random bytes).
const TEMP_RANDOM_CHARS: usize = 32;

/// Largest lock file accepted (empty, or the note of one temp name).
const LOCK_MAX_SIZE: u64 = 4096;

/// Owner and mode the new file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms {
    /// Permission bits, e.g. `0o600`.
    pub mode: u32,
    /// `(uid, gid)` to `fchown` it to; `None` keeps the writer's
    /// file-system identity.
    pub owner: Option<(u32, u32)>,
}

impl Perms {
    /// Mode 0600, owned by the writer (key store, counter state).
    pub const PRIVATE: Self = Self {
        mode: 0o600,
        owner: None,
    };
}

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

fn untrusted(path: &Path, v: Violation) -> StoreError {
    StoreError::Open(OpenError::Untrusted(path.to_path_buf(), v))
}

/// The directory a file lives in (`.` for a bare file name).
#[must_use]
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The file name of `path` as UTF-8 (lock and temp names are built from it).
///
/// # Errors
/// No file name, or not UTF-8.
pub fn file_name(path: &Path) -> Result<&str, StoreError> {
    path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io_error(
            path,
            "name the file",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the file name must be valid UTF-8",
            ),
        )
    })
}

/// A held exclusive lock; released when dropped (the file is closed), on
/// every path.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Opens (creating it 0600 if needed) the lock file `path` without
/// following a symlink or blocking on a FIFO, checks it (before and after
/// the open: regular, one link, owned as `owner` allows, no group/other
/// bits), and takes an exclusive `flock` on it, polling for at most
/// `timeout`.
///
/// # Errors
/// The lock file is untrusted or cannot be opened, the lock failed
/// ([`StoreError::Io`]) or was not acquired in time
/// ([`StoreError::LockTimeout`]).
pub fn lock_exclusive(path: &Path, owner: Owner, timeout: Duration) -> Result<Lock, StoreError> {
    let policy = FilePolicy {
        owner,
        forbidden_mode: 0o077,
        max_size: LOCK_MAX_SIZE,
    };
    // Look first, so a device or FIFO planted at the name is never opened.
    match std::fs::symlink_metadata(path) {
        Ok(meta) => check_file(&meta, &policy).map_err(|v| untrusted(path, v))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(open_error(path, e)),
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| open_error(path, e))?;
    check_file(&meta, &policy).map_err(|v| untrusted(path, v))?;

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
            Ok(()) => return Ok(Lock { _file: file }),
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

/// The random part of a temp name, from the OS random generator.
fn random_bytes(dir: &Path) -> Result<[u8; TEMP_RANDOM_CHARS / 2], StoreError> {
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
    Ok(bytes)
}

/// 32 random lower-case hex characters, for a temp name.
///
/// # Errors
/// No OS randomness.
pub(crate) fn random_hex(dir: &Path) -> Result<String, StoreError> {
    Ok(yubiotp_core::hex::encode(&random_bytes(dir)?))
}

/// True when `name` is `prefix` followed by exactly the random part of a
/// temp name (32 lower-case hex characters).
#[must_use]
pub fn is_temp_name(name: &str, prefix: &str) -> bool {
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
///
/// # Errors
/// The directory cannot be listed.
pub fn remove_stale_temps(dir: &Path, prefix: &str) -> Result<(), StoreError> {
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
///
/// # Errors
/// The directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| io_error(dir, "open directory for fsync", e))?;
    d.sync_all()
        .map_err(|e| io_error(dir, "fsync directory", e))
}

/// Refuses to write `len` bytes to a new file when the caller's
/// `RLIMIT_FSIZE` soft limit is lower: the kernel would cut the write
/// short and send `SIGXFSZ`, whose default action kills the process (a
/// PAM host such as `su`, with no result). Checking first keeps signal
/// dispositions untouched and turns the limit into an ordinary error.
fn check_fsize(path: &Path, len: usize) -> Result<(), StoreError> {
    within_fsize(path, fsize_limit(path)?, len)
}

/// The caller's `RLIMIT_FSIZE` soft limit.
fn fsize_limit(path: &Path) -> Result<u64, StoreError> {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_FSIZE)
        .map(|(soft, _)| soft)
        .map_err(|e| {
            io_error(
                path,
                "read RLIMIT_FSIZE",
                io::Error::from_raw_os_error(e as i32),
            )
        })
}

/// Refuses a write of `len` bytes over the soft limit `soft` (it would end
/// in SIGXFSZ, not an error).
fn within_fsize(path: &Path, soft: u64, len: usize) -> Result<(), StoreError> {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    if soft != nix::libc::RLIM_INFINITY && len > soft {
        return Err(io_error(
            path,
            "write",
            io::Error::other(format!(
                "the caller's file size limit (RLIMIT_FSIZE, {soft} bytes) is below the \
                 {len} bytes to write"
            )),
        ));
    }
    Ok(())
}

/// True when a file may grow to `end` bytes under the caller's
/// `RLIMIT_FSIZE` soft limit (false also when the limit can't be read), for
/// writes that do not go through this module (appending to `debug_file`).
#[must_use]
pub fn fsize_allows(end: u64) -> bool {
    use nix::sys::resource::{Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_FSIZE) {
        Ok((soft, _)) => soft == nix::libc::RLIM_INFINITY || end <= soft,
        Err(_) => false,
    }
}

/// Durably replaces `target` (in `dir`) with `contents`: a new temp file
/// `dir/<prefix><random>` (`O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`,
/// mode 0600), `fchown`/`chmod` to `perms`, the `RLIMIT_FSIZE` check,
/// write, `fsync`, `rename`, `fsync(dir)`. `hook` is told each step as it
/// completes. The temp file is removed on any failure before the rename.
/// Returns only after the directory `fsync` succeeded. The caller holds
/// the target's lock.
///
/// # Errors
/// Any failure, as [`StoreError::Io`]; before the rename the target is
/// untouched.
pub fn replace_durably(
    dir: &Path,
    target: &Path,
    prefix: &str,
    contents: &[u8],
    perms: Perms,
    hook: &dyn Fn(CommitStep),
) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{prefix}{}", random_hex(dir)?));
    replace_via(dir, target, &tmp, contents, perms, hook)
}

/// Longest temp name a lock file notes.
const NOTE_MAX: usize = 255;

impl Lock {
    /// Removes the temp file (in `dir`, named `prefix` + random part) that
    /// the last writer under this lock noted in the lock file
    /// ([`replace_durably_noted`]) and did not rename, because it crashed.
    /// One `pread` and one `unlink`: no directory listing, whatever the
    /// number of files in `dir`. A note that is not such a name is ignored.
    ///
    /// # Errors
    /// The lock file cannot be read.
    pub fn remove_noted_temp(&self, dir: &Path, prefix: &str) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; NOTE_MAX];
        let n = self
            ._file
            .read_at(&mut buf, 0)
            .map_err(|e| io_error(dir, "read the lock file", e))?;
        let note = buf.get(..n).and_then(|b| std::str::from_utf8(b).ok());
        if let Some(name) = note.filter(|name| is_temp_name(name, prefix)) {
            // A leftover that cannot be removed is harmless: never read.
            let _ = std::fs::remove_file(dir.join(name));
        }
        Ok(())
    }

    fn note_temp(&self, name: &str) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let fail = |e| io_error(Path::new(name), "note the temp file in the lock file", e);
        // A write past RLIMIT_FSIZE would raise SIGXFSZ and kill the host.
        check_fsize(Path::new(name), name.len())?;
        self._file.set_len(0).map_err(fail)?;
        self._file.write_all_at(name.as_bytes(), 0).map_err(fail)
    }
}

/// [`replace_durably`] for a writer holding `lock`, the target's lock: the
/// random temp name is first noted in the lock file, so the next writer
/// removes a crashed writer's leftover with [`Lock::remove_noted_temp`]
/// instead of listing the directory (in a state directory of 100,000 keys
/// the listing costs more than the rest of a login).
///
/// # Errors
/// As [`replace_durably`]; the note could not be written.
pub fn replace_durably_noted(
    dir: &Path,
    target: &Path,
    prefix: &str,
    contents: &[u8],
    perms: Perms,
    hook: &dyn Fn(CommitStep),
    lock: &Lock,
) -> Result<(), StoreError> {
    let name = format!("{prefix}{}", random_hex(dir)?);
    lock.note_temp(&name)?;
    replace_via(dir, target, &dir.join(&name), contents, perms, hook)
}

/// Creates the temp file `tmp` (`O_CREAT | O_EXCL | O_NOFOLLOW |
/// O_CLOEXEC`), gives it `perms`, checks `RLIMIT_FSIZE`, writes `contents`
/// (telling `hook` [`CommitStep::TempPartial`] and
/// [`CommitStep::TempWritten`]) and, with `sync`, `fsync`s it
/// ([`CommitStep::TempSynced`]). Removes it on any failure.
fn write_temp(
    tmp: &Path,
    perms: Perms,
    contents: &[u8],
    sync: bool,
    hook: &dyn Fn(CommitStep),
) -> Result<(), StoreError> {
    create_filled(tmp, 0o600, perms.owner, |file| {
        // Exactly the mode asked for, whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(perms.mode))
            .map_err(|e| io_error(tmp, "chmod temp file", e))?;
        check_fsize(tmp, contents.len())?;
        let (first, rest) = contents.split_at(contents.len() / 2);
        file.write_all(first)
            .map_err(|e| io_error(tmp, "write", e))?;
        hook(CommitStep::TempPartial);
        file.write_all(rest)
            .map_err(|e| io_error(tmp, "write", e))?;
        hook(CommitStep::TempWritten);
        if sync {
            file.sync_all().map_err(|e| io_error(tmp, "fsync", e))?;
            hook(CommitStep::TempSynced);
        }
        Ok(())
    })
}

/// Creates the new file `path` (`O_CREAT | O_EXCL | O_NOFOLLOW |
/// O_CLOEXEC | O_NOCTTY`, `mode` before the umask), gives it `owner`, and
/// lets `fill` write it; the file is removed when any step fails.
fn create_filled(
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    fill: impl FnOnce(&mut File) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, "create temp file", e))?;
    let written = owner
        .map_or(Ok(()), |(uid, gid)| {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .map_err(|e| io_error(path, "chown temp file", e))
        })
        .and_then(|()| fill(&mut file));
    drop(file);
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

fn replace_via(
    dir: &Path,
    target: &Path,
    tmp: &Path,
    contents: &[u8],
    perms: Perms,
    hook: &dyn Fn(CommitStep),
) -> Result<(), StoreError> {
    write_temp(tmp, perms, contents, true, hook)?;
    if let Err(e) = std::fs::rename(tmp, target) {
        let _ = std::fs::remove_file(tmp);
        return Err(io_error(target, "rename", e));
    }
    hook(CommitStep::Renamed);
    sync_dir(dir)?;
    hook(CommitStep::DirSynced);
    Ok(())
}

/// How [`Batch::commit`] renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rename {
    /// Over whatever is at the target (`rename(2)`).
    Replace,
    /// Only where nothing is at the target yet (`renameat2(2)` with
    /// `RENAME_NOREPLACE`, atomic: no lock needed against another
    /// creator); a target that exists is left alone and its temp removed.
    NoReplace,
}

/// Many files of one directory replaced together, with two syncs in all
/// instead of two per file: every temp file is written first
/// ([`Batch::add`]: `O_CREAT | O_EXCL | O_NOFOLLOW`, mode as given, the
/// `RLIMIT_FSIZE` check), then [`Batch::commit`] makes all their data
/// durable with one `syncfs(2)` on the directory's file system, renames
/// each over its target, unlinks the removals, and `fsync`s the directory
/// once. `syncfs` stands in for one `fsync` per file (2 ms each on a
/// plain disk: 200 s for 100,000 keys); like `fsync` it returns the
/// file system's write-back errors (Linux ≥ 5.8), so a rename never
/// lands before its data. Each file is whole, old or new, at every point;
/// a failure during the renames leaves the earlier ones done (each is
/// whole), and is an error. Temp files not renamed are removed, on every
/// path (including a drop without commit).
///
/// Per file it costs an `open`, one `write`, a `close` and the rename: the
/// random part of the temp names is drawn once per batch (a counter makes
/// each name unique), `RLIMIT_FSIZE` is read once, and the mode is set
/// with `fchmod` only when the first file shows that `open` alone does
/// not give exactly the mode asked for (a umask that takes owner bits).
#[derive(Debug)]
pub struct Batch {
    dir: PathBuf,
    perms: Perms,
    temps: Vec<(PathBuf, PathBuf)>,
    /// Files are written under their own names, not renamed: `dir` is a
    /// new directory nobody reads until the caller renames it into place.
    direct: bool,
    /// The batch's random temp-name part, drawn on the first `add`.
    random: Option<[u8; TEMP_RANDOM_CHARS / 2]>,
    next: u64,
    /// The `RLIMIT_FSIZE` soft limit, read on the first `add`.
    fsize: Option<u64>,
    /// Whether `fchmod` is needed (decided on the first file).
    chmod: Option<bool>,
}

impl Batch {
    /// An empty batch for files in `dir`, created with `perms`.
    #[must_use]
    pub fn new(dir: &Path, perms: Perms) -> Self {
        Self {
            dir: dir.to_path_buf(),
            perms,
            temps: Vec::new(),
            direct: false,
            random: None,
            next: 0,
            fsize: None,
            chmod: None,
        }
    }

    /// A batch that fills `dir`, a new private directory no reader looks
    /// at yet: each file is created under its own name (`O_EXCL`, so
    /// twice the same name is an error), and [`commit`](Self::commit)
    /// only makes them durable (`syncfs`, then the directory's `fsync`).
    /// The caller renames the directory into place afterwards; on a drop
    /// without commit the files are removed.
    #[must_use]
    pub fn filling_new_dir(dir: &Path, perms: Perms) -> Self {
        let mut b = Self::new(dir, perms);
        b.direct = true;
        b
    }

    /// The next temp name of the batch: `prefix` and 32 hex characters,
    /// the batch's random bytes plus a counter.
    fn temp_name(&mut self, prefix: &str) -> Result<String, StoreError> {
        let random = match self.random {
            Some(r) => r,
            None => *self.random.insert(random_bytes(&self.dir)?),
        };
        let n = u128::from_be_bytes(random).wrapping_add(u128::from(self.next));
        self.next += 1;
        Ok(format!(
            "{prefix}{}",
            yubiotp_core::hex::encode(&n.to_be_bytes())
        ))
    }

    /// Creates `path` with `contents` (not synced), as the batch's rules
    /// say (see the type's doc).
    fn write_file(&mut self, path: &Path, contents: &[u8]) -> Result<(), StoreError> {
        let limit = match self.fsize {
            Some(l) => l,
            None => *self.fsize.insert(fsize_limit(path)?),
        };
        within_fsize(path, limit, contents.len())?;
        let perms = self.perms;
        let chmod_known = &mut self.chmod;
        create_filled(path, perms.mode & 0o777, perms.owner, |file| {
            let chmod = match *chmod_known {
                Some(c) => c,
                None => {
                    let got = file
                        .metadata()
                        .map_err(|e| io_error(path, "stat temp file", e))?
                        .mode()
                        & 0o7777;
                    // A chown clears set-id bits: then always chmod.
                    *chmod_known.insert(got != perms.mode || perms.owner.is_some())
                }
            };
            if chmod {
                file.set_permissions(std::fs::Permissions::from_mode(perms.mode))
                    .map_err(|e| io_error(path, "chmod temp file", e))?;
            }
            file.write_all(contents)
                .map_err(|e| io_error(path, "write", e))
        })
    }

    /// True when nothing was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.temps.is_empty()
    }

    /// Writes `contents` to a new temp file `dir/<prefix><random>` that
    /// [`commit`](Self::commit) renames over `target` (in the same
    /// directory). Not synced yet.
    ///
    /// # Errors
    /// The temp file cannot be created or written (it is removed then).
    pub fn add(&mut self, target: &Path, prefix: &str, contents: &[u8]) -> Result<(), StoreError> {
        if self.direct {
            self.write_file(target, contents)?;
            self.temps
                .push((target.to_path_buf(), target.to_path_buf()));
            return Ok(());
        }
        let name = self.temp_name(prefix)?;
        let tmp = self.dir.join(name);
        self.write_file(&tmp, contents)?;
        self.temps.push((tmp, target.to_path_buf()));
        Ok(())
    }

    /// `syncfs`, then renames every file over its target (as `mode`
    /// says), then unlinks `removals` (absent ones are fine), then
    /// `fsync`s the directory once. `hook` is told
    /// [`CommitStep::TempSynced`], [`CommitStep::Renamed`] (after the last
    /// rename) and [`CommitStep::DirSynced`]. Returns, in the order of
    /// [`add`](Self::add), whether each file was renamed into place.
    ///
    /// # Errors
    /// The sync, a rename, an unlink or the directory `fsync` failed.
    pub fn commit(
        mut self,
        removals: &[PathBuf],
        mode: Rename,
        hook: &dyn Fn(CommitStep),
    ) -> Result<Vec<bool>, StoreError> {
        if !self.temps.is_empty() {
            let d = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&self.dir)
                .map_err(|e| io_error(&self.dir, "open directory for syncfs", e))?;
            nix::unistd::syncfs(&d).map_err(|e| {
                io_error(&self.dir, "syncfs", io::Error::from_raw_os_error(e as i32))
            })?;
        }
        hook(CommitStep::TempSynced);
        let temps = std::mem::take(&mut self.temps);
        if self.direct {
            // Already under their names, in a directory no one reads yet.
            hook(CommitStep::Renamed);
            sync_dir(&self.dir)?;
            hook(CommitStep::DirSynced);
            return Ok(vec![true; temps.len()]);
        }
        let mut renamed = Vec::with_capacity(temps.len());
        let mut rest = temps.into_iter();
        let outcome = (|| {
            for (tmp, target) in rest.by_ref() {
                let r = match mode {
                    Rename::Replace => std::fs::rename(&tmp, &target),
                    Rename::NoReplace => nix::fcntl::renameat2(
                        nix::fcntl::AT_FDCWD,
                        &tmp,
                        nix::fcntl::AT_FDCWD,
                        &target,
                        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
                    )
                    .map_err(|e| io::Error::from_raw_os_error(e as i32)),
                };
                match r {
                    Ok(()) => renamed.push(true),
                    Err(e)
                        if mode == Rename::NoReplace
                            && e.kind() == io::ErrorKind::AlreadyExists =>
                    {
                        let _ = std::fs::remove_file(&tmp);
                        renamed.push(false);
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(io_error(&target, "rename", e));
                    }
                }
            }
            Ok(())
        })();
        for (tmp, _) in rest {
            let _ = std::fs::remove_file(&tmp);
        }
        outcome?;
        hook(CommitStep::Renamed);
        for path in removals {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(path, "remove", e)),
            }
        }
        sync_dir(&self.dir)?;
        hook(CommitStep::DirSynced);
        Ok(renamed)
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for (tmp, _) in &self.temps {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// An existing file about to be edited: its bytes and the owner and mode
/// the new version keeps.
pub struct Existing {
    /// The content (wiped on drop).
    pub bytes: Zeroizing<Vec<u8>>,
    /// Owner and mode.
    pub perms: Perms,
}

impl core::fmt::Debug for Existing {
    // The bytes may be a config file with secrets: only their length.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Existing")
            .field("len", &self.bytes.len())
            .field("perms", &self.perms)
            .finish()
    }
}

/// Reads a file to edit, whoever owns it: never through a symlink, never a
/// FIFO or device, one link, at most `max` bytes, the same inode as the
/// path named. `Ok(None)` when it does not exist.
///
/// # Errors
/// [`StoreError::Open`] for an untrusted or unreadable file.
pub fn read_for_edit(path: &Path, max: u64) -> Result<Option<Existing>, StoreError> {
    let before = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path, e)),
    };
    // Any owner and mode: the edit keeps them (the module judges them).
    let policy = FilePolicy {
        owner: Owner::RootOr(before.uid()),
        forbidden_mode: 0,
        max_size: max,
    };
    let (file, meta) = match fs_policy::open_checked(path, &policy) {
        Ok(f) => f,
        Err(OpenError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, "read", e))?;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > max {
        return Err(untrusted(path, Violation::TooLarge { size, max }));
    }
    Ok(Some(Existing {
        bytes,
        perms: Perms {
            mode: meta.mode() & 0o7777,
            owner: Some((meta.uid(), meta.gid())),
        },
    }))
}

/// A file edited with [`edit_locked`].
#[derive(Debug, Clone)]
pub struct EditTarget {
    /// The file.
    pub path: PathBuf,
    /// Its stable lock file.
    pub lock: PathBuf,
    /// Who may own the lock file.
    pub lock_owner: Owner,
    /// Longest wait for the lock.
    pub lock_timeout: Duration,
    /// Name prefix of its temp files (in the same directory).
    pub temp_prefix: String,
    /// Largest content read.
    pub max_size: u64,
    /// Owner and mode of a file the edit creates (an existing file keeps
    /// its own).
    pub new_perms: Perms,
}

/// Edits `target.path` under its lock: removes stale temps, reads the
/// current content ([`read_for_edit`]; `None` when absent), lets `change`
/// compute the new content (`None` leaves the file alone) and a value to
/// return, and writes it with [`replace_durably`], telling `hook` each
/// step.
///
/// # Errors
/// The lock, the read, `change` itself, or the write failed; then the
/// file is unchanged.
pub fn edit_locked<T, E: From<StoreError>>(
    target: &EditTarget,
    hook: &dyn Fn(CommitStep),
    change: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), E>,
) -> Result<T, E> {
    let dir = parent_dir(&target.path);
    let _lock = lock_exclusive(&target.lock, target.lock_owner, target.lock_timeout)?;
    hook(CommitStep::Locked);
    remove_stale_temps(dir, &target.temp_prefix)?;
    let existing = read_for_edit(&target.path, target.max_size)?;
    hook(CommitStep::Read);
    let (bytes, value) = change(existing.as_ref().map(|e| e.bytes.as_slice()))?;
    if let Some(bytes) = bytes {
        let perms = existing.as_ref().map_or(target.new_perms, |e| e.perms);
        replace_durably(dir, &target.path, &target.temp_prefix, &bytes, perms, hook)?;
    }
    Ok(value)
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
        let a = random_hex(d).unwrap();
        let b = random_hex(d).unwrap();
        assert_eq!(a.len(), TEMP_RANDOM_CHARS);
        assert_ne!(a, b);
    }

    #[test]
    fn a_batch_draws_distinct_temp_names_its_cleanup_recognises() {
        let mut batch = Batch::new(Path::new("."), Perms::PRIVATE);
        let names: Vec<String> = (0..1000)
            .map(|_| batch.temp_name("k.tmp-").unwrap())
            .collect();
        assert!(
            names.iter().all(|n| is_temp_name(n, "k.tmp-")),
            "{:?}",
            names.first()
        );
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        // Another batch starts elsewhere.
        let mut other = Batch::new(Path::new("."), Perms::PRIVATE);
        assert!(!names.contains(&other.temp_name("k.tmp-").unwrap()));
    }

    #[test]
    fn filling_a_new_dir_writes_final_names_and_a_drop_removes_them() {
        let d = yubiotp_testsupport::tempdir();
        let dir = d.path().join("new");
        std::fs::create_dir(&dir).unwrap();
        let mut batch = Batch::filling_new_dir(&dir, Perms::PRIVATE);
        batch.add(&dir.join("a"), "a.tmp-", b"one").unwrap();
        assert!(
            batch.add(&dir.join("a"), "a.tmp-", b"two").is_err(),
            "O_EXCL"
        );
        batch.add(&dir.join("b"), "b.tmp-", b"two").unwrap();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"one");
        assert_eq!(
            std::fs::metadata(dir.join("b")).unwrap().mode() & 0o7777,
            0o600
        );
        drop(batch);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let mut batch = Batch::filling_new_dir(&dir, Perms::PRIVATE);
        batch.add(&dir.join("c"), "c.tmp-", b"three").unwrap();
        assert_eq!(
            batch.commit(&[], Rename::Replace, &no_hook).unwrap(),
            vec![true]
        );
        assert_eq!(std::fs::read(dir.join("c")).unwrap(), b"three");
    }
}
