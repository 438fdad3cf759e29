//! The server side of Validation Protocol 2.0 signing, written apart from
//! the module's client code so the two check each other.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// `k=v&…` over `pairs` sorted by key, `h` left out, raw values.
#[must_use]
pub fn canonical(pairs: &[(String, String)]) -> String {
    let mut v: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "h").collect();
    v.sort();
    v.iter()
        .map(|(k, val)| format!("{k}={val}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `base64(HMAC-SHA1(key, canonical(pairs)))`.
#[must_use]
pub fn sign(key: &[u8], pairs: &[(String, String)]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    STANDARD.encode(hmac::sign(&k, canonical(pairs).as_bytes()).as_ref())
}

/// Checks `h` (base64) over `pairs` in constant time.
#[must_use]
pub fn verify(key: &[u8], pairs: &[(String, String)], h: &str) -> bool {
    let Ok(tag) = STANDARD.decode(h) else {
        return false;
    };
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    hmac::verify(&k, canonical(pairs).as_bytes(), &tag).is_ok()
}

/// Decodes a query string as PHP's `$_GET` does (the reference server is
/// PHP): `%XX` escapes and `+` as a space. A client that forgets to escape
/// `+` in `h` therefore fails the signature check here, as it would there.
#[must_use]
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| core::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn anchor_vectors() {
        let key = STANDARD.decode("mG5be6ZJU1qBGz24yPh/ESM3UdU=").unwrap();
        let req = p(&[
            ("otp", "vvincredibletrerdegkkrkkneieultcjdghrejjbckh"),
            ("id", "1"),
            ("timestamp", "1"),
            ("nonce", "zsjzvozohbqqykcilnwxihbgtepilzam"),
        ]);
        assert_eq!(sign(&key, &req), "Dj68ZIAAISBeQuEDS5S4evrWvkk=");
        assert!(verify(&key, &req, "Dj68ZIAAISBeQuEDS5S4evrWvkk="));
        assert!(!verify(&key, &req, "Dj68ZIAAISBeQuEDS5S4evrWvkk"));
        let resp = p(&[
            ("h", "ignored"),
            ("t", "2019-06-06T05:14:09Z0369"),
            ("otp", "dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh"),
            ("nonce", "aef3a7835277a28da831005c2ae3b919e2076a62"),
            ("sl", "100"),
            ("status", "OK"),
        ]);
        assert_eq!(sign(&key, &resp), "+suJkg6Htplhid81GLwDUCcVaj0=");
    }

    #[test]
    fn php_style_decoding() {
        assert_eq!(
            parse_query("h=a%2Bb+c%3D&x"),
            p(&[("h", "a+b c="), ("x", "")])
        );
        assert_eq!(parse_query("a=%zz%4"), p(&[("a", "%zz%4")]));
    }
}
