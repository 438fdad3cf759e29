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

const fn step(mut crc: u16, b: u8) -> u16 {
    crc ^= b as u16;
    let mut i = 0;
    while i < 8 {
        crc = if crc & 1 != 0 {
            (crc >> 1) ^ 0x8408
        } else {
            crc >> 1
        };
        i += 1;
    }
    crc
}

/// The CRC register is linear, so over a fixed 16 bytes it is the CRC of
/// 16 zero bytes XOR one table entry per position: `POSITION[i][b]` is the
/// effect of byte `b` at position `i` (init 0). Sixteen independent lookups
/// instead of 128 dependent bit steps.
#[allow(clippy::indexing_slicing)] // const evaluation; indices are loop-bounded
const POSITION: [[u16; 256]; 16] = {
    let mut t = [[0u16; 256]; 16];
    let mut b = 0;
    while b < 256 {
        let mut v = step(0, b as u8);
        let mut i = 15;
        loop {
            t[i][b] = v;
            if i == 0 {
                break;
            }
            i -= 1;
            v = step(v, 0);
        }
        b += 1;
    }
    t
};

const ZEROS: u16 = {
    let mut crc = 0xffff;
    let mut i = 0;
    while i < 16 {
        crc = step(crc, 0);
        i += 1;
    }
    crc
};

/// True when a 16-byte plaintext block carries a correct CRC.
#[must_use]
pub fn is_valid(block: &[u8; 16]) -> bool {
    let mut crc = ZEROS;
    for (table, b) in POSITION.iter().zip(block) {
        crc ^= table.get(usize::from(*b)).copied().unwrap_or(0);
    }
    crc == RESIDUE
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

    #[test]
    fn table_check_equals_bitwise_crc() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            let mut block = [0u8; 16];
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            assert_eq!(is_valid(&block), crc16(&block) == RESIDUE);
            let mut head = [0u8; 14];
            head.copy_from_slice(&block[..14]);
            let [c0, c1] = crc_field(&head);
            block[14] = c0;
            block[15] = c1;
            assert!(is_valid(&block));
        }
    }
}
