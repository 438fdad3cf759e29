//! LDAPv3 messages (RFC 4511), sans I/O: the requests we send (simple
//! Bind, Search, the StartTLS extended operation, Unbind) and the
//! responses we read (BindResponse, SearchResultEntry/Reference/Done,
//! ExtendedResponse), plus filters and the two escapings (RFC 4514 for DN
//! attribute values, RFC 4515 for filter values).
//!
//! Filters are never built by pasting the user name into filter text: the
//! template (`ldap_filter`, e.g. `(&(objectClass=person)(uid=%u))`) is
//! parsed first, and `%u` becomes the raw user name inside an
//! assertion value of the BER filter, where no character has a meaning.

use super::ber::{self, BerError, Reader, put_bool, put_int, put_tlv, tag};

/// The StartTLS extended operation (RFC 4511 §4.14.1).
pub const STARTTLS_OID: &str = "1.3.6.1.4.1.1466.20037";
/// Largest message accepted from a server.
pub const MAX_MESSAGE: usize = 256 << 10;
/// Most values kept of one attribute.
pub const MAX_VALUES: usize = 256;
/// Longest filter template accepted.
pub const MAX_FILTER_LEN: usize = 1024;
/// Deepest filter nesting accepted.
const MAX_DEPTH: usize = 8;

const APP_BIND_REQ: u8 = 0x60;
const APP_BIND_RESP: u8 = 0x61;
const APP_UNBIND_REQ: u8 = 0x42;
const APP_SEARCH_REQ: u8 = 0x63;
const APP_SEARCH_ENTRY: u8 = 0x64;
const APP_SEARCH_DONE: u8 = 0x65;
const APP_SEARCH_REF: u8 = 0x73;
const APP_EXT_REQ: u8 = 0x77;
const APP_EXT_RESP: u8 = 0x78;

/// Search scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The base entry only.
    Base = 0,
    /// Its immediate children.
    One = 1,
    /// The whole subtree.
    Sub = 2,
}

/// A search filter (the subset we build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `(&…)`.
    And(Vec<Filter>),
    /// `(|…)`.
    Or(Vec<Filter>),
    /// `(!…)`.
    Not(Box<Filter>),
    /// `(attr=value)`.
    Equal(String, Vec<u8>),
    /// `(attr=*)`.
    Present(String),
}

impl Filter {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut c = Vec::new();
        let t = match self {
            Self::And(fs) | Self::Or(fs) => {
                for f in fs {
                    f.encode(&mut c);
                }
                if matches!(self, Self::And(_)) {
                    0xa0
                } else {
                    0xa1
                }
            }
            Self::Not(f) => {
                f.encode(&mut c);
                0xa2
            }
            Self::Equal(a, v) => {
                put_tlv(&mut c, tag::OCTET_STRING, a.as_bytes());
                put_tlv(&mut c, tag::OCTET_STRING, v);
                0xa3
            }
            Self::Present(a) => {
                c.extend_from_slice(a.as_bytes());
                0x87
            }
        };
        put_tlv(out, t, &c);
    }
}

/// A parsed `ldap_filter` template; `%u` stands for the user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTemplate(Tpl);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tpl {
    And(Vec<Tpl>),
    Or(Vec<Tpl>),
    Not(Box<Tpl>),
    /// Attribute and value parts (text, or the user).
    Equal(String, Vec<Part>),
    Present(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Bytes(Vec<u8>),
    User,
}

fn valid_attr(a: &str) -> bool {
    // RFC 4512 descr (keystring) or numericoid; options after ';'.
    !a.is_empty()
        && a.len() <= 128
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b';')
}

/// True for a usable attribute description (`user_attr`, `yubi_attr`).
#[must_use]
pub fn is_attr_name(a: &str) -> bool {
    valid_attr(a)
}

impl FilterTemplate {
    /// Parses RFC 4515 filter text with `%u` in assertion values:
    /// `&`, `|`, `!`, equality and presence (no substring, ordering or
    /// extensible matches). Outer parentheses are optional.
    ///
    /// # Errors
    /// A short reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_FILTER_LEN {
            return Err(format!("longer than {MAX_FILTER_LEN} characters"));
        }
        let owned;
        let text = if text.starts_with('(') {
            text
        } else {
            owned = format!("({text})");
            &owned
        };
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let t = p.filter(0)?;
        if p.i != p.s.len() {
            return Err("text after the filter".into());
        }
        Ok(Self(t))
    }

    /// The filter for `user`.
    #[must_use]
    pub fn build(&self, user: &str) -> Filter {
        fn go(t: &Tpl, user: &str) -> Filter {
            match t {
                Tpl::And(v) => Filter::And(v.iter().map(|t| go(t, user)).collect()),
                Tpl::Or(v) => Filter::Or(v.iter().map(|t| go(t, user)).collect()),
                Tpl::Not(t) => Filter::Not(Box::new(go(t, user))),
                Tpl::Present(a) => Filter::Present(a.clone()),
                Tpl::Equal(a, parts) => {
                    let mut v = Vec::new();
                    for p in parts {
                        match p {
                            Part::Bytes(b) => v.extend_from_slice(b),
                            Part::User => v.extend_from_slice(user.as_bytes()),
                        }
                    }
                    Filter::Equal(a.clone(), v)
                }
            }
        }
        go(&self.0, user)
    }

    /// The filter text for `user`, escaped per RFC 4515 (for logs and
    /// `ykmap`).
    #[must_use]
    pub fn display(&self, user: &str) -> String {
        filter_text(&self.build(user))
    }
}

/// RFC 4515 text of a filter.
#[must_use]
pub fn filter_text(f: &Filter) -> String {
    match f {
        Filter::And(v) => format!("(&{})", v.iter().map(filter_text).collect::<String>()),
        Filter::Or(v) => format!("(|{})", v.iter().map(filter_text).collect::<String>()),
        Filter::Not(f) => format!("(!{})", filter_text(f)),
        Filter::Equal(a, v) => format!("({a}={})", escape_filter_value(v)),
        Filter::Present(a) => format!("({a}=*)"),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", char::from(b), self.i))
        }
    }

    fn filter(&mut self, depth: usize) -> Result<Tpl, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        self.eat(b'(')?;
        let t = match self.peek() {
            Some(b'&') | Some(b'|') => {
                let and = self.peek() == Some(b'&');
                self.i += 1;
                let mut v = Vec::new();
                while self.peek() == Some(b'(') {
                    v.push(self.filter(depth + 1)?);
                }
                if v.is_empty() {
                    return Err("empty '&' or '|'".into());
                }
                if and { Tpl::And(v) } else { Tpl::Or(v) }
            }
            Some(b'!') => {
                self.i += 1;
                Tpl::Not(Box::new(self.filter(depth + 1)?))
            }
            _ => self.item()?,
        };
        self.eat(b')')?;
        Ok(t)
    }

    fn item(&mut self) -> Result<Tpl, String> {
        let start = self.i;
        while self.peek().is_some_and(|b| b != b'=' && b != b')') {
            self.i += 1;
        }
        let attr = core::str::from_utf8(self.s.get(start..self.i).unwrap_or(&[]))
            .map_err(|_| "attribute is not UTF-8".to_string())?
            .to_string();
        if attr.ends_with(['~', '<', '>', ':']) {
            return Err("only equality and presence filters are supported".into());
        }
        if !valid_attr(&attr) {
            return Err("bad attribute name".into());
        }
        self.eat(b'=')?;
        let vstart = self.i;
        if self.s.get(vstart..vstart + 2) == Some(b"*)") {
            self.i += 1;
            return Ok(Tpl::Present(attr));
        }
        let mut parts: Vec<Part> = Vec::new();
        let mut cur = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated filter".into()),
                Some(b')') => break,
                Some(b'(') => return Err("unescaped '(' in a value".into()),
                Some(b'*') => return Err("substring filters are not supported".into()),
                Some(b'%') if self.s.get(self.i + 1) == Some(&b'u') => {
                    if !cur.is_empty() {
                        parts.push(Part::Bytes(core::mem::take(&mut cur)));
                    }
                    parts.push(Part::User);
                    self.i += 2;
                }
                Some(b'\\') => {
                    let hex = self
                        .s
                        .get(self.i + 1..self.i + 3)
                        .and_then(|h| core::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| "bad '\\' escape (\\XX hex expected)".to_string())?;
                    cur.push(hex);
                    self.i += 3;
                }
                Some(b) => {
                    cur.push(b);
                    self.i += 1;
                }
            }
        }
        if !cur.is_empty() {
            parts.push(Part::Bytes(cur));
        }
        Ok(Tpl::Equal(attr, parts))
    }
}

/// Escapes an assertion value per RFC 4515 §3: `*`, `(`, `)`, `\`, NUL and
/// (for readable logs) every non-printable or non-ASCII byte as `\XX`.
#[must_use]
pub fn escape_filter_value(v: &[u8]) -> String {
    let mut s = String::new();
    for &b in v {
        if matches!(b, b'*' | b'(' | b')' | b'\\') || !(0x20..0x7f).contains(&b) {
            s.push_str(&format!("\\{b:02x}"));
        } else {
            s.push(char::from(b));
        }
    }
    s
}

/// Escapes an attribute value for a DN per RFC 4514 §2.4: `"`, `+`, `,`,
/// `;`, `<`, `>`, `\` always, `#` and space at the start, space at the
/// end, NUL as `\00`; other UTF-8 stays as it is.
#[must_use]
pub fn escape_dn_value(v: &str) -> String {
    let mut s = String::new();
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                s.push('\\');
                s.push(c);
            }
            '#' if i == 0 => s.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => s.push_str("\\ "),
            '\0' => s.push_str("\\00"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    s.push_str(&format!("\\{b:02x}"));
                }
            }
            c => s.push(c),
        }
    }
    s
}

/// The LDAPMessage of `op`. Buffers are sized up front (no reallocation
/// leaves a freed copy behind) and the intermediate one is wiped: `op` may
/// be a BindRequest holding a password.
fn message(id: i32, op: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(op.len() + 16);
    put_int(&mut c, tag::INTEGER, i64::from(id));
    c.extend_from_slice(op);
    let mut out = Vec::with_capacity(c.len() + 16);
    put_tlv(&mut out, tag::SEQUENCE, &c);
    zeroize::Zeroize::zeroize(&mut c);
    out
}

/// A simple BindRequest (`dn` and `password` empty: anonymous). The
/// returned buffer holds the password: the caller wipes it.
#[must_use]
pub fn bind_request(id: i32, dn: &str, password: &[u8]) -> Vec<u8> {
    // Sized up front: a reallocation would leave the password in freed
    // memory.
    let mut c = Vec::with_capacity(dn.len() + password.len() + 32);
    put_int(&mut c, tag::INTEGER, 3);
    put_tlv(&mut c, tag::OCTET_STRING, dn.as_bytes());
    put_tlv(&mut c, 0x80, password);
    let mut op = Vec::with_capacity(c.len() + 16);
    put_tlv(&mut op, APP_BIND_REQ, &c);
    zeroize::Zeroize::zeroize(&mut c);
    let out = message(id, &op);
    zeroize::Zeroize::zeroize(&mut op);
    out
}

/// What to search for.
#[derive(Debug, Clone)]
pub struct Search<'a> {
    /// The base DN.
    pub base: &'a str,
    /// The scope.
    pub scope: Scope,
    /// The filter.
    pub filter: &'a Filter,
    /// The attributes wanted.
    pub attrs: &'a [&'a str],
    /// Most entries the server may return.
    pub size_limit: i32,
    /// Seconds the server may spend.
    pub time_limit: i32,
}

/// A SearchRequest (aliases never dereferenced, types and values).
#[must_use]
pub fn search_request(id: i32, s: &Search<'_>) -> Vec<u8> {
    let mut c = Vec::new();
    put_tlv(&mut c, tag::OCTET_STRING, s.base.as_bytes());
    put_int(&mut c, tag::ENUMERATED, s.scope as i64);
    put_int(&mut c, tag::ENUMERATED, 0);
    put_int(&mut c, tag::INTEGER, i64::from(s.size_limit));
    put_int(&mut c, tag::INTEGER, i64::from(s.time_limit));
    put_bool(&mut c, false);
    s.filter.encode(&mut c);
    let mut attrs = Vec::new();
    for a in s.attrs {
        put_tlv(&mut attrs, tag::OCTET_STRING, a.as_bytes());
    }
    put_tlv(&mut c, tag::SEQUENCE, &attrs);
    let mut op = Vec::new();
    put_tlv(&mut op, APP_SEARCH_REQ, &c);
    message(id, &op)
}

/// The StartTLS ExtendedRequest.
#[must_use]
pub fn starttls_request(id: i32) -> Vec<u8> {
    let mut c = Vec::new();
    put_tlv(&mut c, 0x80, STARTTLS_OID.as_bytes());
    let mut op = Vec::new();
    put_tlv(&mut op, APP_EXT_REQ, &c);
    message(id, &op)
}

/// The UnbindRequest.
#[must_use]
pub fn unbind_request(id: i32) -> Vec<u8> {
    message(id, &[APP_UNBIND_REQ, 0])
}

/// An LDAPResult (RFC 4511 §4.1.9), without referrals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapResult {
    /// The result code (0 success).
    pub code: i64,
    /// The matched DN (for noSuchObject: the deepest existing entry).
    pub matched_dn: String,
    /// The server's diagnostic message (printable ASCII, at most 200).
    pub message: String,
}

/// One entry's attributes (names as the server wrote them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's DN.
    pub dn: String,
    /// (attribute, values).
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// The values of `attr` (case-insensitive name match, options ignored).
    #[must_use]
    pub fn values(&self, attr: &str) -> Vec<&[u8]> {
        self.attrs
            .iter()
            .filter(|(a, _)| a.split(';').next().unwrap_or("").eq_ignore_ascii_case(attr))
            .flat_map(|(_, v)| v.iter().map(Vec::as_slice))
            .collect()
    }
}

/// A response from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// BindResponse.
    Bind(LdapResult),
    /// SearchResultEntry.
    Entry(Entry),
    /// SearchResultReference (a continuation we do not follow).
    Reference,
    /// SearchResultDone.
    Done(LdapResult),
    /// ExtendedResponse (including the unsolicited notice of
    /// disconnection, message id 0).
    Extended(LdapResult),
}

/// Why a server's message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// Malformed BER.
    Ber(BerError),
    /// Well-formed but not an LDAP response we know.
    Unexpected(&'static str),
}

impl core::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ber(e) => write!(f, "malformed LDAP message: {e}"),
            Self::Unexpected(w) => write!(f, "unexpected LDAP message: {w}"),
        }
    }
}

impl From<BerError> for ProtoError {
    fn from(e: BerError) -> Self {
        Self::Ber(e)
    }
}

fn printable(b: &[u8], max: usize) -> String {
    b.iter()
        .take(max)
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

fn ldap_result(r: &mut Reader<'_>) -> Result<LdapResult, ProtoError> {
    let code = r.int(tag::ENUMERATED)?;
    let matched = r.expect(tag::OCTET_STRING)?;
    let msg = r.expect(tag::OCTET_STRING)?;
    Ok(LdapResult {
        code,
        matched_dn: String::from_utf8_lossy(matched.get(..1024).unwrap_or(matched)).into_owned(),
        message: printable(msg, 200),
    })
}

fn entry(content: &[u8]) -> Result<Entry, ProtoError> {
    let mut r = Reader::new(content);
    let dn = r.expect(tag::OCTET_STRING)?;
    let mut list = Reader::new(r.expect(tag::SEQUENCE)?);
    let mut attrs = Vec::new();
    while !list.is_empty() {
        let mut a = Reader::new(list.expect(tag::SEQUENCE)?);
        let name = a.expect(tag::OCTET_STRING)?;
        let mut vals = Reader::new(a.expect(tag::SET)?);
        let mut v = Vec::new();
        while !vals.is_empty() {
            let val = vals.expect(tag::OCTET_STRING)?;
            if v.len() >= MAX_VALUES {
                return Err(ProtoError::Unexpected("too many values"));
            }
            v.push(val.to_vec());
        }
        attrs.push((printable(name, 128), v));
    }
    Ok(Entry {
        dn: String::from_utf8_lossy(dn).into_owned(),
        attrs,
    })
}

/// Parses one complete LDAPMessage: its id and response.
///
/// # Errors
/// [`ProtoError`].
pub fn parse_response(msg: &[u8]) -> Result<(i64, Response), ProtoError> {
    let mut outer = Reader::new(msg);
    let body = outer.expect(tag::SEQUENCE)?;
    outer.finish()?;
    let mut r = Reader::new(body);
    let id = r.int(tag::INTEGER)?;
    let op = r.next_tlv()?;
    // Controls ([0]) may follow; ignored.
    let mut c = Reader::new(op.content);
    let resp = match op.tag {
        APP_BIND_RESP => Response::Bind(ldap_result(&mut c)?),
        APP_SEARCH_DONE => Response::Done(ldap_result(&mut c)?),
        APP_EXT_RESP => Response::Extended(ldap_result(&mut c)?),
        APP_SEARCH_ENTRY => Response::Entry(entry(op.content)?),
        APP_SEARCH_REF => Response::Reference,
        _ => return Err(ProtoError::Unexpected("unknown operation")),
    };
    Ok((id, resp))
}

/// The size of the first complete message in `buf`, `Ok(None)` if more
/// bytes are needed.
///
/// # Errors
/// A bad header or a message above [`MAX_MESSAGE`].
pub fn frame(buf: &[u8]) -> Result<Option<usize>, ProtoError> {
    if buf.first().is_some_and(|t| *t != tag::SEQUENCE) {
        return Err(ProtoError::Unexpected("not an LDAPMessage"));
    }
    match ber::element_size(buf)? {
        Some(n) if n > MAX_MESSAGE => Err(ProtoError::Unexpected("message too large")),
        Some(n) if n <= buf.len() => Ok(Some(n)),
        _ => Ok(None),
    }
}

/// Result codes named in messages.
#[must_use]
pub fn code_name(code: i64) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bind_request_matches_rfc_layout() {
        let m = bind_request(1, "cn=a", b"pw");
        assert_eq!(
            m,
            [
                0x30, 0x12, 0x02, 0x01, 0x01, 0x60, 0x0d, 0x02, 0x01, 0x03, 0x04, 0x04, b'c', b'n',
                b'=', b'a', 0x80, 0x02, b'p', b'w'
            ]
        );
        assert_eq!(frame(&m), Ok(Some(m.len())));
    }

    #[test]
    fn starttls_and_unbind() {
        let m = starttls_request(2);
        assert!(
            m.windows(STARTTLS_OID.len())
                .any(|w| w == STARTTLS_OID.as_bytes())
        );
        assert_eq!(
            unbind_request(3),
            [0x30, 0x05, 0x02, 0x01, 0x03, 0x42, 0x00]
        );
    }

    #[test]
    fn template_substitutes_raw_user_inside_the_value() {
        let t = FilterTemplate::parse("(&(objectClass=person)(uid=%u))").unwrap();
        let evil = "*)(uid=*";
        let f = t.build(evil);
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Equal("objectClass".into(), b"person".to_vec()),
                Filter::Equal("uid".into(), evil.as_bytes().to_vec()),
            ])
        );
        assert_eq!(
            t.display(evil),
            "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(
            FilterTemplate::parse("uid=%u").unwrap().build("a\\b\0"),
            Filter::Equal("uid".into(), b"a\\b\0".to_vec())
        );
        assert_eq!(
            FilterTemplate::parse("(x=\\2a%u)").unwrap().build("u"),
            Filter::Equal("x".into(), b"*u".to_vec())
        );
        assert_eq!(
            FilterTemplate::parse("(|(a=*)(!(b=c)))")
                .unwrap()
                .build("u"),
            Filter::Or(vec![
                Filter::Present("a".into()),
                Filter::Not(Box::new(Filter::Equal("b".into(), b"c".to_vec())))
            ])
        );
        for bad in [
            "(uid=a*)",
            "(uid=%u",
            "(uid=%u))",
            "(&)",
            "(uid~=x)",
            "(=x)",
            "(u id=x)",
            "(uid=\\zz)",
            "",
        ] {
            assert!(FilterTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dn_escaping() {
        assert_eq!(escape_dn_value("a,b"), "a\\,b");
        assert_eq!(escape_dn_value("#x "), "\\#x\\ ");
        assert_eq!(escape_dn_value(" x"), "\\ x");
        assert_eq!(
            escape_dn_value("a\\b+c\"d<e>f;g=h"),
            "a\\\\b\\+c\\\"d\\<e\\>f\\;g\\=h"
        );
        assert_eq!(escape_dn_value("n\0ul"), "n\\00ul");
        assert_eq!(escape_dn_value("jürgen"), "jürgen");
    }

    #[test]
    fn parses_entry_and_done() {
        // SearchResultEntry: dn "uid=a", attrs { yubiKeyId: ["cccc"] }
        let mut attr = Vec::new();
        put_tlv(&mut attr, tag::OCTET_STRING, b"yubiKeyId");
        let mut set = Vec::new();
        put_tlv(&mut set, tag::OCTET_STRING, b"cccc");
        put_tlv(&mut attr, tag::SET, &set);
        let mut list = Vec::new();
        put_tlv(&mut list, tag::SEQUENCE, &attr);
        let mut e = Vec::new();
        put_tlv(&mut e, tag::OCTET_STRING, b"uid=a");
        put_tlv(&mut e, tag::SEQUENCE, &list);
        let mut op = Vec::new();
        put_tlv(&mut op, APP_SEARCH_ENTRY, &e);
        let m = message(5, &op);
        let (id, r) = parse_response(&m).unwrap();
        assert_eq!(id, 5);
        let Response::Entry(e) = r else { panic!() };
        assert_eq!(e.values("yubikeyid"), vec![b"cccc".as_slice()]);
        let mut res = Vec::new();
        put_int(&mut res, tag::ENUMERATED, 32);
        put_tlv(&mut res, tag::OCTET_STRING, b"dc=x");
        put_tlv(&mut res, tag::OCTET_STRING, b"no");
        let mut op = Vec::new();
        put_tlv(&mut op, APP_SEARCH_DONE, &res);
        let (_, r) = parse_response(&message(5, &op)).unwrap();
        assert_eq!(
            r,
            Response::Done(LdapResult {
                code: 32,
                matched_dn: "dc=x".into(),
                message: "no".into()
            })
        );
    }

    #[test]
    fn frame_refuses_huge_and_non_messages() {
        assert!(frame(&[0x30, 0x84, 0x7f, 0, 0, 0]).is_err());
        assert!(frame(&[0x04, 1, 1]).is_err());
        assert_eq!(frame(&[0x30, 3, 2, 1]), Ok(None));
    }

    proptest! {
        #[test]
        fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = frame(&buf);
            let _ = parse_response(&buf);
        }

        #[test]
        fn parse_never_panics_on_plausible_messages(tail in proptest::collection::vec(any::<u8>(), 0..200), op in prop::sample::select(vec![0x61u8, 0x64, 0x65, 0x73, 0x78])) {
            let mut inner = vec![0x02, 0x01, 0x01, op];
            ber::put_len(&mut inner, tail.len());
            inner.extend_from_slice(&tail);
            let mut m = Vec::new();
            put_tlv(&mut m, tag::SEQUENCE, &inner);
            let _ = parse_response(&m);
        }

        #[test]
        fn template_parse_never_panics(s in ".{0,80}") {
            if let Ok(t) = FilterTemplate::parse(&s) {
                let _ = search_request(1, &Search { base: "", scope: Scope::Sub, filter: &t.build("u*)("), attrs: &["a"], size_limit: 2, time_limit: 1 });
            }
        }

        #[test]
        fn user_never_changes_filter_shape(user in "\\PC{0,20}") {
            let t = FilterTemplate::parse("(&(objectClass=person)(uid=%u))").unwrap();
            match t.build(&user) {
                Filter::And(v) => {
                    prop_assert_eq!(v.len(), 2);
                    prop_assert_eq!(&v[1], &Filter::Equal("uid".into(), user.as_bytes().to_vec()));
                }
                _ => prop_assert!(false),
            }
        }

        #[test]
        fn dn_escape_leaves_no_bare_specials(v in "\\PC{0,30}") {
            let e = escape_dn_value(&v);
            let mut chars = e.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\\' { chars.next(); continue; }
                prop_assert!(!matches!(c, ',' | '+' | '"' | '<' | '>' | ';' | '=' | '\0'));
            }
        }
    }
}
