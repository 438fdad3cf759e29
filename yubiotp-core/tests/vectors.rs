//! Published Yubico OTP test vectors (anchors.md §2.6–§2.7) and the offline
//! decision rules pinned on them.
//!
//! Every secret in this file is a public test vector (yubico-c
//! `test-vectors.txt`, the `ykparse` man page, the otp_offline README, an
//! all-zero key), so printing it in an assertion message is harmless.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use yubiotp_core::{
    AesKey, CIPHERTEXT_CHARS, Ciphertext, Counter, KeyMaterial, PrivateId, PublicId, Rejection,
    Token, crc16, decrypt, encrypt_block, mint_token, modhex, public_id_to_serial,
    serial_to_public_id, verify_offline,
};

// ---------------------------------------------------------------------------
// Vector 1: yubico-c test-vectors.txt
// ---------------------------------------------------------------------------

const YUBICO_KEY: &str = "ecde18dbe76fbd0c33330f1c354871db";
const YUBICO_UID: &str = "8792ebfe26cc";
const YUBICO_OTP: &str = "dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh";
const YUBICO_CT: [u8; 16] = [
    0x69, 0xb6, 0x48, 0x1c, 0x8b, 0xab, 0xa2, 0xb6, 0x0e, 0x8f, 0x22, 0x17, 0x9b, 0x58, 0xcd, 0x56,
];
const YUBICO_PLAIN: [u8; 16] = [
    0x87, 0x92, 0xeb, 0xfe, 0x26, 0xcc, 0x13, 0x00, 0x30, 0xc2, 0x00, 0x11, 0xc8, 0x9f, 0x23, 0xc8,
];

fn yubico_key() -> AesKey {
    AesKey::from_hex(YUBICO_KEY).unwrap()
}

fn yubico_material() -> KeyMaterial {
    KeyMaterial {
        aes_key: yubico_key(),
        private_id: PrivateId::from_hex(YUBICO_UID).unwrap(),
    }
}

fn yubico_token() -> Token {
    Token::parse(YUBICO_OTP, 8).unwrap()
}

#[test]
fn yubico_c_vector_parses() {
    let t = yubico_token();
    assert_eq!(t.public_id.to_string(), "dteffuje");
    assert_eq!(t.public_id.as_bytes(), &[0x2d, 0x34, 0x4e, 0x83]);
    assert_eq!(t.ciphertext.expose_bytes(), &YUBICO_CT);
    assert_eq!(t.expose_string(), YUBICO_OTP);
    // The default 12-character id length does not fit a 40-character OTP.
    assert!(Token::parse(YUBICO_OTP, 12).is_err());
    // Caps lock on the host side: the same token, folded.
    assert_eq!(Token::parse(&YUBICO_OTP.to_uppercase(), 8).unwrap(), t);
}

#[test]
fn yubico_c_vector_decrypts() {
    let p = decrypt(&yubico_token().ciphertext, &yubico_key());
    assert_eq!(p.private_id, PrivateId::from_hex(YUBICO_UID).unwrap());
    assert_eq!(
        p.private_id.expose_bytes(),
        &[0x87, 0x92, 0xeb, 0xfe, 0x26, 0xcc]
    );
    assert_eq!(p.use_counter_raw, 19);
    assert!(!p.caps_lock());
    assert_eq!(p.timestamp & 0xffff, 0xc230, "timestamp low");
    assert_eq!(p.timestamp >> 16, 0, "timestamp high");
    assert_eq!(p.timestamp, 0x00_c230);
    assert_eq!(p.session, 17);
    assert_eq!(p.random, 0x9fc8);
    assert!(p.crc_ok);
    assert_eq!(p.counter(), Counter::new(19, 17));
}

#[test]
fn yubico_c_vector_encrypts() {
    assert_eq!(encrypt_block(&YUBICO_PLAIN, &yubico_key()), YUBICO_CT);
}

#[test]
fn yubico_c_vector_crc_field() {
    let head: [u8; 14] = YUBICO_PLAIN[..14].try_into().unwrap();
    assert_eq!(!crc16::crc16(&head), 0xc823);
    assert_eq!(crc16::crc_field(&head), [0x23, 0xc8]);
    assert_eq!(&YUBICO_PLAIN[14..], &[0x23, 0xc8]);
    assert_eq!(crc16::crc16(&YUBICO_PLAIN), crc16::RESIDUE);
    assert_eq!(crc16::RESIDUE, 0xf0b8);
    assert!(crc16::is_valid(&YUBICO_PLAIN));
    // Any single flipped bit breaks the residue.
    for i in 0..16 {
        for bit in 0..8 {
            let mut b = YUBICO_PLAIN;
            b[i] ^= 1 << bit;
            assert!(!crc16::is_valid(&b), "byte {i} bit {bit}");
        }
    }
}

#[test]
fn yubico_c_vector_fresh_after_lower_counter() {
    let fresh = verify_offline(&yubico_token(), &yubico_material(), Counter::new(19, 16)).unwrap();
    assert_eq!(fresh.counter, Counter::new(19, 17));
    assert_eq!(fresh.timestamp, 0xc230);
    assert!(!fresh.caps_lock);
    // A brand-new key record (never used) accepts it too.
    assert!(verify_offline(&yubico_token(), &yubico_material(), Counter::default()).is_ok());
    assert!(verify_offline(&yubico_token(), &yubico_material(), Counter::new(18, 255)).is_ok());
}

#[test]
fn yubico_c_vector_replayed_after_equal_or_higher_counter() {
    for last in [
        Counter::new(19, 17),
        Counter::new(19, 18),
        Counter::new(20, 0),
        Counter::new(0x7fff, 255),
    ] {
        assert_eq!(
            verify_offline(&yubico_token(), &yubico_material(), last),
            Err(Rejection::Replayed {
                presented: Counter::new(19, 17),
                last,
            }),
            "last = {last}"
        );
    }
}

#[test]
fn yubico_c_vector_bad_crc_with_wrong_key() {
    for wrong in [
        "ecde18dbe76fbd0c33330f1c354871da", // last bit flipped
        "00000000000000000000000000000000",
        "ffffffffffffffffffffffffffffffff",
    ] {
        let key = KeyMaterial {
            aes_key: AesKey::from_hex(wrong).unwrap(),
            private_id: PrivateId::from_hex(YUBICO_UID).unwrap(),
        };
        assert!(!decrypt(&yubico_token().ciphertext, &key.aes_key).crc_ok);
        assert_eq!(
            verify_offline(&yubico_token(), &key, Counter::default()),
            Err(Rejection::BadCrc),
            "key {wrong}"
        );
    }
}

#[test]
fn yubico_c_vector_bad_crc_with_tampered_ciphertext() {
    let mut ct = YUBICO_CT;
    ct[15] ^= 0x01;
    let t = Token {
        public_id: yubico_token().public_id,
        ciphertext: Ciphertext::from_bytes(ct),
    };
    assert_eq!(
        verify_offline(&t, &yubico_material(), Counter::default()),
        Err(Rejection::BadCrc)
    );
}

#[test]
fn yubico_c_vector_private_id_mismatch() {
    // One bit off in the private id: CRC still good, uid differs.
    for off_by_one_bit in ["8792ebfe26cd", "0792ebfe26cc", "8792ebfe2ecc"] {
        let key = KeyMaterial {
            aes_key: yubico_key(),
            private_id: PrivateId::from_hex(off_by_one_bit).unwrap(),
        };
        assert_eq!(
            verify_offline(&yubico_token(), &key, Counter::default()),
            Err(Rejection::PrivateIdMismatch),
            "private id {off_by_one_bit}"
        );
    }
}

#[test]
fn crc_is_checked_before_private_id_and_counter() {
    // Wrong key, wrong private id and a higher stored counter all at once:
    // the CRC is reported first.
    let key = KeyMaterial {
        aes_key: AesKey::from_bytes([0; 16]),
        private_id: PrivateId::from_bytes([0; 6]),
    };
    assert_eq!(
        verify_offline(&yubico_token(), &key, Counter::new(0x7fff, 255)),
        Err(Rejection::BadCrc)
    );
    // Good key, wrong private id, higher counter: private id comes before replay.
    let key = KeyMaterial {
        aes_key: yubico_key(),
        private_id: PrivateId::from_bytes([0; 6]),
    };
    assert_eq!(
        verify_offline(&yubico_token(), &key, Counter::new(0x7fff, 255)),
        Err(Rejection::PrivateIdMismatch)
    );
}

#[test]
fn yubico_c_key_modhex() {
    // test-vectors.txt also gives the AES key in modhex.
    let key = yubico_key();
    assert_eq!(
        modhex::encode(key.expose_bytes()),
        "urtubjtnuihvntcreeeecvbregfjibtn"
    );
    assert_eq!(
        modhex::decode("urtubjtnuihvntcreeeecvbregfjibtn").unwrap(),
        key.expose_bytes()
    );
}

// ---------------------------------------------------------------------------
// Vector 2: ykparse man page
// ---------------------------------------------------------------------------

#[test]
fn ykparse_man_page_vector() {
    let t = Token::parse("dteffujedcflcindvdbrblehecuitvjkjevvehjd", 8).unwrap();
    assert_eq!(t.public_id.as_bytes(), &[0x2d, 0x34, 0x4e, 0x83]);
    let p = decrypt(&t.ciphertext, &yubico_key());
    assert!(p.crc_ok);
    assert_eq!(p.use_counter_raw, 0x0013);
    assert_eq!(p.timestamp & 0xffff, 0xc0a8, "timestamp low");
    assert_eq!(p.timestamp >> 16, 0x00, "timestamp high");
    assert_eq!(p.session, 0x10);
    assert_eq!(p.random, 0x08b4);
    assert!(!p.caps_lock());
    assert_eq!(p.counter(), Counter::new(0x13, 0x10));
    // Same key as vector 1, and one session step earlier: (19,16) < (19,17).
    assert_eq!(p.private_id, PrivateId::from_hex(YUBICO_UID).unwrap());
    assert!(
        verify_offline(&yubico_token(), &yubico_material(), p.counter()).is_ok(),
        "vector 1 follows vector 2"
    );
    assert!(
        verify_offline(&t, &yubico_material(), Counter::new(19, 17)).is_err(),
        "vector 2 is a replay once vector 1 was accepted"
    );
}

// ---------------------------------------------------------------------------
// Vector 3: otp_offline crate README (all-zero key)
// ---------------------------------------------------------------------------

const OTP_OFFLINE: &str = "cbcdcecfcgchkgnhckifdncgiflkcediddgrldhuubth";

#[test]
fn otp_offline_readme_vector() {
    assert_eq!(OTP_OFFLINE.len(), 44);
    let t = Token::parse(OTP_OFFLINE, 12).unwrap();
    assert_eq!(t.public_id.to_string(), "cbcdcecfcgch");
    assert_eq!(t.public_id.as_bytes(), &[1, 2, 3, 4, 5, 6]);
    assert_eq!(
        t.public_id,
        PublicId::from_array([0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
    );
    let zero = AesKey::from_bytes([0; 16]);
    let p = decrypt(&t.ciphertext, &zero);
    assert!(p.crc_ok);
    assert_eq!(
        p.private_id,
        PrivateId::from_bytes([0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c])
    );
    assert_eq!(p.use_counter_raw, 1);
    assert_eq!(p.timestamp, 0x9a_9a6d);
    assert_eq!(p.session, 1);
    assert_eq!(p.random, 0x47f0);
    assert!(!p.caps_lock());

    let key = KeyMaterial {
        aes_key: zero,
        private_id: PrivateId::from_hex("0708090a0b0c").unwrap(),
    };
    let fresh = verify_offline(&t, &key, Counter::new(1, 0)).unwrap();
    assert_eq!(fresh.counter, Counter::new(1, 1));
    assert_eq!(fresh.timestamp, 0x9a9a6d);
    assert!(matches!(
        verify_offline(&t, &key, Counter::new(1, 1)),
        Err(Rejection::Replayed { .. })
    ));
    // The 24-bit timestamp is little-endian: bytes 6d 9a 9a.
    let mut raw = [0u8; 16];
    raw[..14].copy_from_slice(&[
        7, 8, 9, 10, 11, 12, 0x01, 0x00, 0x6d, 0x9a, 0x9a, 0x01, 0xf0, 0x47,
    ]);
    let head: [u8; 14] = raw[..14].try_into().unwrap();
    raw[14..].copy_from_slice(&crc16::crc_field(&head));
    assert_eq!(
        encrypt_block(&raw, &AesKey::from_bytes([0; 16])),
        *t.ciphertext.expose_bytes(),
        "re-encrypting the documented fields gives the README ciphertext"
    );
}

// ---------------------------------------------------------------------------
// Vector 4: ykgenerate with the caps-lock bit (anchors.md §2.7)
// ---------------------------------------------------------------------------

const CAPS_PLAIN: [u8; 16] = [
    0x87, 0x92, 0xeb, 0xfe, 0x26, 0xcc, 0x01, 0x80, 0x00, 0x00, 0x00, 0x00, 0xc1, 0xa0, 0x23, 0x45,
];

fn caps_token() -> Token {
    let ct = encrypt_block(&CAPS_PLAIN, &yubico_key());
    let s = format!("dteffuje{}", modhex::encode(&ct));
    Token::parse(&s, 8).unwrap()
}

#[test]
fn ykgenerate_caps_lock_vector() {
    assert!(crc16::is_valid(&CAPS_PLAIN), "ykparse said crc check: ok");
    // The ykgenerate output that ykparse turned into CAPS_PLAIN (§2.7).
    let ct = encrypt_block(&CAPS_PLAIN, &yubico_key());
    assert_eq!(modhex::encode(&ct), "ngjecrlbhfdnrubibgugkdccgvbblcur");
    let t = caps_token();
    assert_eq!(
        Token::parse("ngjecrlbhfdnrubibgugkdccgvbblcur", 0)
            .unwrap()
            .ciphertext,
        t.ciphertext
    );
    let p = decrypt(&t.ciphertext, &yubico_key());
    assert!(p.crc_ok);
    assert_eq!(p.private_id, PrivateId::from_hex(YUBICO_UID).unwrap());
    assert_eq!(p.use_counter_raw, 0x8001);
    assert_eq!(p.counter().use_counter(), 1, "cleaned counter");
    assert!(p.caps_lock());
    assert_eq!(p.timestamp, 0);
    assert_eq!(p.session, 0);
    assert_eq!(p.random, 0xa0c1);
    // "modhex uid: jikdunvudhrr"
    assert_eq!(modhex::encode(p.private_id.expose_bytes()), "jikdunvudhrr");

    let fresh = verify_offline(&t, &yubico_material(), Counter::new(0, 255)).unwrap();
    assert_eq!(fresh.counter, Counter::new(1, 0));
    assert!(fresh.caps_lock);
    assert!(matches!(
        verify_offline(&t, &yubico_material(), Counter::new(1, 0)),
        Err(Rejection::Replayed { .. })
    ));
}

#[test]
fn ykgenerate_caps_lock_vector_matches_mint_token() {
    let minted = mint_token(
        &PublicId::from_modhex("dteffuje").unwrap(),
        &yubico_material(),
        Counter::new(1, 0),
        true,
        0,
        0xa0c1,
    );
    assert_eq!(Token::parse(&minted, 8).unwrap(), caps_token());
}

// ---------------------------------------------------------------------------
// Modhex and serial vectors
// ---------------------------------------------------------------------------

#[test]
fn modhex_vectors() {
    let pairs: [(&[u8], &str); 6] = [
        (&[0x47, 0x48, 0x58, 0x59, 0x60, 0x61], "fifjgjgkhchb"),
        (b"test", "ifhgieif"),
        (b"foobar", "hhhvhvhdhbid"),
        (&[0x2d, 0x34, 0x4e, 0x83], "dteffuje"),
        (&[0xb5, 0x65, 0x71, 0x6f], "nghgibhv"),
        (
            &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
            "cbdefghijklnrtuv",
        ),
    ];
    for (bytes, text) in pairs {
        assert_eq!(modhex::encode(bytes), text);
        assert_eq!(modhex::decode(text).unwrap(), bytes, "{text}");
        assert_eq!(
            modhex::decode(&text.to_uppercase()).unwrap(),
            bytes,
            "{text} upper"
        );
        assert!(modhex::is_modhex(text));
    }
    // The `tr abcdef0123456789 lnrtuvcbdefghijk` one-liner agrees.
    let hex = "0123456789abcdef";
    let tr: String = hex
        .chars()
        .map(|c| {
            let i = "abcdef0123456789".find(c).unwrap();
            "lnrtuvcbdefghijk".as_bytes()[i] as char
        })
        .collect();
    assert_eq!(tr, "cbdefghijklnrtuv");
    assert_eq!(&modhex::ALPHABET, b"cbdefghijklnrtuv");
}

#[test]
fn modhex_rejects_what_it_should() {
    assert!(modhex::decode("dteffujx").is_err());
    assert!(modhex::decode("dteffuj").is_err());
    assert!(modhex::decode("0123").is_err());
    assert!(!modhex::is_modhex("abc"));
    assert!(!modhex::is_modhex("cbc"));
    assert!(modhex::is_modhex(""));
}

#[test]
fn serial_vector() {
    // Serial 02198612 (as printed on the key) ↔ factory public id.
    let id = serial_to_public_id(2_198_612);
    assert_eq!(id.to_string(), "ccccccdbjrgf");
    assert_eq!(id.as_bytes(), &[0x00, 0x00, 0x00, 0x21, 0x8c, 0x54]);
    assert_eq!(public_id_to_serial(&id), Some(2_198_612));
    let parsed = PublicId::from_modhex("ccccccdbjrgf").unwrap();
    assert_eq!(public_id_to_serial(&parsed), Some(2_198_612));
    assert_eq!(
        public_id_to_serial(&PublicId::from_modhex("CCCCCCDBJRGF").unwrap()),
        Some(2_198_612)
    );
}

#[test]
fn serial_rejects_non_factory_ids() {
    // Not `cccc…`, or not six bytes.
    for id in [
        "dteffuje",
        "cbcdcecfcgch",
        "cccbccdbjrgf", // second byte not zero
        "cbccccdbjrgf", // first byte not zero
        "ccccccdbjrgfcc",
        "ccccccdbjr",
        "",
    ] {
        assert_eq!(
            public_id_to_serial(&PublicId::from_modhex(id).unwrap()),
            None,
            "{id}"
        );
    }
    assert_eq!(serial_to_public_id(0).to_string(), "cccccccccccc");
    assert_eq!(serial_to_public_id(u32::MAX).to_string(), "ccccvvvvvvvv");
}

// ---------------------------------------------------------------------------
// Offline decision rules (counters)
// ---------------------------------------------------------------------------

/// Builds the 16-byte block with the given raw fields and a correct CRC,
/// encrypts it with the vector-1 key and parses it with the vector-1 id.
fn token_with_raw(use_bytes: [u8; 2], session: u8) -> Token {
    let mut block = YUBICO_PLAIN;
    block[6..8].copy_from_slice(&use_bytes);
    block[11] = session;
    let head: [u8; 14] = block[..14].try_into().unwrap();
    block[14..].copy_from_slice(&crc16::crc_field(&head));
    assert!(crc16::is_valid(&block));
    let ct = encrypt_block(&block, &yubico_key());
    let s = format!("dteffuje{}", modhex::encode(&ct));
    assert_eq!(s.len(), 8 + CIPHERTEXT_CHARS);
    Token::parse(&s, 8).unwrap()
}

#[test]
fn caps_lock_flag_is_not_part_of_the_counter() {
    let key = yubico_material();
    for s in [0u8, 7, 255] {
        let last = Counter::new(5, s);
        // 0x8006: caps lock + use counter 6 → newer than (5, s).
        let t = token_with_raw(0x8006u16.to_le_bytes(), 0);
        let fresh = verify_offline(&t, &key, last).unwrap();
        assert_eq!(fresh.counter, Counter::new(6, 0));
        assert!(fresh.caps_lock);
        // 0x8004: caps lock + use counter 4 → older than (5, s), even though
        // the raw word 0x8004 is numerically larger than 5.
        let t = token_with_raw(0x8004u16.to_le_bytes(), 255);
        assert_eq!(
            verify_offline(&t, &key, last),
            Err(Rejection::Replayed {
                presented: Counter::new(4, 255),
                last,
            })
        );
    }
    // A stored counter never carries the flag either.
    assert_eq!(Counter::new(0x8005, 1), Counter::new(5, 1));
}

#[test]
fn session_wrap_bumps_the_use_counter() {
    let key = yubico_material();
    let last = Counter::new(5, 0xff);
    assert_eq!(last.next_otp(), Some(Counter::new(6, 0)));
    let wrapped = token_with_raw(6u16.to_le_bytes(), 0);
    assert_eq!(
        verify_offline(&wrapped, &key, last).unwrap().counter,
        Counter::new(6, 0)
    );
    let stale = token_with_raw(5u16.to_le_bytes(), 0);
    assert_eq!(
        verify_offline(&stale, &key, last),
        Err(Rejection::Replayed {
            presented: Counter::new(5, 0),
            last,
        })
    );
}

#[test]
fn use_counter_is_little_endian() {
    let key = yubico_material();
    // Bytes 00 01 are 0x0100 = 256, newer than a stored (1, 255).
    let t = token_with_raw([0x00, 0x01], 0);
    assert_eq!(decrypt(&t.ciphertext, &key.aes_key).use_counter_raw, 0x0100);
    assert_eq!(
        verify_offline(&t, &key, Counter::new(0x0001, 255))
            .unwrap()
            .counter,
        Counter::new(0x0100, 0)
    );
    // Bytes 01 00 are 0x0001 = 1, older than a stored (256, 0).
    let t = token_with_raw([0x01, 0x00], 255);
    assert_eq!(decrypt(&t.ciphertext, &key.aes_key).use_counter_raw, 0x0001);
    assert!(matches!(
        verify_offline(&t, &key, Counter::new(0x0100, 0)),
        Err(Rejection::Replayed { .. })
    ));
    assert!(Counter::new(0x0100, 0) > Counter::new(0x0001, 255));
}

#[test]
fn counter_order_is_use_then_session() {
    assert!(Counter::new(6, 0) > Counter::new(5, 255));
    assert!(Counter::new(5, 1) > Counter::new(5, 0));
    assert!(Counter::new(5, 1).is_fresh_after(Counter::new(5, 0)));
    assert!(!Counter::new(5, 0).is_fresh_after(Counter::new(5, 0)));
    assert!(!Counter::new(4, 255).is_fresh_after(Counter::new(5, 0)));
    assert_eq!(Counter::new(0x7fff, 255).next_otp(), None);
    assert_eq!(Counter::new(0x7fff, 3).next_power_up(), None);
    assert_eq!(Counter::new(0xffff, 0).use_counter(), 0x7fff);
}
