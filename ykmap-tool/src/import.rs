//! Pure parsers for the files that YubiKey programming tools write, so
//! `ykmap key import` can take them as they are:
//!
//! - the "Yubico" CSV that `ykman otp yubiotp --config-output FILE` and
//!   the YubiKey Personalization Tool ("Yubico format" logging) append, one
//!   line per key, no header:
//!   `serial,public id (modhex),private id (hex),AES key (hex),access code (hex or empty),date,`
//!   (a first line naming the columns is tolerated);
//! - the Personalization Tool's "traditional" log lines:
//!   `Yubico OTP,<local date>,<slot>,<public id>,<private id>,<AES key>,<access codes>,…`
//!   (`LOGGING START` lines and lines of other credential types are skipped);
//! - the configuration block `ykpersonalize` prints before writing a slot
//!   (`fixed: m:…`, `uid: …`, `key: h:…`, `acc_code: …`, flag lines; other
//!   chatter is ignored; OATH, challenge-response and static blocks are
//!   skipped).
//!
//! Input is refused as a whole, naming the line, for: more than
//! [`MAX_INPUT`] bytes, a NUL byte, invalid UTF-8, a line longer than
//! [`MAX_LINE`] bytes or with more than [`MAX_FIELDS`] fields, an
//! unterminated quote, or any field of the wrong length or alphabet. Error
//! messages name line, column and lengths, never a value.

use core::fmt;

use yubiotp_core::{AesKey, KeyMaterial, PrivateId, PublicId, public_id_to_serial};
use zeroize::Zeroizing;

/// Largest accepted input (some 900,000 CSV lines).
pub const MAX_INPUT: usize = 64 << 20;
/// Longest accepted line.
pub const MAX_LINE: usize = 4096;
/// Most fields on one CSV line.
pub const MAX_FIELDS: usize = 64;

/// Where a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `serial,public id,private id,key,…` (ykman, Yubico format).
    YubicoCsv,
    /// `Yubico OTP,date,slot,public id,private id,key,…`.
    PersonalizationLog,
    /// `ykpersonalize` configuration block.
    Ykpersonalize,
}

/// One key read from the input.
#[derive(Debug, Clone)]
pub struct ImportedKey {
    /// 1-based line of the record (the `fixed:` line of a block).
    pub line: usize,
    /// The public id.
    pub public_id: PublicId,
    /// AES key and private id.
    pub key: KeyMaterial,
    /// The serial number the file gives, if any (0 or empty = none).
    pub serial: Option<u32>,
    /// The format of the record.
    pub source: Source,
}

/// The whole input, parsed.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Keys in input order.
    pub keys: Vec<ImportedKey>,
    /// Records of other credential types that were skipped.
    pub skipped: usize,
}

/// Why the input was refused: the 1-based line (0 for the whole input)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// 1-based line, 0 for the whole input.
    pub line: usize,
    /// What is wrong (never a value).
    pub reason: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

impl std::error::Error for ImportError {}

fn err(line: usize, reason: impl Into<String>) -> ImportError {
    ImportError {
        line,
        reason: reason.into(),
    }
}

/// A field holding secret text; wiped on drop.
type Field = Zeroizing<String>;

/// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` inside quotes),
/// trimming unquoted spaces and tabs.
fn split_csv(line: &str, line_no: usize) -> Result<Vec<Field>, ImportError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut cur = Zeroizing::new(String::new());
    let mut in_quotes = false;
    let mut was_quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            ',' => {
                if fields.len() + 1 >= MAX_FIELDS {
                    return Err(err(line_no, format!("more than {MAX_FIELDS} fields")));
                }
                let f = if was_quoted {
                    core::mem::take(&mut *cur)
                } else {
                    cur.trim_matches([' ', '\t']).to_string()
                };
                fields.push(Zeroizing::new(f));
                cur.clear();
                was_quoted = false;
            }
            '"' if cur.trim_matches([' ', '\t']).is_empty() && !was_quoted => {
                cur.clear();
                in_quotes = true;
                was_quoted = true;
            }
            '"' => return Err(err(line_no, "stray '\"' inside a field")),
            _ if was_quoted && !matches!(c, ' ' | '\t') => {
                return Err(err(line_no, "text after a closing '\"'"));
            }
            _ => cur.push(c),
        }
    }
    if in_quotes {
        return Err(err(line_no, "unterminated quoted field"));
    }
    let f = if was_quoted {
        core::mem::take(&mut *cur)
    } else {
        cur.trim_matches([' ', '\t']).to_string()
    };
    fields.push(Zeroizing::new(f));
    Ok(fields)
}

/// Hex and modhex fields may be written in groups (`vv cc dd…`).
fn compact(s: &str) -> Field {
    Zeroizing::new(s.chars().filter(|c| !matches!(c, ' ' | '\t')).collect())
}

fn public_id(
    text: &str,
    line: usize,
    what: &str,
    token_id_length: usize,
) -> Result<PublicId, ImportError> {
    let text = compact(text);
    let id = PublicId::from_modhex(&text).map_err(|e| err(line, format!("{what}: {e}")))?;
    if id.is_empty() {
        return Err(err(line, format!("{what}: empty")));
    }
    if id.len_chars() != token_id_length {
        return Err(err(
            line,
            format!(
                "{what}: {} characters, but token_id_length is {token_id_length}",
                id.len_chars()
            ),
        ));
    }
    Ok(id)
}

fn secrets(aes: &str, private: &str, line: usize) -> Result<KeyMaterial, ImportError> {
    let private_id = PrivateId::from_hex(&compact(private))
        .map_err(|e| err(line, format!("private id: {e}")))?;
    let aes_key =
        AesKey::from_hex(&compact(aes)).map_err(|e| err(line, format!("AES key: {e}")))?;
    Ok(KeyMaterial {
        aes_key,
        private_id,
    })
}

fn serial_field(text: &str, line: usize) -> Result<Option<u32>, ImportError> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(line, "serial: not a decimal number"));
    }
    let n: u32 = text
        .parse()
        .map_err(|_| err(line, "serial: larger than 4294967295"))?;
    Ok((n != 0).then_some(n))
}

/// Credential types the Personalization Tool logs besides Yubico OTP.
fn is_other_log_event(first: &str) -> bool {
    first == "LOGGING START"
        || first.starts_with("Static Password")
        || first.starts_with("OATH-HOTP")
        || first.starts_with("Challenge-Response")
        || first.starts_with("Configuration Update")
        || first.starts_with("Configuration Swap")
        || first.starts_with("Unknown programming mode")
}

fn looks_like_header(fields: &[Field]) -> bool {
    fields.first().is_some_and(|f| {
        let f = f.to_ascii_lowercase();
        f.contains("serial") || f.contains("public")
    })
}

/// Splits the input into checked lines: (1-based number, text).
fn lines(input: &[u8]) -> Result<Vec<(usize, &str)>, ImportError> {
    if input.len() > MAX_INPUT {
        return Err(err(0, format!("input is larger than {MAX_INPUT} bytes")));
    }
    let body = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
    let mut out = Vec::new();
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE {
            return Err(err(n, format!("longer than {MAX_LINE} bytes")));
        }
        if raw.contains(&0) {
            return Err(err(n, "contains a NUL byte"));
        }
        let text = core::str::from_utf8(raw).map_err(|_| err(n, "is not valid UTF-8"))?;
        out.push((n, text));
    }
    Ok(out)
}

/// Parses any of the supported formats (see the module doc). Public ids
/// must have `token_id_length` characters.
///
/// # Errors
/// The first bad line; nothing is returned then.
pub fn parse(input: &[u8], token_id_length: usize) -> Result<Parsed, ImportError> {
    let lines = lines(input)?;
    let ykpers = lines
        .iter()
        .any(|(_, l)| l.trim_start().starts_with("fixed:"));
    if ykpers {
        parse_ykpersonalize(&lines, token_id_length)
    } else {
        parse_csv(&lines, token_id_length)
    }
}

fn parse_csv(lines: &[(usize, &str)], token_id_length: usize) -> Result<Parsed, ImportError> {
    let mut out = Parsed::default();
    let mut first = true;
    for &(n, line) in lines {
        let trimmed = line.trim_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = split_csv(line, n)?;
        let was_first = core::mem::replace(&mut first, false);
        let f = |i: usize| fields.get(i).map_or("", |s| s.as_str());
        if f(0) == "Yubico OTP" {
            out.keys.push(log_line(&fields, n, token_id_length)?);
        } else if is_other_log_event(f(0)) {
            out.skipped += 1;
        } else if f(0).bytes().all(|b| b.is_ascii_digit()) {
            if fields.len() < 4 {
                return Err(err(
                    n,
                    format!(
                        "{} fields; expected serial,public id,private id,AES key[,…]",
                        fields.len()
                    ),
                ));
            }
            let public_id = public_id(f(1), n, "public id (column 2)", token_id_length)?;
            let key = secrets(f(3), f(2), n)?;
            let serial = serial_field(f(0), n)?;
            out.keys.push(ImportedKey {
                line: n,
                public_id,
                key,
                serial,
                source: Source::YubicoCsv,
            });
        } else if was_first && looks_like_header(&fields) {
            continue;
        } else {
            return Err(err(
                n,
                "not a key record (expected serial,public id,private id,AES key,… or a \
                 \"Yubico OTP,…\" log line)",
            ));
        }
    }
    Ok(out)
}

fn log_line(
    fields: &[Field],
    n: usize,
    token_id_length: usize,
) -> Result<ImportedKey, ImportError> {
    // `Yubico OTP,<date>,<slot>,<public id>,<private id>,<key>,…`; a date
    // written with commas shifts the rest, so find the slot after it.
    let slot = (2..fields.len().saturating_sub(3)).find(|&i| {
        let slot_ok = fields
            .get(i)
            .is_some_and(|s| s.as_str() == "1" || s.as_str() == "2");
        let id_ok = fields.get(i + 1).is_some_and(|s| {
            let c = compact(s);
            !c.is_empty() && yubiotp_core::modhex::is_modhex(&c)
        });
        slot_ok && id_ok
    });
    let Some(i) = slot else {
        return Err(err(
            n,
            "Yubico OTP log line without slot, public id, private id and AES key",
        ));
    };
    let g = |k: usize| fields.get(k).map_or("", |s| s.as_str());
    let public_id = public_id(g(i + 1), n, "public id", token_id_length)?;
    let key = secrets(g(i + 3), g(i + 2), n)?;
    Ok(ImportedKey {
        line: n,
        public_id,
        key,
        serial: None,
        source: Source::PersonalizationLog,
    })
}

#[derive(Default)]
struct Block {
    line: usize,
    oath: bool,
    fixed: Option<(usize, Field)>,
    uid: Option<(usize, Field)>,
    key: Option<(usize, Field)>,
    not_otp: bool,
}

fn strip_prefix_hex(v: &str) -> &str {
    v.strip_prefix("h:").unwrap_or(v)
}

fn finish_block(b: Block, out: &mut Parsed, token_id_length: usize) -> Result<(), ImportError> {
    if b.oath || b.not_otp {
        out.skipped += 1;
        return Ok(());
    }
    let (fixed_line, fixed) = b
        .fixed
        .ok_or_else(|| err(b.line, "block without 'fixed:'"))?;
    let (uid_line, uid) = b
        .uid
        .ok_or_else(|| err(b.line, "configuration block without 'uid:'"))?;
    let (key_line, key) = b
        .key
        .ok_or_else(|| err(b.line, "configuration block without 'key:'"))?;
    if uid.as_str() == "n/a" {
        out.skipped += 1;
        return Ok(());
    }
    let public_id = match fixed.strip_prefix("h:") {
        Some(hex) => {
            let bytes = hex_bytes(hex).ok_or_else(|| err(fixed_line, "fixed: not hex"))?;
            let id =
                PublicId::from_bytes(&bytes).map_err(|e| err(fixed_line, format!("fixed: {e}")))?;
            public_id(&id.to_modhex(), fixed_line, "fixed", token_id_length)?
        }
        None => public_id(
            fixed.strip_prefix("m:").unwrap_or(&fixed),
            fixed_line,
            "fixed",
            token_id_length,
        )?,
    };
    let private_id = PrivateId::from_hex(&compact(strip_prefix_hex(&uid)))
        .map_err(|e| err(uid_line, format!("uid: {e}")))?;
    let aes_key = AesKey::from_hex(&compact(strip_prefix_hex(&key)))
        .map_err(|e| err(key_line, format!("key: {e}")))?;
    out.keys.push(ImportedKey {
        line: fixed_line,
        serial: public_id_to_serial(&public_id),
        public_id,
        key: KeyMaterial {
            aes_key,
            private_id,
        },
        source: Source::Ykpersonalize,
    });
    Ok(())
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s = compact(s);
    if !s.len().is_multiple_of(2) || s.len() > 32 {
        return None;
    }
    yubiotp_core::hex::decode(&s).ok()
}

fn parse_ykpersonalize(
    lines: &[(usize, &str)],
    token_id_length: usize,
) -> Result<Parsed, ImportError> {
    let mut out = Parsed::default();
    let mut block: Option<Block> = None;
    for &(n, line) in lines {
        let t = line.trim();
        let Some((name, value)) = t.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let set = |slot: &mut Option<(usize, Field)>, what: &str| {
            if slot.is_some() {
                return Err(err(n, format!("second '{what}:' line in one block")));
            }
            *slot = Some((n, Zeroizing::new(value.to_string())));
            Ok(())
        };
        match name {
            "fixed" | "OATH id" => {
                if let Some(b) = block.take() {
                    finish_block(b, &mut out, token_id_length)?;
                }
                let mut b = Block {
                    line: n,
                    oath: name == "OATH id",
                    ..Block::default()
                };
                if name == "fixed" {
                    b.fixed = Some((n, Zeroizing::new(value.to_string())));
                }
                block = Some(b);
            }
            "uid" | "key" | "acc_code" | "OATH IMF" | "ticket_flags" | "config_flags"
            | "extended_flags" => {
                let Some(b) = block.as_mut() else {
                    return Err(err(
                        n,
                        format!("'{name}:' outside a configuration block (no 'fixed:' before it)"),
                    ));
                };
                match name {
                    "uid" => set(&mut b.uid, "uid")?,
                    "key" => set(&mut b.key, "key")?,
                    "ticket_flags" => {
                        b.not_otp |= value
                            .split('|')
                            .any(|f| matches!(f.trim(), "OATH_HOTP" | "CHAL_RESP"));
                    }
                    "config_flags" => {
                        b.not_otp |= value.split('|').any(|f| {
                            matches!(f.trim(), "STATIC_TICKET" | "CHAL_HMAC" | "CHAL_YUBICO")
                        });
                    }
                    "OATH IMF" => b.oath = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if let Some(b) = block.take() {
        finish_block(b, &mut out, token_id_length)?;
    }
    Ok(out)
}

/// Pairs of (earlier line, later line) that name the same public id.
#[must_use]
pub fn duplicates(keys: &[ImportedKey]) -> Vec<(usize, usize, PublicId)> {
    let mut last_line = std::collections::HashMap::with_capacity(keys.len());
    let mut out = Vec::new();
    for k in keys {
        if let Some(prev) = last_line.insert(k.public_id, k.line) {
            out.push((prev, k.line, k.public_id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AES: &str = "ecde18dbe76fbd0c33330f1c354871db";
    const UID: &str = "8792ebfe26cc";

    #[test]
    fn ykman_csv_with_bom_crlf_quotes_and_header() {
        let text = format!(
            "\u{feff}serial,public_id,private_id,key,access,date\r\n\
             2198612,ccccccdbjrgf,{UID},{AES},,2024-01-02T03:04:05,\r\n\
             \"0\",\"vvcccccccccb\",\"{UID}\",\"{AES}\",\"\",\"2024\",\r\n"
        );
        let p = parse(text.as_bytes(), 12).unwrap();
        assert_eq!(p.keys.len(), 2);
        assert_eq!(p.keys[0].serial, Some(2_198_612));
        assert_eq!(p.keys[0].line, 2);
        assert_eq!(p.keys[1].public_id.to_string(), "vvcccccccccb");
        assert_eq!(p.keys[1].serial, None);
        assert_eq!(p.keys[1].key.aes_key.expose_hex(), AES);
    }

    #[test]
    fn personalization_log() {
        let text = format!(
            "LOGGING START,5/14/2012 3:31 PM\n\
             Yubico OTP,5/14/2012 3:31 PM,1,vvcccccccccb,{UID},{AES},,,0,0,0,0,0,0,0,0,0,0\n\
             Static Password,5/14/2012 3:32 PM,2,,,,,,0,0,0,0,0,0,0,0,0,0\n\
             Yubico OTP,\"Monday, May 14, 2012\",2,vv cc cc cc cc cd,{UID},{AES},,,0\n"
        );
        let p = parse(text.as_bytes(), 12).unwrap();
        assert_eq!(p.keys.len(), 2);
        assert_eq!(p.skipped, 2);
        assert_eq!(p.keys[1].public_id.to_string(), "vvcccccccccd");
        assert_eq!(p.keys[1].source, Source::PersonalizationLog);
    }

    #[test]
    fn ykpersonalize_block() {
        let text = format!(
            "Firmware version 5.4.3 Touch level 1551 Program sequence 3\n\n\
             Configuration data to be written to key configuration 1:\n\n\
             fixed: m:ccccccdbjrgf\nuid: {UID}\nkey: h:{AES}\nacc_code: h:000000000000\n\
             ticket_flags: APPEND_CR\nconfig_flags: \nextended_flags: SERIAL_API_VISIBLE\n\n\
             Commit? (y/n) [n]: y\n\
             fixed: m:\nuid: n/a\nkey: h:{AES}00000000\nticket_flags: CHAL_RESP\n"
        );
        let p = parse(text.as_bytes(), 12).unwrap();
        assert_eq!(p.keys.len(), 1);
        assert_eq!(p.skipped, 1);
        assert_eq!(p.keys[0].serial, Some(2_198_612));
        assert_eq!(p.keys[0].line, 5);
    }

    #[test]
    fn refusals_name_the_line_and_never_the_value() {
        let cases: Vec<(Vec<u8>, usize)> = vec![
            (
                format!("1,vvcccccccccb,{UID},{}\n", &AES[..31]).into_bytes(),
                1,
            ),
            (
                format!("\n1,vvcccccccccb,{}x,{AES}\n", &UID[..11]).into_bytes(),
                2,
            ),
            (
                format!("1,vvcccccccccb,{UID},{AES}\n1,vvcc\0,{UID},{AES}\n").into_bytes(),
                2,
            ),
            (",".repeat(1_000_000).into_bytes(), 1),
            (format!("1,\"vvcccccccccb,{UID},{AES}\n").into_bytes(), 1),
            (b"hello world\n".to_vec(), 1),
            (
                format!("uid: {UID}\nfixed: m:vvcccccccccb\n").into_bytes(),
                1,
            ),
            (
                format!("fixed: m:vvcccccccccb\nuid: {UID}\n").into_bytes(),
                1,
            ),
            (vec![0xff, b'\n'], 1),
        ];
        for (input, line) in cases {
            let e = parse(&input, 12).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(
                !e.reason.contains(UID) && !e.reason.contains(&AES[..8]),
                "{e}"
            );
        }
        let fields = format!("1,{}", ",".repeat(100));
        assert!(
            parse(fields.as_bytes(), 12)
                .unwrap_err()
                .reason
                .contains("fields")
        );
    }

    #[test]
    fn finds_duplicates() {
        let text = format!("1,vvcccccccccb,{UID},{AES}\n2,vvcccccccccb,{UID},{AES}\n");
        let p = parse(text.as_bytes(), 12).unwrap();
        let d = duplicates(&p.keys);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].0, d[0].1), (1, 2));
    }
}
