//! Counter state. PLACEHOLDER API — being implemented on the `stores` branch.

use std::path::{Path, PathBuf};

use yubiotp_core::{Counter, PublicId};

use super::StoreError;

/// The counter state directory.
#[derive(Debug, Clone)]
pub struct CounterStore {
    dir: PathBuf,
}

impl CounterStore {
    /// Opens (and checks) the state directory.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Locks the key's state, reads the last counter, lets `decide` judge,
    /// and on `Ok(new)` commits `new` durably before returning it.
    ///
    /// # Errors
    /// [`StoreError`] for any fault; the OTP must then not be accepted.
    pub fn check_and_advance<R>(
        &self,
        id: &PublicId,
        decide: impl FnOnce(Counter) -> Result<Counter, R>,
    ) -> Result<Result<Counter, R>, StoreError> {
        let _ = decide;
        Err(StoreError::Io {
            path: self.dir.clone(),
            op: "advance",
            source: std::io::Error::other(format!("{id}: counter store not implemented yet")),
        })
    }
}
