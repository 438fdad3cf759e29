//! A software YubiKey: a key file holding a public id, an AES key, a
//! private id and the counters of the last OTP it produced, and the OTPs it
//! makes exactly as a YubiKey would.
//!
//! File format (UTF-8 text, mode 0600, `#` comments, each key once):
//!
//! ```text
//! # ykmap software YubiKey. It holds secrets: keep it mode 0600.
//! format = 1
//! public_id = vvbcdefghijk
//! aes_key = 000102030405060708090a0b0c0d0e0f
//! private_id = 0a0b0c0d0e0f
//! use_counter = 1
//! session_counter = 4
//! ```
//!
//! `use_counter`/`session_counter` are the counters of the last OTP
//! printed; `0`/`0` means none yet. The next OTP has session counter + 1;
//! after 255 it wraps to 0 and the use counter goes up, like a key. A
//! power-up (and the very first OTP) bumps the use counter and starts the
//! session at 0.

use yubiotp_core::{AesKey, Counter, KeyMaterial, PrivateId, PublicId};
use zeroize::Zeroizing;

/// Largest key file accepted.
pub const MAX_FILE: u64 = 4096;

/// One software key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftKey {
    /// The public id typed before every OTP.
    pub public_id: PublicId,
    /// AES key and private id.
    pub key: KeyMaterial,
    /// Counters of the last OTP printed, (0, 0) before the first.
    pub last: Counter,
}

impl SoftKey {
    /// The counters of the next OTP. `None` when the key is exhausted.
    #[must_use]
    pub fn next_counter(&self, power_up: bool) -> Option<Counter> {
        if power_up || self.last == Counter::default() {
            self.last.next_power_up()
        } else {
            self.last.next_otp()
        }
    }

    /// The file text. Holds secrets.
    #[must_use]
    pub fn render(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# ykmap software YubiKey. It holds secrets: keep it mode 0600.\n\
             format = 1\n\
             public_id = {}\n\
             aes_key = {}\n\
             private_id = {}\n\
             use_counter = {}\n\
             session_counter = {}\n",
            self.public_id,
            self.key.aes_key.expose_hex(),
            self.key.private_id.expose_hex(),
            self.last.use_counter(),
            self.last.session()
        ))
    }

    /// Parses the file text.
    ///
    /// # Errors
    /// A line number and what is wrong (never a value).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut format = None;
        let mut public_id = None;
        let mut aes_key = None;
        let mut private_id = None;
        let mut use_counter: Option<u16> = None;
        let mut session: Option<u8> = None;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| format!("line {n}: expected `name = value`"))?;
            let (k, v) = (k.trim(), v.trim());
            let dup = |set: bool| {
                if set {
                    Err(format!("line {n}: {k} given twice"))
                } else {
                    Ok(())
                }
            };
            match k {
                "format" => {
                    dup(format.is_some())?;
                    if v != "1" {
                        return Err(format!("line {n}: unknown format {v:?}"));
                    }
                    format = Some(());
                }
                "public_id" => {
                    dup(public_id.is_some())?;
                    let id = PublicId::from_modhex(v).map_err(|e| format!("line {n}: {e}"))?;
                    if id.is_empty() {
                        return Err(format!("line {n}: public_id is empty"));
                    }
                    public_id = Some(id);
                }
                "aes_key" => {
                    dup(aes_key.is_some())?;
                    aes_key =
                        Some(AesKey::from_hex(v).map_err(|e| format!("line {n}: aes_key: {e}"))?);
                }
                "private_id" => {
                    dup(private_id.is_some())?;
                    private_id = Some(
                        PrivateId::from_hex(v).map_err(|e| format!("line {n}: private_id: {e}"))?,
                    );
                }
                "use_counter" => {
                    dup(use_counter.is_some())?;
                    let u: u16 = v
                        .parse()
                        .ok()
                        .filter(|u| *u <= Counter::MAX_USE)
                        .ok_or_else(|| format!("line {n}: use_counter must be 0 to 32767"))?;
                    use_counter = Some(u);
                }
                "session_counter" => {
                    dup(session.is_some())?;
                    session = Some(
                        v.parse()
                            .map_err(|_| format!("line {n}: session_counter must be 0 to 255"))?,
                    );
                }
                _ => return Err(format!("line {n}: unknown setting {k:?}")),
            }
        }
        let missing = |what: &str| format!("{what} is missing");
        format.ok_or_else(|| missing("format"))?;
        Ok(Self {
            public_id: public_id.ok_or_else(|| missing("public_id"))?,
            key: KeyMaterial {
                aes_key: aes_key.ok_or_else(|| missing("aes_key"))?,
                private_id: private_id.ok_or_else(|| missing("private_id"))?,
            },
            last: Counter::new(
                use_counter.ok_or_else(|| missing("use_counter"))?,
                session.ok_or_else(|| missing("session_counter"))?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SoftKey {
        SoftKey {
            public_id: PublicId::from_modhex("vvcccccccccb").unwrap(),
            key: KeyMaterial {
                aes_key: AesKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap(),
                private_id: PrivateId::from_hex("a1b2c3d4e5f6").unwrap(),
            },
            last: Counter::default(),
        }
    }

    #[test]
    fn round_trip_and_counters() {
        let mut k = key();
        assert_eq!(SoftKey::parse(&k.render()).unwrap(), k);
        assert_eq!(k.next_counter(false), Some(Counter::new(1, 0)));
        k.last = Counter::new(1, 0);
        assert_eq!(k.next_counter(false), Some(Counter::new(1, 1)));
        assert_eq!(k.next_counter(true), Some(Counter::new(2, 0)));
        k.last = Counter::new(1, 255);
        assert_eq!(k.next_counter(false), Some(Counter::new(2, 0)));
        k.last = Counter::new(0x7fff, 255);
        assert_eq!(k.next_counter(false), None);
    }

    #[test]
    fn parse_errors_never_show_secrets() {
        let text = key().render().replace("a1b2c3d4e5f6", "a1b2c3d4e5");
        let e = SoftKey::parse(&text).unwrap_err();
        assert!(e.contains("private_id") && !e.contains("a1b2"), "{e}");
        assert!(
            SoftKey::parse("format = 1\n")
                .unwrap_err()
                .contains("missing")
        );
        assert!(SoftKey::parse("format = 2\n").is_err());
        let twice = format!("{}use_counter = 1\n", key().render().as_str());
        assert!(SoftKey::parse(&twice).unwrap_err().contains("twice"));
    }
}
