//! `pam_yubiotp`: a YubiKey's Yubico OTP as a PAM login factor, and the
//! validation engine that the `ykmap` admin tool shares with the module.
//!
//! ```text
//! pam_sm_authenticate (ffi) ─► session::authenticate(host, args)
//!   ─► config::from_module_args ─► mapping::keys_for(user)
//!   ─► prompt::obtain_otp ─► yubiotp_core::Token::parse
//!   ─► engine::validate ─► backend::cloud  (Validation Protocol 2.0)
//!                       └► backend::local (AES + store::counters)
//!   ─► Outcome ─► outcome::pam_code + one authpriv log line (audit)
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod backend;
pub mod child;
pub mod config;
pub mod engine;
#[allow(unsafe_code)]
mod ffi;
pub mod fs_policy;
pub mod host;
pub mod mapping;
pub mod outcome;
pub mod privs;
pub mod prompt;
pub mod secret;
pub mod session;
pub mod sshcheck;
pub mod store;

#[cfg(test)]
pub(crate) mod testutil {
    /// A temp dir inside the build's target directory, whose ancestors are
    /// not world-writable (unlike /tmp), so directory-chain checks pass.
    pub fn tempdir() -> tempfile::TempDir {
        let base = std::env::current_exe()
            .ok()
            .and_then(|p| {
                p.parent()
                    .and_then(|d| d.parent())
                    .map(|d| d.join("unit-tmp"))
            })
            .unwrap_or_else(|| std::path::PathBuf::from("/var/tmp"));
        std::fs::create_dir_all(&base).unwrap();
        tempfile::tempdir_in(base).unwrap()
    }
}
