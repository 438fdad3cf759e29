//! Getting the OTP (SPEC §5): from the conversation, or from the end of
//! PAM_AUTHTOK with `try_first_pass`/`use_first_pass`. When a password was
//! typed in front of the OTP it goes back into PAM_AUTHTOK for the next
//! module (`pam_unix use_first_pass`).

use yubiotp_core::{CIPHERTEXT_CHARS, split_trailing_otp};

use crate::config::{FirstPass, Settings};
use crate::host::{ConvError, Host, Level};
use crate::secret::SecretBytes;

/// The placeholder password sshd hands PAM for invalid users and refused
/// root logins (OpenSSH repeats it to the length of what was typed).
pub const SSHD_FAKE_PASSWORD: &[u8] = b"\x08\n\r\x7fINCORRECT";

/// Answers longer than this are refused before they are looked at (no OTP,
/// even after a long password, comes close).
pub const MAX_ANSWER: usize = 4096;

/// True for sshd's placeholder password at any length: every byte is the
/// pattern's byte at that position, repeated.
#[must_use]
pub fn is_sshd_placeholder(input: &[u8]) -> bool {
    !input.is_empty()
        && input
            .iter()
            .zip(SSHD_FAKE_PASSWORD.iter().cycle())
            .all(|(a, b)| a == b)
}

fn is_modhex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|c| yubiotp_core::modhex::nibble(*c).is_some())
}

/// What the user gave us.
#[derive(Debug)]
pub enum Obtained {
    /// Text that has the length of an OTP (not yet parsed).
    Otp(SecretBytes),
    /// Nothing usable; the string is the reason (lengths only, no text).
    Unusable(String),
}

/// Why no answer could be had.
#[derive(Debug)]
pub enum PromptError {
    /// The conversation failed.
    Conv(ConvError),
    /// PAM_AUTHTOK could not be read or set.
    AuthTok(String),
}

fn otp_len(settings: &Settings) -> usize {
    settings.token_id_length + CIPHERTEXT_CHARS
}

/// Splits `input` into (OTP, optional password) or explains why it is not
/// usable; sets PAM_AUTHTOK to the password part when there is one.
fn take_otp(
    host: &mut impl Host,
    settings: &Settings,
    input: &SecretBytes,
) -> Result<Option<SecretBytes>, PromptError> {
    let n = otp_len(settings);
    if input.len() > MAX_ANSWER || is_sshd_placeholder(input.expose()) {
        return Ok(None);
    }
    if input.len() == n && is_modhex(input.expose()) {
        return Ok(Some(input.clone()));
    }
    let Some(text) = input.expose_str() else {
        return Ok(None);
    };
    let Some((password, otp)) = split_trailing_otp(text, settings.token_id_length) else {
        return Ok(None);
    };
    let password = SecretBytes::new(password.as_bytes().to_vec());
    host.set_authtok(&password)
        .map_err(|_| PromptError::AuthTok("could not set PAM_AUTHTOK".into()))?;
    Ok(Some(SecretBytes::new(otp.as_bytes().to_vec())))
}

fn describe(input: &SecretBytes, settings: &Settings) -> String {
    if is_sshd_placeholder(input.expose()) {
        "sshd's placeholder password (invalid user or refused root login)".to_string()
    } else if input.len() > MAX_ANSWER {
        format!(
            "answer of {} bytes is longer than {MAX_ANSWER}",
            input.len()
        )
    } else if input.is_empty() {
        "empty answer".to_string()
    } else if input.expose_str().is_none() {
        format!("answer of {} bytes is not UTF-8", input.len())
    } else {
        format!(
            "answer of {} bytes holds no OTP of {} characters",
            input.len(),
            otp_len(settings)
        )
    }
}

fn input_len_is_otp(input: &SecretBytes, settings: &Settings) -> bool {
    input.len() == otp_len(settings) && !is_sshd_placeholder(input.expose())
}

/// Gets the OTP per `settings.first_pass`.
///
/// # Errors
/// [`PromptError`] on a conversation failure or a PAM_AUTHTOK fault.
pub fn obtain_otp(host: &mut impl Host, settings: &Settings) -> Result<Obtained, PromptError> {
    if settings.first_pass != FirstPass::Prompt {
        let authtok = host
            .authtok()
            .map_err(|_| PromptError::AuthTok("could not read PAM_AUTHTOK".into()))?;
        if let Some(tok) = authtok {
            if is_sshd_placeholder(tok.expose()) {
                host.log(
                    Level::Warning,
                    "PAM_AUTHTOK is sshd's placeholder password (invalid user or refused root login)",
                );
                return Ok(Obtained::Unusable(describe(&tok, settings)));
            }
            if let Some(otp) = take_otp(host, settings, &tok)? {
                return Ok(Obtained::Otp(otp));
            }
        }
        if settings.first_pass == FirstPass::Use {
            return Ok(Obtained::Unusable(
                "use_first_pass: no OTP at the end of PAM_AUTHTOK".to_string(),
            ));
        }
    }
    let answer = host
        .prompt_secret(&settings.prompt)
        .map_err(PromptError::Conv)?;
    if input_len_is_otp(&answer, settings) {
        // Exactly OTP-sized: parsed (and refused with a reason) as an OTP.
        return Ok(Obtained::Otp(answer));
    }
    match take_otp(host, settings, &answer)? {
        Some(otp) => Ok(Obtained::Otp(otp)),
        None => Ok(Obtained::Unusable(describe(&answer, settings))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_placeholder_at_any_length() {
        assert!(is_sshd_placeholder(SSHD_FAKE_PASSWORD));
        assert!(is_sshd_placeholder(b"\x08\n\r\x7fINC"));
        let long: Vec<u8> = SSHD_FAKE_PASSWORD
            .iter()
            .cycle()
            .take(44)
            .copied()
            .collect();
        assert!(is_sshd_placeholder(&long));
        assert!(!is_sshd_placeholder(b""));
        assert!(!is_sshd_placeholder(b"\x08\n\r\x7fINCORRECTx"));
        assert!(!is_sshd_placeholder(b"hunter2"));
    }
}
