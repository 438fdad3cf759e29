//! Secret types. Each zeroizes its bytes on drop, prints as `[redacted]`
//! under `Debug`, has no `Display`, and compares in constant time. Reading
//! the bytes needs an explicit `expose_*` call, which is easy to grep for.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::ParseSecretError;

macro_rules! secret_bytes {
    ($(#[$meta:meta])* $name:ident, $len:literal) => {
        $(#[$meta])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            #[must_use]
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Parses hex (either case, no separators).
            ///
            /// # Errors
            /// Wrong length or a non-hex character; the error never holds the value.
            pub fn from_hex(s: &str) -> Result<Self, ParseSecretError> {
                crate::hex::decode_array::<$len>(s).map(Self)
            }

            /// The raw bytes. Callers must not log or print them.
            #[must_use]
            pub const fn expose_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lower-case hex, for writing the key store. Never log it.
            #[must_use]
            pub fn expose_hex(&self) -> String {
                crate::hex::encode(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            /// Constant-time comparison.
            fn eq(&self, other: &Self) -> bool {
                bool::from(self.0.ct_eq(&other.0))
            }
        }

        impl Eq for $name {}
    };
}

secret_bytes!(
    /// A YubiKey's AES-128 secret.
    AesKey,
    16
);
secret_bytes!(
    /// The 6-byte private id ("uid") inside every OTP of one key.
    PrivateId,
    6
);
secret_bytes!(
    /// The 16-byte encrypted part of an OTP. Treated as a secret: an OTP that
    /// was not consumed is still valid for whoever reads it.
    Ciphertext,
    16
);

/// What the offline check needs to know about one key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// The AES-128 secret.
    pub aes_key: AesKey,
    /// The expected private id.
    pub private_id: PrivateId,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_bytes() {
        let k = AesKey::from_hex("ecde18dbe76fbd0c33330f1c354871db").unwrap();
        let p = PrivateId::from_hex("8792ebfe26cc").unwrap();
        let m = KeyMaterial {
            aes_key: k.clone(),
            private_id: p.clone(),
        };
        for s in [
            format!("{k:?}"),
            format!("{p:?}"),
            format!("{m:?}"),
            format!("{m:#?}"),
        ] {
            assert!(s.contains("redacted"), "{s}");
            assert!(!s.to_lowercase().contains("ecde"), "{s}");
            assert!(!s.contains("8792"), "{s}");
            assert!(!s.contains("236"), "{s}"); // 0xec as decimal
        }
        assert_eq!(k.expose_hex(), "ecde18dbe76fbd0c33330f1c354871db");
    }

    #[test]
    fn hex_errors() {
        assert_eq!(
            PrivateId::from_hex("8792"),
            Err(ParseSecretError::WrongLength {
                expected: 12,
                actual: 4
            })
        );
        assert_eq!(
            PrivateId::from_hex("8792ebfe26cg"),
            Err(ParseSecretError::NotHex { position: 11 })
        );
        assert!(AesKey::from_hex("ECDE18DBE76FBD0C33330F1C354871DB").is_ok());
        // Multi-byte UTF-8 of the right byte length is refused, not mis-sliced.
        assert!(PrivateId::from_hex("éééééé").is_err());
    }

    #[test]
    fn equality_is_by_value() {
        let a = PrivateId::from_bytes([1, 2, 3, 4, 5, 6]);
        assert_eq!(a, PrivateId::from_bytes([1, 2, 3, 4, 5, 6]));
        assert_ne!(a, PrivateId::from_bytes([1, 2, 3, 4, 5, 7]));
    }
}
