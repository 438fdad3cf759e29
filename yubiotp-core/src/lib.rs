//! Pure Yubico OTP primitives: everything needed to read, check and mint a
//! YubiKey's Yubico OTP, with no I/O, no clock, no environment and no `unsafe`.
//!
//! ```text
//!  the 44 characters a YubiKey types (token_id_length = 12):
//!
//!  ccccccdbjrgf  dteffujehknhfjbrjnlnldnhcujvdd
//!  └─ public id ┘└── 32 modhex chars: AES-128-ECB ciphertext ──┘
//!      (modhex, 0–32 chars)
//!
//!  the 16-byte plaintext, after decryption with the key's AES secret:
//!
//!  0          6      8          11  12     14     16
//!  ├ private ─┼ use ─┼ timestamp ┼ s ┼ rand ┼ crc ─┤
//!  │ id (6)   │ ctr  │ (3, LE)   │ e │ (2)  │ (2, │
//!  │          │(2,LE)│ 8 Hz      │ s │      │ LE) │
//!  use ctr: low 15 bits count power-ups, bit 15 = "typed with caps lock"
//!  session: OTPs since power-up; CRC16 over all 16 bytes leaves 0xf0b8
//! ```
//!
//! Time, randomness and stored counters come in as arguments; decisions go
//! out as values ([`verify_offline`] returns [`Fresh`] or a [`Rejection`]).
//! Secrets ([`AesKey`], [`PrivateId`], [`Ciphertext`]) zeroize on drop and
//! print as `[redacted]`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod counter;
pub mod crc16;
pub mod error;
pub mod hex;
pub mod mint;
pub mod modhex;
pub mod plaintext;
pub mod public_id;
pub mod secret;
pub mod serial;
pub mod token;

pub use check::{Fresh, verify_offline};
pub use counter::Counter;
pub use error::{HexError, ModhexError, ParseSecretError, PublicIdError, Rejection, TokenError};
pub use mint::{encrypt_block, mint_token};
pub use plaintext::{Plaintext, decrypt};
pub use public_id::PublicId;
pub use secret::{AesKey, Ciphertext, KeyMaterial, PrivateId};
pub use serial::{public_id_to_serial, serial_to_public_id};
pub use token::{CIPHERTEXT_CHARS, Token, split_trailing_otp};
