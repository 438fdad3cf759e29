//! The one hex (base 16) codec of the project, strict and constant-time.
//!
//! Decoding accepts exactly an even number of the digits `0-9a-fA-F` —
//! no sign, no `0x`, no whitespace, no separators (callers that tolerate
//! those strip them first, on purpose and visibly). Encoding writes lower
//! case. Both run through RustCrypto's `base16ct`, which has no
//! data-dependent branches or table look-ups, so decoding an AES key or a
//! private id does not leak its digits through timing. Only after a
//! decode failed is the input scanned again (variable-time) to name the
//! first bad position; that input is invalid and never a usable secret.
//!
//! Errors say where and what is wrong, never the text.

use crate::error::{HexError, ParseSecretError};

/// Zero-based position of the first character that is not a hex digit
/// (called only on the error path).
fn first_bad(s: &str) -> usize {
    s.bytes().position(|b| !b.is_ascii_hexdigit()).unwrap_or(0)
}

/// Decodes hex of any even length.
///
/// # Errors
/// [`HexError::OddLength`] or [`HexError::NotHex`].
pub fn decode(s: &str) -> Result<Vec<u8>, HexError> {
    base16ct::mixed::decode_vec(s.as_bytes()).map_err(|e| match e {
        base16ct::Error::InvalidLength => HexError::OddLength { digits: s.len() },
        base16ct::Error::InvalidEncoding => HexError::NotHex {
            position: first_bad(s),
        },
    })
}

/// Decodes exactly `N` bytes (`2 * N` digits), e.g. a secret; no heap
/// copy is made.
///
/// # Errors
/// [`ParseSecretError::WrongLength`] (counting characters, not bytes) or
/// [`ParseSecretError::NotHex`].
pub fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], ParseSecretError> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(ParseSecretError::WrongLength {
            expected: 2 * N,
            actual: s.chars().count(),
        });
    }
    match base16ct::mixed::decode(s.as_bytes(), &mut out) {
        Ok(_) => Ok(out),
        Err(_) => {
            zeroize::Zeroize::zeroize(&mut out);
            Err(ParseSecretError::NotHex {
                position: first_bad(s),
            })
        }
    }
}

/// Lower-case hex of `bytes`. The string is allocated at its final size
/// once (no reallocation leaves copies of a secret behind).
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case() {
        assert_eq!(decode("00ff7a").unwrap(), vec![0, 255, 0x7a]);
        assert_eq!(decode("00FF7A").unwrap(), vec![0, 255, 0x7a]);
        assert_eq!(decode("00Ff7a").unwrap(), vec![0, 255, 0x7a]);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(encode(&[0, 255, 0x7a]), "00ff7a");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
        assert_eq!(decode_array::<2>("aB09").unwrap(), [0xab, 0x09]);
    }

    #[test]
    fn odd_length() {
        assert_eq!(decode("abc"), Err(HexError::OddLength { digits: 3 }));
        assert_eq!(decode("a"), Err(HexError::OddLength { digits: 1 }));
        assert_eq!(
            decode_array::<2>("abc"),
            Err(ParseSecretError::WrongLength {
                expected: 4,
                actual: 3
            })
        );
    }

    #[test]
    fn signs_prefixes_blanks_and_non_hex_are_refused() {
        for (text, position) in [
            ("+f", 0),
            ("-f", 0),
            ("f+", 1),
            ("0x12", 1),
            (" 1", 0),
            ("1 ", 1),
            ("0g", 1),
            ("gg", 0),
            ("\u{e9}", 0),
            ("12\n3", 2),
        ] {
            let expected = if text.len() % 2 == 0 {
                Err(HexError::NotHex { position })
            } else {
                Err(HexError::OddLength { digits: text.len() })
            };
            assert_eq!(decode(text), expected, "{text:?}");
        }
        assert_eq!(
            decode_array::<1>("+f"),
            Err(ParseSecretError::NotHex { position: 0 })
        );
        assert_eq!(
            decode_array::<3>("\u{e9}\u{e9}\u{e9}"),
            Err(ParseSecretError::NotHex { position: 0 })
        );
    }
}
