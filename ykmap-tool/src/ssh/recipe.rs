//! The recipe classifier: which of the supported SSH recipes the sshd
//! settings ask for.

use super::sshd_t::{Method, SshdSettings};

/// The recipe the sshd settings ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// Some `AuthenticationMethods` list is public key, then keyboard-interactive.
    KeyThenOtp,
    /// `ForceCommand` runs `yubiotp-ssh` (the helper recipe; PAM does not
    /// ask for the OTP).
    Helper,
    /// Anything else (password+OTP, or not decided).
    Other,
}

/// Which recipe `s` configures.
#[must_use]
pub fn recipe(s: &SshdSettings) -> Recipe {
    if s.force_command_is_helper() {
        return Recipe::Helper;
    }
    let key_then_kbd = |list: &Vec<Method>| {
        let key = list.iter().position(|m| m.name == "publickey");
        let kbd = list.iter().rposition(Method::is_kbd);
        matches!((key, kbd), (Some(k), Some(i)) if k < i)
    };
    match s.method_lists() {
        Some(lists) if lists.iter().any(key_then_kbd) => Recipe::KeyThenOtp,
        _ => Recipe::Other,
    }
}
