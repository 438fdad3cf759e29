//! Splitting typed text into an OTP token: public id + 32 modhex characters.

use core::fmt;

use zeroize::Zeroize;

use crate::error::TokenError;
use crate::modhex;
use crate::public_id::PublicId;
use crate::secret::Ciphertext;

/// Modhex characters of the encrypted part of every OTP.
pub const CIPHERTEXT_CHARS: usize = 32;

/// A syntactically valid OTP. The ciphertext is a secret type, so `Debug`
/// shows only the public id.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The clear-text key name.
    pub public_id: PublicId,
    /// The 16 encrypted bytes.
    pub ciphertext: Ciphertext,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("public_id", &self.public_id)
            .field("ciphertext", &self.ciphertext)
            .finish()
    }
}

fn check_id_length(token_id_length: usize) -> Result<(), TokenError> {
    if !token_id_length.is_multiple_of(2) || token_id_length > 2 * PublicId::MAX_BYTES {
        return Err(TokenError::BadIdLength { token_id_length });
    }
    Ok(())
}

impl Token {
    /// Parses `token_id_length` modhex characters of public id followed by
    /// 32 of ciphertext. Upper case is folded (caps lock). Nothing else is
    /// trimmed or tolerated. The length is checked before anything is copied.
    ///
    /// # Errors
    /// [`TokenError::BadIdLength`], [`TokenError::WrongLength`] or
    /// [`TokenError::NotModhex`] (first bad character's position).
    pub fn parse(s: &str, token_id_length: usize) -> Result<Self, TokenError> {
        check_id_length(token_id_length)?;
        let expected = token_id_length + CIPHERTEXT_CHARS;
        if s.len() != expected || !s.is_ascii() {
            // Characters, not bytes, are what a person typed.
            let actual = s.chars().count();
            if actual != expected {
                return Err(TokenError::WrongLength { expected, actual });
            }
            let position = s
                .chars()
                .position(|c| !c.is_ascii() || modhex::nibble(c as u8).is_none())
                .unwrap_or(0);
            return Err(TokenError::NotModhex { position });
        }
        let (id_part, ct_part) = s.as_bytes().split_at(token_id_length);
        let mut id = [0u8; 16];
        let mut ct = [0u8; 16];
        let id_bytes = id
            .get_mut(..token_id_length / 2)
            .ok_or(TokenError::BadIdLength { token_id_length })?;
        let ok = modhex::decode_lossy(id_part, id_bytes) & modhex::decode_lossy(ct_part, &mut ct);
        if !ok {
            ct.zeroize();
            let position = s
                .bytes()
                .position(|c| modhex::nibble(c).is_none())
                .unwrap_or(0);
            return Err(TokenError::NotModhex { position });
        }
        let public_id = PublicId::from_bytes(id_bytes)
            .map_err(|_| TokenError::BadIdLength { token_id_length })?;
        let ciphertext = Ciphertext::from_bytes(ct);
        ct.zeroize();
        Ok(Self {
            public_id,
            ciphertext,
        })
    }

    /// The token as a key would type it (lower-case modhex). This string
    /// holds the ciphertext: never log it.
    #[must_use]
    pub fn expose_string(&self) -> String {
        let mut s = self.public_id.to_modhex();
        s.push_str(&modhex::encode(self.ciphertext.expose_bytes()));
        s
    }
}

/// Finds an OTP typed right after a password ("password+OTP", SPEC §5).
///
/// Returns `(password, otp)` when `input` is longer than one OTP and its
/// last `token_id_length + 32` characters are modhex (either case); the
/// password is everything before them and is never empty. Returns `None`
/// otherwise, including for an input that is exactly one OTP.
#[must_use]
pub fn split_trailing_otp(input: &str, token_id_length: usize) -> Option<(&str, &str)> {
    check_id_length(token_id_length).ok()?;
    let n = token_id_length + CIPHERTEXT_CHARS;
    let cut = input.len().checked_sub(n)?;
    if cut == 0 || !input.is_char_boundary(cut) {
        return None;
    }
    let (password, otp) = input.split_at(cut);
    otp.bytes()
        .all(|c| modhex::nibble(c).is_some())
        .then_some((password, otp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTP: &str = "dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh";

    #[test]
    fn parses_the_yubico_vector_with_8_char_id() {
        let t = Token::parse(OTP, 8).unwrap();
        assert_eq!(t.public_id.to_string(), "dteffuje");
        assert_eq!(
            t.ciphertext.expose_bytes(),
            &[
                0x69, 0xb6, 0x48, 0x1c, 0x8b, 0xab, 0xa2, 0xb6, 0x0e, 0x8f, 0x22, 0x17, 0x9b, 0x58,
                0xcd, 0x56
            ]
        );
        assert_eq!(t.expose_string(), OTP);
        let upper = Token::parse(&OTP.to_uppercase(), 8).unwrap();
        assert_eq!(upper, t);
    }

    #[test]
    fn distinct_errors() {
        assert_eq!(
            Token::parse(OTP, 12),
            Err(TokenError::WrongLength {
                expected: 44,
                actual: 40
            })
        );
        assert_eq!(
            Token::parse(OTP, 7),
            Err(TokenError::BadIdLength { token_id_length: 7 })
        );
        assert_eq!(
            Token::parse(OTP, 34),
            Err(TokenError::BadIdLength {
                token_id_length: 34
            })
        );
        let mut bad = OTP.to_string();
        bad.replace_range(10..11, "a");
        assert_eq!(
            Token::parse(&bad, 8),
            Err(TokenError::NotModhex { position: 10 })
        );
        // A multi-byte character keeps the character position and count.
        let uni = format!("é{}", &OTP[2..]);
        assert_eq!(uni.len(), 40);
        assert_eq!(
            Token::parse(&uni, 8),
            Err(TokenError::WrongLength {
                expected: 40,
                actual: 39
            })
        );
        let uni2 = format!("{}é", &OTP[1..]);
        assert_eq!(uni2.chars().count(), 40);
        assert_eq!(
            Token::parse(&uni2, 8),
            Err(TokenError::NotModhex { position: 39 })
        );
        assert!(matches!(
            Token::parse("", 12),
            Err(TokenError::WrongLength { .. })
        ));
    }

    #[test]
    fn token_id_length_zero_and_32() {
        let t = Token::parse(&OTP[8..], 0).unwrap();
        assert!(t.public_id.is_empty());
        let long = format!("{}{}", "c".repeat(32), &OTP[8..]);
        assert_eq!(Token::parse(&long, 32).unwrap().public_id.len_chars(), 32);
    }

    #[test]
    fn split_password_and_otp() {
        let typed = format!("hunter2{OTP}");
        assert_eq!(split_trailing_otp(&typed, 8), Some(("hunter2", OTP)));
        // A password that itself ends in modhex is split by length from the right.
        let typed = format!("pwcccc{OTP}");
        assert_eq!(split_trailing_otp(&typed, 8), Some(("pwcccc", OTP)));
        assert_eq!(split_trailing_otp(OTP, 8), None);
        assert_eq!(split_trailing_otp("hunter2", 8), None);
        assert_eq!(split_trailing_otp("\u{8}\n\r\u{7f}INCORRECT", 8), None);
        let typed = format!("pässwörd{OTP}");
        assert_eq!(split_trailing_otp(&typed, 8), Some(("pässwörd", OTP)));
        // The cut must land on a character boundary.
        let typed = format!("é{}", &OTP[1..]);
        assert_eq!(split_trailing_otp(&typed, 8), None);
    }
}
