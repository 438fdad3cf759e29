//! Making OTPs: what a YubiKey does when touched. Used by the software key
//! (`ykmap softkey`) and by tests.

use aes::Aes128Enc;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use zeroize::Zeroize;

use crate::counter::Counter;
use crate::modhex;
use crate::plaintext::Plaintext;
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
    let plain = Plaintext {
        private_id: key.private_id.clone(),
        use_counter_raw: counter.use_counter() | if caps_lock { 0x8000 } else { 0 },
        timestamp: timestamp & 0x00ff_ffff,
        session: counter.session(),
        random,
        crc_ok: true,
    };
    let mut block = plain.to_block();
    let mut cipher = encrypt_block(&block, &key.aes_key);
    block.zeroize();
    let mut out = public_id.to_modhex();
    out.push_str(&modhex::encode(&cipher));
    cipher.zeroize();
    out
}
