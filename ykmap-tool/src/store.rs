//! TEMPORARY stand-in for `pam_yubiotp::store` while the real key store and
//! counter state are being written on the `stores` branch. Same API as
//! announced; simple formats; to be deleted when `stores` lands (the tool
//! then uses the library's types directly).
#![allow(missing_docs, clippy::missing_errors_doc)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use yubiotp_core::{AesKey, Counter, KeyMaterial, PrivateId, PublicId};

pub use pam_yubiotp::store::StoreError;

use pam_yubiotp::fs_policy::{self, FilePolicy, OpenError};

use crate::edit;

fn io_err(path: &Path, op: &'static str, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn write(path: &Path, text: &str) -> Result<(), StoreError> {
    edit::write_atomic(path, text.as_bytes(), None, edit::NewFile { mode: 0o600 })
        .map_err(|e| io_err(path, "write", io::Error::other(e.to_string())))
}

#[derive(Debug, Default, Clone)]
pub struct KeyStore {
    entries: BTreeMap<PublicId, KeyMaterial>,
}

impl KeyStore {
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let bytes = fs_policy::read_checked(path, &FilePolicy::ROOT_PRIVATE)?;
        let text = core::str::from_utf8(&bytes).map_err(|_| StoreError::Corrupt {
            path: path.to_path_buf(),
            line: 0,
            reason: "not UTF-8".into(),
        })?;
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let corrupt = |reason: &str| StoreError::Corrupt {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.into(),
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split(' ').collect();
            let [id, aes, priv_id] = f.as_slice() else {
                return Err(corrupt("expected 3 fields"));
            };
            let id = PublicId::from_modhex(id).map_err(|_| corrupt("bad public id"))?;
            let aes_key = AesKey::from_hex(aes).map_err(|_| corrupt("bad AES key"))?;
            let private_id = PrivateId::from_hex(priv_id).map_err(|_| corrupt("bad private id"))?;
            entries.insert(
                id,
                KeyMaterial {
                    aes_key,
                    private_id,
                },
            );
        }
        Ok(Self { entries })
    }

    #[must_use]
    pub fn get(&self, id: &PublicId) -> Option<&KeyMaterial> {
        self.entries.get(id)
    }
    #[must_use]
    pub fn contains(&self, id: &PublicId) -> bool {
        self.entries.contains_key(id)
    }
    pub fn ids(&self) -> impl Iterator<Item = &PublicId> {
        self.entries.keys()
    }
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn insert(&mut self, id: PublicId, key: KeyMaterial) -> Option<KeyMaterial> {
        self.entries.insert(id, key)
    }
    pub fn remove(&mut self, id: &PublicId) -> Option<KeyMaterial> {
        self.entries.remove(id)
    }

    pub fn update<T>(
        path: &Path,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lock = edit::lock_path(path)
            .map_err(|e| io_err(path, "lock", io::Error::other(e.to_string())))?;
        let _guard = edit::lock_file(&lock)
            .map_err(|e| io_err(path, "lock", io::Error::other(e.to_string())))?;
        let mut ks = match Self::load(path) {
            Ok(ks) => ks,
            Err(StoreError::Open(OpenError::NotFound(_))) => Self::default(),
            Err(e) => return Err(e),
        };
        let v = f(&mut ks)?;
        let mut text = String::from("# pam_yubiotp key store (temporary format)\n");
        for (id, k) in &ks.entries {
            text.push_str(&format!(
                "{id} {} {}\n",
                k.aes_key.expose_hex(),
                k.private_id.expose_hex()
            ));
        }
        write(path, &text)?;
        Ok(v)
    }
}

#[derive(Debug, Clone)]
pub struct CounterStore {
    dir: PathBuf,
}

impl CounterStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let meta = std::fs::symlink_metadata(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Open(OpenError::NotFound(dir.to_path_buf())),
            _ => io_err(dir, "stat", e),
        })?;
        if !meta.is_dir() {
            return Err(io_err(dir, "open", io::Error::other("not a directory")));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn create_dir(dir: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(dir, "mkdir", e)),
        }
        Self::open(dir)
    }

    #[must_use]
    pub fn path_of(&self, id: &PublicId) -> PathBuf {
        self.dir.join(id.to_modhex())
    }

    pub fn read(&self, id: &PublicId) -> Result<Counter, StoreError> {
        let path = self.path_of(id);
        let bytes = match fs_policy::read_checked(&path, &FilePolicy::ROOT_PRIVATE) {
            Ok(b) => b,
            Err(OpenError::NotFound(_)) => return Err(StoreError::StateMissing { path, id: *id }),
            Err(e) => return Err(e.into()),
        };
        let corrupt = || StoreError::Corrupt {
            path: path.clone(),
            line: 1,
            reason: "expected `use session`".into(),
        };
        let text = core::str::from_utf8(&bytes).map_err(|_| corrupt())?;
        let mut it = text.split_whitespace();
        let u: u16 = it.next().and_then(|s| s.parse().ok()).ok_or_else(corrupt)?;
        let s: u8 = it.next().and_then(|s| s.parse().ok()).ok_or_else(corrupt)?;
        if it.next().is_some() || u > Counter::MAX_USE {
            return Err(corrupt());
        }
        Ok(Counter::new(u, s))
    }

    fn write(&self, id: &PublicId, c: Counter) -> Result<(), StoreError> {
        write(
            &self.path_of(id),
            &format!("{} {}\n", c.use_counter(), c.session()),
        )
    }

    pub fn init(&self, id: &PublicId, c: Counter) -> Result<(), StoreError> {
        match self.read(id) {
            Err(StoreError::StateMissing { .. }) => self.write(id, c),
            Ok(_) => Err(StoreError::Exists(*id)),
            Err(e) => Err(e),
        }
    }

    pub fn set(
        &self,
        id: &PublicId,
        c: Counter,
        allow_lower: bool,
    ) -> Result<Option<Counter>, StoreError> {
        let old = match self.read(id) {
            Ok(old) => Some(old),
            Err(StoreError::StateMissing { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(old) = old
            && c < old
            && !allow_lower
        {
            return Err(StoreError::WouldLower {
                id: *id,
                current: old,
                requested: c,
            });
        }
        self.write(id, c)?;
        Ok(old)
    }

    pub fn remove(&self, id: &PublicId) -> Result<(), StoreError> {
        match std::fs::remove_file(self.path_of(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Unknown(*id)),
            Err(e) => Err(io_err(&self.path_of(id), "remove", e)),
        }
    }

    pub fn ids(&self) -> Result<Vec<PublicId>, StoreError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, "read", e))? {
            let e = e.map_err(|e| io_err(&self.dir, "read", e))?;
            if let Some(id) = e
                .file_name()
                .to_str()
                .and_then(|n| PublicId::from_modhex(n).ok())
            {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }
}
