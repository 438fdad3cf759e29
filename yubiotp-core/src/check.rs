//! The whole offline decision for one OTP.

use subtle::ConstantTimeEq;

use crate::counter::Counter;
use crate::error::Rejection;
use crate::plaintext::decrypt;
use crate::secret::KeyMaterial;
use crate::token::Token;

/// An OTP that passed every offline check. Its counter must be committed
/// durably before the OTP is reported as accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// The OTP's counters, the new "last accepted" value.
    pub counter: Counter,
    /// The key's 8 Hz timestamp.
    pub timestamp: u32,
    /// The OTP was typed with caps lock on.
    pub caps_lock: bool,
}

/// Decrypts `token` with `key`, then checks, in this order: the CRC, the
/// private id (in constant time), and that the counters are strictly newer
/// than `last`.
///
/// # Errors
/// The first [`Rejection`] found.
pub fn verify_offline(token: &Token, key: &KeyMaterial, last: Counter) -> Result<Fresh, Rejection> {
    let plain = decrypt(&token.ciphertext, &key.aes_key);
    if !plain.crc_ok {
        return Err(Rejection::BadCrc);
    }
    let same_id: bool = plain
        .private_id
        .expose_bytes()
        .ct_eq(key.private_id.expose_bytes())
        .into();
    if !same_id {
        return Err(Rejection::PrivateIdMismatch);
    }
    let presented = plain.counter();
    if !presented.is_fresh_after(last) {
        return Err(Rejection::Replayed { presented, last });
    }
    Ok(Fresh {
        counter: presented,
        timestamp: plain.timestamp,
        caps_lock: plain.caps_lock(),
    })
}
