//! A loopback Yubico validation server with scripted behaviours.
//!
//! Each [`MockServer`] binds `127.0.0.1:0` and runs exactly one thread that
//! serves every connection with non-blocking sockets, so the number of
//! threads in the test process does not change while it serves (the
//! thread-count checks of the client rely on that). Dropping it (or
//! [`MockServer::shutdown`]) stops and joins that thread within a few
//! milliseconds; it also stops by itself after [`Config::max_lifetime`].

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};

use crate::proto;

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// `status=OK`, signed with the API key, echoing `otp` and `nonce`, with
    /// `t`, `sl`, `timestamp`, `sessioncounter` and `sessionuse`.
    Ok,
    /// This status (any token), signed with the API key, echoing both.
    Status(String),
    /// This status, echoing both, signed with an empty key (as the
    /// reference server does for early errors).
    StatusEmptyKey(String),
    /// `OK` with a wrong `h`.
    BadSignature,
    /// `OK` without `h`.
    NoSignature,
    /// `OK`, correctly signed, echoing another nonce.
    WrongNonce,
    /// `OK`, correctly signed, echoing another OTP.
    WrongOtp,
    /// `OK`, correctly signed, with no `nonce` line.
    NoNonce,
    /// `OK` and `BAD_OTP` both (two `status` lines), signed.
    DuplicateStatus,
    /// `OK`, signed, with an extra `ttype=yubikey` line and LF endings.
    ExtraField,
    /// A 200 HTML page.
    Garbage,
    /// A 200 body of this many bytes of valid-looking lines.
    HugeBody(usize),
    /// This HTTP status (e.g. 500) with a short body.
    Http(u16),
    /// A 302 to this location.
    Redirect(String),
    /// Accept, read the request, never answer.
    Hang,
    /// Never accept (connections sit in the listen backlog).
    NeverAccept,
    /// Send half a response, then reset the connection (RST).
    Reset,
    /// Reset the connection (RST) as soon as it is accepted.
    ResetOnAccept,
    /// A 200 with exactly this body.
    Body(Vec<u8>),
    /// Exactly these bytes, status line and all.
    Raw(Vec<u8>),
}

impl Behavior {
    /// Parses a status name: `OK` gives [`Behavior::Ok`], anything else
    /// [`Behavior::Status`].
    #[must_use]
    pub fn status(s: &str) -> Self {
        if s == "OK" {
            Self::Ok
        } else {
            Self::Status(s.to_string())
        }
    }
}

/// A server's script.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API key (decoded) used to sign answers and check requests.
    pub key: Option<Vec<u8>>,
    /// What to answer.
    pub behavior: Behavior,
    /// Wait this long after the request before answering.
    pub delay: Duration,
    /// Send the answer one byte per this interval.
    pub dribble: Option<Duration>,
    /// Serve HTTPS with this configuration.
    pub tls: Option<Arc<ServerConfig>>,
    /// `sessioncounter` and `sessionuse` in `OK` answers.
    pub counter: (u16, u8),
    /// Frame bodies with chunked transfer coding instead of Content-Length.
    pub chunked: bool,
    /// Send no Content-Length: the body ends when the connection closes
    /// (after a TLS close_notify on HTTPS).
    pub close_delimited: bool,
    /// With a key: answer `BAD_SIGNATURE` to requests whose `h` is wrong.
    pub require_signature: bool,
    /// The server stops by itself after this long.
    pub max_lifetime: Duration,
}

impl Config {
    /// A plain-HTTP server with `behavior`, no key, no delay.
    #[must_use]
    pub fn new(behavior: Behavior) -> Self {
        Self {
            key: None,
            behavior,
            delay: Duration::ZERO,
            dribble: None,
            tls: None,
            counter: (19, 3),
            chunked: false,
            close_delimited: false,
            require_signature: false,
            max_lifetime: Duration::from_secs(300),
        }
    }

    /// Signs with `key` (decoded bytes).
    #[must_use]
    pub fn key(mut self, key: &[u8]) -> Self {
        self.key = Some(key.to_vec());
        self
    }

    /// Answers after `ms` milliseconds.
    #[must_use]
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay = Duration::from_millis(ms);
        self
    }

    /// Sends one byte every `ms` milliseconds.
    #[must_use]
    pub fn dribble_ms(mut self, ms: u64) -> Self {
        self.dribble = Some(Duration::from_millis(ms));
        self
    }

    /// Serves HTTPS.
    #[must_use]
    pub fn tls(mut self, cfg: Arc<ServerConfig>) -> Self {
        self.tls = Some(cfg);
        self
    }

    /// Reports these counters in `OK` answers.
    #[must_use]
    pub fn counter(mut self, use_counter: u16, session: u8) -> Self {
        self.counter = (use_counter, session);
        self
    }

    /// Uses chunked transfer coding.
    #[must_use]
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Sends no Content-Length; the body ends with the connection.
    #[must_use]
    pub fn close_delimited(mut self) -> Self {
        self.close_delimited = true;
        self
    }

    /// Answers `BAD_SIGNATURE` to wrongly signed requests.
    #[must_use]
    pub fn require_signature(mut self) -> Self {
        self.require_signature = true;
        self
    }
}

/// The state of a request's `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSignature {
    /// Correct for the server's key.
    Valid,
    /// Present and wrong.
    Invalid,
    /// No `h`.
    Missing,
    /// The server has no key.
    NotChecked,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The method (`GET`).
    pub method: String,
    /// The request target as sent (path and query, or absolute form).
    pub target: String,
    /// The path without the query.
    pub path: String,
    /// Query parameters, decoded as PHP would.
    pub params: BTreeMap<String, String>,
    /// Parameter names in the order sent.
    pub param_order: Vec<String>,
    /// Whether `h` was right.
    pub signature: RequestSignature,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// The SNI name the client sent, if any.
    pub sni: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    records: Mutex<Vec<Record>>,
    accepted: AtomicUsize,
    stop: AtomicBool,
}

/// A running loopback validation server.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    https: bool,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// The path the mock serves (any path is answered the same).
pub const PATH: &str = "/wsapi/2.0/verify";

impl MockServer {
    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Errors
    /// When the socket cannot be bound or the thread cannot start.
    pub fn start(config: Config) -> io::Result<Self> {
        Self::start_on(config, 0)
    }

    /// Binds `127.0.0.1:port` (0: any) and starts serving.
    ///
    /// # Errors
    /// When the socket cannot be bound or the thread cannot start.
    pub fn start_on(config: Config, port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let https = config.tls.is_some();
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("ykval-mock-{}", addr.port()))
            .spawn(move || serve(&listener, &config, &s))?;
        Ok(Self {
            addr,
            https,
            shared,
            thread: Some(thread),
        })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http(s)://127.0.0.1:PORT/wsapi/2.0/verify`.
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}{PATH}",
            if self.https { "https" } else { "http" },
            self.port()
        )
    }

    /// The same with `localhost` as the host (needs SNI and a DNS name SAN).
    #[must_use]
    pub fn url_localhost(&self) -> String {
        format!(
            "{}://localhost:{}{PATH}",
            if self.https { "https" } else { "http" },
            self.port()
        )
    }

    /// Every request received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<Record> {
        self.shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests were received.
    #[must_use]
    pub fn request_count(&self) -> usize {
        self.shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many connections were accepted.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Stops and joins the server thread (also done on drop).
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Reading,
    Waiting { at: Instant },
    Writing,
    Hanging,
    Draining { until: Instant },
    Closed,
}

struct Conn {
    sock: TcpStream,
    tls: Option<ServerConnection>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    next_byte: Instant,
    phase: Phase,
    reset_after_write: bool,
    opened: Instant,
}

const MAX_REQUEST: usize = 16 << 10;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn reset(sock: &TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::Linger, &linger);
}

fn serve(listener: &TcpListener, cfg: &Config, shared: &Shared) {
    let started = Instant::now();
    let mut conns: Vec<Conn> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) && started.elapsed() < cfg.max_lifetime {
        let mut busy = false;
        if cfg.behavior != Behavior::NeverAccept {
            for _ in 0..16 {
                match listener.accept() {
                    Ok((sock, _)) => {
                        busy = true;
                        shared.accepted.fetch_add(1, Ordering::SeqCst);
                        if cfg.behavior == Behavior::ResetOnAccept {
                            reset(&sock);
                            continue;
                        }
                        if sock.set_nonblocking(true).is_err() {
                            continue;
                        }
                        let tls = match &cfg.tls {
                            Some(t) => match ServerConnection::new(Arc::clone(t)) {
                                Ok(c) => Some(c),
                                Err(_) => continue,
                            },
                            None => None,
                        };
                        let now = Instant::now();
                        conns.push(Conn {
                            sock,
                            tls,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            sent: 0,
                            next_byte: now,
                            phase: Phase::Reading,
                            reset_after_write: false,
                            opened: now,
                        });
                    }
                    Err(_) => break,
                }
            }
        }
        for c in &mut conns {
            busy |= c.step(cfg, shared);
            if c.opened.elapsed() > Duration::from_secs(120) {
                c.phase = Phase::Closed;
            }
        }
        conns.retain(|c| c.phase != Phase::Closed);
        std::thread::sleep(if busy {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(2)
        });
    }
}

impl Conn {
    /// Reads what is available into `inbuf` (plaintext). Returns (progress, eof).
    fn read_in(&mut self) -> (bool, bool) {
        let mut progress = false;
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            if let Some(tls) = &mut self.tls {
                match tls.read_tls(&mut self.sock) {
                    Ok(0) => return (progress, true),
                    Ok(_) => {
                        progress = true;
                        if tls.process_new_packets().is_err() {
                            let _ = tls.write_tls(&mut self.sock);
                            return (progress, true);
                        }
                        loop {
                            match tls.reader().read(&mut buf) {
                                Ok(0) => return (progress, true),
                                Ok(n) => self
                                    .inbuf
                                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(_) => return (progress, true),
                            }
                        }
                    }
                    Err(e) if would_block(&e) => break,
                    Err(_) => return (progress, true),
                }
            } else {
                match self.sock.read(&mut buf) {
                    Ok(0) => return (progress, true),
                    Ok(n) => {
                        progress = true;
                        self.inbuf
                            .extend_from_slice(buf.get(..n).unwrap_or_default());
                    }
                    Err(e) if would_block(&e) => break,
                    Err(_) => return (progress, true),
                }
            }
            if self.inbuf.len() > MAX_REQUEST {
                return (progress, true);
            }
        }
        (progress, false)
    }

    fn flush_tls(&mut self) -> bool {
        let Some(tls) = &mut self.tls else {
            return true;
        };
        for _ in 0..64 {
            if !tls.wants_write() {
                return true;
            }
            match tls.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if would_block(&e) => return false,
                Err(_) => {
                    self.phase = Phase::Closed;
                    return false;
                }
            }
        }
        !tls.wants_write()
    }

    fn step(&mut self, cfg: &Config, shared: &Shared) -> bool {
        let (mut busy, eof) = self.read_in();
        // Handshake messages, alerts.
        self.flush_tls();
        let now = Instant::now();
        match self.phase {
            Phase::Reading => {
                if let Some(end) = find(&self.inbuf, b"\r\n\r\n") {
                    let head = self.inbuf.get(..end).unwrap_or_default().to_vec();
                    let sni = self
                        .tls
                        .as_ref()
                        .and_then(|t| t.server_name().map(str::to_string));
                    let record = parse_request(&head, cfg, self.tls.is_some(), sni);
                    let (out, mode) = respond(&record, cfg);
                    shared
                        .records
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(record);
                    self.out = out;
                    self.phase = match mode {
                        Mode::Answer => Phase::Waiting {
                            at: now + cfg.delay,
                        },
                        Mode::Hang => Phase::Hanging,
                        Mode::Reset => {
                            self.reset_after_write = true;
                            Phase::Waiting {
                                at: now + cfg.delay,
                            }
                        }
                    };
                    busy = true;
                } else if eof {
                    self.phase = Phase::Closed;
                }
            }
            Phase::Waiting { at } => {
                if eof {
                    self.phase = Phase::Closed;
                } else if now >= at {
                    self.phase = Phase::Writing;
                    self.next_byte = now;
                }
            }
            Phase::Writing => {
                if eof && self.tls.is_none() {
                    self.phase = Phase::Closed;
                    return true;
                }
                busy |= self.write_some(cfg, now);
            }
            Phase::Hanging => {
                if eof {
                    self.phase = Phase::Closed;
                }
            }
            Phase::Draining { until } => {
                if eof || now >= until {
                    self.phase = Phase::Closed;
                }
            }
            Phase::Closed => {}
        }
        busy
    }

    fn write_some(&mut self, cfg: &Config, now: Instant) -> bool {
        if !self.flush_tls() {
            return false;
        }
        let remaining = self.out.len().saturating_sub(self.sent);
        if remaining == 0 {
            if self.reset_after_write {
                reset(&self.sock);
                self.phase = Phase::Closed;
                return true;
            }
            if let Some(tls) = &mut self.tls {
                tls.send_close_notify();
            }
            if !self.flush_tls() {
                return false;
            }
            let _ = self.sock.shutdown(Shutdown::Write);
            self.phase = Phase::Draining {
                until: now + Duration::from_secs(2),
            };
            return true;
        }
        let n = match cfg.dribble {
            Some(d) => {
                if now < self.next_byte {
                    return false;
                }
                self.next_byte = now + d;
                1
            }
            None => remaining.min(16 << 10),
        };
        let chunk = self
            .out
            .get(self.sent..self.sent + n)
            .unwrap_or_default()
            .to_vec();
        if let Some(tls) = &mut self.tls {
            match tls.writer().write(&chunk) {
                Ok(w) => self.sent += w,
                Err(_) => self.phase = Phase::Closed,
            }
            self.flush_tls();
        } else {
            match self.sock.write(&chunk) {
                Ok(w) => self.sent += w,
                Err(e) if would_block(&e) => return false,
                Err(_) => self.phase = Phase::Closed,
            }
        }
        true
    }
}

fn parse_request(head: &[u8], cfg: &Config, tls: bool, sni: Option<String>) -> Record {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // Absolute form (through a proxy): drop scheme and authority.
    let origin = target
        .strip_prefix("http://")
        .map(|rest| rest.find('/').map_or("/", |i| rest.get(i..).unwrap_or("/")))
        .unwrap_or(&target);
    let (path, query) = origin.split_once('?').unwrap_or((origin, ""));
    let pairs = proto::parse_query(query);
    let signature = match (&cfg.key, pairs.iter().find(|(k, _)| k == "h")) {
        (None, _) => RequestSignature::NotChecked,
        (Some(_), None) => RequestSignature::Missing,
        (Some(key), Some((_, h))) => {
            if proto::verify(key, &pairs, h) {
                RequestSignature::Valid
            } else {
                RequestSignature::Invalid
            }
        }
    };
    Record {
        method,
        path: path.to_string(),
        param_order: pairs.iter().map(|(k, _)| k.clone()).collect(),
        params: pairs.into_iter().collect(),
        target,
        signature,
        headers,
        tls,
        sni,
    }
}

enum Mode {
    Answer,
    Hang,
    Reset,
}

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
    Close,
}

fn http_response(code: u16, reason: &str, extra: &str, body: &[u8], framing: Framing) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n{extra}");
    if framing == Framing::Close {
        out.push_str("Connection: close\r\n\r\n");
        let mut v = out.into_bytes();
        v.extend_from_slice(body);
        v
    } else if framing == Framing::Chunked {
        out.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut v = out.into_bytes();
        for part in body.chunks(7) {
            v.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            v.extend_from_slice(part);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"0\r\n\r\n");
        v
    } else {
        out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut v = out.into_bytes();
        v.extend_from_slice(body);
        v
    }
}

fn lines(pairs: &[(String, String)], h: Option<String>, eol: &str) -> Vec<u8> {
    let mut s = String::new();
    if let Some(h) = h {
        s.push_str(&format!("h={h}{eol}"));
    }
    for (k, v) in pairs {
        s.push_str(&format!("{k}={v}{eol}"));
    }
    s.push_str(eol);
    s.into_bytes()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn respond(rec: &Record, cfg: &Config) -> (Vec<u8>, Mode) {
    let otp = rec.params.get("otp").cloned().unwrap_or_default();
    let nonce = rec.params.get("nonce").cloned().unwrap_or_default();
    let key = cfg.key.clone().unwrap_or_default();
    let sign = |pairs: &[(String, String)]| cfg.key.as_ref().map(|k| proto::sign(k, pairs));
    let t = pair("t", "2024-01-01T00:00:00Z0123");
    let status_pairs = |status: &str, otp: &str, nonce: Option<&str>| {
        let mut v = vec![t.clone(), pair("otp", otp)];
        if let Some(n) = nonce {
            v.push(pair("nonce", n));
        }
        v.push(pair("sl", "100"));
        v.push(pair("status", status));
        v
    };
    let ok_pairs = |otp: &str, nonce: Option<&str>| {
        let mut v = vec![t.clone(), pair("otp", otp)];
        if let Some(n) = nonce {
            v.push(pair("nonce", n));
        }
        v.extend([
            pair("sl", "100"),
            pair("timestamp", "4242"),
            pair("sessioncounter", &cfg.counter.0.to_string()),
            pair("sessionuse", &cfg.counter.1.to_string()),
            pair("status", "OK"),
        ]);
        v
    };
    let framing = if cfg.close_delimited {
        Framing::Close
    } else if cfg.chunked {
        Framing::Chunked
    } else {
        Framing::Length
    };
    let ok200 = |body: Vec<u8>| (http_response(200, "OK", "", &body, framing), Mode::Answer);

    if cfg.require_signature
        && matches!(
            rec.signature,
            RequestSignature::Invalid | RequestSignature::Missing
        )
    {
        let p = status_pairs("BAD_SIGNATURE", &otp, Some(&nonce));
        return ok200(lines(&p, sign(&p), "\r\n"));
    }
    match &cfg.behavior {
        Behavior::Ok => {
            let p = ok_pairs(&otp, Some(&nonce));
            ok200(lines(&p, sign(&p), "\r\n"))
        }
        Behavior::Status(s) => {
            let p = status_pairs(s, &otp, Some(&nonce));
            ok200(lines(&p, sign(&p), "\r\n"))
        }
        Behavior::StatusEmptyKey(s) => {
            let p = status_pairs(s, &otp, Some(&nonce));
            ok200(lines(&p, Some(proto::sign(b"", &p)), "\r\n"))
        }
        Behavior::BadSignature => {
            let p = ok_pairs(&otp, Some(&nonce));
            let mut wrong = key.clone();
            wrong.push(1);
            ok200(lines(&p, Some(proto::sign(&wrong, &p)), "\r\n"))
        }
        Behavior::NoSignature => ok200(lines(&ok_pairs(&otp, Some(&nonce)), None, "\r\n")),
        Behavior::WrongNonce => {
            let p = ok_pairs(&otp, Some("WrongNonceWrongNonceWrongNonce00"));
            ok200(lines(&p, sign(&p), "\r\n"))
        }
        Behavior::WrongOtp => {
            let other = format!("{}c", otp.get(..otp.len().saturating_sub(1)).unwrap_or(""));
            let other = if other == otp {
                format!("{}b", otp.get(..otp.len().saturating_sub(1)).unwrap_or(""))
            } else {
                other
            };
            let p = ok_pairs(&other, Some(&nonce));
            ok200(lines(&p, sign(&p), "\r\n"))
        }
        Behavior::NoNonce => {
            let p = ok_pairs(&otp, None);
            ok200(lines(&p, sign(&p), "\r\n"))
        }
        Behavior::DuplicateStatus => {
            let mut p = ok_pairs(&otp, Some(&nonce));
            p.push(pair("status", "BAD_OTP"));
            ok200(lines(&p, sign(&p), "\r\n"))
        }
        Behavior::ExtraField => {
            let mut p = ok_pairs(&otp, Some(&nonce));
            p.push(pair("ttype", "yubikey"));
            ok200(lines(&p, sign(&p), "\n"))
        }
        Behavior::Garbage => {
            ok200(b"<html><head><title>It works</title></head><body>Hello</body></html>\n".to_vec())
        }
        Behavior::HugeBody(n) => {
            let mut body = Vec::with_capacity(*n);
            let mut i = 0u64;
            while body.len() < *n {
                body.extend_from_slice(format!("k{i}=vvvvvvvvvvvvvvvv\r\n").as_bytes());
                i += 1;
            }
            body.truncate(*n);
            ok200(body)
        }
        Behavior::Http(code) => (
            http_response(*code, "Scripted", "", b"scripted error\n", Framing::Length),
            Mode::Answer,
        ),
        Behavior::Redirect(loc) => (
            http_response(
                302,
                "Found",
                &format!("Location: {loc}\r\n"),
                b"",
                Framing::Length,
            ),
            Mode::Answer,
        ),
        Behavior::Hang | Behavior::NeverAccept => (Vec::new(), Mode::Hang),
        Behavior::Reset | Behavior::ResetOnAccept => (
            b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\nstatus=".to_vec(),
            Mode::Reset,
        ),
        Behavior::Body(b) => ok200(b.clone()),
        Behavior::Raw(r) => (r.clone(), Mode::Answer),
    }
}
