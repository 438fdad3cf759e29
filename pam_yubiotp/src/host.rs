//! The only view of PAM that the logic has. Three implementations: libpam
//! (`ffi`), a scripted fake (tests), and a terminal one (`ykmap verify`).

use crate::secret::SecretBytes;

/// Syslog priority of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something is broken and an admin must act (LOG_ERR).
    Err,
    /// Suspicious or degraded (LOG_WARNING).
    Warning,
    /// The per-attempt summary line (LOG_NOTICE).
    Notice,
    /// Informational (LOG_INFO).
    Info,
    /// Only with `debug` (LOG_DEBUG).
    Debug,
}

/// A conversation failure; always PAM_CONV_ERR (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvError {
    /// The application registered no conversation function.
    NoConversation,
    /// The conversation function returned an error.
    Failed,
    /// The conversation returned success but no answer.
    NullResponse,
}

/// A PAM call other than the conversation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// `pam_get_user` failed with a conversation error.
    Conversation,
    /// Any other failure of libpam (an item could not be read or set, or
    /// the user name is empty or not UTF-8).
    Failed,
}

/// Where the module writes its log lines; implemented by every host.
pub trait Log {
    /// Writes one line. Callers pass already-redacted text. Must not fail.
    fn log(&self, level: Level, line: &str);
}

/// What the authentication flow needs from PAM.
pub trait Host: Log {
    /// The user being authenticated (`pam_get_user`).
    ///
    /// # Errors
    /// [`HostError`] when libpam has no usable user name.
    fn user(&mut self) -> Result<String, HostError>;
    /// The PAM service name, for the log line.
    fn service(&self) -> Option<String>;
    /// The remote host, for the log line.
    fn rhost(&self) -> Option<String>;
    /// The PAM_AUTHTOK item set by an earlier module, if any.
    ///
    /// # Errors
    /// [`HostError::Failed`] when the item cannot be read.
    fn authtok(&self) -> Result<Option<SecretBytes>, HostError>;
    /// Sets PAM_AUTHTOK for the next module in the stack.
    ///
    /// # Errors
    /// [`HostError::Failed`] when libpam refuses.
    fn set_authtok(&mut self, value: &SecretBytes) -> Result<(), HostError>;
    /// Asks the user for a secret with echo off.
    ///
    /// # Errors
    /// [`ConvError`] on any conversation failure.
    fn prompt_secret(&mut self, prompt: &str) -> Result<SecretBytes, ConvError>;
    /// Shows an error message (not with `PAM_SILENT`). Failures are ignored.
    fn error_message(&mut self, text: &str);
    /// True when the application passed `PAM_DISALLOW_NULL_AUTHTOK`: a user
    /// without a key must then not be waved through, even with `nullok`.
    fn disallow_null_authtok(&self) -> bool {
        false
    }
}
