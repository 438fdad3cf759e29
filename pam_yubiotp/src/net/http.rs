//! Just enough HTTP/1.1, without I/O: the GET and POST requests, the CONNECT request,
//! and an incremental response reader with hard caps. Redirects are never
//! followed, content is never decoded.

use core::fmt;

use zeroize::Zeroizing;

use crate::config::ServerUrl;

/// Largest status line plus headers we accept.
pub const MAX_HEAD: usize = 8192;
/// Most header lines accepted.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_CHUNK_LINE: usize = 64;

/// The `Host` header value: the port only when it is not the default.
fn host_header(url: &ServerUrl) -> String {
    let default = if url.https { 443 } else { 80 };
    if url.port == default {
        if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        }
    } else {
        url.authority()
    }
}

/// The GET request for `url` with `query`. With `absolute` (a plain-http
/// target through a proxy) the request line carries the absolute URL.
/// The result holds the OTP: never log it.
#[must_use]
pub fn get_request(url: &ServerUrl, query: &str, absolute: bool) -> Vec<u8> {
    let target = if absolute {
        format!("http://{}{}?{query}", url.authority(), url.path)
    } else {
        format!("{}?{query}", url.path)
    };
    format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pam_yubiotp/{}\r\n\
         Accept: text/plain\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        host_header(url),
        env!("CARGO_PKG_VERSION"),
    )
    .into_bytes()
}

/// A POST of `body` (JSON) to `path` on `url`'s server, with extra
/// `headers` (etcd's token, its leader requirement). With `absolute` (a
/// plain-http target through a proxy) the request line carries the
/// absolute URL. The result may hold a token or an OTP's counters: never
/// log it.
#[must_use]
pub fn post_request(
    url: &ServerUrl,
    path: &str,
    headers: &[(String, Zeroizing<String>)],
    body: &[u8],
    absolute: bool,
) -> Vec<u8> {
    let target = if absolute {
        format!("http://{}{path}", url.authority())
    } else {
        path.to_string()
    };
    let auth: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {}\r\n", v.as_str()))
        .collect();
    let mut out = format!(
        "POST {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pam_yubiotp/{}\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Accept-Encoding: identity\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        host_header(url),
        env!("CARGO_PKG_VERSION"),
        body.len(),
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The CONNECT request that opens a tunnel to `url` through a proxy.
#[must_use]
pub fn connect_request(url: &ServerUrl) -> Vec<u8> {
    let a = url.authority();
    format!("CONNECT {a} HTTP/1.1\r\nHost: {a}\r\nUser-Agent: pam_yubiotp\r\n\r\n").into_bytes()
}

/// Why a response was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The status line or a header is not HTTP/1.x.
    Malformed,
    /// Status line and headers over [`MAX_HEAD`] or [`MAX_HEADERS`].
    HeadTooLarge,
    /// A 3xx answer (redirects are not followed).
    Redirect(u16),
    /// Any other status but 200.
    Status(u16),
    /// Body over the cap.
    BodyTooLarge,
    /// `Content-Encoding` other than identity, or a transfer coding other
    /// than chunked, or both `Content-Length` and `Transfer-Encoding`.
    Unsupported,
    /// The connection closed before the body was complete.
    Truncated,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed HTTP response"),
            Self::HeadTooLarge => f.write_str("HTTP headers too large"),
            Self::Redirect(c) => write!(f, "HTTP {c} redirect (not followed)"),
            Self::Status(c) => write!(f, "HTTP {c}"),
            Self::BodyTooLarge => f.write_str("body too large"),
            Self::Unsupported => f.write_str("unsupported HTTP encoding"),
            Self::Truncated => f.write_str("connection closed mid-response"),
        }
    }
}

/// A parsed status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    /// The status code.
    code: u16,
    /// Header names (lower case) and values.
    headers: Vec<(String, String)>,
}

impl Head {
    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses the head in `buf` if it is complete: `Ok(Some((head, used)))`.
/// The syntax (HTTP/1.0 or 1.1, a three-digit code, header names as
/// tokens, no obsolete line folding) is checked by `httparse`; the head
/// must end with CRLF CRLF and stay within [`MAX_HEAD`] and
/// [`MAX_HEADERS`].
///
/// # Errors
/// [`HttpError::Malformed`] or [`HttpError::HeadTooLarge`].
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let raw = buf.get(..end + 4).ok_or(HttpError::Malformed)?;
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let used = match resp.parse(raw) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Err(HttpError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(_) => return Err(HttpError::Malformed),
    };
    // httparse also takes bare LF line ends; we want the CRLF CRLF end.
    if used != raw.len() {
        return Err(HttpError::Malformed);
    }
    let code = resp.code.ok_or(HttpError::Malformed)?;
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            let value = core::str::from_utf8(h.value).map_err(|_| HttpError::Malformed)?;
            Ok((
                h.name.to_ascii_lowercase(),
                value.trim_matches([' ', '\t']).to_string(),
            ))
        })
        .collect::<Result<Vec<_>, HttpError>>()?;
    Ok(Some((Head { code, headers }, used)))
}

/// A decimal length with nothing else: no sign, no space, no `0x`
/// (`str::parse` would take `+5`); overflow is refused too.
fn strict_decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Incremental reader of one response: feed it bytes, ask if it is done.
/// `Debug` shows sizes only (the body echoes the OTP).
pub struct ResponseReader {
    cap: usize,
    buf: Vec<u8>,
    framing: Option<Framing>,
    body: Vec<u8>,
    chunk: ChunkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
    Done,
}

impl fmt::Debug for ResponseReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseReader")
            .field("cap", &self.cap)
            .field("buffered", &self.buf.len())
            .field("body", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The outcome of feeding bytes. `Debug` shows the body's size only.
#[derive(Clone, PartialEq, Eq)]
pub enum Progress {
    /// Need more bytes.
    More,
    /// The 200 body, complete.
    Body(Vec<u8>),
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::More => f.write_str("More"),
            Self::Body(b) => write!(f, "Body([{} bytes])", b.len()),
        }
    }
}

impl ResponseReader {
    /// A reader that refuses bodies over `cap` bytes.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buf: Vec::new(),
            framing: None,
            body: Vec::new(),
            chunk: ChunkState::Size,
        }
    }

    /// Feeds received bytes (never more than the caps are kept).
    ///
    /// # Errors
    /// [`HttpError`] as soon as the response is known to be unusable.
    pub fn feed(&mut self, data: &[u8]) -> Result<Progress, HttpError> {
        self.buf.extend_from_slice(data);
        if self.framing.is_none() {
            let Some((head, used)) = parse_head(&self.buf)? else {
                return Ok(Progress::More);
            };
            self.buf.drain(..used);
            self.framing = Some(self.body_framing(&head)?);
        }
        self.body_progress()
    }

    fn body_framing(&self, head: &Head) -> Result<Framing, HttpError> {
        match head.code {
            200 => {}
            300..=399 => return Err(HttpError::Redirect(head.code)),
            c => return Err(HttpError::Status(c)),
        }
        if head
            .all("content-encoding")
            .any(|v| !v.eq_ignore_ascii_case("identity"))
        {
            return Err(HttpError::Unsupported);
        }
        let te: Vec<&str> = head.all("transfer-encoding").collect();
        let cl: Vec<&str> = head.all("content-length").collect();
        match (te.as_slice(), cl.as_slice()) {
            ([], []) => Ok(Framing::Close),
            ([], [len]) => {
                let n = strict_decimal(len).ok_or(HttpError::Malformed)?;
                if n > self.cap {
                    Err(HttpError::BodyTooLarge)
                } else {
                    Ok(Framing::Length(n))
                }
            }
            ([t], []) if t.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(HttpError::Unsupported),
        }
    }

    fn take_body(&mut self, n: usize) -> Result<(), HttpError> {
        if self.body.len() + n > self.cap {
            return Err(HttpError::BodyTooLarge);
        }
        self.body.extend(self.buf.drain(..n));
        Ok(())
    }

    fn body_progress(&mut self) -> Result<Progress, HttpError> {
        let Some(framing) = self.framing else {
            return Ok(Progress::More);
        };
        match framing {
            Framing::Length(n) => {
                let want = n.saturating_sub(self.body.len()).min(self.buf.len());
                self.take_body(want)?;
                if self.body.len() == n {
                    Ok(Progress::Body(core::mem::take(&mut self.body)))
                } else {
                    Ok(Progress::More)
                }
            }
            Framing::Close => {
                let n = self.buf.len();
                self.take_body(n)?;
                Ok(Progress::More)
            }
            Framing::Chunked => self.chunked(),
        }
    }

    fn chunked(&mut self) -> Result<Progress, HttpError> {
        // Bounded: every pass either consumes bytes or returns.
        for _ in 0..=(self.buf.len() + 4) {
            match self.chunk {
                ChunkState::Size => {
                    // Hex digits, optional extensions, CRLF; no sign, and
                    // a size that overflows u64 is an error (httparse).
                    let (used, size) = match httparse::parse_chunk_size(&self.buf) {
                        Ok(httparse::Status::Complete(c)) => c,
                        Ok(httparse::Status::Partial) if self.buf.len() > MAX_CHUNK_LINE => {
                            return Err(HttpError::Malformed);
                        }
                        Ok(httparse::Status::Partial) => return Ok(Progress::More),
                        Err(_) => return Err(HttpError::Malformed),
                    };
                    if used > MAX_CHUNK_LINE {
                        return Err(HttpError::Malformed);
                    }
                    let size = usize::try_from(size).map_err(|_| HttpError::BodyTooLarge)?;
                    if size > self.cap.saturating_sub(self.body.len()) {
                        return Err(HttpError::BodyTooLarge);
                    }
                    self.buf.drain(..used);
                    self.chunk = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let n = left.min(self.buf.len());
                    if n == 0 {
                        return Ok(Progress::More);
                    }
                    self.take_body(n)?;
                    self.chunk = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(Progress::More);
                    }
                    if self.buf.get(..2) != Some(b"\r\n".as_slice()) {
                        return Err(HttpError::Malformed);
                    }
                    self.buf.drain(..2);
                    self.chunk = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(eol) = find(&self.buf, b"\r\n") else {
                        return if self.buf.len() > 1024 {
                            Err(HttpError::Malformed)
                        } else {
                            Ok(Progress::More)
                        };
                    };
                    self.buf.drain(..eol + 2);
                    if eol == 0 {
                        self.chunk = ChunkState::Done;
                    }
                }
                ChunkState::Done => return Ok(Progress::Body(core::mem::take(&mut self.body))),
            }
        }
        Ok(Progress::More)
    }

    /// The peer closed the connection cleanly: a close-delimited body ends.
    ///
    /// # Errors
    /// [`HttpError::Truncated`] when the response was not complete.
    pub fn finish(&mut self) -> Result<Vec<u8>, HttpError> {
        match self.framing {
            Some(Framing::Close) => Ok(core::mem::take(&mut self.body)),
            _ => Err(HttpError::Truncated),
        }
    }
}

/// Reads a proxy's answer to CONNECT: `Ok(Some(used))` once the head is
/// complete and 2xx.
///
/// # Errors
/// [`HttpError`] for anything but a 2xx head.
pub fn connect_reply(buf: &[u8]) -> Result<Option<usize>, HttpError> {
    match parse_head(buf)? {
        None => Ok(None),
        Some((head, used)) if (200..300).contains(&head.code) => Ok(Some(used)),
        Some((head, _)) => Err(HttpError::Status(head.code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> ServerUrl {
        ServerUrl::parse(s).unwrap()
    }

    #[test]
    fn requests() {
        let r = get_request(
            &url("https://api.yubico.com/wsapi/2.0/verify"),
            "a=b",
            false,
        );
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("GET /wsapi/2.0/verify?a=b HTTP/1.1\r\nHost: api.yubico.com\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.contains("Accept-Encoding: identity\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
        let r = get_request(&url("http://127.0.0.1:8080/v"), "a=b", true);
        let r = String::from_utf8(r).unwrap();
        assert!(
            r.starts_with("GET http://127.0.0.1:8080/v?a=b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
        );
        let r = get_request(&url("https://[::1]/v"), "a", false);
        assert!(String::from_utf8(r).unwrap().contains("Host: [::1]\r\n"));
        let c = connect_request(&url("https://api.yubico.com/x"));
        assert_eq!(
            String::from_utf8(c).unwrap(),
            "CONNECT api.yubico.com:443 HTTP/1.1\r\nHost: api.yubico.com:443\r\nUser-Agent: pam_yubiotp\r\n\r\n"
        );
    }

    fn read_all(chunks: &[&[u8]]) -> Result<Progress, HttpError> {
        let mut r = ResponseReader::new(4096);
        let mut last = Progress::More;
        for c in chunks {
            last = r.feed(c)?;
        }
        Ok(last)
    }

    #[test]
    fn content_length_byte_by_byte() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nstatus=OK\n";
        let mut r = ResponseReader::new(4096);
        let mut out = None;
        for b in resp {
            if let Progress::Body(body) = r.feed(&[*b]).unwrap() {
                out = Some(body);
            }
        }
        assert_eq!(out.unwrap(), b"status=OK\n");
    }

    #[test]
    fn chunked_and_close_delimited() {
        let got = read_all(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5;x=y\r\nstatu\r\n5\r\ns=OK\n\r\n0\r\n",
            b"\r\n",
        ])
        .unwrap();
        assert_eq!(got, Progress::Body(b"status=OK\n".to_vec()));
        let mut r = ResponseReader::new(4096);
        assert_eq!(
            r.feed(b"HTTP/1.0 200 OK\r\n\r\nstatus=OK\n").unwrap(),
            Progress::More
        );
        assert_eq!(r.finish().unwrap(), b"status=OK\n");
        let mut r = ResponseReader::new(4096);
        r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nstat")
            .unwrap();
        assert_eq!(r.finish(), Err(HttpError::Truncated));
    }

    #[test]
    fn refusals() {
        let cases: &[(&[u8], HttpError)] = &[
            (
                b"HTTP/1.1 302 Found\r\nLocation: http://x/\r\n\r\n",
                HttpError::Redirect(302),
            ),
            (b"HTTP/1.1 500 Oops\r\n\r\n", HttpError::Status(500)),
            (
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc",
                HttpError::Status(404),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
                HttpError::BodyTooLarge,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
                HttpError::Unsupported,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::Unsupported,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                HttpError::Unsupported,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                HttpError::Unsupported,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                HttpError::Malformed,
            ),
            (b"HTTP/2 200\r\n\r\n", HttpError::Malformed),
            (b"HTTP/1.1 2000 OK\r\n\r\n", HttpError::Malformed),
            (b"garbage\r\n\r\n", HttpError::Malformed),
            (b"HTTP/1.1 200 OK\r\n folded\r\n\r\n", HttpError::Malformed),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n",
                HttpError::BodyTooLarge,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\n",
                HttpError::Malformed,
            ),
        ];
        for (resp, err) in cases {
            assert_eq!(
                read_all(&[resp]),
                Err(err.clone()),
                "{}",
                String::from_utf8_lossy(resp)
            );
        }
        // A close-delimited body over the cap.
        let mut r = ResponseReader::new(16);
        r.feed(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!(r.feed(&[b'a'; 17]), Err(HttpError::BodyTooLarge));
        // Headers that never end.
        let mut r = ResponseReader::new(16);
        assert_eq!(
            r.feed(&vec![b'a'; MAX_HEAD + 1]),
            Err(HttpError::HeadTooLarge)
        );
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            read_all(&[format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()]),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn lengths_are_strict_digits() {
        // `"+5".parse::<usize>()` is Ok(5): each of these once had a body
        // that a lenient parser would have taken as complete.
        let cases: &[(&[u8], HttpError)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nabcde",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabcde",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nabcde",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nabcde",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabcde",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
                HttpError::Unsupported,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde",
                HttpError::Unsupported,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nabcde\r\n0\r\n\r\n",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabcde\r\n0\r\n\r\n",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n",
                HttpError::Malformed,
            ),
            (
                // 2^64 + 5: wraps to 5 in a careless parser.
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nabcde\r\n0\r\n\r\n",
                HttpError::Malformed,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabcde\r\n0\r\n\r\n",
                HttpError::Malformed,
            ),
        ];
        for (resp, err) in cases {
            let text = String::from_utf8_lossy(resp);
            assert_eq!(read_all(&[resp]), Err(err.clone()), "{text}");
            // Byte by byte: never a body either.
            let mut r = ResponseReader::new(4096);
            let mut refused = false;
            for b in *resp {
                match r.feed(&[*b]) {
                    Ok(Progress::More) => {}
                    Ok(Progress::Body(_)) => panic!("accepted: {text}"),
                    Err(_) => {
                        refused = true;
                        break;
                    }
                }
            }
            assert!(refused, "{text}");
            assert!(r.finish().is_err(), "{text}");
        }
        // The strict forms still work.
        assert_eq!(
            read_all(&[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde"]),
            Ok(Progress::Body(b"abcde".to_vec()))
        );
        assert_eq!(
            read_all(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\nabcdeabcde\r\n0\r\n\r\n"]),
            Ok(Progress::Body(b"abcdeabcde".to_vec()))
        );
    }

    #[test]
    fn debug_shows_sizes_only() {
        let mut r = ResponseReader::new(4096);
        r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\notp=secretotp")
            .unwrap();
        let d = format!("{r:?}");
        assert!(!d.contains("secretotp"), "{d}");
        assert!(d.contains("body: 13"), "{d}");
    }

    #[test]
    fn connect_replies() {
        assert_eq!(connect_reply(b"HTTP/1.1 200 Conn"), Ok(None));
        assert_eq!(
            connect_reply(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Ok(Some(39))
        );
        assert_eq!(
            connect_reply(b"HTTP/1.1 407 Proxy Auth\r\n\r\n"),
            Err(HttpError::Status(407))
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn reader_never_panics_and_respects_the_cap(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            prefix in prop_oneof![
                Just(&b""[..]),
                Just(&b"HTTP/1.1 200 OK\r\n\r\n"[..]),
                Just(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]),
                Just(&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"[..]),
            ],
        ) {
            let mut r = ResponseReader::new(256);
            let mut all = vec![prefix.to_vec()];
            all.extend(chunks);
            for c in all {
                match r.feed(&c) {
                    Ok(Progress::More) => {}
                    Ok(Progress::Body(b)) => {
                        prop_assert!(b.len() <= 256);
                        break;
                    }
                    Err(_) => break,
                }
            }
            if let Ok(b) = r.finish() {
                prop_assert!(b.len() <= 256);
            }
        }
    }
}
