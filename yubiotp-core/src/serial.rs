//! Serial number ⟷ factory public id: `cccc` + modhex of the serial as four
//! big-endian bytes (6 bytes in all).
//!
//! ```
//! use yubiotp_core::{serial_to_public_id, public_id_to_serial};
//! let id = serial_to_public_id(2_198_612);
//! assert_eq!(id.to_string(), "ccccccdbjrgf");
//! assert_eq!(public_id_to_serial(&id), Some(2_198_612));
//! ```

use crate::public_id::PublicId;

/// The factory public id of the key with this serial number.
#[must_use]
pub fn serial_to_public_id(serial: u32) -> PublicId {
    let [a, b, c, d] = serial.to_be_bytes();
    PublicId::from_array([0, 0, a, b, c, d])
}

/// The serial number behind a factory public id, or `None` when `id` is not
/// six bytes starting with two zero bytes (`cccc…`).
#[must_use]
pub fn public_id_to_serial(id: &PublicId) -> Option<u32> {
    match *id.as_bytes() {
        [0, 0, a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}
