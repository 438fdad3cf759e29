//! Small, copyable error and rejection types. None of them carries a secret:
//! positions and lengths only, never the offending text.

use core::fmt;

use crate::counter::Counter;

/// Why a modhex string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModhexError {
    /// Modhex encodes whole bytes, so the length must be even.
    OddLength {
        /// The length that was given, in characters.
        len: usize,
    },
    /// A character outside `cbdefghijklnrtuv` (either case).
    InvalidChar {
        /// Zero-based character position of the first bad character.
        position: usize,
    },
    /// The decoded bytes do not fit the destination.
    WrongLength {
        /// Bytes the destination needs.
        expected: usize,
        /// Bytes the input holds.
        actual: usize,
    },
}

impl fmt::Display for ModhexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OddLength { len } => write!(f, "modhex length {len} is odd"),
            Self::InvalidChar { position } => {
                write!(f, "character at position {position} is not modhex")
            }
            Self::WrongLength { expected, actual } => {
                write!(f, "expected {expected} bytes of modhex, got {actual}")
            }
        }
    }
}

impl core::error::Error for ModhexError {}

/// Why a public id is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicIdError {
    /// More than 16 bytes (32 modhex characters).
    TooLong {
        /// Length in modhex characters.
        chars: usize,
    },
    /// Not valid modhex.
    Modhex(ModhexError),
}

impl fmt::Display for PublicIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { chars } => {
                write!(f, "public id of {chars} characters is longer than 32")
            }
            Self::Modhex(e) => write!(f, "public id: {e}"),
        }
    }
}

impl core::error::Error for PublicIdError {}

/// Why a string is not a Yubico OTP token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// The configured public id length is odd or above 32 characters.
    BadIdLength {
        /// The configured `token_id_length`.
        token_id_length: usize,
    },
    /// The input does not have `token_id_length + 32` characters.
    WrongLength {
        /// Characters expected.
        expected: usize,
        /// Characters (not bytes) given; capped at `usize::MAX`.
        actual: usize,
    },
    /// A character that is not modhex.
    NotModhex {
        /// Zero-based character position.
        position: usize,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadIdLength { token_id_length } => write!(
                f,
                "token_id_length {token_id_length} must be even and at most 32"
            ),
            Self::WrongLength { expected, actual } => {
                write!(f, "OTP has {actual} characters, expected {expected}")
            }
            Self::NotModhex { position } => {
                write!(f, "OTP character at position {position} is not modhex")
            }
        }
    }
}

impl core::error::Error for TokenError {}

/// Why a hex text of free length was refused ([`crate::hex::decode`]).
/// Says nothing about the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    /// An odd number of characters.
    OddLength {
        /// Characters (bytes) given.
        digits: usize,
    },
    /// A character that is not a hex digit (a sign, blank or prefix too).
    NotHex {
        /// Zero-based byte position.
        position: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OddLength { digits } => {
                write!(
                    f,
                    "hex must have an even number of digits; this has {digits}"
                )
            }
            Self::NotHex { position } => {
                write!(f, "character at position {position} is not a hex digit")
            }
        }
    }
}

impl core::error::Error for HexError {}

/// Why a hex-encoded secret (AES key, private id) was refused. Says nothing
/// about the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseSecretError {
    /// Wrong number of hex digits.
    WrongLength {
        /// Hex digits expected.
        expected: usize,
        /// Hex digits given.
        actual: usize,
    },
    /// A character that is not a hex digit.
    NotHex {
        /// Zero-based character position.
        position: usize,
    },
}

impl fmt::Display for ParseSecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { expected, actual } => {
                write!(f, "expected {expected} hex digits, got {actual}")
            }
            Self::NotHex { position } => {
                write!(f, "character at position {position} is not a hex digit")
            }
        }
    }
}

impl core::error::Error for ParseSecretError {}

/// Why a well-formed OTP was refused by the offline check. Counters are not
/// secret and are carried for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The decrypted block fails its CRC: wrong AES key or a forged token.
    BadCrc,
    /// CRC fine but the private id differs: a cloned or reprogrammed key.
    PrivateIdMismatch,
    /// The counters did not move forward.
    Replayed {
        /// The counters in the OTP.
        presented: Counter,
        /// The last accepted counters.
        last: Counter,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadCrc => f.write_str("CRC mismatch (wrong AES key or forged OTP)"),
            Self::PrivateIdMismatch => {
                f.write_str("private id mismatch (cloned or reprogrammed key?)")
            }
            Self::Replayed { presented, last } => {
                write!(f, "replayed OTP (presented {presented}, last {last})")
            }
        }
    }
}

impl core::error::Error for Rejection {}
