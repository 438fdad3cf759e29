//! Modhex decode/encode round trips on arbitrary input.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use libfuzzer_sys::fuzz_target;
use yubiotp_core::{PublicId, modhex};

fuzz_target!(|data: &[u8]| {
    // Bytes → modhex → bytes.
    let text = modhex::encode(data);
    assert_eq!(text.len(), 2 * data.len());
    assert!(modhex::is_modhex(&text));
    assert_eq!(modhex::decode(&text).unwrap(), data);
    assert_eq!(modhex::decode(&text.to_ascii_uppercase()).unwrap(), data);
    let mut out = vec![0u8; data.len()];
    modhex::decode_into(text.as_bytes(), &mut out).unwrap();
    assert_eq!(out, data);

    // Text → bytes → modhex: whatever decodes re-encodes to its lower case.
    if let Ok(s) = std::str::from_utf8(data) {
        let decoded = modhex::decode(s);
        assert_eq!(decoded.is_ok(), modhex::is_modhex(s));
        if let Ok(bytes) = decoded {
            assert_eq!(modhex::encode(&bytes), s.to_ascii_lowercase());
        }
        // Public ids: at most 16 bytes, same text back.
        if let Ok(id) = PublicId::from_modhex(s) {
            assert!(id.len_chars() <= 32);
            assert_eq!(id.to_modhex(), s.to_ascii_lowercase());
        }
    }
    // decode_into never panics for any destination size.
    let mut small = [0u8; 16];
    let r = modhex::decode_into(data, &mut small);
    assert_eq!(
        r.is_ok(),
        data.len() == 32 && data.iter().all(|c| modhex::nibble(*c).is_some())
    );
});
