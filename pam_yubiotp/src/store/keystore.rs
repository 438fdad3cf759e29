//! The key store: per public id, the AES-128 key and the private id.
//!
//! One text file (default `/etc/yubiotp/keys`), root-owned, mode 0600 (or
//! 0400/0700: no group/other bits at all), in a directory chain that is
//! root-owned and not group/other-writable, at most 4 MiB:
//!
//! ```text
//! # pam_yubiotp key store v1
//! # public id    private id   AES key
//! ccccccdbjrgf 8792ebfe26cc ecde18dbe76fbd0c33330f1c354871db
//! -            0a1b2c3d4e5f 00112233445566778899aabbccddeeff
//! ```
//!
//! - Line 1 is exactly `# pam_yubiotp key store v1` (trailing blanks
//!   allowed). A missing header or another version is refused.
//! - Every other line is blank, a comment (first non-blank character `#`),
//!   or a key: three fields separated by spaces or tabs — the public id in
//!   modhex (0–32 characters, even; `-` stands for the empty public id that
//!   `token_id_length=0` gives), the private id (12 hex digits) and the AES
//!   key (32 hex digits). Either case is accepted; lower case is written.
//! - A public id appears at most once (compared after case folding).
//! - Anything else makes the whole file invalid; the error names the line
//!   number and the problem, never the line's text. CRLF line ends are
//!   tolerated.
//!
//! Edits ([`KeyStore::update`]) keep comments, blank lines and the order of
//! the keys; a new key is appended, a replaced key keeps its line. Readers
//! never lock: the file is only ever replaced whole by `rename`, so a reader
//! sees the old or the new file. Writers take an exclusive `flock` on
//! `<path>.lock` (created 0600, never removed) and write a temp file
//! `.<name>.tmp-<32 random hex>` next to the store.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::path::Path;

use yubiotp_core::{AesKey, KeyMaterial, PrivateId, PublicId};
use zeroize::Zeroizing;

use super::{ParseError, StoreError};
use crate::atomic::{
    CommitStep, Perms, file_name, lock_exclusive, no_hook, parent_dir, remove_stale_temps,
    replace_durably,
};
use crate::fs_policy::{FilePolicy, OpenError, check_dir_chain, read_checked};
use crate::store::{LOCK_OWNER, LOCK_TIMEOUT};

/// The first line of every key store file.
pub const HEADER: &str = "# pam_yubiotp key store v1";

/// How the empty public id (`token_id_length=0`) is written.
pub const EMPTY_ID: &str = "-";

/// What a key store file must look like on disk.
pub const POLICY: FilePolicy = FilePolicy::ROOT_PRIVATE;

/// One line after the header, in file order.
#[derive(Clone)]
enum Line {
    /// A comment or a blank line, kept verbatim (wiped on drop: an admin
    /// may have commented out an old key).
    Text(Zeroizing<String>),
    /// The line of this key; the material is in `entries`.
    Key(PublicId),
}

/// A parsed key store. `Debug` lists the public ids only.
#[derive(Default, Clone)]
pub struct KeyStore {
    entries: BTreeMap<PublicId, KeyMaterial>,
    lines: Vec<Line>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("ids", &self.entries.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn id_text(id: &PublicId) -> String {
    if id.is_empty() {
        EMPTY_ID.to_string()
    } else {
        id.to_modhex()
    }
}

fn parse_key_line(fields: &[&str], line: usize) -> Result<(PublicId, KeyMaterial), ParseError> {
    let [id, private_id, aes_key] = fields else {
        return Err(ParseError::new(
            line,
            format!(
                "expected 3 fields (public id, private id, AES key), found {}",
                fields.len()
            ),
        ));
    };
    let id = if *id == EMPTY_ID {
        PublicId::from_bytes(&[]).map_err(|e| ParseError::new(line, e.to_string()))?
    } else {
        PublicId::from_modhex(id).map_err(|e| ParseError::new(line, e.to_string()))?
    };
    let private_id = PrivateId::from_hex(private_id)
        .map_err(|e| ParseError::new(line, format!("private id: {e}")))?;
    let aes_key =
        AesKey::from_hex(aes_key).map_err(|e| ParseError::new(line, format!("AES key: {e}")))?;
    Ok((
        id,
        KeyMaterial {
            aes_key,
            private_id,
        },
    ))
}

impl KeyStore {
    /// Parses the text of a key store (see the module documentation).
    ///
    /// # Errors
    /// The first bad line: missing or unknown header, wrong field count, bad
    /// public id, private id or AES key, or a duplicate public id.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut lines = text.lines();
        match lines.next().map(str::trim_end) {
            Some(HEADER) => {}
            Some(h) if h.starts_with("# pam_yubiotp key store ") => {
                return Err(ParseError::new(1, "unsupported key store version"));
            }
            _ => return Err(ParseError::new(1, format!("missing header `{HEADER}`"))),
        }
        let mut store = Self::default();
        let mut first_line: BTreeMap<PublicId, usize> = BTreeMap::new();
        for (n, raw) in lines.enumerate() {
            let line = n.saturating_add(2);
            let trimmed = raw.trim_ascii();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                store
                    .lines
                    .push(Line::Text(Zeroizing::new(raw.to_string())));
                continue;
            }
            let fields: Vec<&str> = trimmed.split_ascii_whitespace().collect();
            let (id, material) = parse_key_line(&fields, line)?;
            match first_line.entry(id) {
                Entry::Occupied(first) => {
                    return Err(ParseError::new(
                        line,
                        format!("duplicate public id {} (first on line {})", id, first.get()),
                    ));
                }
                Entry::Vacant(v) => {
                    v.insert(line);
                }
            }
            store.entries.insert(id, material);
            store.lines.push(Line::Key(id));
        }
        Ok(store)
    }

    /// The file text, header first, comments and key order kept, hex in
    /// lower case. Holds every secret, so it is wiped on drop; never log it.
    #[must_use]
    pub fn to_text(&self) -> Zeroizing<String> {
        // Sized up front: a growing String would leave unwiped copies behind.
        let key_line = 2 * PublicId::MAX_BYTES + 2 + 2 * PrivateId::LEN + 2 * AesKey::LEN + 1;
        let capacity = self
            .lines
            .iter()
            .map(|l| match l {
                Line::Text(t) => t.len() + 1,
                Line::Key(_) => key_line,
            })
            .sum::<usize>()
            + HEADER.len()
            + 1;
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        out.push_str(HEADER);
        out.push('\n');
        for line in &self.lines {
            match line {
                Line::Text(t) => out.push_str(t),
                Line::Key(id) => {
                    if let Some(k) = self.entries.get(id) {
                        out.push_str(&id_text(id));
                        out.push(' ');
                        out.push_str(&Zeroizing::new(k.private_id.expose_hex()));
                        out.push(' ');
                        out.push_str(&Zeroizing::new(k.aes_key.expose_hex()));
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// Loads and checks the key store file: its directory chain must be
    /// root-owned and not group/other-writable; the file a regular,
    /// root-owned file with no group/other permission bits, one link, at
    /// most 4 MiB, and not a symlink. Never blocks on a FIFO.
    ///
    /// # Errors
    /// [`StoreError::Open`] (with [`OpenError::NotFound`] for a missing file
    /// or directory, [`OpenError::PermissionDenied`] for a caller without
    /// root, [`OpenError::Untrusted`] for anything unsafe) or
    /// [`StoreError::Corrupt`] naming the bad line.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        check_dir_chain(parent_dir(path))?;
        Self::read_file(path)
    }

    fn read_file(path: &Path) -> Result<Self, StoreError> {
        let buf = read_checked(path, &POLICY)?;
        let text = std::str::from_utf8(&buf).map_err(|e| {
            let line = buf
                .get(..e.valid_up_to())
                .map_or(0, |ok| ok.iter().filter(|b| **b == b'\n').count())
                .saturating_add(1);
            ParseError::new(line, "not valid UTF-8").at(path)
        })?;
        Self::parse(text).map_err(|e| e.at(path))
    }

    /// A locked read-modify-write of the key store at `path`, for `ykmap`.
    ///
    /// Checks the directory chain, takes an exclusive `flock` on
    /// `<path>.lock` (waiting at most [`LOCK_TIMEOUT`]), removes temp files
    /// left by a crashed writer, reads the store (an absent file is an
    /// empty store), runs `edit`, and, if `edit` succeeded and changed the
    /// text, durably replaces the file (temp 0600 → `fsync` → `rename` →
    /// `fsync` of the directory). A store that did not exist is created
    /// this way, mode 0600. When `edit` fails nothing is written.
    ///
    /// # Errors
    /// The directory or an existing file is missing or untrusted
    /// ([`StoreError::Open`]), the file is corrupt, the lock timed out, a
    /// write failed, or `edit`'s own error.
    pub fn update<T>(
        path: &Path,
        edit: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        Self::update_with_hook(path, &no_hook, edit)
    }

    /// [`update`](Self::update), telling `hook` each [`CommitStep`] as it
    /// is reached. For crash tests (and `ykmap`'s debug-build pause).
    ///
    /// # Errors
    /// As [`update`](Self::update).
    #[doc(hidden)]
    pub fn update_with_hook<T>(
        path: &Path,
        hook: &dyn Fn(CommitStep),
        edit: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let dir = parent_dir(path);
        check_dir_chain(dir)?;
        let name = file_name(path)?;
        let lock_path = dir.join(format!("{name}.lock"));
        let _lock = lock_exclusive(&lock_path, LOCK_OWNER, LOCK_TIMEOUT)?;
        hook(CommitStep::Locked);
        Self::update_locked(path, hook, edit)
    }

    /// [`update_with_hook`](Self::update_with_hook) for a caller that
    /// already holds `<path>.lock` (the per-key layout's `update`, which
    /// must choose the layout under the lock).
    pub(crate) fn update_locked<T>(
        path: &Path,
        hook: &dyn Fn(CommitStep),
        edit: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let dir = parent_dir(path);
        let name = file_name(path)?;
        let prefix = format!(".{name}.tmp-");
        remove_stale_temps(dir, &prefix)?;
        let (mut store, before) = match Self::read_file(path) {
            Ok(store) => {
                let text = store.to_text();
                (store, Some(text))
            }
            Err(StoreError::Open(OpenError::NotFound(_))) => (Self::default(), None),
            Err(e) => return Err(e),
        };
        hook(CommitStep::Read);
        let out = edit(&mut store)?;
        let after = store.to_text();
        if before.as_ref().map(|b| b.as_str()) != Some(after.as_str()) {
            replace_durably(dir, path, &prefix, after.as_bytes(), Perms::PRIVATE, hook)?;
        }
        Ok(out)
    }

    /// The key material for `id`.
    #[must_use]
    pub fn get(&self, id: &PublicId) -> Option<&KeyMaterial> {
        self.entries.get(id)
    }

    /// True when the store holds `id`.
    #[must_use]
    pub fn contains(&self, id: &PublicId) -> bool {
        self.entries.contains_key(id)
    }

    /// The public ids held, in sorted order.
    pub fn ids(&self) -> impl Iterator<Item = PublicId> + '_ {
        self.entries.keys().copied()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the store holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds or replaces the key `id`, returning the material it replaced.
    /// A new key is appended; a replaced one keeps its line.
    pub fn insert(&mut self, id: PublicId, material: KeyMaterial) -> Option<KeyMaterial> {
        let old = self.entries.insert(id, material);
        if old.is_none() {
            self.lines.push(Line::Key(id));
        }
        old
    }

    /// Removes the key `id`, returning its material.
    pub fn remove(&mut self, id: &PublicId) -> Option<KeyMaterial> {
        let old = self.entries.remove(id);
        if old.is_some() {
            self.lines.retain(|l| !matches!(l, Line::Key(k) if k == id));
        }
        old
    }
}
