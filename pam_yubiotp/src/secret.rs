//! Secret byte strings of the module: conversation answers, PAM_AUTHTOK and
//! the validation API key. Zeroized on drop, `[redacted]` under `Debug`.

use core::fmt;

use base64::Engine as _;
use zeroize::Zeroizing;

/// Bytes typed by a person (an OTP, a password, both).
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when this value drops.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes. Never log them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as UTF-8, if they are.
    #[must_use]
    pub fn expose_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }

    /// Length in bytes (not secret).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.0.len())
    }
}

/// The validation service's API key (the HMAC-SHA1 key), decoded from base64.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<Vec<u8>>);

impl ApiKey {
    /// Decodes standard base64 (with or without padding).
    ///
    /// # Errors
    /// `None` when the text is not base64 or decodes to nothing; the caller
    /// reports "not base64" without the value.
    #[must_use]
    pub fn from_base64(text: &str) -> Option<Self> {
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let decoded = Zeroizing::new(LENIENT.decode(text).ok()?);
        if decoded.is_empty() {
            return None;
        }
        Some(Self(decoded))
    }

    /// The raw key bytes, for HMAC only.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_decodes_and_redacts() {
        let k = ApiKey::from_base64("mG5be6ZJU1qBGz24yPh/ESM3UdU=").unwrap();
        assert_eq!(k.expose().len(), 20);
        assert_eq!(format!("{k:?}"), "ApiKey([redacted])");
        assert!(ApiKey::from_base64("not base64!").is_none());
        assert!(ApiKey::from_base64("").is_none());
        let s = SecretBytes::new(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
