//! Arbitrary bytes → `&str` → `Token::parse` (several id lengths) and
//! `split_trailing_otp`, with their round-trip properties.
//!
//! Each input is checked twice: as UTF-8 text (when it is UTF-8), and mapped
//! byte by byte onto mixed-case modhex with a few non-modhex characters, so
//! that valid tokens and password+OTP inputs are reached often.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use libfuzzer_sys::fuzz_target;
use yubiotp_core::{CIPHERTEXT_CHARS, Token, TokenError, modhex, split_trailing_otp};

/// Valid lengths (0–32, even) and invalid ones (odd, too long).
const ID_LENGTHS: [usize; 9] = [0, 2, 12, 16, 32, 1, 13, 33, 34];

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
    }
    check(&modhex_ish(data));
});

/// Mostly modhex (either case): bytes below 0xe0 pick a modhex letter and
/// its case, the rest pick one of a few characters that are not modhex.
fn modhex_ish(data: &[u8]) -> String {
    data.iter()
        .map(|&b| {
            if b < 0xe0 {
                let c = char::from(modhex::ALPHABET[usize::from(b & 0x0f)]);
                if b & 0x10 != 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            } else {
                ['a', '0', ' ', 'é', '€', '\u{0}', 'x', 'Z'][usize::from(b & 0x07)]
            }
        })
        .collect()
}

fn check(s: &str) {
    let chars = s.chars().count();
    for n in ID_LENGTHS {
        let valid_len = n % 2 == 0 && n <= 32;
        match Token::parse(s, n) {
            Ok(t) => {
                assert!(valid_len, "parsed with a bad token_id_length");
                assert_eq!(s.len(), n + CIPHERTEXT_CHARS);
                // Round trip: the token prints as the input, lower-cased.
                let text = t.expose_string();
                assert_eq!(text, s.to_ascii_lowercase());
                assert_eq!(t.public_id.len_chars(), n);
                assert_eq!(Token::parse(&text, n).as_ref(), Ok(&t));
                assert!(modhex::is_modhex(s));
            }
            Err(TokenError::BadIdLength { token_id_length }) => {
                assert!(!valid_len);
                assert_eq!(token_id_length, n);
            }
            Err(TokenError::WrongLength { expected, actual }) => {
                assert!(valid_len);
                assert_eq!(expected, n + CIPHERTEXT_CHARS);
                assert_eq!(actual, chars);
                assert_ne!(actual, expected);
            }
            Err(TokenError::NotModhex { position }) => {
                assert!(valid_len);
                assert_eq!(chars, n + CIPHERTEXT_CHARS);
                // The position names a character that really is not modhex.
                let c = s.chars().nth(position).unwrap();
                assert!(!c.is_ascii() || modhex::nibble(c as u8).is_none());
                // And every character before it is modhex.
                assert!(
                    s.chars()
                        .take(position)
                        .all(|c| c.is_ascii() && modhex::nibble(c as u8).is_some())
                );
            }
        }

        if let Some((password, otp)) = split_trailing_otp(s, n) {
            assert!(valid_len);
            assert!(!password.is_empty());
            assert_eq!(password.len() + otp.len(), s.len());
            assert_eq!(format!("{password}{otp}"), s);
            // What was split off is a token of that id length.
            let t = Token::parse(otp, n).unwrap();
            assert_eq!(t.expose_string(), otp.to_ascii_lowercase());
        } else if valid_len && s.len() > n + CIPHERTEXT_CHARS {
            // No split although long enough: the tail must not be all modhex
            // on a character boundary.
            let cut = s.len() - (n + CIPHERTEXT_CHARS);
            assert!(!s.is_char_boundary(cut) || !modhex::is_modhex(&s[cut..]));
        }
    }
}
