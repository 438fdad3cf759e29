//! Asks several HTTP(S) servers at once from the calling thread.
//!
//! Every connection is a non-blocking socket driven by one `poll(2)` loop
//! (rustls `ClientConnection` for TLS), so the caller can stop at the first
//! definitive answer and nothing keeps running afterwards: when [`run`]
//! returns, every socket is closed and every resolver helper it started
//! has been killed (if still running) and reaped. Writes use `send(MSG_NOSIGNAL)`, so a peer reset gives `EPIPE`,
//! never a `SIGPIPE` that would kill a C host (whose SIGPIPE is at its
//! default action).
//!
//! Names that are not IP literals are resolved by [`super::resolve`]
//! (`/etc/hosts`, then a helper process running `getaddrinfo`), one
//! lookup per distinct host, polled from the loop below; the deadline
//! stops a lookup like any other phase.
//!
//! The proxy comes only from the caller (never from `*_PROXY` variables):
//! HTTP CONNECT for https targets, an absolute-form GET for http targets.

use core::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, SockaddrIn6, sockopt,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use zeroize::Zeroizing;

use super::http::{self, HttpError, Progress, ResponseReader};
use super::resolve::Lookups;
use crate::config::ServerUrl;

/// Upper bound on loop iterations (each one either waits in `poll` or
/// makes progress); a safety net on top of the deadline.
const MAX_ITERATIONS: u32 = 1_000_000;
/// How often the loop looks for resolver results while one is pending.
const RESOLVER_TICK: Duration = Duration::from_millis(5);
/// Reads per socket per wake-up before giving the others a turn.
const READS_PER_WAKE: usize = 16;

/// One exchange: a GET of `url` with `query`. `Debug` omits the query.
pub struct Exchange<'a> {
    /// The server.
    pub url: &'a ServerUrl,
    /// The query string (holds the OTP: wiped on drop, never logged).
    pub query: Zeroizing<String>,
}

impl fmt::Debug for Exchange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("url", &self.url.to_string())
            .field("query", &"[redacted]")
            .finish()
    }
}

/// Settings shared by all exchanges of one call.
#[derive(Debug)]
pub struct Options<'a> {
    /// An `http://` proxy, if configured.
    pub proxy: Option<&'a ServerUrl>,
    /// TLS settings, needed when any URL is https.
    pub tls: Option<Arc<ClientConfig>>,
    /// When everything ends.
    pub deadline: Instant,
    /// Largest body accepted.
    pub body_cap: usize,
    /// The resolver helper for names not in /etc/hosts.
    pub resolver: &'a Path,
}

/// Why an exchange failed, by class (no secret, no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The host name did not resolve.
    Resolve(String),
    /// No address could be connected.
    Connect(String),
    /// The proxy refused or failed.
    Proxy(String),
    /// TLS failed (certificate, handshake, alert).
    Tls(String),
    /// The connection failed after it was set up.
    Io(String),
    /// The HTTP response was refused.
    Http(HttpError),
    /// Internal trouble (no TLS settings, resolver could not start).
    Internal(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolve(e) => write!(f, "DNS: {e}"),
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Proxy(e) => write!(f, "proxy: {e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Io(e) => write!(f, "I/O: {e}"),
            Self::Http(e) => write!(f, "{e}"),
            Self::Internal(e) => write!(f, "internal: {e}"),
        }
    }
}

/// Where an exchange was when the call ended without its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the resolver.
    Resolving,
    /// TCP connect in progress.
    Connecting,
    /// Talking to the proxy.
    Proxy,
    /// TLS handshake.
    Handshake,
    /// Request sent, waiting for (the rest of) the answer.
    Waiting,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            // Whatever ends the call also kills the lookup's helper.
            Self::Resolving => "resolving, lookup stopped",
            Self::Connecting => "connecting",
            Self::Proxy => "proxy",
            Self::Handshake => "TLS handshake",
            Self::Waiting => "waiting for the answer",
        })
    }
}

/// The caller's decision after each finished exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep waiting for the others.
    Continue,
    /// Stop now: cancel the rest.
    Stop,
}

/// How [`run`] ended. `pending` lists the exchanges left unfinished
/// (index into the `exchanges` slice, and their phase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The callback said stop.
    Stopped {
        /// Exchanges cancelled.
        pending: Vec<(usize, Phase)>,
    },
    /// Every exchange finished.
    AllDone,
    /// The deadline passed.
    Deadline {
        /// Exchanges still running.
        pending: Vec<(usize, Phase)>,
    },
}

/// A writer that sends with `MSG_NOSIGNAL`: `EPIPE` instead of `SIGPIPE`.
/// (rustls writes with `write_vectored`; std implements that for sockets
/// with `writev(2)`, which has no such flag. This type only implements
/// `write`, so every byte goes through `send(2)`.)
#[derive(Debug)]
pub struct NoSigPipe<'a>(pub &'a TcpStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        socket::send(self.0.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn io_class(e: &io::Error) -> String {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::BrokenPipe => "connection closed by peer (broken pipe)".into(),
        K::TimedOut => "timed out".into(),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        K::AddrNotAvailable => "address not available".into(),
        K::UnexpectedEof => "connection closed early".into(),
        _ => e.to_string(),
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Starts a non-blocking connect (close-on-exec).
fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: OwnedFd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let res = match addr {
        SocketAddr::V4(a) => socket::connect(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => socket::connect(fd.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    match res {
        Ok(()) | Err(Errno::EINPROGRESS) | Err(Errno::EINTR) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug)]
enum State {
    Resolving,
    Connecting,
    ProxySend,
    ProxyRecv,
    Exchange,
    Done,
}

struct Conn<'a> {
    url: &'a ServerUrl,
    resolver_key: String,
    endpoint_port: u16,
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    attempt_until: Instant,
    last_connect_error: Option<String>,
    sock: Option<TcpStream>,
    state: State,
    tls: Option<ClientConnection>,
    request: Zeroizing<Vec<u8>>,
    sent: usize,
    proxy_out: Vec<u8>,
    proxy_in: Vec<u8>,
    reader: ResponseReader,
    tunnel: bool,
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("url", &self.url.to_string())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

type Step = Option<Result<Vec<u8>, Failure>>;

impl Conn<'_> {
    fn phase(&self) -> Phase {
        match self.state {
            State::Resolving => Phase::Resolving,
            State::Connecting => Phase::Connecting,
            State::ProxySend | State::ProxyRecv => Phase::Proxy,
            State::Exchange | State::Done => {
                if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                    Phase::Handshake
                } else {
                    Phase::Waiting
                }
            }
        }
    }

    fn interest(&self) -> PollFlags {
        match self.state {
            State::Connecting | State::ProxySend => PollFlags::POLLOUT,
            State::ProxyRecv => PollFlags::POLLIN,
            State::Exchange => {
                let (wants_read, wants_write) = match &self.tls {
                    Some(t) => (t.wants_read(), t.wants_write()),
                    None => (true, self.sent < self.request.len()),
                };
                let mut f = PollFlags::empty();
                if wants_read {
                    f |= PollFlags::POLLIN;
                }
                if wants_write {
                    f |= PollFlags::POLLOUT;
                }
                f
            }
            State::Resolving | State::Done => PollFlags::empty(),
        }
    }

    /// Tries the next address, if any; `Some(failure)` when none is left.
    fn connect_next(&mut self, now: Instant, deadline: Instant) -> Step {
        self.sock = None;
        // Bounded by the number of addresses.
        while let Some(addr) = self.addrs.get(self.next_addr).copied() {
            self.next_addr += 1;
            match start_connect(addr) {
                Ok(s) => {
                    let left = u32::try_from(self.addrs.len() - self.next_addr + 1).unwrap_or(1);
                    let slice = deadline.saturating_duration_since(now) / left.max(1);
                    self.attempt_until = now + slice;
                    self.sock = Some(s);
                    self.state = State::Connecting;
                    return None;
                }
                Err(e) => self.last_connect_error = Some(io_class(&e)),
            }
        }
        Some(Err(Failure::Connect(
            self.last_connect_error
                .clone()
                .unwrap_or_else(|| "no address".into()),
        )))
    }

    fn resolved(&mut self, res: Result<Vec<SocketAddr>, String>, deadline: Instant) -> Step {
        match res {
            Ok(addrs) if !addrs.is_empty() => {
                self.addrs = addrs
                    .into_iter()
                    .map(|mut a| {
                        a.set_port(self.endpoint_port);
                        a
                    })
                    .collect();
                self.connect_next(Instant::now(), deadline)
            }
            Ok(_) => Some(Err(Failure::Resolve("no address".into()))),
            Err(e) => Some(Err(Failure::Resolve(e))),
        }
    }

    /// Connected: start the proxy tunnel, TLS, or the plain request.
    fn connected(&mut self, tls: Option<&Arc<ClientConfig>>) -> Step {
        if self.tunnel {
            self.proxy_out = http::connect_request(self.url);
            self.sent = 0;
            self.state = State::ProxySend;
            return None;
        }
        self.start_exchange(tls)
    }

    fn start_exchange(&mut self, tls: Option<&Arc<ClientConfig>>) -> Step {
        self.sent = 0;
        self.state = State::Exchange;
        if self.url.https {
            let Some(cfg) = tls else {
                return Some(Err(Failure::Internal("no TLS settings".into())));
            };
            let name = match ServerName::try_from(self.url.host.clone()) {
                Ok(n) => n,
                Err(_) => return Some(Err(Failure::Tls("bad server name".into()))),
            };
            let mut c = match ClientConnection::new(Arc::clone(cfg), name) {
                Ok(c) => c,
                Err(e) => return Some(Err(Failure::Tls(e.to_string()))),
            };
            // Buffered by rustls until the handshake is done.
            if let Err(e) = c.writer().write_all(&self.request) {
                return Some(Err(Failure::Tls(e.to_string())));
            }
            self.tls = Some(c);
        }
        None
    }

    fn on_event(
        &mut self,
        revents: PollFlags,
        tls: Option<&Arc<ClientConfig>>,
        now: Instant,
        deadline: Instant,
    ) -> Step {
        match self.state {
            State::Connecting => {
                let Some(sock) = &self.sock else {
                    return self.connect_next(now, deadline);
                };
                match socket::getsockopt(sock, sockopt::SocketError) {
                    Ok(0) if revents.intersects(PollFlags::POLLOUT) => self.connected(tls),
                    Ok(0) => {
                        // Hang-up or error without a pending error code:
                        // give up on this address rather than spin.
                        self.last_connect_error = Some("connection failed".into());
                        self.connect_next(now, deadline)
                    }
                    Ok(errno) => {
                        self.last_connect_error =
                            Some(io_class(&io::Error::from_raw_os_error(errno)));
                        self.connect_next(now, deadline)
                    }
                    Err(e) => {
                        self.last_connect_error = Some(io_class(&e.into()));
                        self.connect_next(now, deadline)
                    }
                }
            }
            State::ProxySend => self.proxy_send(),
            State::ProxyRecv => self.proxy_recv(tls),
            State::Exchange => {
                if self.tls.is_some() {
                    self.tls_io()
                } else {
                    self.plain_io()
                }
            }
            State::Resolving | State::Done => None,
        }
    }

    fn proxy_send(&mut self) -> Step {
        let sock = self.sock.as_ref()?;
        let rest = self.proxy_out.get(self.sent..).unwrap_or_default();
        match NoSigPipe(sock).write(rest) {
            Ok(n) => {
                self.sent += n;
                if self.sent >= self.proxy_out.len() {
                    self.state = State::ProxyRecv;
                }
                None
            }
            Err(e) if would_block(&e) => None,
            Err(e) => Some(Err(Failure::Proxy(io_class(&e)))),
        }
    }

    fn proxy_recv(&mut self, tls: Option<&Arc<ClientConfig>>) -> Step {
        let mut buf = [0u8; 1024];
        for _ in 0..READS_PER_WAKE {
            let sock = self.sock.as_ref()?;
            match (&*sock).read(&mut buf) {
                Ok(0) => return Some(Err(Failure::Proxy("closed the connection".into()))),
                Ok(n) => {
                    self.proxy_in
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    match http::connect_reply(&self.proxy_in) {
                        Ok(None) => {}
                        Ok(Some(used)) if used == self.proxy_in.len() => {
                            return self.start_exchange(tls);
                        }
                        Ok(Some(_)) => {
                            return Some(Err(Failure::Proxy(
                                "sent data after the CONNECT reply".into(),
                            )));
                        }
                        Err(e) => return Some(Err(Failure::Proxy(format!("CONNECT: {e}")))),
                    }
                }
                Err(e) if would_block(&e) => return None,
                Err(e) => return Some(Err(Failure::Proxy(io_class(&e)))),
            }
        }
        None
    }

    fn feed(&mut self, data: &[u8]) -> Step {
        match self.reader.feed(data) {
            Ok(Progress::More) => None,
            Ok(Progress::Body(b)) => Some(Ok(b)),
            Err(e) => Some(Err(Failure::Http(e))),
        }
    }

    fn plain_io(&mut self) -> Step {
        let sock = self.sock.as_ref()?;
        if self.sent < self.request.len() {
            let rest = self.request.get(self.sent..).unwrap_or_default();
            match NoSigPipe(sock).write(rest) {
                Ok(n) => self.sent += n,
                Err(e) if would_block(&e) => {}
                Err(e) => return Some(Err(Failure::Io(io_class(&e)))),
            }
        }
        let mut buf = [0u8; 4096];
        for _ in 0..READS_PER_WAKE {
            let sock = self.sock.as_ref()?;
            match (&*sock).read(&mut buf) {
                Ok(0) => {
                    return Some(self.reader.finish().map_err(Failure::Http));
                }
                Ok(n) => {
                    if let Some(done) = self.feed(buf.get(..n).unwrap_or_default()) {
                        return Some(done);
                    }
                }
                Err(e) if would_block(&e) => return None,
                Err(e) => return Some(Err(Failure::Io(io_class(&e)))),
            }
        }
        None
    }

    fn tls_write(&mut self) -> Result<(), Failure> {
        let (Some(sock), Some(tls)) = (self.sock.as_ref(), self.tls.as_mut()) else {
            return Ok(());
        };
        // Bounded: each pass writes bytes or stops.
        for _ in 0..64 {
            if !tls.wants_write() {
                break;
            }
            match tls.write_tls(&mut NoSigPipe(sock)) {
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(Failure::Io(io_class(&e))),
            }
        }
        Ok(())
    }

    fn tls_io(&mut self) -> Step {
        if let Err(f) = self.tls_write() {
            return Some(Err(f));
        }
        let mut eof = false;
        for _ in 0..READS_PER_WAKE {
            let (Some(sock), Some(tls)) = (self.sock.as_ref(), self.tls.as_mut()) else {
                return None;
            };
            if !tls.wants_read() {
                break;
            }
            match tls.read_tls(&mut &*sock) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // Let rustls send its alert; failures here do not matter.
                        let _ = tls.write_tls(&mut NoSigPipe(sock));
                        return Some(Err(Failure::Tls(e.to_string())));
                    }
                    if let Some(done) = self.drain_plaintext() {
                        return Some(done);
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) => return Some(Err(Failure::Io(io_class(&e)))),
            }
        }
        if eof {
            let tls = self.tls.as_mut()?;
            if let Err(e) = tls.process_new_packets() {
                return Some(Err(Failure::Tls(e.to_string())));
            }
            if tls.is_handshaking() {
                return Some(Err(Failure::Tls(
                    "connection closed during handshake".into(),
                )));
            }
            if let Some(done) = self.drain_plaintext() {
                return Some(done);
            }
            // No close_notify: a close-delimited body may be cut short.
            return Some(Err(Failure::Http(HttpError::Truncated)));
        }
        // Handshake replies produced by the packets just read.
        match self.tls_write() {
            Ok(()) => None,
            Err(f) => Some(Err(f)),
        }
    }

    fn drain_plaintext(&mut self) -> Step {
        let mut buf = [0u8; 4096];
        // Bounded: the reader errors out past its caps.
        for _ in 0..1024 {
            let tls = self.tls.as_mut()?;
            match tls.reader().read(&mut buf) {
                Ok(0) => return Some(self.reader.finish().map_err(Failure::Http)),
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default().to_vec();
                    if let Some(done) = self.feed(&data) {
                        return Some(done);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Some(Err(Failure::Http(HttpError::Truncated)));
                }
                Err(e) => return Some(Err(Failure::Io(io_class(&e)))),
            }
        }
        None
    }
}

fn literal_addrs(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| vec![SocketAddr::new(ip, port)])
}

/// Runs every exchange until `on_done` says stop, all are finished, or the
/// deadline passes. `on_done(i, result)` is called once per finished
/// exchange `i`, with the complete 200 body or the failure.
pub fn run(
    exchanges: &[Exchange<'_>],
    opts: &Options<'_>,
    on_done: &mut dyn FnMut(usize, Result<Vec<u8>, Failure>) -> Control,
) -> End {
    {
        // Dropped at the end of this block: kills and reaps every helper.
        let mut lookups = Lookups::new(opts.resolver);
        let mut conns: Vec<Conn<'_>> = Vec::with_capacity(exchanges.len());
        let mut early: Vec<(usize, Failure)> = Vec::new();
        let mut asked: Vec<String> = Vec::new();
        for (i, ex) in exchanges.iter().enumerate() {
            let (host, port) = match opts.proxy {
                Some(p) => (p.host.clone(), p.port),
                None => (ex.url.host.clone(), ex.url.port),
            };
            let absolute = opts.proxy.is_some() && !ex.url.https;
            let request = Zeroizing::new(http::get_request(ex.url, &ex.query, absolute));
            // One resolver per distinct name; the port is applied afterwards.
            let key = host.clone();
            let mut conn = Conn {
                url: ex.url,
                resolver_key: key.clone(),
                endpoint_port: port,
                addrs: Vec::new(),
                next_addr: 0,
                attempt_until: opts.deadline,
                last_connect_error: None,
                sock: None,
                state: State::Resolving,
                tls: None,
                request,
                sent: 0,
                proxy_out: Vec::new(),
                proxy_in: Vec::new(),
                reader: ResponseReader::new(opts.body_cap),
                tunnel: opts.proxy.is_some() && ex.url.https,
            };
            if let Some(addrs) = literal_addrs(&host, port) {
                if let Some(Err(f)) = conn.resolved(Ok(addrs), opts.deadline) {
                    early.push((i, f));
                    conn.state = State::Done;
                }
            } else if !asked.contains(&key) {
                asked.push(key.clone());
                lookups.start(&host);
            }
            conns.push(conn);
        }
        let end = drive(&mut conns, &mut lookups, early, opts, on_done);
        drop(conns);
        drop(lookups);
        end
    }
}

fn pending(conns: &[Conn<'_>]) -> Vec<(usize, Phase)> {
    conns
        .iter()
        .enumerate()
        .filter(|(_, c)| !matches!(c.state, State::Done))
        .map(|(i, c)| (i, c.phase()))
        .collect()
}

fn poll_timeout(until: Instant, now: Instant) -> PollTimeout {
    let d = until.saturating_duration_since(now);
    // Round up so the loop does not spin just before a timer.
    let ms = d
        .as_millis()
        .saturating_add(u128::from(!d.subsec_nanos().is_multiple_of(1_000_000)));
    PollTimeout::try_from(ms.min(60_000)).unwrap_or(PollTimeout::MAX)
}

fn drive(
    conns: &mut [Conn<'_>],
    lookups: &mut Lookups,
    early: Vec<(usize, Failure)>,
    opts: &Options<'_>,
    on_done: &mut dyn FnMut(usize, Result<Vec<u8>, Failure>) -> Control,
) -> End {
    let tls = opts.tls.as_ref();
    let deadline = opts.deadline;
    let mut finished: Vec<(usize, Result<Vec<u8>, Failure>)> =
        early.into_iter().map(|(i, f)| (i, Err(f))).collect();
    for _ in 0..MAX_ITERATIONS {
        // Report what finished since the last pass.
        for (i, res) in finished.drain(..) {
            if let Some(c) = conns.get_mut(i) {
                c.state = State::Done;
                c.sock = None;
                c.tls = None;
            }
            if on_done(i, res) == Control::Stop {
                return End::Stopped {
                    pending: pending(conns),
                };
            }
        }
        if conns.iter().all(|c| matches!(c.state, State::Done)) {
            return End::AllDone;
        }
        let now = Instant::now();
        if now >= deadline {
            return End::Deadline {
                pending: pending(conns),
            };
        }
        // Resolver results.
        while let Some((key, res)) = lookups.try_next() {
            for (i, c) in conns.iter_mut().enumerate() {
                if matches!(c.state, State::Resolving)
                    && c.resolver_key == key
                    && let Some(r) = c.resolved(res.clone(), deadline)
                {
                    finished.push((i, r));
                }
            }
        }
        // Connect attempts whose time slice is over.
        for (i, c) in conns.iter_mut().enumerate() {
            if matches!(c.state, State::Connecting) && now >= c.attempt_until && now < deadline {
                c.last_connect_error = Some("timed out".into());
                if let Some(r) = c.connect_next(now, deadline) {
                    finished.push((i, r));
                }
            }
        }
        if !finished.is_empty() {
            continue;
        }
        let mut until = deadline;
        if conns.iter().any(|c| matches!(c.state, State::Resolving)) {
            until = until.min(now + RESOLVER_TICK);
        }
        for c in conns.iter() {
            if matches!(c.state, State::Connecting) {
                until = until.min(c.attempt_until);
            }
        }
        let mut index = Vec::new();
        let ready: Vec<(usize, PollFlags)> = {
            let mut fds = Vec::new();
            for (i, c) in conns.iter().enumerate() {
                let interest = c.interest();
                if let (Some(s), false) = (&c.sock, interest.is_empty()) {
                    fds.push(PollFd::new(s.as_fd(), interest));
                    index.push(i);
                }
            }
            match poll(&mut fds, poll_timeout(until, now)) {
                Ok(0) | Err(Errno::EINTR) => Vec::new(),
                Ok(_) => fds
                    .iter()
                    .zip(index.iter())
                    .filter_map(|(fd, i)| fd.revents().filter(|r| !r.is_empty()).map(|r| (*i, r)))
                    .collect(),
                Err(e) => {
                    // Not expected (EINVAL/ENOMEM): fail what is open.
                    for i in index.iter().copied() {
                        finished.push((i, Err(Failure::Internal(format!("poll: {e}")))));
                    }
                    Vec::new()
                }
            }
        };
        let now = Instant::now();
        for (i, revents) in ready {
            if let Some(c) = conns.get_mut(i)
                && let Some(r) = c.on_event(revents, tls, now, deadline)
            {
                finished.push((i, r));
            }
        }
    }
    End::Deadline {
        pending: pending(conns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Shutdown, TcpListener};

    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    use nix::sys::signalfd::{SfdFlags, SignalFd};

    /// Blocks SIGPIPE in this thread and returns a signalfd that shows
    /// whether one was raised for it. (On Linux a blocked signal stays
    /// pending even when its action is "ignore", as in the test harness.)
    fn sigpipe_watch() -> SignalFd {
        let mut set = SigSet::empty();
        set.add(Signal::SIGPIPE);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).unwrap();
        SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).unwrap()
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn send_nosignal_gives_epipe_not_sigpipe() {
        let (c, _s) = pair();
        let sfd = sigpipe_watch();
        c.shutdown(Shutdown::Write).unwrap();
        // Control: writev (what std does for write_vectored) raises SIGPIPE.
        let e = (&c)
            .write_vectored(&[io::IoSlice::new(b"a"), io::IoSlice::new(b"b")])
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(
            sfd.read_signal().unwrap().is_some(),
            "control: writev raised no SIGPIPE"
        );
        // Ours: EPIPE, no signal — also through the vectored path rustls uses.
        let e = NoSigPipe(&c)
            .write_vectored(&[io::IoSlice::new(b"a"), io::IoSlice::new(b"b")])
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        let e = NoSigPipe(&c).write(b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(sfd.read_signal().unwrap().is_none(), "SIGPIPE raised");
    }

    #[test]
    fn std_tcp_write_uses_msg_nosignal_too() {
        // Documents std's behaviour (send with MSG_NOSIGNAL for `write`).
        let (c, _s) = pair();
        let sfd = sigpipe_watch();
        c.shutdown(Shutdown::Write).unwrap();
        let e = (&c).write(b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(sfd.read_signal().unwrap().is_none());
    }

    #[test]
    fn debug_hides_the_query() {
        let url = ServerUrl::parse("https://h/v").unwrap();
        let ex = Exchange {
            url: &url,
            query: Zeroizing::new("otp=secretotp".into()),
        };
        assert!(!format!("{ex:?}").contains("secretotp"));
    }

    #[test]
    fn poll_timeout_rounds_up_and_caps() {
        let now = Instant::now();
        assert_eq!(i32::from(poll_timeout(now, now)), 0);
        assert_eq!(
            i32::from(poll_timeout(now + Duration::from_micros(1500), now)),
            2
        );
        assert_eq!(
            i32::from(poll_timeout(now + Duration::from_secs(3600), now)),
            60_000
        );
    }

    #[test]
    fn connection_refused_is_fast_and_classified() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = ServerUrl::parse(&format!("http://127.0.0.1:{port}/v")).unwrap();
        let ex = [Exchange {
            url: &url,
            query: Zeroizing::new("a=b".into()),
        }];
        let opts = Options {
            proxy: None,
            tls: None,
            deadline: Instant::now() + Duration::from_secs(20),
            body_cap: 4096,
            resolver: Path::new(super::super::resolve::DEFAULT_HELPER),
        };
        let mut got = Vec::new();
        let end = run(&ex, &opts, &mut |i, r| {
            got.push((i, r));
            Control::Continue
        });
        assert_eq!(end, End::AllDone);
        assert_eq!(
            got,
            vec![(0, Err(Failure::Connect("connection refused".into())))]
        );
    }

    #[test]
    fn unresolvable_name_fails_with_resolve() {
        let url = ServerUrl::parse("http://name.invalid/v").unwrap();
        let ex = [Exchange {
            url: &url,
            query: Zeroizing::new(String::new()),
        }];
        let opts = Options {
            proxy: None,
            tls: None,
            deadline: Instant::now() + Duration::from_secs(20),
            body_cap: 4096,
            resolver: Path::new(super::super::resolve::DEFAULT_HELPER),
        };
        let mut got = Vec::new();
        let end = run(&ex, &opts, &mut |i, r| {
            got.push((i, r));
            Control::Continue
        });
        // Either the resolver answers (no network here) or the deadline hits.
        match end {
            End::AllDone => assert!(matches!(got.as_slice(), [(0, Err(Failure::Resolve(_)))])),
            other => panic!("{other:?}"),
        }
    }
}
