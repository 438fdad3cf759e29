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

/// What a piece of typed text is (SPEC §5), decided from its bytes alone.
/// Every case of the rules is one arm of [`classify`]; lengths, never the
/// text, are kept for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Exactly one OTP's length, all modhex.
    Otp,
    /// One OTP's length but not all modhex: typed at the prompt it is
    /// parsed (and refused with a reason); in PAM_AUTHTOK it is a password.
    OtpLengthNotModhex,
    /// A password of `password_len` bytes followed by an OTP.
    PasswordThenOtp {
        /// Where the OTP starts.
        password_len: usize,
    },
    /// sshd's placeholder for invalid users and refused root logins.
    SshdPlaceholder,
    /// Longer than [`MAX_ANSWER`]: not looked at.
    TooLong(usize),
    /// Nothing typed.
    Empty,
    /// Not UTF-8 (an OTP never is).
    NotUtf8(usize),
    /// Text that does not end in an OTP.
    NoOtp(usize),
}

impl Shape {
    /// The reason for the log when the text holds no usable OTP.
    #[must_use]
    pub fn describe(self, otp_len: usize) -> String {
        match self {
            Self::Otp | Self::OtpLengthNotModhex | Self::PasswordThenOtp { .. } => {
                "holds an OTP".to_string()
            }
            Self::SshdPlaceholder => {
                "sshd's placeholder password (invalid user or refused root login)".to_string()
            }
            Self::TooLong(n) => format!("answer of {n} bytes is longer than {MAX_ANSWER}"),
            Self::Empty => "empty answer".to_string(),
            Self::NotUtf8(n) => format!("answer of {n} bytes is not UTF-8"),
            Self::NoOtp(n) => format!("answer of {n} bytes holds no OTP of {otp_len} characters"),
        }
    }
}

/// Classifies `input` for public ids of `token_id_length` characters: the
/// whole of SPEC §5's reading of typed text, pure.
#[must_use]
pub fn classify(input: &[u8], token_id_length: usize) -> Shape {
    let otp_len = token_id_length + CIPHERTEXT_CHARS;
    let n = input.len();
    if is_sshd_placeholder(input) {
        return Shape::SshdPlaceholder;
    }
    if n > MAX_ANSWER {
        return Shape::TooLong(n);
    }
    if n == 0 {
        return Shape::Empty;
    }
    if n == otp_len {
        return if is_modhex(input) {
            Shape::Otp
        } else {
            Shape::OtpLengthNotModhex
        };
    }
    let Ok(text) = core::str::from_utf8(input) else {
        return Shape::NotUtf8(n);
    };
    match split_trailing_otp(text, token_id_length) {
        Some((password, _)) => Shape::PasswordThenOtp {
            password_len: password.len(),
        },
        None => Shape::NoOtp(n),
    }
}

/// Hands the password in front of an OTP on to the next module through
/// PAM_AUTHTOK and returns the OTP.
fn pass_password_on(
    host: &mut impl Host,
    input: &SecretBytes,
    password_len: usize,
) -> Result<SecretBytes, PromptError> {
    let (password, otp) = input.expose().split_at(password_len.min(input.len()));
    host.set_authtok(&SecretBytes::new(password.to_vec()))
        .map_err(|_| PromptError::AuthTok("could not set PAM_AUTHTOK".into()))?;
    Ok(SecretBytes::new(otp.to_vec()))
}

/// Gets the OTP per `settings.first_pass`.
///
/// # Errors
/// [`PromptError`] on a conversation failure or a PAM_AUTHTOK fault.
pub fn obtain_otp(host: &mut impl Host, settings: &Settings) -> Result<Obtained, PromptError> {
    let id_len = settings.token_id_length;
    let otp_len = id_len + CIPHERTEXT_CHARS;
    if settings.first_pass != FirstPass::Prompt {
        let authtok = host
            .authtok()
            .map_err(|_| PromptError::AuthTok("could not read PAM_AUTHTOK".into()))?;
        if let Some(tok) = authtok {
            match classify(tok.expose(), id_len) {
                Shape::SshdPlaceholder => {
                    host.log(
                        Level::Warning,
                        "PAM_AUTHTOK is sshd's placeholder password (invalid user or refused root login)",
                    );
                    return Ok(Obtained::Unusable(Shape::SshdPlaceholder.describe(otp_len)));
                }
                Shape::Otp => return Ok(Obtained::Otp(tok)),
                Shape::PasswordThenOtp { password_len } => {
                    return pass_password_on(host, &tok, password_len).map(Obtained::Otp);
                }
                // A password alone: the OTP is still to be asked for.
                _ => {}
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
    match classify(answer.expose(), id_len) {
        // Exactly OTP-sized: parsed (and refused with a reason) as an OTP.
        Shape::Otp | Shape::OtpLengthNotModhex => Ok(Obtained::Otp(answer)),
        Shape::PasswordThenOtp { password_len } => {
            pass_password_on(host, &answer, password_len).map(Obtained::Otp)
        }
        other => Ok(Obtained::Unusable(other.describe(otp_len))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTP: &str = "ccccccdbjrgfkhhihrjibcbdjblukfnkrctutvrkrgnj";

    #[test]
    fn classify_is_spec_5() {
        let c = |s: &[u8]| classify(s, 12);
        assert_eq!(c(OTP.as_bytes()), Shape::Otp);
        assert_eq!(c(OTP.to_uppercase().as_bytes()), Shape::Otp, "caps lock");
        assert_eq!(c(&[b'x'; 44]), Shape::OtpLengthNotModhex);
        let pw_otp = format!("hunter2{OTP}");
        assert_eq!(
            c(pw_otp.as_bytes()),
            Shape::PasswordThenOtp { password_len: 7 }
        );
        assert_eq!(c(b"hunter2"), Shape::NoOtp(7));
        assert_eq!(c(b""), Shape::Empty);
        assert_eq!(c(b"\xff\xfe password"), Shape::NotUtf8(11));
        assert_eq!(c(&[b'c'; MAX_ANSWER + 1]), Shape::TooLong(MAX_ANSWER + 1));
        assert_eq!(c(SSHD_FAKE_PASSWORD), Shape::SshdPlaceholder);
        let placeholder_44: Vec<u8> = SSHD_FAKE_PASSWORD
            .iter()
            .cycle()
            .take(44)
            .copied()
            .collect();
        assert_eq!(c(&placeholder_44), Shape::SshdPlaceholder);
        // Another public id length moves every boundary.
        assert_eq!(classify(&OTP.as_bytes()[4..], 8), Shape::Otp);
        assert_eq!(
            classify(OTP.as_bytes(), 8),
            Shape::PasswordThenOtp { password_len: 4 }
        );
        // Reasons carry lengths, never the text.
        assert!(!Shape::NoOtp(7).describe(44).contains("hunter2"));
    }

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
