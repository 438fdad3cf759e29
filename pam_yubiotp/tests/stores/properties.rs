//! Stores: properties.

use super::*;
use proptest::prelude::*;

proptest! {
    /// The state parser never panics, and whatever it accepts is the
    /// one canonical spelling of that counter (so it is strict).
    #[test]
    fn state_parse_is_total_and_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..24),
        u in 0u16..=0x7fff,
        s in any::<u8>(),
    ) {
        if let Ok(c) = parse_state(&bytes) {
            let canonical = format_state(c);
            prop_assert_eq!(canonical.as_bytes(), &bytes[..]);
        }
        let c = Counter::new(u, s);
        prop_assert_eq!(parse_state(format_state(c).as_bytes()), Ok(c));
    }

    /// Near-miss state texts: digits and separators shuffled around.
    #[test]
    fn state_parse_near_misses(text in "v[0-9 ]{0,3}[0-9 \\-+]{0,7}\n?") {
        if let Ok(c) = parse_state(text.as_bytes()) {
            prop_assert_eq!(format_state(c), text);
        }
    }

    /// The key store parser never panics and its errors never quote
    /// the input.
    #[test]
    fn keystore_parse_is_total(body in "[ -~\t\n]{0,300}") {
        let input = format!("{HEADER}\n{body}");
        // (A duplicate's public id is named on purpose: it is not secret.)
        if let Err(e) = KeyStore::parse(&input).map_err(|e| e.reason)
            && !e.starts_with("duplicate public id")
        {
            for field in body.split_ascii_whitespace().filter(|f| f.len() >= 12) {
                prop_assert!(!e.contains(field), "{} quotes {}", e, field);
            }
        }
    }

    /// Any set of keys survives to_text → parse unchanged.
    #[test]
    fn keystore_round_trip(
        keys in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 0..=16),
            (any::<[u8; 6]>(), any::<[u8; 16]>()),
            0..8,
        )
    ) {
        let mut ks = KeyStore::default();
        for (id, (pid, aes)) in &keys {
            ks.insert(
                PublicId::from_bytes(id).unwrap(),
                KeyMaterial {
                    aes_key: AesKey::from_bytes(*aes),
                    private_id: PrivateId::from_bytes(*pid),
                },
            );
        }
        let back = KeyStore::parse(&ks.to_text()).unwrap();
        prop_assert_eq!(back.len(), keys.len());
        for id in ks.ids() {
            prop_assert_eq!(back.get(&id), ks.get(&id));
        }
        let (a, b) = (back.to_text(), ks.to_text());
        prop_assert_eq!(a.as_str(), b.as_str());
    }
}
