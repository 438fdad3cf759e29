//! The key store as a directory of per-key files, so a login reads and
//! decodes only the presented key, whatever the number of keys.
//!
//! For the configured key store path `P` (default `/etc/yubiotp/keys`):
//!
//! | path | what |
//! | --- | --- |
//! | `P.d/` | the store: root-owned, mode 0700, in a trusted directory chain |
//! | `P.d/<m>` | one key: lower-case modhex public id `<m>` (`-` for the empty id of `token_id_length=0`); root-owned, 0600, one link, at most 4 KiB |
//! | `P.d/.<m>.tmp-<32 random hex>` | a write in progress; never read |
//! | `P.lock` | the writers' lock (the same one the single file used) |
//! | `P` | the old single-file format (see [`super::keystore`]) |
//!
//! A key file is a key store file of the old format holding exactly the
//! one key its name says:
//!
//! ```text
//! # pam_yubiotp key store v1
//! ccccccdbjrgf 8792ebfe26cc ecde18dbe76fbd0c33330f1c354871db
//! ```
//!
//! so a file renamed to another public id is refused, not used for it.
//!
//! **Which layout is read.** When `P.d` exists it is the store and `P` is
//! never read (`ykmap check` complains when both exist). When only `P`
//! exists the module reads it whole, as before, until `ykmap key migrate`
//! turns it into `P.d` (one directory rename: a reader sees the old file
//! or the whole new directory), then removes `P`. A store that does not
//! exist yet is created as `P.d` by the first `ykmap` write.
//!
//! Readers never lock. Writers (`ykmap`) take `P.lock`, write every new
//! key file as a temp file, sync them all with one `syncfs`, rename them,
//! and `fsync` the directory once ([`crate::atomic::Batch`]): an import of
//! 100,000 keys costs two syncs, not 200,000.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use yubiotp_core::{KeyMaterial, PublicId};

use super::keystore::{EMPTY_ID, KeyStore};
use super::{LOCK_OWNER, LOCK_TIMEOUT, StoreError};
use crate::atomic::{
    Batch, CommitStep, Perms, Rename, file_name, io_error, is_temp_name, lock_exclusive,
    open_error, parent_dir, sync_dir,
};
use crate::fs_policy::{FilePolicy, OpenError, Owner, check_dir, check_dir_chain, read_checked};

/// What a key file must look like on disk.
pub const KEY_POLICY: FilePolicy = FilePolicy {
    owner: Owner::Root,
    forbidden_mode: 0o077,
    max_size: 4096,
};

/// The directory that holds the per-key files of the key store `keystore`:
/// `<keystore>.d`.
///
/// # Errors
/// The path has no UTF-8 file name.
pub fn dir_of(keystore: &Path) -> Result<PathBuf, StoreError> {
    let name = file_name(keystore)?;
    Ok(parent_dir(keystore).join(format!("{name}.d")))
}

/// The file name of `id`'s key file.
#[must_use]
pub fn key_file_name(id: &PublicId) -> String {
    if id.is_empty() {
        EMPTY_ID.to_string()
    } else {
        id.to_modhex()
    }
}

fn id_of_name(name: &str) -> Option<PublicId> {
    if name == EMPTY_ID {
        return PublicId::from_bytes(&[]).ok();
    }
    PublicId::from_modhex(name)
        .ok()
        .filter(|id| id.to_modhex() == name && !id.is_empty())
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Which layouts are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `<keystore>.d` exists (it is the store).
    pub dir: bool,
    /// The single file `<keystore>` exists.
    pub file: bool,
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(open_error(path, e)),
    }
}

/// Which layouts exist for `keystore` (by name only; nothing is read).
///
/// # Errors
/// A path cannot be looked at.
pub fn layout(keystore: &Path) -> Result<Layout, StoreError> {
    Ok(Layout {
        dir: exists(&dir_of(keystore)?)?,
        file: exists(keystore)?,
    })
}

/// Checks the key directory: its chain as every store's, and the directory
/// itself root-owned with no group/other bits at all.
fn check_key_dir(dir: &Path) -> Result<(), StoreError> {
    check_dir_chain(dir)?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| open_error(dir, e))?;
    check_dir(&meta, Owner::Root, 0o077)
        .map_err(|v| StoreError::Open(OpenError::Untrusted(dir.to_path_buf(), v)))
}

/// Reads and checks one key file; `Ok(None)` when it does not exist.
fn read_key(dir: &Path, id: &PublicId) -> Result<Option<KeyMaterial>, StoreError> {
    let path = dir.join(key_file_name(id));
    let buf = match read_checked(&path, &KEY_POLICY) {
        Ok(buf) => buf,
        Err(OpenError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |line, reason: &str| StoreError::Corrupt {
        path: path.clone(),
        line,
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(&buf).map_err(|_| corrupt(0, "not valid UTF-8"))?;
    let ks = KeyStore::parse(text).map_err(|e| e.at(&path))?;
    match (ks.len(), ks.get(id)) {
        (1, Some(k)) => Ok(Some(k.clone())),
        (0, _) => Err(corrupt(0, "holds no key")),
        (1, None) => Err(corrupt(0, "holds the key of another public id")),
        _ => Err(corrupt(0, "holds more than one key")),
    }
}

/// For a login: the key store holding at most `id`'s key, read from
/// whichever layout is on disk. With `<keystore>.d`, only `id`'s file is
/// opened (and nothing else decoded); a missing file is an empty store.
/// With the old single file, the file is read whole as before.
///
/// # Errors
/// [`StoreError::Open`] with [`OpenError::NotFound`] when neither layout
/// exists; any untrusted, unreadable or corrupt file or directory.
pub fn load_one(keystore: &Path, id: &PublicId) -> Result<KeyStore, StoreError> {
    let dir = dir_of(keystore)?;
    if !exists(&dir)? {
        return KeyStore::load(keystore);
    }
    check_key_dir(&dir)?;
    let mut ks = KeyStore::default();
    if let Some(k) = read_key(&dir, id)? {
        ks.insert(*id, k);
    }
    Ok(ks)
}

fn list_dir(dir: &Path) -> Result<BTreeSet<PublicId>, StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, "list", e))?;
    let mut ids = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "list", e))?;
        if let Some(id) = entry.file_name().to_str().and_then(id_of_name) {
            ids.insert(id);
        }
    }
    Ok(ids)
}

/// The key store as `ykmap` sees it, in either layout.
#[derive(Debug)]
pub enum Keys {
    /// `<keystore>.d`: the ids are known by file name; a key is read only
    /// when asked for.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The public ids that have a key file.
        ids: BTreeSet<PublicId>,
    },
    /// The old single file, parsed whole.
    File(KeyStore),
}

impl Keys {
    /// Opens the key store `keystore` in whichever layout is on disk (the
    /// directory when both exist).
    ///
    /// # Errors
    /// `NotFound` when neither exists; an untrusted or corrupt store.
    pub fn open(keystore: &Path) -> Result<Self, StoreError> {
        let dir = dir_of(keystore)?;
        if !exists(&dir)? {
            return KeyStore::load(keystore).map(Self::File);
        }
        check_key_dir(&dir)?;
        let ids = list_dir(&dir)?;
        Ok(Self::Dir { dir, ids })
    }

    /// An empty store (for a key store that does not exist yet).
    #[must_use]
    pub fn empty() -> Self {
        Self::File(KeyStore::default())
    }

    /// True when the store holds `id`.
    #[must_use]
    pub fn contains(&self, id: &PublicId) -> bool {
        match self {
            Self::Dir { ids, .. } => ids.contains(id),
            Self::File(ks) => ks.contains(id),
        }
    }

    /// The public ids held, sorted.
    #[must_use]
    pub fn ids(&self) -> Vec<PublicId> {
        match self {
            Self::Dir { ids, .. } => ids.iter().copied().collect(),
            Self::File(ks) => ks.ids().collect(),
        }
    }

    /// `id`'s key material.
    ///
    /// # Errors
    /// Its key file is untrusted or corrupt.
    pub fn get(&self, id: &PublicId) -> Result<Option<KeyMaterial>, StoreError> {
        match self {
            Self::Dir { dir, .. } => read_key(dir, id),
            Self::File(ks) => Ok(ks.get(id).cloned()),
        }
    }

    /// Reads and checks every key (for `ykmap check`); the first bad one
    /// is the error.
    ///
    /// # Errors
    /// An untrusted or corrupt key file, or one that vanished.
    pub fn verify_all(&self) -> Result<(), StoreError> {
        let Self::Dir { dir, ids } = self else {
            return Ok(());
        };
        for id in ids {
            if read_key(dir, id)?.is_none() {
                return Err(StoreError::Unknown(*id));
            }
        }
        Ok(())
    }
}

/// The changes of one [`update`], in either layout.
pub enum KeyEdit<'a> {
    /// The old single file, edited in memory and written whole.
    File(&'a mut KeyStore),
    /// The directory: ids by name, changes collected and written as one
    /// batch.
    Dir {
        /// Ids with a key file before the edit.
        ids: BTreeSet<PublicId>,
        /// New material (`Some`) or removal (`None`) per id.
        pending: BTreeMap<PublicId, Option<KeyMaterial>>,
    },
}

impl std::fmt::Debug for KeyEdit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEdit").finish_non_exhaustive()
    }
}

impl KeyEdit<'_> {
    /// True when the store holds `id` (with the changes so far).
    #[must_use]
    pub fn contains(&self, id: &PublicId) -> bool {
        match self {
            Self::File(ks) => ks.contains(id),
            Self::Dir { ids, pending } => match pending.get(id) {
                Some(change) => change.is_some(),
                None => ids.contains(id),
            },
        }
    }

    /// Adds or replaces `id`'s key; true when it replaced one.
    pub fn insert(&mut self, id: PublicId, material: KeyMaterial) -> bool {
        match self {
            Self::File(ks) => ks.insert(id, material).is_some(),
            Self::Dir { .. } => {
                let held = self.contains(&id);
                if let Self::Dir { pending, .. } = self {
                    pending.insert(id, Some(material));
                }
                held
            }
        }
    }

    /// Removes `id`'s key; true when there was one.
    pub fn remove(&mut self, id: &PublicId) -> bool {
        match self {
            Self::File(ks) => ks.remove(id).is_some(),
            Self::Dir { .. } => {
                let held = self.contains(id);
                if let Self::Dir { pending, .. } = self {
                    pending.insert(*id, None);
                }
                held
            }
        }
    }
}

fn lock_path(keystore: &Path) -> Result<PathBuf, StoreError> {
    let name = file_name(keystore)?;
    Ok(parent_dir(keystore).join(format!("{name}.lock")))
}

/// Creates `dir` (0700, root) if it is missing, durably (its parent is
/// `fsync`ed).
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error(dir, "chmod", e))?;
            sync_dir(parent_dir(dir))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(dir, "create directory", e)),
    }
}

/// Removes temp files of crashed writers in the key directory (any
/// `.<name>.tmp-<32 hex>`). Call under the store lock.
fn remove_stale_key_temps(dir: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = name
            .strip_prefix('.')
            .and_then(|rest| rest.find(".tmp-"))
            .and_then(|i| name.get(..i.saturating_add(6)))
            .is_some_and(|prefix| is_temp_name(name, prefix));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The text of one key file.
fn key_file_text(id: PublicId, material: KeyMaterial) -> zeroize::Zeroizing<String> {
    let mut one = KeyStore::default();
    one.insert(id, material);
    one.to_text()
}

/// A locked edit of the key store `keystore`, for `ykmap`, in whichever
/// layout is on disk: the old single file is edited as before
/// ([`KeyStore::update_with_hook`]); the directory (also for a store that
/// does not exist yet, which is created as `<keystore>.d`, mode 0700) gets
/// every changed key file in one [`Batch`]: one `syncfs`, the renames and
/// removals, one directory `fsync`. When `edit` fails nothing is written.
///
/// # Errors
/// The directory chain, the lock, the store, a write, or `edit`'s error.
pub fn update<T>(
    keystore: &Path,
    hook: &dyn Fn(CommitStep),
    edit: impl FnOnce(&mut KeyEdit<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let dir = dir_of(keystore)?;
    check_dir_chain(parent_dir(keystore))?;
    // The layout is chosen under the lock: a `key migrate` running
    // meanwhile must not leave this edit in a file the module no longer
    // reads.
    let _lock = lock_exclusive(&lock_path(keystore)?, LOCK_OWNER, LOCK_TIMEOUT)?;
    hook(CommitStep::Locked);
    if !exists(&dir)? && exists(keystore)? {
        return KeyStore::update_locked(keystore, hook, |ks| edit(&mut KeyEdit::File(ks)));
    }
    if !exists(&dir)? {
        return create_store(keystore, &dir, hook, edit);
    }
    check_key_dir(&dir)?;
    remove_stale_key_temps(&dir)?;
    let mut e = KeyEdit::Dir {
        ids: list_dir(&dir)?,
        pending: BTreeMap::new(),
    };
    hook(CommitStep::Read);
    let out = edit(&mut e)?;
    let KeyEdit::Dir { pending, .. } = e else {
        return Ok(out);
    };
    let mut batch = Batch::new(&dir, Perms::PRIVATE);
    let mut removals = Vec::new();
    for (id, change) in pending {
        let name = key_file_name(&id);
        let target = dir.join(&name);
        match change {
            Some(material) => {
                batch.add(
                    &target,
                    &temp_prefix(&name),
                    key_file_text(id, material).as_bytes(),
                )?;
            }
            None => removals.push(target),
        }
    }
    if batch.is_empty() && removals.is_empty() {
        return Ok(out);
    }
    batch.commit(&removals, Rename::Replace, hook)?;
    Ok(out)
}

/// [`update`] of a store that does not exist yet (called under its lock):
/// the keys are written under their own names into a new private
/// directory `.<name>.d.tmp-<random>` next to it (one file system sync,
/// no renames per key), which is then renamed to `<keystore>.d`, so a
/// reader sees no store or the whole new one. Temp directories of a
/// crashed run are removed first.
fn create_store<T>(
    keystore: &Path,
    dir: &Path,
    hook: &dyn Fn(CommitStep),
    edit: impl FnOnce(&mut KeyEdit<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let parent = parent_dir(keystore);
    let name = file_name(keystore)?;
    remove_stale_dirs(parent, name)?;
    let mut e = KeyEdit::Dir {
        ids: BTreeSet::new(),
        pending: BTreeMap::new(),
    };
    hook(CommitStep::Read);
    let out = edit(&mut e)?;
    let KeyEdit::Dir { pending, .. } = e else {
        return Ok(out);
    };
    let tmp = parent.join(format!(
        "{}{}",
        stale_dir_prefix(name),
        crate::atomic::random_hex(parent)?
    ));
    create_private_dir(&tmp)?;
    let written = (|| {
        let mut batch = Batch::filling_new_dir(&tmp, Perms::PRIVATE);
        for (id, change) in pending {
            if let Some(material) = change {
                let file = key_file_name(&id);
                batch.add(
                    &tmp.join(&file),
                    &temp_prefix(&file),
                    key_file_text(id, material).as_bytes(),
                )?;
            }
        }
        batch.commit(&[], Rename::Replace, hook)?;
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &tmp,
            nix::fcntl::AT_FDCWD,
            dir,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| io_error(dir, "rename", io::Error::from_raw_os_error(e as i32)))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir(parent)?;
    Ok(out)
}

/// Removes the temp directories (`.<name>.d.tmp-<32 hex>`) that a crashed
/// [`migrate`] or first [`update`] left next to the store. Call under the
/// store lock.
fn remove_stale_dirs(parent: &Path, name: &str) -> Result<(), StoreError> {
    let prefix = stale_dir_prefix(name);
    let entries = std::fs::read_dir(parent).map_err(|e| io_error(parent, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(parent, "list", e))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| is_temp_name(n, &prefix))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// The single file's keys are now in `<keystore>.d`, the file removed.
    Done(usize),
    /// Only `<keystore>.d` exists: nothing to do.
    Already,
    /// Neither exists.
    Nothing,
}

fn stale_dir_prefix(name: &str) -> String {
    format!(".{name}.d.tmp-")
}

/// `ykmap key migrate`: turns the single-file key store `keystore` into
/// `<keystore>.d`. Under `<keystore>.lock`: reads and checks the file
/// whole, writes every key into a new directory `.<name>.d.tmp-<random>`
/// next to it (one [`Batch`]), renames that directory to `<keystore>.d`
/// (a reader sees the old file or the whole directory), `fsync`s the
/// parent, then removes the file and `fsync`s the parent again. A crash
/// leaves the old file (and a temp directory the next run removes) or the
/// complete directory (and perhaps the old file, which is then ignored;
/// run migrate again to remove it). Comments of the old file are not kept.
///
/// # Errors
/// Both layouts exist and differ ([`StoreError::BothLayouts`]), the file is
/// untrusted or corrupt, or a write failed.
pub fn migrate(keystore: &Path) -> Result<Migrated, StoreError> {
    let dir = dir_of(keystore)?;
    let parent = parent_dir(keystore);
    check_dir_chain(parent)?;
    let name = file_name(keystore)?;
    let _lock = lock_exclusive(&lock_path(keystore)?, LOCK_OWNER, LOCK_TIMEOUT)?;
    let Layout { dir: has_dir, file } = layout(keystore)?;
    match (has_dir, file) {
        (false, false) => return Ok(Migrated::Nothing),
        (true, false) => return Ok(Migrated::Already),
        (true, true) => {
            // A migration that crashed after its directory rename: the
            // directory must hold exactly the file's keys.
            let old = KeyStore::load(keystore)?;
            let new = Keys::open(keystore)?;
            let same = old.ids().collect::<Vec<_>>() == new.ids()
                && old
                    .ids()
                    .all(|id| new.get(&id).ok().flatten().as_ref() == old.get(&id));
            if !same {
                return Err(StoreError::BothLayouts {
                    file: keystore.to_path_buf(),
                    dir,
                });
            }
            std::fs::remove_file(keystore).map_err(|e| io_error(keystore, "remove", e))?;
            sync_dir(parent)?;
            return Ok(Migrated::Done(old.len()));
        }
        (false, true) => {}
    }
    let old = KeyStore::load(keystore)?;
    // Temp directories of a crashed migration.
    remove_stale_dirs(parent, name)?;
    let prefix = stale_dir_prefix(name);
    let tmp = parent.join(format!("{prefix}{}", crate::atomic::random_hex(parent)?));
    create_private_dir(&tmp)?;
    let written = (|| {
        let mut batch = Batch::filling_new_dir(&tmp, Perms::PRIVATE);
        for id in old.ids() {
            let Some(material) = old.get(&id) else {
                continue;
            };
            let name = key_file_name(&id);
            batch.add(
                &tmp.join(&name),
                &temp_prefix(&name),
                key_file_text(id, material.clone()).as_bytes(),
            )?;
        }
        batch.commit(&[], Rename::Replace, &crate::atomic::no_hook)?;
        std::fs::rename(&tmp, &dir).map_err(|e| io_error(&dir, "rename", e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir(parent)?;
    std::fs::remove_file(keystore).map_err(|e| io_error(keystore, "remove", e))?;
    sync_dir(parent)?;
    Ok(Migrated::Done(old.len()))
}
