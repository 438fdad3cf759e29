//! Decrypting the 16-byte block and reading its fields.

use core::fmt;

use aes::Aes128Dec;
use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};
use zeroize::Zeroize;

use crate::counter::Counter;
use crate::crc16;
use crate::secret::{AesKey, Ciphertext, PrivateId};

/// The decrypted fields of one OTP. The private id is a secret type.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext {
    /// The key's private id (bytes 0–5).
    pub private_id: PrivateId,
    /// The raw use counter word (bytes 6–7, little-endian), flag bit included.
    pub use_counter_raw: u16,
    /// The 24-bit 8 Hz timestamp (bytes 8–10, little-endian).
    pub timestamp: u32,
    /// Session counter (byte 11).
    pub session: u8,
    /// Random (bytes 12–13, little-endian).
    pub random: u16,
    /// True when the CRC over all 16 bytes leaves the residue 0xf0b8.
    pub crc_ok: bool,
}

impl Plaintext {
    /// Reads the fields of a decrypted block.
    #[must_use]
    pub fn from_block(block: &[u8; 16]) -> Self {
        let [
            p0,
            p1,
            p2,
            p3,
            p4,
            p5,
            u0,
            u1,
            t0,
            t1,
            t2,
            session,
            r0,
            r1,
            _c0,
            _c1,
        ] = *block;
        Self {
            private_id: PrivateId::from_bytes([p0, p1, p2, p3, p4, p5]),
            use_counter_raw: u16::from_le_bytes([u0, u1]),
            timestamp: u32::from_le_bytes([t0, t1, t2, 0]),
            session,
            random: u16::from_le_bytes([r0, r1]),
            crc_ok: crc16::is_valid(block),
        }
    }

    /// The 16-byte block of these fields, the inverse of
    /// [`Plaintext::from_block`]: the CRC field is computed over the first
    /// 14 bytes (so the block is valid whatever [`Plaintext::crc_ok`] says).
    /// The block holds the private id: the caller zeroizes it.
    #[must_use]
    pub fn to_block(&self) -> [u8; 16] {
        let [p0, p1, p2, p3, p4, p5] = *self.private_id.expose_bytes();
        let [u0, u1] = self.use_counter_raw.to_le_bytes();
        let [t0, t1, t2, _] = self.timestamp.to_le_bytes();
        let [r0, r1] = self.random.to_le_bytes();
        let session = self.session;
        let head = [p0, p1, p2, p3, p4, p5, u0, u1, t0, t1, t2, session, r0, r1];
        let [c0, c1] = crc16::crc_field(&head);
        [
            p0, p1, p2, p3, p4, p5, u0, u1, t0, t1, t2, session, r0, r1, c0, c1,
        ]
    }

    /// `(use counter & 0x7fff, session counter)`.
    #[must_use]
    pub fn counter(&self) -> Counter {
        Counter::new(self.use_counter_raw, self.session)
    }

    /// True when bit 15 of the use counter is set: the key typed the OTP
    /// with caps lock on.
    #[must_use]
    pub fn caps_lock(&self) -> bool {
        self.use_counter_raw & 0x8000 != 0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext")
            .field("private_id", &self.private_id)
            .field("counter", &self.counter())
            .field("caps_lock", &self.caps_lock())
            .field("timestamp", &self.timestamp)
            .field("crc_ok", &self.crc_ok)
            .finish_non_exhaustive()
    }
}

/// AES-128-ECB decryption of one block, then field parsing. The CRC is
/// checked and reported in [`Plaintext::crc_ok`], not enforced.
#[must_use]
pub fn decrypt(ciphertext: &Ciphertext, key: &AesKey) -> Plaintext {
    // The decrypt-only key schedule zeroizes itself on drop (aes "zeroize").
    let cipher = Aes128Dec::new(GenericArray::from_slice(key.expose_bytes()));
    let mut raw = *ciphertext.expose_bytes();
    cipher.decrypt_block(GenericArray::from_mut_slice(&mut raw));
    let plain = Plaintext::from_block(&raw);
    raw.zeroize();
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_block_is_the_inverse_of_from_block() {
        let block: [u8; 16] = [
            0x87, 0x92, 0xeb, 0xfe, 0x26, 0xcc, 0x13, 0x00, 0x25, 0x06, 0x99, 0x01, 0x8a, 0x3a, 0,
            0,
        ];
        let mut with_crc = block;
        let head: [u8; 14] = block[..14].try_into().unwrap();
        let [c0, c1] = crc16::crc_field(&head);
        with_crc[14] = c0;
        with_crc[15] = c1;
        let p = Plaintext::from_block(&with_crc);
        assert!(p.crc_ok);
        assert_eq!(p.to_block(), with_crc);
        // A block with a broken CRC comes back repaired, fields kept.
        let broken = Plaintext::from_block(&block);
        assert!(!broken.crc_ok);
        assert_eq!(broken.to_block(), with_crc);
    }

    fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn aes_key_schedules_zeroize_on_drop() {
        zeroize_on_drop::<aes::Aes128>();
        zeroize_on_drop::<aes::Aes128Dec>();
        zeroize_on_drop::<aes::Aes128Enc>();
    }
}
