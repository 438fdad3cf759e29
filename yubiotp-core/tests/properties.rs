//! Property tests for the pure core: modhex, token parsing, password+OTP
//! splitting, mint → parse → verify, counter order, serials and redaction.
//!
//! Case counts are kept small so the file runs in a few seconds in a debug
//! build. Keys and private ids here are random test data, never real
//! secrets; assertion messages still avoid printing them.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use proptest::prelude::*;
use yubiotp_core::{
    AesKey, CIPHERTEXT_CHARS, Ciphertext, Counter, KeyMaterial, PrivateId, PublicId, Rejection,
    Token, decrypt, mint_token, modhex, public_id_to_serial, serial_to_public_id,
    split_trailing_otp, verify_offline,
};

/// Every token_id_length worth trying, valid or not.
const ID_LENGTHS: [usize; 10] = [0, 2, 8, 12, 16, 31, 32, 33, 34, 64];

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Modhex of exactly `len` characters, mixed case.
fn modhex_string(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(b"cbdefghijklnrtuvCBDEFGHIJKLNRTUV".to_vec()),
        len,
    )
    .prop_map(|v| v.into_iter().map(char::from).collect())
}

/// An even public-id length in characters, 0–32, with a modhex string of
/// that length plus the 32 ciphertext characters.
fn valid_token_string() -> impl Strategy<Value = (usize, String)> {
    (0usize..=16).prop_flat_map(|bytes| {
        let id_len = 2 * bytes;
        modhex_string(id_len + CIPHERTEXT_CHARS).prop_map(move |s| (id_len, s))
    })
}

/// Text a person might type: mostly modhex, some ASCII, some non-ASCII.
fn typed_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[cbdefghijklnrtuvCBDEFGHIJKLNRTUV]{0,80}",
        "[ -~]{0,20}[cbdefghijklnrtuv]{30,70}",
        "[éßü€a-z]{0,6}[cbdefghijklnrtuv]{20,70}[éß]?",
    ]
}

fn counter_strategy() -> impl Strategy<Value = Counter> {
    (0u16..=Counter::MAX_USE, any::<u8>()).prop_map(|(u, s)| Counter::new(u, s))
}

/// The counter just before `c` in (use, session) order, if there is one.
fn predecessor(c: Counter) -> Option<Counter> {
    if c.session() > 0 {
        Some(Counter::new(c.use_counter(), c.session() - 1))
    } else if c.use_counter() > 0 {
        Some(Counter::new(c.use_counter() - 1, u8::MAX))
    } else {
        None
    }
}

fn contains_any(haystack: &str, needles: &[String]) -> bool {
    needles.iter().any(|n| haystack.contains(n.as_str()))
}

/// Renderings of secret bytes that must never appear in `Debug` output.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        hex.clone(),
        hex.to_uppercase(),
        modhex::encode(bytes),
        format!("{bytes:?}"),
        format!("{bytes:#?}"),
    ]
}

// ---------------------------------------------------------------------------
// modhex
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn modhex_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = modhex::encode(&bytes);
        prop_assert_eq!(text.len(), 2 * bytes.len());
        prop_assert!(modhex::is_modhex(&text));
        prop_assert!(text.bytes().all(|c| modhex::ALPHABET.contains(&c)));
        prop_assert_eq!(modhex::decode(&text).unwrap(), bytes.clone());
        prop_assert_eq!(modhex::decode(&text.to_uppercase()).unwrap(), bytes.clone());
        let mut out = vec![0u8; bytes.len()];
        modhex::decode_into(text.as_bytes(), &mut out).unwrap();
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn modhex_upper_equals_lower(s in modhex_string(40)) {
        let lower = modhex::decode(&s.to_lowercase()).unwrap();
        prop_assert_eq!(modhex::decode(&s).unwrap(), lower.clone());
        prop_assert_eq!(modhex::decode(&s.to_uppercase()).unwrap(), lower.clone());
        prop_assert_eq!(modhex::encode(&lower), s.to_lowercase());
    }

    #[test]
    fn modhex_decode_never_panics_and_agrees_with_is_modhex(s in any::<String>()) {
        let decoded = modhex::decode(&s);
        prop_assert_eq!(decoded.is_ok(), modhex::is_modhex(&s));
        if let Ok(bytes) = decoded {
            prop_assert_eq!(modhex::encode(&bytes), s.to_lowercase());
        }
    }
}

// ---------------------------------------------------------------------------
// Token::parse and split_trailing_otp
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn parse_never_panics_on_any_string(s in typed_text()) {
        for n in ID_LENGTHS {
            if let Ok(t) = Token::parse(&s, n) {
                prop_assert_eq!(t.expose_string(), s.to_lowercase());
                prop_assert_eq!(t.public_id.len_chars(), n);
            }
        }
    }

    #[test]
    fn parse_valid_tokens_round_trip((id_len, s) in valid_token_string()) {
        let t = Token::parse(&s, id_len).unwrap();
        prop_assert!(t.expose_string() == s.to_lowercase(), "round trip");
        prop_assert_eq!(t.public_id.len_chars(), id_len);
        prop_assert_eq!(t.public_id.to_modhex(), s[..id_len].to_lowercase());
        let again = Token::parse(&t.expose_string(), id_len).unwrap();
        prop_assert!(again == t, "reparse");
        // Any other id length misreads it, without panicking.
        for n in ID_LENGTHS {
            if n != id_len {
                prop_assert!(Token::parse(&s, n).is_err());
            }
        }
    }

    #[test]
    fn parse_rejects_one_bad_character(
        (id_len, s) in valid_token_string(),
        pos in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec!['a', '0', ' ', '\n', 'x', 'é', '\u{0}', 'C']),
    ) {
        let i = pos.index(s.len());
        let mut chars: Vec<char> = s.chars().collect();
        chars[i] = bad;
        let broken: String = chars.into_iter().collect();
        let r = Token::parse(&broken, id_len);
        if bad == 'C' {
            prop_assert!(r.is_ok());
        } else {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn split_never_panics_and_concatenates(s in typed_text()) {
        for n in ID_LENGTHS {
            if let Some((password, otp)) = split_trailing_otp(&s, n) {
                prop_assert_eq!(format!("{password}{otp}"), s.clone());
                prop_assert!(!password.is_empty());
                prop_assert_eq!(otp.chars().count(), n + CIPHERTEXT_CHARS);
                prop_assert!(Token::parse(otp, n).is_ok(), "split OTP parses");
            }
        }
    }

    #[test]
    fn split_finds_an_appended_otp(
        password in "\\PC{1,20}",
        (id_len, otp) in valid_token_string(),
    ) {
        let typed = format!("{password}{otp}");
        prop_assert_eq!(
            split_trailing_otp(&typed, id_len),
            Some((password.as_str(), otp.as_str()))
        );
        prop_assert_eq!(split_trailing_otp(&otp, id_len), None);
    }
}

proptest! {
    // Large inputs: few cases, each built by repetition so generation is cheap.
    #![proptest_config(cfg(12))]

    #[test]
    fn parse_and_split_survive_huge_strings(
        chunk in prop_oneof![any::<String>(), "[cbdefghijklnrtuv]{1,8}"],
        total in 0usize..=(1 << 20),
    ) {
        let chunk = if chunk.is_empty() { "c".to_string() } else { chunk };
        let s = chunk.repeat(total / chunk.len() + 1);
        prop_assert!(s.len() >= total);
        for n in [0, 12, 32] {
            prop_assert!(Token::parse(&s, n).is_err() || s.len() == n + CIPHERTEXT_CHARS);
            if let Some((p, o)) = split_trailing_otp(&s, n) {
                prop_assert_eq!(p.len() + o.len(), s.len());
            }
        }
        let _ = modhex::decode(&s);
    }
}

// ---------------------------------------------------------------------------
// mint → parse → verify
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn mint_parse_verify_round_trip(
        aes in any::<[u8; 16]>(),
        uid in any::<[u8; 6]>(),
        public in prop::collection::vec(any::<u8>(), 0..=16),
        counter in counter_strategy(),
        caps_lock in any::<bool>(),
        timestamp in any::<u32>(),
        random in any::<u16>(),
        other_last in counter_strategy(),
    ) {
        let public_id = PublicId::from_bytes(&public).unwrap();
        let key = KeyMaterial {
            aes_key: AesKey::from_bytes(aes),
            private_id: PrivateId::from_bytes(uid),
        };
        let s = mint_token(&public_id, &key, counter, caps_lock, timestamp, random);
        prop_assert_eq!(s.len(), 2 * public.len() + CIPHERTEXT_CHARS);
        prop_assert!(modhex::is_modhex(&s));

        let token = Token::parse(&s, public_id.len_chars()).unwrap();
        prop_assert_eq!(token.public_id, public_id);
        prop_assert!(token.expose_string() == s, "expose_string round trip");

        let plain = decrypt(&token.ciphertext, &key.aes_key);
        prop_assert!(plain.crc_ok);
        prop_assert!(plain.private_id == key.private_id, "private id");
        prop_assert_eq!(
            plain.use_counter_raw,
            counter.use_counter() | if caps_lock { 0x8000 } else { 0 }
        );
        prop_assert_eq!(plain.counter(), counter);
        prop_assert_eq!(plain.caps_lock(), caps_lock);
        prop_assert_eq!(plain.timestamp, timestamp & 0x00ff_ffff);
        prop_assert_eq!(plain.session, counter.session());
        prop_assert_eq!(plain.random, random);

        // Fresh after anything strictly lower.
        if let Some(lower) = predecessor(counter) {
            let fresh = verify_offline(&token, &key, lower).unwrap();
            prop_assert_eq!(fresh.counter, counter);
            prop_assert_eq!(fresh.timestamp, timestamp & 0x00ff_ffff);
            prop_assert_eq!(fresh.caps_lock, caps_lock);
            // `counter` is above (0, 0) here, so a never-used record accepts it.
            prop_assert!(verify_offline(&token, &key, Counter::default()).is_ok());
        }
        // Replayed after an equal or higher one.
        let mut higher = vec![counter];
        higher.extend(counter.next_otp());
        higher.extend(counter.next_power_up());
        higher.push(Counter::new(Counter::MAX_USE, u8::MAX));
        for last in higher {
            prop_assert_eq!(
                verify_offline(&token, &key, last),
                Err(Rejection::Replayed { presented: counter, last })
            );
        }
        // Any stored counter: the outcome follows the order.
        let r = verify_offline(&token, &key, other_last);
        prop_assert_eq!(r.is_ok(), counter > other_last);
    }

    #[test]
    fn mint_with_wrong_secrets_is_rejected(
        aes in any::<[u8; 16]>(),
        uid in any::<[u8; 6]>(),
        flip_byte in 0usize..16,
        flip_bit in 0u8..8,
        counter in counter_strategy(),
    ) {
        let key = KeyMaterial {
            aes_key: AesKey::from_bytes(aes),
            private_id: PrivateId::from_bytes(uid),
        };
        let s = mint_token(&PublicId::from_array([0u8; 6]), &key, counter, false, 0, 0);
        let token = Token::parse(&s, 12).unwrap();

        let mut other_uid = uid;
        other_uid[flip_byte % 6] ^= 1 << flip_bit;
        let wrong_uid = KeyMaterial {
            aes_key: AesKey::from_bytes(aes),
            private_id: PrivateId::from_bytes(other_uid),
        };
        prop_assert_eq!(
            verify_offline(&token, &wrong_uid, Counter::default()),
            Err(Rejection::PrivateIdMismatch)
        );

        // A different AES key fails the CRC, except with probability 2^-16.
        let mut other_aes = aes;
        other_aes[flip_byte] ^= 1 << flip_bit;
        let wrong_key = KeyMaterial {
            aes_key: AesKey::from_bytes(other_aes),
            private_id: PrivateId::from_bytes(uid),
        };
        let plain = decrypt(&token.ciphertext, &wrong_key.aes_key);
        let r = verify_offline(&token, &wrong_key, Counter::default());
        if plain.crc_ok {
            prop_assert_ne!(r, Err(Rejection::BadCrc));
        } else {
            prop_assert_eq!(r, Err(Rejection::BadCrc));
        }
        prop_assert!(r.is_err() || plain.private_id == key.private_id);
    }
}

// ---------------------------------------------------------------------------
// Counter order
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(512))]

    #[test]
    fn counter_order_is_lexicographic(
        (u1, s1) in (any::<u16>(), any::<u8>()),
        (u2, s2) in (any::<u16>(), any::<u8>()),
        (u3, s3) in (any::<u16>(), any::<u8>()),
    ) {
        let a = Counter::new(u1, s1);
        let b = Counter::new(u2, s2);
        let c = Counter::new(u3, s3);
        let key = |u: u16, s: u8| (u & 0x7fff, s);
        prop_assert_eq!(a.cmp(&b), key(u1, s1).cmp(&key(u2, s2)));
        prop_assert_eq!(a.partial_cmp(&b), Some(a.cmp(&b)));
        prop_assert_eq!(a == b, key(u1, s1) == key(u2, s2));
        prop_assert_eq!(a.is_fresh_after(b), key(u1, s1) > key(u2, s2));
        // Total order: antisymmetric and transitive.
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
        prop_assert_eq!(a.use_counter(), u1 & 0x7fff);
        prop_assert_eq!(a.session(), s1);
    }

    #[test]
    fn next_otp_is_the_immediate_successor(c in counter_strategy()) {
        match c.next_otp() {
            Some(n) => {
                prop_assert!(n > c);
                prop_assert_eq!(predecessor(n), Some(c));
            }
            None => prop_assert_eq!(c, Counter::new(Counter::MAX_USE, u8::MAX)),
        }
        if let Some(p) = c.next_power_up() {
            prop_assert!(p > c);
            prop_assert_eq!(p.session(), 0);
            prop_assert_eq!(p.use_counter(), c.use_counter() + 1);
        } else {
            prop_assert_eq!(c.use_counter(), Counter::MAX_USE);
        }
    }
}

// ---------------------------------------------------------------------------
// Serial numbers
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1024))]

    #[test]
    fn serial_public_id_round_trip(serial in any::<u32>()) {
        let id = serial_to_public_id(serial);
        prop_assert_eq!(public_id_to_serial(&id), Some(serial));
        let text = id.to_string();
        prop_assert_eq!(text.len(), 12);
        prop_assert!(text.starts_with("cccc"));
        let reparsed = PublicId::from_modhex(&text.to_uppercase()).unwrap();
        prop_assert_eq!(public_id_to_serial(&reparsed), Some(serial));
    }

    #[test]
    fn non_factory_ids_have_no_serial(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..=16),
            // Six bytes whose first two are often zero: the near misses.
            (
                prop_oneof![Just(0u8), any::<u8>()],
                prop_oneof![Just(0u8), any::<u8>()],
                any::<[u8; 4]>(),
            )
                .prop_map(|(a, b, rest)| [&[a, b][..], &rest[..]].concat()),
        ]
    ) {
        let id = PublicId::from_bytes(&bytes).unwrap();
        let is_factory = bytes.len() == 6 && bytes[0] == 0 && bytes[1] == 0;
        prop_assert_eq!(public_id_to_serial(&id).is_some(), is_factory);
        if let Some(serial) = public_id_to_serial(&id) {
            prop_assert_eq!(serial_to_public_id(serial), id);
        }
    }
}

#[test]
fn serial_edge_cases() {
    for serial in [
        0,
        1,
        0xff,
        0x100,
        0xffff,
        0x0100_0000,
        u32::MAX - 1,
        u32::MAX,
    ] {
        assert_eq!(
            public_id_to_serial(&serial_to_public_id(serial)),
            Some(serial)
        );
    }
}

// ---------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(128))]

    #[test]
    fn debug_never_shows_secrets(
        aes in any::<[u8; 16]>(),
        uid in any::<[u8; 6]>(),
        public in prop::collection::vec(any::<u8>(), 0..=16),
        counter in counter_strategy(),
    ) {
        let key = KeyMaterial {
            aes_key: AesKey::from_bytes(aes),
            private_id: PrivateId::from_bytes(uid),
        };
        let public_id = PublicId::from_bytes(&public).unwrap();
        let token = Token::parse(
            &mint_token(&public_id, &key, counter, false, 0, 0),
            public_id.len_chars(),
        )
        .unwrap();
        let plain = decrypt(&token.ciphertext, &key.aes_key);
        let ct = *token.ciphertext.expose_bytes();

        let mut secrets = renderings(&aes);
        secrets.extend(renderings(&uid));
        secrets.extend(renderings(&ct));
        // A 1-byte secret rendering can collide with ordinary text by chance;
        // every rendering above is at least 12 characters.
        prop_assert!(secrets.iter().all(|s| s.len() >= 12));

        let outputs = [
            format!("{:?}", key.aes_key),
            format!("{:#?}", key.aes_key),
            format!("{:?}", key.private_id),
            format!("{key:?}"),
            format!("{key:#?}"),
            format!("{token:?}"),
            format!("{token:#?}"),
            format!("{:?}", token.ciphertext),
            format!("{:?}", Ciphertext::from_bytes(ct)),
            format!("{plain:?}"),
            format!("{plain:#?}"),
            format!("{:?}", plain.private_id),
        ];
        for out in &outputs {
            prop_assert!(!contains_any(out, &secrets), "a Debug output shows secret bytes");
            prop_assert!(!out.contains(&token.expose_string()[public_id.len_chars()..]));
        }
        // The public id is not secret and is what a log names a key by.
        let shown = format!("{token:?}");
        prop_assert!(shown.contains(&public_id.to_modhex()), "public id shown");
    }
}
