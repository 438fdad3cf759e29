//! The key store: per public id, the AES-128 key and the private id.
//! PLACEHOLDER API — being implemented on the `stores` branch.

use std::collections::BTreeMap;
use std::path::Path;

use yubiotp_core::{KeyMaterial, PublicId};

use super::StoreError;

/// Parsed key store.
#[derive(Debug, Default, Clone)]
pub struct KeyStore {
    entries: BTreeMap<PublicId, KeyMaterial>,
}

impl KeyStore {
    /// Loads and checks the key store file.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        Err(StoreError::Io {
            path: path.to_path_buf(),
            op: "load",
            source: std::io::Error::other("key store not implemented yet"),
        })
    }

    /// The key material for `id`.
    #[must_use]
    pub fn get(&self, id: &PublicId) -> Option<&KeyMaterial> {
        self.entries.get(id)
    }
}
