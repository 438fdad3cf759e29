//! Counter state: per public id, the last accepted (use, session) pair.
//!
//! A directory (default `/var/lib/yubiotp`), root-owned and not
//! group/other-writable, whose ancestors are trusted the same way. For the
//! public id `<m>` (lower-case modhex, empty for `token_id_length=0`) it
//! holds:
//!
//! | file | what |
//! | --- | --- |
//! | `id-<m>.state` | the state: root-owned, mode 0600, one link |
//! | `id-<m>.lock` | the stable lock file (0600, never replaced or removed) |
//! | `id-<m>.state.tmp-<32 random hex>` | a write in progress; never read (its name is noted in the lock file first, so the next login removes a crashed writer's leftover with one `unlink`, never a directory listing) |
//!
//! Modhex has no `-` or `.`, so names of different ids never collide and
//! the empty public id gets `id-.state`.
//!
//! A state file is exactly `v1 <use> <session>\n`: the version tag, the
//! use counter (decimal, 0–32767) and the session counter (decimal,
//! 0–255), separated by one space, no leading zeros, no sign, one final
//! newline and nothing else, e.g. `v1 12 3\n`. Anything else — empty,
//! truncated, out of range, another version, trailing bytes — is corrupt:
//! the key then fails closed until an admin sets a value, and the file is
//! left as it is for inspection.
//!
//! A missing state file is never read as (0, 0): it is
//! [`StoreError::StateMissing`]. The directory is created only by
//! [`CounterStore::create_dir`] (the admin tool), never by the module.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use yubiotp_core::{Counter, PublicId};

use super::{ParseError, StoreError};
use crate::atomic::{
    CommitStep, Perms, io_error, lock_exclusive, no_hook, open_error, parent_dir,
    remove_stale_temps, replace_durably_noted, sync_dir,
};
use crate::fs_policy::{FilePolicy, OpenError, Owner, Violation, check_dir_chain, read_checked};
use crate::store::{LOCK_OWNER, LOCK_TIMEOUT};

/// What a state file must look like on disk: root-owned, no group/other
/// bits, regular, one link, small.
pub const STATE_POLICY: FilePolicy = FilePolicy {
    owner: Owner::Root,
    forbidden_mode: 0o077,
    max_size: 256,
};

const NAME_PREFIX: &str = "id-";
const STATE_SUFFIX: &str = ".state";
const LOCK_SUFFIX: &str = ".lock";
const TEMP_SUFFIX: &str = ".state.tmp-";

/// The text of a state file for `counter`.
#[must_use]
pub fn format_state(counter: Counter) -> String {
    format!("v1 {} {}\n", counter.use_counter(), counter.session())
}

/// Parses a decimal field: ASCII digits only, no leading zero, at most `max`.
fn parse_decimal(field: &[u8], max: u16, what: &str) -> Result<u16, ParseError> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::new(
            1,
            format!("{what} is not a decimal number"),
        ));
    }
    if field.len() > 1 && field.first() == Some(&b'0') {
        return Err(ParseError::new(1, format!("{what} has a leading zero")));
    }
    let value = field.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u32::from(d - b'0')))
            .filter(|v| *v <= u32::from(max))
    });
    value
        .and_then(|v| u16::try_from(v).ok())
        .ok_or_else(|| ParseError::new(1, format!("{what} is above {max}")))
}

/// Parses the bytes of a state file (see the module documentation).
///
/// # Errors
/// A [`ParseError`] on line 1 saying what is wrong; never the bytes.
pub fn parse_state(bytes: &[u8]) -> Result<Counter, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::new(1, "empty state file"));
    }
    let Some(record) = bytes.strip_suffix(b"\n") else {
        return Err(ParseError::new(1, "truncated (no final newline)"));
    };
    if record.contains(&b'\n') {
        return Err(ParseError::new(1, "trailing data after the record"));
    }
    let mut fields = record.split(|b| *b == b' ');
    match fields.next() {
        Some(b"v1") => {}
        Some([b'v', version @ ..])
            if !version.is_empty() && version.iter().all(u8::is_ascii_digit) =>
        {
            return Err(ParseError::new(1, "unsupported state version"));
        }
        _ => return Err(ParseError::new(1, "missing version tag `v1`")),
    }
    let (Some(use_field), Some(session_field), None) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(ParseError::new(1, "expected `v1 <use> <session>`"));
    };
    let use_counter = parse_decimal(use_field, Counter::MAX_USE, "use counter")?;
    let session = parse_decimal(session_field, u16::from(u8::MAX), "session counter")?;
    let session =
        u8::try_from(session).map_err(|_| ParseError::new(1, "session counter is above 255"))?;
    Ok(Counter::new(use_counter, session))
}

/// The counter state directory.
#[derive(Debug, Clone)]
pub struct CounterStore {
    dir: PathBuf,
    lock_timeout: Duration,
}

fn stem(id: &PublicId) -> String {
    format!("{NAME_PREFIX}{}", id.to_modhex())
}

impl CounterStore {
    /// Opens the state directory after checking it: it exists, is a
    /// directory, and it and every ancestor are root-owned and not
    /// writable by group or other. Creates nothing.
    ///
    /// # Errors
    /// [`StoreError::Open`]: `NotFound` for a missing directory,
    /// `Untrusted` naming the first bad directory.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        check_dir_chain(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            lock_timeout: LOCK_TIMEOUT,
        })
    }

    /// For the admin tool: creates the state directory (mode 0700, root)
    /// if it is missing — its parent must exist and be trusted — then
    /// [`open`](Self::open)s it. An existing directory is only checked.
    ///
    /// # Errors
    /// The parent is missing or untrusted, the creation failed, or the
    /// directory is untrusted.
    pub fn create_dir(dir: &Path) -> Result<Self, StoreError> {
        match std::fs::symlink_metadata(dir) {
            Ok(_) => return Self::open(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(open_error(dir, e)),
        }
        let parent = parent_dir(dir);
        check_dir_chain(parent)?;
        match DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| io_error(dir, "chmod", e))?;
                sync_dir(parent)?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(dir, "create directory", e)),
        }
        Self::open(dir)
    }

    /// The same store with a shorter lock wait (never more than
    /// [`LOCK_TIMEOUT`]).
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout.min(LOCK_TIMEOUT);
        self
    }

    /// The state directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of `id`.
    #[must_use]
    pub fn path_of(&self, id: &PublicId) -> PathBuf {
        self.dir.join(format!("{}{STATE_SUFFIX}", stem(id)))
    }

    /// The stable lock file of `id`.
    #[must_use]
    pub fn lock_path_of(&self, id: &PublicId) -> PathBuf {
        self.dir.join(format!("{}{LOCK_SUFFIX}", stem(id)))
    }

    /// The name prefix of `id`'s temp files.
    #[must_use]
    pub fn temp_prefix_of(id: &PublicId) -> String {
        format!("{}{TEMP_SUFFIX}", stem(id))
    }

    /// Reads `id`'s last accepted counter, without locking (the state file
    /// is only ever replaced whole).
    ///
    /// # Errors
    /// [`StoreError::StateMissing`] when there is no state file,
    /// [`StoreError::Corrupt`] when it does not parse, [`StoreError::Open`]
    /// when it is untrusted or unreadable.
    pub fn read(&self, id: &PublicId) -> Result<Counter, StoreError> {
        let path = self.path_of(id);
        match read_checked(&path, &STATE_POLICY) {
            Ok(buf) => parse_state(&buf).map_err(|e| e.at(&path)),
            Err(OpenError::NotFound(_)) => Err(StoreError::StateMissing { path, id: *id }),
            Err(e) => Err(e.into()),
        }
    }

    /// Locks the key's state, reads the last counter, lets `decide` judge,
    /// and on `Ok(new)` commits `new` durably before returning it.
    ///
    /// `decide` is not called when the state is missing, corrupt or
    /// untrusted. A `new` that is not strictly greater than the stored
    /// counter is never written ([`StoreError::NotNewer`]). `Ok(Ok(new))`
    /// comes back only after the directory `fsync`; `Ok(Err(r))` is
    /// `decide`'s rejection, with nothing written.
    ///
    /// # Errors
    /// [`StoreError`] for any fault; the OTP must then not be accepted.
    pub fn check_and_advance<R>(
        &self,
        id: &PublicId,
        decide: impl FnOnce(Counter) -> Result<Counter, R>,
    ) -> Result<Result<Counter, R>, StoreError> {
        self.check_and_advance_with_hook(id, decide, &no_hook)
    }

    /// [`check_and_advance`](Self::check_and_advance), telling `hook` each
    /// [`CommitStep`] as it is reached. For crash tests only.
    ///
    /// # Errors
    /// As [`check_and_advance`](Self::check_and_advance).
    #[doc(hidden)]
    pub fn check_and_advance_with_hook<R>(
        &self,
        id: &PublicId,
        decide: impl FnOnce(Counter) -> Result<Counter, R>,
        hook: &dyn Fn(CommitStep),
    ) -> Result<Result<Counter, R>, StoreError> {
        let lock = lock_exclusive(&self.lock_path_of(id), LOCK_OWNER, self.lock_timeout)?;
        hook(CommitStep::Locked);
        // Never a directory listing on a login: the crashed writer's temp
        // is named in the lock file (crate::atomic::replace_durably_noted).
        let prefix = Self::temp_prefix_of(id);
        lock.remove_noted_temp(&self.dir, &prefix)?;
        let current = self.read(id)?;
        hook(CommitStep::Read);
        let new = match decide(current) {
            Ok(new) => new,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if new <= current {
            return Err(StoreError::NotNewer {
                id: *id,
                current,
                requested: new,
            });
        }
        self.write(id, new, &prefix, hook, &lock)?;
        Ok(Ok(new))
    }

    fn write(
        &self,
        id: &PublicId,
        counter: Counter,
        prefix: &str,
        hook: &dyn Fn(CommitStep),
        lock: &crate::atomic::Lock,
    ) -> Result<(), StoreError> {
        replace_durably_noted(
            &self.dir,
            &self.path_of(id),
            prefix,
            format_state(counter).as_bytes(),
            Perms::PRIVATE,
            hook,
            lock,
        )
    }

    /// For the admin tool (`ykmap key add`): creates `id`'s state with
    /// `counter`, durably, under the key's lock.
    ///
    /// # Errors
    /// [`StoreError::Exists`] when anything is already at the state path
    /// (it is never overwritten, so a counter is never lowered here); the
    /// lock timed out; a write failed.
    pub fn init(&self, id: &PublicId, counter: Counter) -> Result<(), StoreError> {
        let lock = lock_exclusive(&self.lock_path_of(id), LOCK_OWNER, self.lock_timeout)?;
        let prefix = Self::temp_prefix_of(id);
        remove_stale_temps(&self.dir, &prefix)?;
        let path = self.path_of(id);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Err(StoreError::Exists(*id)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.write(id, counter, &prefix, &no_hook, &lock)
            }
            Err(e) => Err(open_error(&path, e)),
        }
    }

    /// For the admin tool (`ykmap key import`): [`init`](Self::init) for
    /// many keys at once, with two syncs in all ([`crate::atomic::Batch`]):
    /// a temp file per key whose state is absent, one `syncfs`, a
    /// `RENAME_NOREPLACE` rename per key (atomic against any other writer,
    /// so no per-key lock is taken and none created), one directory
    /// `fsync`. Existing state, also state created meanwhile, is never
    /// touched. Returns the ids whose state was created.
    ///
    /// # Errors
    /// A write, rename or sync failed (states renamed before the failure
    /// stay, each whole).
    pub fn init_many(
        &self,
        ids: &[PublicId],
        counter: Counter,
    ) -> Result<Vec<PublicId>, StoreError> {
        let text = format_state(counter);
        let mut batch = crate::atomic::Batch::new(&self.dir, Perms::PRIVATE);
        let mut todo = Vec::new();
        for id in ids {
            let path = self.path_of(id);
            match std::fs::symlink_metadata(&path) {
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(open_error(&path, e)),
            }
            batch.add(&path, &Self::temp_prefix_of(id), text.as_bytes())?;
            todo.push(*id);
        }
        let renamed = batch.commit(&[], crate::atomic::Rename::NoReplace, &no_hook)?;
        Ok(todo
            .into_iter()
            .zip(renamed)
            .filter_map(|(id, done)| done.then_some(id))
            .collect())
    }

    /// For the admin tool (`ykmap counter reset`): sets `id`'s state to
    /// `counter`, durably, under the key's lock, and returns the previous
    /// counter (`None` when there was no state, or it was unreadable and
    /// replaced with `allow_lower`).
    ///
    /// Without `allow_lower`, a lower counter is refused, and so is
    /// replacing a corrupt or untrusted state file (its value is unknown,
    /// so the new one could be lower). Setting the stored value again
    /// writes nothing.
    ///
    /// # Errors
    /// [`StoreError::WouldLower`]; the state's read error when it cannot be
    /// replaced; the lock timed out; a write failed.
    pub fn set(
        &self,
        id: &PublicId,
        counter: Counter,
        allow_lower: bool,
    ) -> Result<Option<Counter>, StoreError> {
        let lock = lock_exclusive(&self.lock_path_of(id), LOCK_OWNER, self.lock_timeout)?;
        let prefix = Self::temp_prefix_of(id);
        remove_stale_temps(&self.dir, &prefix)?;
        let previous = match self.read(id) {
            Ok(current) if current == counter => return Ok(Some(current)),
            Ok(current) if counter < current && !allow_lower => {
                return Err(StoreError::WouldLower {
                    id: *id,
                    current,
                    requested: counter,
                });
            }
            Ok(current) => Some(current),
            Err(StoreError::StateMissing { .. }) => None,
            Err(StoreError::Corrupt { .. } | StoreError::Open(OpenError::Untrusted(..)))
                if allow_lower =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        self.write(id, counter, &prefix, &no_hook, &lock)?;
        Ok(previous)
    }

    /// For the admin tool (`ykmap key remove`): deletes `id`'s state file
    /// durably, under the key's lock. The lock file stays: deleting it
    /// would let two writers lock different inodes.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] when there is no state file; the lock timed
    /// out; the removal or the directory `fsync` failed.
    pub fn remove(&self, id: &PublicId) -> Result<(), StoreError> {
        let _lock = lock_exclusive(&self.lock_path_of(id), LOCK_OWNER, self.lock_timeout)?;
        remove_stale_temps(&self.dir, &Self::temp_prefix_of(id))?;
        let path = self.path_of(id);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                return Err(StoreError::Open(OpenError::Untrusted(
                    path,
                    Violation::NotRegular("directory"),
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Unknown(*id)),
            Err(e) => return Err(open_error(&path, e)),
        }
        std::fs::remove_file(&path).map_err(|e| io_error(&path, "remove", e))?;
        sync_dir(&self.dir)
    }

    /// The public ids that have a state file (by name; the files are not
    /// read), sorted. Other files are ignored.
    ///
    /// # Errors
    /// The directory cannot be listed.
    pub fn ids(&self) -> Result<Vec<PublicId>, StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, "list", e))?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, "list", e))?;
            let name = entry.file_name();
            let Some(modhex) = name
                .to_str()
                .and_then(|n| n.strip_prefix(NAME_PREFIX))
                .and_then(|n| n.strip_suffix(STATE_SUFFIX))
            else {
                continue;
            };
            if let Ok(id) = PublicId::from_modhex(modhex)
                && id.to_modhex() == modhex
            {
                ids.push(id);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_text_round_trips() {
        for c in [
            Counter::new(0, 0),
            Counter::new(1, 0),
            Counter::new(12, 3),
            Counter::new(0x7fff, 255),
        ] {
            assert_eq!(parse_state(format_state(c).as_bytes()), Ok(c));
        }
        assert_eq!(format_state(Counter::new(12, 3)), "v1 12 3\n");
    }
}
