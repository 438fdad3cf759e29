//! Yubico Validation Protocol 2.0 client.
//! PLACEHOLDER — being implemented on the `cloud` branch.

use yubiotp_core::Token;

use super::{CloudBackend, CloudVerdict};
use crate::config::CloudSettings;
use crate::host::Log;

/// Validates against the configured servers.
#[allow(missing_debug_implementations)]
pub struct CloudValidator<'a> {
    settings: &'a CloudSettings,
    log: &'a dyn Log,
    debug: bool,
}

impl<'a> CloudValidator<'a> {
    /// A validator for one attempt.
    #[must_use]
    pub fn new(settings: &'a CloudSettings, log: &'a dyn Log, debug: bool) -> Self {
        Self {
            settings,
            log,
            debug,
        }
    }
}

impl CloudBackend for CloudValidator<'_> {
    fn verify(&self, _token: &Token) -> CloudVerdict {
        let _ = (self.settings, self.log, self.debug);
        CloudVerdict::NoAnswer {
            summary: "cloud validation not implemented yet".to_string(),
        }
    }
}
