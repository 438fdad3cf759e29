//! Making OTPs: what a YubiKey does when touched. Used by the software key
//! (`ykmap softkey`) and by tests.

use aes::Aes128Enc;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use zeroize::Zeroize;

use crate::counter::Counter;
use crate::crc16;
use crate::modhex;
use crate::public_id::PublicId;
use crate::secret::{AesKey, KeyMaterial};

/// AES-128-ECB encryption of one block.
#[must_use]
pub fn encrypt_block(plain: &[u8; 16], key: &AesKey) -> [u8; 16] {
    let cipher = Aes128Enc::new(GenericArray::from_slice(key.expose_bytes()));
    let mut block = *plain;
    cipher.encrypt_block(GenericArray::from_mut_slice(&mut block));
    block
}

/// Builds the OTP string a key would type: `public_id` in modhex followed by
/// the encrypted block holding the private id, `counter` (with the caps-lock
/// flag when `caps_lock`), the low 24 bits of `timestamp`, `random` and the
/// CRC. The result holds the ciphertext: never log it.
#[must_use]
pub fn mint_token(
    public_id: &PublicId,
    key: &KeyMaterial,
    counter: Counter,
    caps_lock: bool,
    timestamp: u32,
    random: u16,
) -> String {
    let mut block = [0u8; 16];
    let use_raw = counter.use_counter() | if caps_lock { 0x8000 } else { 0 };
    let [t0, t1, t2, _] = timestamp.to_le_bytes();
    let [u0, u1] = use_raw.to_le_bytes();
    let [r0, r1] = random.to_le_bytes();
    let [p0, p1, p2, p3, p4, p5] = *key.private_id.expose_bytes();
    let head = [
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
        counter.session(),
        r0,
        r1,
    ];
    let [c0, c1] = crc16::crc_field(&head);
    for (dst, src) in block.iter_mut().zip(head.iter().chain([c0, c1].iter())) {
        *dst = *src;
    }
    let mut cipher = encrypt_block(&block, &key.aes_key);
    block.zeroize();
    let mut out = public_id.to_modhex();
    out.push_str(&modhex::encode(&cipher));
    cipher.zeroize();
    out
}
