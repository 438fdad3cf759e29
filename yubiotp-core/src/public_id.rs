//! The public id: the clear-text prefix of an OTP that names the key.

use core::fmt;
use core::str::FromStr;

use crate::error::PublicIdError;
use crate::modhex;

/// A public id of 0–16 bytes (0–32 modhex characters; 6 bytes is standard).
/// Not secret: it is what mapping files and logs name a key by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicId {
    len: u8,
    bytes: [u8; 16],
}

impl PublicId {
    /// Longest public id, in bytes.
    pub const MAX_BYTES: usize = 16;

    /// Builds a public id from raw bytes.
    ///
    /// # Errors
    /// [`PublicIdError::TooLong`] for more than 16 bytes.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, PublicIdError> {
        let mut bytes = [0u8; 16];
        let dst = bytes.get_mut(..raw.len()).ok_or(PublicIdError::TooLong {
            chars: raw.len() * 2,
        })?;
        dst.copy_from_slice(raw);
        Ok(Self {
            len: u8::try_from(raw.len()).unwrap_or(u8::MAX),
            bytes,
        })
    }

    /// Builds a public id from a fixed array of at most 16 bytes (checked at
    /// compile time), so this cannot fail.
    #[must_use]
    pub fn from_array<const N: usize>(raw: [u8; N]) -> Self {
        const { assert!(N <= 16, "a public id has at most 16 bytes") };
        let mut bytes = [0u8; 16];
        for (dst, src) in bytes.iter_mut().zip(raw) {
            *dst = src;
        }
        Self {
            len: u8::try_from(N).unwrap_or(16),
            bytes,
        }
    }

    /// Parses modhex (either case).
    ///
    /// # Errors
    /// Too long, odd length or a non-modhex character.
    pub fn from_modhex(s: &str) -> Result<Self, PublicIdError> {
        let chars = s.chars().count();
        if chars > 2 * Self::MAX_BYTES {
            return Err(PublicIdError::TooLong { chars });
        }
        // The checks and errors of `modhex::decode`, without its vector:
        // mapping files are scanned a public id at a time on every login.
        if let Some((position, _)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii() || modhex::nibble(*c as u8).is_none())
        {
            return Err(PublicIdError::Modhex(
                crate::error::ModhexError::InvalidChar { position },
            ));
        }
        let mut bytes = [0u8; 16];
        let dst = bytes
            .get_mut(..s.len() / 2)
            .ok_or(PublicIdError::TooLong { chars })?;
        modhex::decode_into(s.as_bytes(), dst).map_err(PublicIdError::Modhex)?;
        Ok(Self {
            len: u8::try_from(s.len() / 2).unwrap_or(u8::MAX),
            bytes,
        })
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Length in modhex characters.
    #[must_use]
    pub fn len_chars(&self) -> usize {
        usize::from(self.len) * 2
    }

    /// Lower-case modhex.
    #[must_use]
    pub fn to_modhex(&self) -> String {
        modhex::encode(self.as_bytes())
    }

    /// True for the empty public id (token_id_length = 0).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_modhex())
    }
}

impl fmt::Debug for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicId({})", self.to_modhex())
    }
}

impl FromStr for PublicId {
    type Err = PublicIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_modhex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let id: PublicId = "DTEFFUJE".parse().unwrap();
        assert_eq!(id.as_bytes(), &[0x2d, 0x34, 0x4e, 0x83]);
        assert_eq!(id.to_string(), "dteffuje");
        assert_eq!(id.len_chars(), 8);
        assert!(PublicId::from_modhex("").unwrap().is_empty());
        assert_eq!(
            PublicId::from_modhex(&"c".repeat(34)),
            Err(PublicIdError::TooLong { chars: 34 })
        );
        assert!(PublicId::from_modhex(&"c".repeat(32)).is_ok());
        assert!(PublicId::from_modhex("ccc").is_err());
    }
}
