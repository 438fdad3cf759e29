//! `TtyHost`: the module's `Host` for a terminal, so `ykmap verify` runs
//! the module's own authentication flow. Prompts are echo-off on the
//! controlling terminal (or read a line from standard input when it is not
//! a terminal); log lines go to stderr.

use std::io::{BufRead, IsTerminal, Read};

use pam_yubiotp::host::{ConvError, Host, HostError, Level, Log};
use pam_yubiotp::secret::SecretBytes;

/// The terminal as a PAM host.
#[derive(Debug)]
pub struct TtyHost {
    user: String,
    answer: Option<SecretBytes>,
    authtok: Option<SecretBytes>,
}

impl TtyHost {
    /// A host for `user`; `answer` is the reply to the first prompt (the
    /// OTP from the command line), if any.
    #[must_use]
    pub fn new(user: &str, answer: Option<SecretBytes>) -> Self {
        Self {
            user: user.to_string(),
            answer,
            authtok: None,
        }
    }

    /// What the module put in PAM_AUTHTOK (a password typed before the OTP).
    #[must_use]
    pub fn authtok_set(&self) -> bool {
        self.authtok.is_some()
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Err => "err",
        Level::Warning => "warning",
        Level::Notice => "notice",
        Level::Info => "info",
        Level::Debug => "debug",
    }
}

impl Log for TtyHost {
    fn log(&self, level: Level, line: &str) {
        eprintln!("ykmap: log[{}]: {line}", level_name(level));
    }
}

impl Host for TtyHost {
    fn user(&mut self) -> Result<String, HostError> {
        Ok(self.user.clone())
    }

    fn service(&self) -> Option<String> {
        Some("ykmap-verify".to_string())
    }

    fn rhost(&self) -> Option<String> {
        None
    }

    fn authtok(&self) -> Result<Option<SecretBytes>, HostError> {
        Ok(self.authtok.clone())
    }

    fn set_authtok(&mut self, value: &SecretBytes) -> Result<(), HostError> {
        self.authtok = Some(value.clone());
        Ok(())
    }

    fn prompt_secret(&mut self, prompt: &str) -> Result<SecretBytes, ConvError> {
        if let Some(answer) = self.answer.take() {
            return Ok(answer);
        }
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return rpassword::prompt_password(prompt)
                .map(|s| SecretBytes::new(s.into_bytes()))
                .map_err(|_| ConvError::Failed);
        }
        let mut line = Vec::new();
        match stdin.lock().take(4096).read_until(b'\n', &mut line) {
            Ok(0) => Err(ConvError::NullResponse),
            Ok(_) => {
                while line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    line.pop();
                }
                Ok(SecretBytes::new(line))
            }
            Err(_) => Err(ConvError::Failed),
        }
    }

    fn error_message(&mut self, text: &str) {
        eprintln!("ykmap: {text}");
    }
}
