//! The one error type of the tool and its exit codes (SPEC §9): 1 when a
//! check or an operation failed, 2 for a usage or input error.

use core::fmt;

/// Why a command did not succeed. The message is one line and never holds a
/// secret (callers build it from lengths, positions, paths and public ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Bad arguments or bad input (a file to import, stdin, an OTP that is
    /// not an OTP): exit 2, nothing changed.
    Input(String),
    /// The command ran but the answer is no, or the system refused (a check
    /// found problems, a key is unknown, a file is not trusted, permission
    /// denied): exit 1.
    Failed(String),
}

impl CliError {
    /// An input or usage error (exit 2).
    #[must_use]
    pub fn input(msg: impl Into<String>) -> Self {
        Self::Input(msg.into())
    }

    /// A failure (exit 1).
    #[must_use]
    pub fn failed(msg: impl Into<String>) -> Self {
        Self::Failed(msg.into())
    }

    /// The process exit code.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => 1,
            Self::Input(_) => 2,
        }
    }

    /// The message, without the `ykmap: ` prefix.
    #[must_use]
    pub fn message(&self) -> &str {
        match self {
            Self::Input(m) | Self::Failed(m) => m,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message holds.
        let one_line: String = self
            .message()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        f.write_str(&one_line)
    }
}

impl std::error::Error for CliError {}

impl From<pam_yubiotp::store::StoreError> for CliError {
    /// A store or file-write fault is a failure (exit 1); its message names
    /// paths and public ids, never contents.
    fn from(e: pam_yubiotp::store::StoreError) -> Self {
        Self::failed(e.to_string())
    }
}

/// Result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

/// Maps an I/O error on `what` to a failure naming it.
#[must_use]
pub fn io_failed(what: &std::path::Path, e: &std::io::Error) -> CliError {
    CliError::failed(format!("{}: {e}", what.display()))
}
