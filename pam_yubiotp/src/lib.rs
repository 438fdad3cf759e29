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
//!
//! caller not root (screen locker): session ─► prompt ─► verifier::ask
//!   ─► setuid yubiotp-verify ─► verifier::helper_main ─► the same session
//!      flow as root (OTP from stdin) ─► exit code ─► Outcome
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod atomic;
pub mod audit;
pub mod backend;
pub mod child;
pub mod config;
pub mod engine;
#[allow(unsafe_code)]
mod ffi;
pub mod fs_policy;
pub mod host;
pub mod ldap;
pub mod mapping;
pub mod net;
pub mod outcome;
pub mod privs;
pub mod prompt;
pub mod secret;
pub mod session;
pub mod store;
pub mod verifier;
