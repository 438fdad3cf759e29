//! Modhex: hex written with the letters `cbdefghijklnrtuv`, which sit on the
//! same keys on most keyboard layouts. Decoding folds upper case (caps lock).
//!
//! ```
//! use yubiotp_core::modhex;
//! assert_eq!(modhex::encode(&[0x47, 0x48, 0x58, 0x59, 0x60, 0x61]), "fifjgjgkhchb");
//! assert_eq!(modhex::decode("FIFJGJGKHCHB").unwrap(), [0x47, 0x48, 0x58, 0x59, 0x60, 0x61]);
//! ```

use crate::error::ModhexError;

/// The modhex alphabet: the character for nibble `n` is `ALPHABET[n]`.
pub const ALPHABET: [u8; 16] = *b"cbdefghijklnrtuv";

/// Nibble value of every byte, `0xff` for bytes outside the alphabet.
#[allow(clippy::indexing_slicing)] // const evaluation; indices are < 16 and < 256
const NIBBLE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut n = 0;
    while n < 16 {
        let c = ALPHABET[n];
        t[c as usize] = n as u8;
        t[c.to_ascii_uppercase() as usize] = n as u8;
        n += 1;
    }
    t
};

/// Table lookup; a `u8` index into 256 entries cannot be out of bounds.
#[allow(clippy::indexing_slicing)]
const fn lut(c: u8) -> u8 {
    NIBBLE[c as usize]
}

/// The nibble value of one modhex character (either case), or `None`.
#[must_use]
pub const fn nibble(c: u8) -> Option<u8> {
    match lut(c) {
        0xff => None,
        n => Some(n),
    }
}

/// Decodes pairs of modhex characters into `out` without stopping at a bad
/// character; returns false when any character was bad. `src` must hold
/// exactly `2 * out.len()` bytes (else false).
pub(crate) fn decode_lossy(src: &[u8], out: &mut [u8]) -> bool {
    if src.len() != 2 * out.len() {
        return false;
    }
    let mut bad = 0u8;
    for (pair, dst) in src.chunks_exact(2).zip(out.iter_mut()) {
        let (hi, lo) = match pair {
            [hi, lo] => (lut(*hi), lut(*lo)),
            _ => (0xff, 0xff),
        };
        bad |= (hi | lo) & 0xf0;
        *dst = (hi << 4) | (lo & 0x0f);
    }
    bad == 0
}

fn char_of(n: u8) -> char {
    // `n & 0xf` is always a valid index into a 16-entry table.
    char::from(ALPHABET.get(usize::from(n & 0x0f)).copied().unwrap_or(b'c'))
}

/// Encodes bytes as lower-case modhex, high nibble first.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char_of(b >> 4));
        out.push(char_of(*b));
    }
    out
}

/// True when `s` is non-strictly modhex: even length, every character in
/// the alphabet (either case).
#[must_use]
pub fn is_modhex(s: &str) -> bool {
    s.len().is_multiple_of(2) && s.bytes().all(|c| nibble(c).is_some())
}

/// Decodes modhex (either case) into exactly `out.len()` bytes.
///
/// # Errors
/// [`ModhexError::WrongLength`] when `s` does not hold exactly `out.len()`
/// bytes, [`ModhexError::OddLength`], or [`ModhexError::InvalidChar`] with
/// the position of the first bad character. `out` is unspecified on error.
pub fn decode_into(s: &[u8], out: &mut [u8]) -> Result<(), ModhexError> {
    if !s.len().is_multiple_of(2) {
        return Err(ModhexError::OddLength { len: s.len() });
    }
    if s.len() / 2 != out.len() {
        return Err(ModhexError::WrongLength {
            expected: out.len(),
            actual: s.len() / 2,
        });
    }
    for (i, (pair, dst)) in s.chunks_exact(2).zip(out.iter_mut()).enumerate() {
        let (hi, lo) = match pair {
            [hi, lo] => (*hi, *lo),
            _ => return Err(ModhexError::OddLength { len: s.len() }),
        };
        let hi = nibble(hi).ok_or(ModhexError::InvalidChar { position: 2 * i })?;
        let lo = nibble(lo).ok_or(ModhexError::InvalidChar {
            position: 2 * i + 1,
        })?;
        *dst = (hi << 4) | lo;
    }
    Ok(())
}

/// Decodes modhex (either case) into a new vector.
///
/// # Errors
/// [`ModhexError::OddLength`] or [`ModhexError::InvalidChar`] (position of
/// the first bad character, counted in characters).
pub fn decode(s: &str) -> Result<Vec<u8>, ModhexError> {
    // Report a bad character by character position, also for non-ASCII input.
    if let Some((position, _)) = s
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii() || nibble(*c as u8).is_none())
    {
        return Err(ModhexError::InvalidChar { position });
    }
    let mut out = vec![0u8; s.len() / 2];
    decode_into(s.as_bytes(), &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_round_trips_every_nibble() {
        for (n, c) in ALPHABET.iter().enumerate() {
            assert_eq!(nibble(*c), Some(n as u8));
            assert_eq!(nibble(c.to_ascii_uppercase()), Some(n as u8));
        }
        assert_eq!(nibble(b'a'), None);
        assert_eq!(nibble(b'0'), None);
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(decode("cbx"), Err(ModhexError::InvalidChar { position: 2 }));
        assert_eq!(decode("cbd"), Err(ModhexError::OddLength { len: 3 }));
        assert_eq!(decode("céc"), Err(ModhexError::InvalidChar { position: 1 }));
        let mut out = [0u8; 2];
        assert_eq!(
            decode_into(b"cbdefg", &mut out),
            Err(ModhexError::WrongLength {
                expected: 2,
                actual: 3
            })
        );
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(encode(&[]), "");
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }
}
