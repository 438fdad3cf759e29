//! CRC16 as the YubiKey computes it: ISO 13239 (the HDLC frame check),
//! reflected polynomial 0x8408, initial value 0xffff, no final XOR. The OTP
//! stores the one's complement little-endian in its last two bytes, so the
//! CRC over all 16 bytes of a good block is the constant [`RESIDUE`].

/// CRC over a whole valid block, its stored CRC included.
pub const RESIDUE: u16 = 0xf0b8;

/// ISO 13239 CRC16 of `data` (no final complement).
#[must_use]
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for b in data {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb != 0 {
                crc ^= 0x8408;
            }
        }
    }
    crc
}

/// True when a 16-byte plaintext block carries a correct CRC.
#[must_use]
pub fn is_valid(block: &[u8; 16]) -> bool {
    crc16(block) == RESIDUE
}

/// The two CRC bytes to store at offset 14 for the first 14 bytes `head`.
#[must_use]
pub fn crc_field(head: &[u8; 14]) -> [u8; 2] {
    (!crc16(head)).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yubico_vector_residue() {
        // yubico-c test-vectors.txt plaintext.
        let block = [
            0x87, 0x92, 0xeb, 0xfe, 0x26, 0xcc, 0x13, 0x00, 0x30, 0xc2, 0x00, 0x11, 0xc8, 0x9f,
            0x23, 0xc8,
        ];
        assert_eq!(crc16(&block), RESIDUE);
        assert!(is_valid(&block));
        let mut head = [0u8; 14];
        head.copy_from_slice(&block[..14]);
        assert_eq!(crc_field(&head), [0x23, 0xc8]);
        let mut bad = block;
        bad[3] ^= 1;
        assert!(!is_valid(&bad));
    }
}
