//! Yubico Validation Protocol 2.0, without I/O: nonces, the canonical
//! signing string, request queries, answer parsing, signature checking and
//! the classification of one server's answer (SPEC §7).
//!
//! Everything here is a pure function of its inputs (the random source is a
//! parameter), so the published vectors and every malformed answer can be
//! tested without a socket.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use yubiotp_core::Counter;

/// Largest answer body we read (the reference server sends about 200 bytes).
pub const MAX_BODY: usize = 4096;
/// Most `key=value` lines accepted in one answer.
pub const MAX_LINES: usize = 32;
/// Length of the nonces we send (the protocol allows 16–40).
pub const NONCE_LEN: usize = 32;

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh nonce: [`NONCE_LEN`] characters from `[A-Za-z0-9]`, drawn from
/// `fill` (in production `SystemRandom::fill`) without modulo bias.
///
/// # Errors
/// `None` when the random source fails.
pub fn new_nonce<F>(mut fill: F) -> Option<String>
where
    F: FnMut(&mut [u8]) -> Result<(), ring::error::Unspecified>,
{
    let mut out = String::with_capacity(NONCE_LEN);
    // 248 = 4 * 62: bytes at or above it are dropped. A round of 64 bytes
    // yields 32 characters with overwhelming probability; 16 rounds bound it.
    for _ in 0..16 {
        let mut buf = [0u8; 64];
        fill(&mut buf).ok()?;
        for b in buf {
            if out.len() == NONCE_LEN {
                return Some(out);
            }
            if b < 248 {
                let c = ALNUM.get(usize::from(b % 62)).copied()?;
                out.push(char::from(c));
            }
        }
        if out.len() == NONCE_LEN {
            return Some(out);
        }
    }
    None
}

/// The string that is signed: pairs sorted by key, joined `k=v&k=v`, raw
/// (not URL-encoded) values, `h` left out.
#[must_use]
pub fn canonical<'a, I>(pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut v: Vec<(&str, &str)> = pairs.into_iter().filter(|(k, _)| *k != "h").collect();
    v.sort_unstable();
    let mut s = String::new();
    for (i, (k, val)) in v.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(val);
    }
    s
}

/// `base64(HMAC-SHA1(key, data))`.
#[must_use]
pub fn sign(key: &[u8], data: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    STANDARD.encode(hmac::sign(&k, data.as_bytes()).as_ref())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
#[must_use]
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One request's parameters. `Debug` redacts the OTP.
#[derive(Clone)]
pub struct Request {
    /// Client id.
    pub id: u64,
    /// The OTP, lower-case modhex. Never log it.
    pub otp: String,
    /// The nonce.
    pub nonce: String,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("otp", &"[redacted]")
            .field("nonce", &self.nonce)
            .finish()
    }
}

impl Request {
    /// The query string (without `?`): `id`, `otp`, `nonce`, `timestamp=1`,
    /// then `h` when `key` is given. It holds the OTP: never log it.
    #[must_use]
    pub fn query(&self, key: Option<&[u8]>) -> String {
        let id = self.id.to_string();
        let pairs = [
            ("id", id.as_str()),
            ("otp", self.otp.as_str()),
            ("nonce", self.nonce.as_str()),
            ("timestamp", "1"),
        ];
        let mut q = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                q.push('&');
            }
            q.push_str(k);
            q.push('=');
            q.push_str(&url_encode(v));
        }
        if let Some(key) = key {
            let h = sign(key, &canonical(pairs));
            q.push_str("&h=");
            q.push_str(&url_encode(&h));
        }
        q
    }
}

/// Why an answer body could not be read as `key=value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Garbage {
    /// Longer than [`MAX_BODY`].
    TooLarge,
    /// Not UTF-8, or a control character other than CR/LF.
    NotText,
    /// A non-empty line without `=`, or with an empty or odd key.
    BadLine,
    /// The same key twice.
    DuplicateKey,
    /// More than [`MAX_LINES`] lines.
    TooManyLines,
    /// No `status` line.
    NoStatus,
}

impl fmt::Display for Garbage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "body too large",
            Self::NotText => "body is not text",
            Self::BadLine => "malformed line",
            Self::DuplicateKey => "duplicate key",
            Self::TooManyLines => "too many lines",
            Self::NoStatus => "no status",
        })
    }
}

/// An answer body split into its `key=value` pairs, in order.
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    pairs: Vec<(String, String)>,
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values echo the OTP: show keys only.
        f.debug_struct("Answer")
            .field(
                "keys",
                &self.pairs.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Answer {
    /// Splits `body` into lines (`\r\n` or `\n`), each at its first `=`.
    /// Blank lines are skipped. Keys are `[A-Za-z0-9_]+`, unique.
    ///
    /// # Errors
    /// [`Garbage`] for anything else.
    pub fn parse(body: &[u8]) -> Result<Self, Garbage> {
        if body.len() > MAX_BODY {
            return Err(Garbage::TooLarge);
        }
        let text = core::str::from_utf8(body).map_err(|_| Garbage::NotText)?;
        if text
            .chars()
            .any(|c| c.is_control() && c != '\r' && c != '\n')
        {
            return Err(Garbage::NotText);
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for raw in text.split('\n') {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            if line.contains('\r') {
                return Err(Garbage::BadLine);
            }
            let (k, v) = line.split_once('=').ok_or(Garbage::BadLine)?;
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(Garbage::BadLine);
            }
            if pairs.iter().any(|(seen, _)| seen == k) {
                return Err(Garbage::DuplicateKey);
            }
            if pairs.len() == MAX_LINES {
                return Err(Garbage::TooManyLines);
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        if !pairs.iter().any(|(k, _)| k == "status") {
            return Err(Garbage::NoStatus);
        }
        Ok(Self { pairs })
    }

    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The keys, in the order received.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// Checks `h` over every other key received, sorted, in constant time.
    #[must_use]
    pub fn signature(&self, key: &[u8]) -> Signature {
        let Some(h) = self.get("h") else {
            return Signature::Missing;
        };
        let Ok(tag) = STANDARD.decode(h) else {
            return Signature::Invalid;
        };
        let data = canonical(self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        match hmac::verify(&k, data.as_bytes(), &tag) {
            Ok(()) => Signature::Valid,
            Err(_) => Signature::Invalid,
        }
    }

    /// `sessioncounter` (the use counter) and `sessionuse` (the session
    /// counter), when both are present and in range.
    #[must_use]
    pub fn counter(&self) -> Option<Counter> {
        let use_counter: u16 = self.get("sessioncounter")?.parse().ok()?;
        let session: u8 = self.get("sessionuse")?.parse().ok()?;
        Some(Counter::new(use_counter, session))
    }
}

/// The state of an answer's `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Correct for our key.
    Valid,
    /// Present but wrong (or not base64).
    Invalid,
    /// No `h` line.
    Missing,
}

/// The `status` values of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The OTP is valid.
    Ok,
    /// The OTP is invalid.
    BadOtp,
    /// The OTP was seen before.
    ReplayedOtp,
    /// Our request signature was wrong.
    BadSignature,
    /// A parameter was missing or malformed.
    MissingParameter,
    /// Unknown client id.
    NoSuchClient,
    /// This client may not verify.
    OperationNotAllowed,
    /// Server-side failure.
    BackendError,
    /// The server could not sync with enough peers.
    NotEnoughAnswers,
    /// This exact request (OTP and nonce) was seen before.
    ReplayedRequest,
    /// Anything else (kept only if it is a short token of `[A-Z_]`).
    Unknown(String),
}

impl Status {
    /// Maps a status token.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "OK" => Self::Ok,
            "BAD_OTP" => Self::BadOtp,
            "REPLAYED_OTP" => Self::ReplayedOtp,
            "BAD_SIGNATURE" => Self::BadSignature,
            "MISSING_PARAMETER" => Self::MissingParameter,
            "NO_SUCH_CLIENT" => Self::NoSuchClient,
            "OPERATION_NOT_ALLOWED" => Self::OperationNotAllowed,
            "BACKEND_ERROR" => Self::BackendError,
            "NOT_ENOUGH_ANSWERS" => Self::NotEnoughAnswers,
            "REPLAYED_REQUEST" => Self::ReplayedRequest,
            other => {
                let safe = other.len() <= 32
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                Self::Unknown(if safe {
                    other.to_string()
                } else {
                    format!("[{} bytes, not shown]", other.len())
                })
            }
        }
    }

    /// The token as sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ok => "OK",
            Self::BadOtp => "BAD_OTP",
            Self::ReplayedOtp => "REPLAYED_OTP",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::MissingParameter => "MISSING_PARAMETER",
            Self::NoSuchClient => "NO_SUCH_CLIENT",
            Self::OperationNotAllowed => "OPERATION_NOT_ALLOWED",
            Self::BackendError => "BACKEND_ERROR",
            Self::NotEnoughAnswers => "NOT_ENOUGH_ANSWERS",
            Self::ReplayedRequest => "REPLAYED_REQUEST",
            Self::Unknown(s) => s,
        }
    }
}

/// Which echo did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// `otp` missing or different.
    Otp,
    /// `nonce` missing or different.
    Nonce,
}

/// What one server's answer means for the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Definitive accept.
    Accept {
        /// Whether the answer's signature was checked with our key.
        signed: bool,
        /// Counters the server reported.
        counter: Option<Counter>,
    },
    /// Definitive reject (`BAD_OTP` / `REPLAYED_OTP`).
    Reject {
        /// `BadOtp` or `ReplayedOtp`.
        status: Status,
        /// Signed with our key and echoing our nonce (a rejection needs
        /// neither to be definitive; hybrid mode needs both before it lets
        /// a `REPLAYED_OTP` advance the local counters).
        authenticated: bool,
    },
    /// Not definitive: keep waiting for other servers.
    NotDefinitive(Reason),
}

/// Why an answer is not definitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The body is not a protocol answer.
    Garbage(Garbage),
    /// A status that never decides (server trouble or our configuration).
    Status(Status),
    /// `OK` whose `h` is wrong (key set).
    BadSignature,
    /// `OK` without `h` (key set).
    MissingSignature,
    /// The answer is not about our request.
    EchoMismatch(Echo),
}

/// Judges a parsed answer to `req`. `key` is our API key (`None` in
/// `insecure_unsigned` mode, where TLS alone authenticates the server).
///
/// The signature is evaluated before the status is trusted; only `OK`
/// needs it (the reference server signs early errors with an empty key).
#[must_use]
pub fn judge(answer: &Answer, req: &Request, key: Option<&[u8]>) -> Judgement {
    let signature = key.map(|k| answer.signature(k));
    let status = Status::parse(answer.get("status").unwrap_or_default());
    let otp_echoed = answer.get("otp") == Some(req.otp.as_str());
    let nonce = answer.get("nonce");
    match status {
        Status::Ok => {
            match signature {
                Some(Signature::Invalid) => return Judgement::NotDefinitive(Reason::BadSignature),
                Some(Signature::Missing) => {
                    return Judgement::NotDefinitive(Reason::MissingSignature);
                }
                Some(Signature::Valid) | None => {}
            }
            if !otp_echoed {
                return Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Otp));
            }
            if nonce != Some(req.nonce.as_str()) {
                return Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Nonce));
            }
            Judgement::Accept {
                signed: signature == Some(Signature::Valid),
                counter: answer.counter(),
            }
        }
        Status::BadOtp | Status::ReplayedOtp => {
            if !otp_echoed {
                return Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Otp));
            }
            // A nonce that is present must be ours: a different one means an
            // answer to another request (replayed by someone in the middle).
            if nonce.is_some_and(|n| n != req.nonce) {
                return Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Nonce));
            }
            Judgement::Reject {
                status,
                authenticated: signature == Some(Signature::Valid)
                    && nonce == Some(req.nonce.as_str()),
            }
        }
        other => Judgement::NotDefinitive(Reason::Status(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = "mG5be6ZJU1qBGz24yPh/ESM3UdU=";

    fn key() -> Vec<u8> {
        STANDARD.decode(KEY_B64).unwrap()
    }

    #[test]
    fn anchor_vector_libykclient_request() {
        let data = "id=1&nonce=zsjzvozohbqqykcilnwxihbgtepilzam&otp=vvincredibletrerdegkkrkkneieultcjdghrejjbckh&timestamp=1";
        assert_eq!(sign(&key(), data), "Dj68ZIAAISBeQuEDS5S4evrWvkk=");
        let req = Request {
            id: 1,
            otp: "vvincredibletrerdegkkrkkneieultcjdghrejjbckh".into(),
            nonce: "zsjzvozohbqqykcilnwxihbgtepilzam".into(),
        };
        assert_eq!(
            req.query(Some(&key())),
            "id=1&otp=vvincredibletrerdegkkrkkneieultcjdghrejjbckh\
             &nonce=zsjzvozohbqqykcilnwxihbgtepilzam&timestamp=1&h=Dj68ZIAAISBeQuEDS5S4evrWvkk%3D"
        );
        assert_eq!(
            req.query(None),
            "id=1&otp=vvincredibletrerdegkkrkkneieultcjdghrejjbckh\
             &nonce=zsjzvozohbqqykcilnwxihbgtepilzam&timestamp=1"
        );
    }

    #[test]
    fn anchor_vector_request_canonical_order() {
        // Given out of order, canonical() sorts.
        let pairs = [
            ("otp", "dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh"),
            ("nonce", "aef3a7835277a28da831005c2ae3b919e2076a62"),
            ("id", "1"),
        ];
        let c = canonical(pairs);
        assert_eq!(
            c,
            "id=1&nonce=aef3a7835277a28da831005c2ae3b919e2076a62&otp=dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh"
        );
        assert_eq!(sign(&key(), &c), "2coRNMmvov9i1+dDHMFBz7/M/90=");
    }

    #[test]
    fn anchor_vector_response_signature() {
        let body = "h=+suJkg6Htplhid81GLwDUCcVaj0=\r\n\
                    t=2019-06-06T05:14:09Z0369\r\n\
                    otp=dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh\r\n\
                    nonce=aef3a7835277a28da831005c2ae3b919e2076a62\r\n\
                    sl=100\r\nstatus=OK\r\n\r\n";
        let a = Answer::parse(body.as_bytes()).unwrap();
        assert_eq!(a.signature(&key()), Signature::Valid);
        assert_eq!(a.signature(b"other key"), Signature::Invalid);
        // LF-only line endings are the same answer.
        let lf = body.replace("\r\n", "\n");
        assert_eq!(
            Answer::parse(lf.as_bytes()).unwrap().signature(&key()),
            Signature::Valid
        );
        let req = Request {
            id: 1,
            otp: "dteffujehknhfjbrjnlnldnhcujvddbikngjrtgh".into(),
            nonce: "aef3a7835277a28da831005c2ae3b919e2076a62".into(),
        };
        assert_eq!(
            judge(&a, &req, Some(&key())),
            Judgement::Accept {
                signed: true,
                counter: None
            }
        );
    }

    #[test]
    fn url_encoding_escapes_base64() {
        assert_eq!(url_encode("a+b/c="), "a%2Bb%2Fc%3D");
        assert_eq!(url_encode("AZaz09-._~"), "AZaz09-._~");
    }

    #[test]
    fn nonces_are_alnum_distinct_and_right_length() {
        use ring::rand::SecureRandom as _;
        let rng = ring::rand::SystemRandom::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let n = new_nonce(|b| rng.fill(b)).unwrap();
            assert_eq!(n.len(), NONCE_LEN);
            assert!((16..=40).contains(&n.len()));
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(seen.insert(n));
        }
    }

    #[test]
    fn failing_rng_gives_no_nonce() {
        assert!(new_nonce(|_| Err(ring::error::Unspecified)).is_none());
        // A source stuck on bytes >= 248 never yields a character: bounded.
        assert!(
            new_nonce(|b| {
                b.fill(0xff);
                Ok(())
            })
            .is_none()
        );
    }

    fn signed(pairs: &[(&str, &str)], key: &[u8]) -> String {
        let h = sign(key, &canonical(pairs.iter().copied()));
        let mut s = format!("h={h}\r\n");
        for (k, v) in pairs {
            s.push_str(&format!("{k}={v}\r\n"));
        }
        s
    }

    fn req() -> Request {
        Request {
            id: 7,
            otp: "ccccccdbjrgfdteffujehknhfjbrjnlnldnhcujvddbi".into(),
            nonce: "abcdefghijklmnopqrstuvwxyz012345".into(),
        }
    }

    fn judged(pairs: &[(&str, &str)], k: Option<&[u8]>) -> Judgement {
        let body = signed(pairs, &key());
        judge(&Answer::parse(body.as_bytes()).unwrap(), &req(), k)
    }

    #[test]
    fn judgement_table() {
        let r = req();
        let k = key();
        let ok = [
            ("t", "2024-01-01T00:00:00Z0000"),
            ("otp", r.otp.as_str()),
            ("nonce", r.nonce.as_str()),
            ("sl", "100"),
            ("timestamp", "12345"),
            ("sessioncounter", "19"),
            ("sessionuse", "3"),
            ("status", "OK"),
        ];
        assert_eq!(
            judged(&ok, Some(&k)),
            Judgement::Accept {
                signed: true,
                counter: Some(Counter::new(19, 3))
            }
        );
        // Unsigned mode: the signature is not looked at.
        assert_eq!(
            judged(&ok, None),
            Judgement::Accept {
                signed: false,
                counter: Some(Counter::new(19, 3))
            }
        );
        // An extra key (privacyIDEA's ttype) is covered by the signature.
        let mut extra = ok.to_vec();
        extra.push(("ttype", "yubikey"));
        assert!(matches!(
            judged(&extra, Some(&k)),
            Judgement::Accept { signed: true, .. }
        ));
        // Wrong echo.
        let mut wrong = ok;
        wrong[2] = ("nonce", "abcdefghijklmnopqrstuvwxyz999999");
        assert_eq!(
            judged(&wrong, Some(&k)),
            Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Nonce))
        );
        let mut wrong = ok;
        wrong[1] = ("otp", "CCCCCCDBJRGFDTEFFUJEHKNHFJBRJNLNLDNHCUJVDDBI");
        assert_eq!(
            judged(&wrong, Some(&k)),
            Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Otp))
        );
        // Missing nonce on OK.
        let no_nonce: Vec<_> = ok.iter().copied().filter(|(k, _)| *k != "nonce").collect();
        assert_eq!(
            judged(&no_nonce, Some(&k)),
            Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Nonce))
        );
        // Rejections need the otp echo, not our signature.
        for st in ["BAD_OTP", "REPLAYED_OTP"] {
            let rej = [("otp", r.otp.as_str()), ("status", st)];
            let body = signed(&rej, b"");
            let a = Answer::parse(body.as_bytes()).unwrap();
            assert_eq!(
                judge(&a, &r, Some(&k)),
                Judgement::Reject {
                    status: Status::parse(st),
                    authenticated: false
                }
            );
            // Signed with our key and echoing our nonce: authenticated.
            let rej = [
                ("otp", r.otp.as_str()),
                ("nonce", r.nonce.as_str()),
                ("status", st),
            ];
            assert_eq!(
                judged(&rej, Some(&k)),
                Judgement::Reject {
                    status: Status::parse(st),
                    authenticated: true
                }
            );
            // Signed but without our nonce: definitive, not authenticated.
            let rej = [("otp", r.otp.as_str()), ("status", st)];
            assert_eq!(
                judged(&rej, Some(&k)),
                Judgement::Reject {
                    status: Status::parse(st),
                    authenticated: false
                }
            );
            let rej = [("status", st)];
            assert_eq!(
                judged(&rej, Some(&k)),
                Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Otp))
            );
            let rej = [
                ("otp", r.otp.as_str()),
                ("nonce", "zzzzzzzzzzzzzzzz"),
                ("status", st),
            ];
            assert_eq!(
                judged(&rej, Some(&k)),
                Judgement::NotDefinitive(Reason::EchoMismatch(Echo::Nonce))
            );
        }
        for st in [
            "BAD_SIGNATURE",
            "MISSING_PARAMETER",
            "NO_SUCH_CLIENT",
            "OPERATION_NOT_ALLOWED",
            "BACKEND_ERROR",
            "NOT_ENOUGH_ANSWERS",
            "REPLAYED_REQUEST",
            "DELAYED_OTP",
            "ok",
            "",
        ] {
            let a = [
                ("otp", r.otp.as_str()),
                ("nonce", r.nonce.as_str()),
                ("status", st),
            ];
            assert!(
                matches!(
                    judged(&a, Some(&k)),
                    Judgement::NotDefinitive(Reason::Status(_))
                ),
                "{st}"
            );
        }
    }

    #[test]
    fn signature_faults_on_ok() {
        let r = req();
        let k = key();
        let ok = format!("otp={}\nnonce={}\nstatus=OK\n", r.otp, r.nonce);
        let a = Answer::parse(ok.as_bytes()).unwrap();
        assert_eq!(
            judge(&a, &r, Some(&k)),
            Judgement::NotDefinitive(Reason::MissingSignature)
        );
        let bad = format!("h=AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n{ok}");
        let a = Answer::parse(bad.as_bytes()).unwrap();
        assert_eq!(
            judge(&a, &r, Some(&k)),
            Judgement::NotDefinitive(Reason::BadSignature)
        );
        let notb64 = format!("h=!!!\n{ok}");
        let a = Answer::parse(notb64.as_bytes()).unwrap();
        assert_eq!(
            judge(&a, &r, Some(&k)),
            Judgement::NotDefinitive(Reason::BadSignature)
        );
        // Signed with the empty key (as the reference server does for
        // early errors) is not good enough for OK.
        let pairs = [
            ("otp", r.otp.as_str()),
            ("nonce", r.nonce.as_str()),
            ("status", "OK"),
        ];
        let body = signed(&pairs, b"");
        let a = Answer::parse(body.as_bytes()).unwrap();
        assert_eq!(
            judge(&a, &r, Some(&k)),
            Judgement::NotDefinitive(Reason::BadSignature)
        );
    }

    #[test]
    fn parser_refuses_ambiguity() {
        assert_eq!(
            Answer::parse(b"status=OK\nstatus=BAD_OTP\n"),
            Err(Garbage::DuplicateKey)
        );
        assert_eq!(
            Answer::parse(b"h=a\nh=b\nstatus=OK\n"),
            Err(Garbage::DuplicateKey)
        );
        assert_eq!(
            Answer::parse(b"status=OK\nnonsense\n"),
            Err(Garbage::BadLine)
        );
        assert_eq!(Answer::parse(b"=x\nstatus=OK\n"), Err(Garbage::BadLine));
        assert_eq!(Answer::parse(b"a b=x\nstatus=OK\n"), Err(Garbage::BadLine));
        assert_eq!(Answer::parse(b"st\ratus=OK\n"), Err(Garbage::BadLine));
        assert_eq!(Answer::parse(b"otp=x\n"), Err(Garbage::NoStatus));
        assert_eq!(Answer::parse(b""), Err(Garbage::NoStatus));
        assert_eq!(Answer::parse(b"status=OK\0\n"), Err(Garbage::NotText));
        assert_eq!(Answer::parse(&[0xff, 0xfe]), Err(Garbage::NotText));
        assert_eq!(
            Answer::parse("<html><body>hi</body></html>".as_bytes()),
            Err(Garbage::BadLine)
        );
        assert_eq!(Answer::parse(&[b'a'; MAX_BODY + 1]), Err(Garbage::TooLarge));
        let many: String = (0..40).map(|i| format!("k{i}=v\n")).collect();
        assert_eq!(
            Answer::parse(format!("status=OK\n{many}").as_bytes()),
            Err(Garbage::TooManyLines)
        );
        // Values split at the first '=' only.
        let a = Answer::parse(b"h=abc==\nstatus=OK\n").unwrap();
        assert_eq!(a.get("h"), Some("abc=="));
        assert_eq!(a.keys().collect::<Vec<_>>(), ["h", "status"]);
    }

    #[test]
    fn counters_in_range_only() {
        let a = Answer::parse(b"status=OK\nsessioncounter=70000\nsessionuse=1\n").unwrap();
        assert_eq!(a.counter(), None);
        let a = Answer::parse(b"status=OK\nsessioncounter=7\nsessionuse=256\n").unwrap();
        assert_eq!(a.counter(), None);
        let a = Answer::parse(b"status=OK\nsessioncounter=7\n").unwrap();
        assert_eq!(a.counter(), None);
        let a = Answer::parse(b"status=OK\nsessioncounter=32767\nsessionuse=255\n").unwrap();
        assert_eq!(a.counter(), Some(Counter::new(0x7fff, 255)));
    }

    #[test]
    fn unknown_status_text_is_sanitised() {
        assert_eq!(Status::parse("FOO").as_str(), "FOO");
        let weird = Status::parse("<script>alert(1)</script>");
        assert!(!weird.as_str().contains('<'));
    }

    #[test]
    fn debug_never_shows_the_otp() {
        let r = req();
        assert!(!format!("{r:?}").contains(&r.otp));
        let a = Answer::parse(format!("otp={}\nstatus=OK\n", r.otp).as_bytes()).unwrap();
        assert!(!format!("{a:?}").contains(&r.otp));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(a) = Answer::parse(&body) {
                let _ = a.signature(b"k");
                let _ = a.counter();
                let req = Request { id: 1, otp: "x".into(), nonce: "y".into() };
                let _ = judge(&a, &req, Some(b"k"));
                let _ = judge(&a, &req, None);
            }
        }

        #[test]
        fn signature_covers_exactly_the_keys_received(
            pairs in proptest::collection::btree_map("[a-z]{1,8}", "[ -~&&[^=]]{0,20}", 1..8),
            key in proptest::collection::vec(any::<u8>(), 1..40),
            tamper in any::<prop::sample::Index>(),
        ) {
            let mut pairs: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "h").collect();
            pairs.push(("status".into(), "OK".into()));
            pairs.sort();
            pairs.dedup_by(|a, b| a.0 == b.0);
            let h = sign(&key, &canonical(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
            // Any order of lines, LF or CRLF: valid.
            let mut body: String = pairs.iter().rev().map(|(k, v)| format!("{k}={v}\r\n")).collect();
            body.push_str(&format!("h={h}\n"));
            let a = Answer::parse(body.as_bytes()).unwrap();
            prop_assert_eq!(a.signature(&key), Signature::Valid);
            // Dropping any one key breaks it.
            let drop = tamper.index(pairs.len());
            let short: String = pairs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, (k, v))| format!("{k}={v}\n"))
                .collect();
            if let Ok(a) = Answer::parse(format!("{short}h={h}\n").as_bytes()) {
                prop_assert_eq!(a.signature(&key), Signature::Invalid);
            }
        }
    }
}
