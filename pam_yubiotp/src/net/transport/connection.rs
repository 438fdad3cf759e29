//! One exchange: the socket, the proxy tunnel, the TLS state and the
//! response reader for one URL, advanced one readiness event at a time.
//! It never blocks and never waits; the driver owns the clock and `poll`.

use core::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn, SockaddrIn6, sockopt,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use zeroize::Zeroizing;

use super::super::http::{self, HttpError, Progress, ResponseReader};
use super::{Failure, Phase};
use crate::config::ServerUrl;

/// Reads per socket per wake-up before giving the others a turn.
const READS_PER_WAKE: usize = 16;

/// A writer that sends with `MSG_NOSIGNAL`: `EPIPE` instead of `SIGPIPE`.
/// std's `write_vectored` for sockets is `writev(2)`, which has no such
/// flag; this one is `sendmsg(2)` with every slice as one iovec, so all
/// the TLS records rustls has queued (e.g. ChangeCipherSpec, Finished and
/// the request) leave in one system call and, with `TCP_NODELAY`, one
/// segment.
#[derive(Debug)]
pub struct NoSigPipe<'a>(pub &'a TcpStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        socket::send(self.0.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket::sendmsg::<()>(self.0.as_raw_fd(), bufs, &[], MsgFlags::MSG_NOSIGNAL, None)
            .map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn io_class(e: &io::Error) -> String {
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

/// Starts a non-blocking connect (close-on-exec, `TCP_NODELAY`: our writes
/// are one request or one flight of TLS records, never worth holding back
/// for the peer's delayed ACK).
pub fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
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
    socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    let res = match addr {
        SocketAddr::V4(a) => socket::connect(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => socket::connect(fd.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    match res {
        Ok(()) | Err(Errno::EINPROGRESS) | Err(Errno::EINTR) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Waiting for the resolver.
    Resolving,
    /// TCP connect in progress.
    Connecting,
    /// Writing the CONNECT request to the proxy.
    SendingConnect,
    /// Reading the proxy's answer to CONNECT.
    AwaitingConnectReply,
    /// TLS handshake (if https), request and response.
    Exchanging,
    /// Reported; the socket is closed.
    Done,
}

/// What one call on a connection decided.
#[derive(Debug)]
pub(super) enum Step {
    /// Nothing decided: wait for the next event on this connection.
    Wait,
    /// The complete 200 body arrived.
    Answered(Vec<u8>),
    /// The exchange failed.
    Failed(Failure),
}

impl Step {
    fn of(r: Result<Vec<u8>, Failure>) -> Self {
        match r {
            Ok(b) => Self::Answered(b),
            Err(f) => Self::Failed(f),
        }
    }

    /// `None` while undecided, else the result to report.
    pub(super) fn outcome(self) -> Option<Result<Vec<u8>, Failure>> {
        match self {
            Self::Wait => None,
            Self::Answered(b) => Some(Ok(b)),
            Self::Failed(f) => Some(Err(f)),
        }
    }
}

fn no_socket() -> Step {
    Step::Failed(Failure::Internal("no socket".into()))
}

/// The socket and protocol state for one URL.
pub(super) struct Conn<'a> {
    url: &'a ServerUrl,
    /// The name given to the resolver (the proxy's when there is one).
    pub(super) resolver_key: String,
    endpoint_port: u16,
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    /// When the current connect attempt gives way to the next address.
    pub(super) attempt_until: Instant,
    last_connect_error: Option<String>,
    pub(super) sock: Option<TcpStream>,
    pub(super) state: State,
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

impl<'a> Conn<'a> {
    /// A connection to `host:port` (the proxy's, when `proxy`) for `url`.
    pub(super) fn new(
        url: &'a ServerUrl,
        host: &str,
        port: u16,
        request: Zeroizing<Vec<u8>>,
        proxy: bool,
        body_cap: usize,
        deadline: Instant,
    ) -> Self {
        Self {
            url,
            resolver_key: host.to_string(),
            endpoint_port: port,
            addrs: Vec::new(),
            next_addr: 0,
            attempt_until: deadline,
            last_connect_error: None,
            sock: None,
            state: State::Resolving,
            tls: None,
            request,
            sent: 0,
            proxy_out: Vec::new(),
            proxy_in: Vec::new(),
            reader: ResponseReader::new(body_cap),
            tunnel: proxy && url.https,
        }
    }

    /// Marks the exchange reported and closes its socket.
    pub(super) fn close(&mut self) {
        self.state = State::Done;
        self.sock = None;
        self.tls = None;
    }

    pub(super) fn phase(&self) -> Phase {
        match self.state {
            State::Resolving => Phase::Resolving,
            State::Connecting => Phase::Connecting,
            State::SendingConnect | State::AwaitingConnectReply => Phase::Proxy,
            State::Exchanging | State::Done => {
                if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                    Phase::Handshake
                } else {
                    Phase::Waiting
                }
            }
        }
    }

    /// The events to wait for.
    pub(super) fn interest(&self) -> PollFlags {
        match self.state {
            State::Connecting | State::SendingConnect => PollFlags::POLLOUT,
            State::AwaitingConnectReply => PollFlags::POLLIN,
            State::Exchanging => {
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

    /// Gives up on the current connect attempt (its time slice is over).
    pub(super) fn connect_timed_out(&mut self, now: Instant, deadline: Instant) -> Step {
        self.last_connect_error = Some("timed out".into());
        self.connect_next(now, deadline)
    }

    /// Tries the next address; fails when none is left. Each attempt gets
    /// an equal share of the time left.
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
                    return Step::Wait;
                }
                Err(e) => self.last_connect_error = Some(io_class(&e)),
            }
        }
        Step::Failed(Failure::Connect(
            self.last_connect_error
                .clone()
                .unwrap_or_else(|| "no address".into()),
        ))
    }

    /// The resolver's answer: start connecting to the first address.
    pub(super) fn resolved(
        &mut self,
        res: Result<Vec<SocketAddr>, String>,
        deadline: Instant,
    ) -> Step {
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
            Ok(_) => Step::Failed(Failure::Resolve("no address".into())),
            Err(e) => Step::Failed(Failure::Resolve(e)),
        }
    }

    /// Connected: start the proxy tunnel, TLS, or the plain request.
    fn connected(&mut self, tls: Option<&Arc<ClientConfig>>) -> Step {
        if self.tunnel {
            self.proxy_out = http::connect_request(self.url);
            self.sent = 0;
            self.state = State::SendingConnect;
            return Step::Wait;
        }
        self.start_exchange(tls)
    }

    fn start_exchange(&mut self, tls: Option<&Arc<ClientConfig>>) -> Step {
        self.sent = 0;
        self.state = State::Exchanging;
        if self.url.https {
            let Some(cfg) = tls else {
                return Step::Failed(Failure::Internal("no TLS settings".into()));
            };
            let Ok(name) = ServerName::try_from(self.url.host.clone()) else {
                return Step::Failed(Failure::Tls("bad server name".into()));
            };
            let mut c = match ClientConnection::new(Arc::clone(cfg), name) {
                Ok(c) => c,
                Err(e) => return Step::Failed(Failure::Tls(e.to_string())),
            };
            // Buffered by rustls until the handshake is done, then queued
            // right behind the client's Finished: both leave in one
            // sendmsg, without waiting for the server's session tickets.
            if let Err(e) = c.writer().write_all(&self.request) {
                return Step::Failed(Failure::Tls(e.to_string()));
            }
            self.tls = Some(c);
        }
        Step::Wait
    }

    /// The socket is ready (`revents`): make what progress it allows.
    pub(super) fn on_event(
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
                let error = match socket::getsockopt(sock, sockopt::SocketError) {
                    Ok(0) if revents.intersects(PollFlags::POLLOUT) => return self.connected(tls),
                    // Hang-up or error without a pending error code: give
                    // up on this address rather than spin.
                    Ok(0) => "connection failed".into(),
                    Ok(errno) => io_class(&io::Error::from_raw_os_error(errno)),
                    Err(e) => io_class(&e.into()),
                };
                self.last_connect_error = Some(error);
                self.connect_next(now, deadline)
            }
            State::SendingConnect => self.proxy_send(),
            State::AwaitingConnectReply => self.proxy_recv(tls),
            State::Exchanging if self.tls.is_some() => self.tls_io(),
            State::Exchanging => self.plain_io(),
            State::Resolving | State::Done => Step::Wait,
        }
    }

    fn proxy_send(&mut self) -> Step {
        let Some(sock) = self.sock.as_ref() else {
            return no_socket();
        };
        let rest = self.proxy_out.get(self.sent..).unwrap_or_default();
        match NoSigPipe(sock).write(rest) {
            Ok(n) => {
                self.sent += n;
                if self.sent >= self.proxy_out.len() {
                    self.state = State::AwaitingConnectReply;
                }
                Step::Wait
            }
            Err(e) if would_block(&e) => Step::Wait,
            Err(e) => Step::Failed(Failure::Proxy(io_class(&e))),
        }
    }

    fn proxy_recv(&mut self, tls: Option<&Arc<ClientConfig>>) -> Step {
        let mut buf = [0u8; 1024];
        for _ in 0..READS_PER_WAKE {
            let Some(sock) = self.sock.as_ref() else {
                return no_socket();
            };
            match (&*sock).read(&mut buf) {
                Ok(0) => return Step::Failed(Failure::Proxy("closed the connection".into())),
                Ok(n) => {
                    self.proxy_in
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    match http::connect_reply(&self.proxy_in) {
                        Ok(None) => {}
                        Ok(Some(used)) if used == self.proxy_in.len() => {
                            return self.start_exchange(tls);
                        }
                        Ok(Some(_)) => {
                            return Step::Failed(Failure::Proxy(
                                "sent data after the CONNECT reply".into(),
                            ));
                        }
                        Err(e) => return Step::Failed(Failure::Proxy(format!("CONNECT: {e}"))),
                    }
                }
                Err(e) if would_block(&e) => return Step::Wait,
                Err(e) => return Step::Failed(Failure::Proxy(io_class(&e))),
            }
        }
        Step::Wait
    }

    fn feed(&mut self, data: &[u8]) -> Step {
        match self.reader.feed(data) {
            Ok(Progress::More) => Step::Wait,
            Ok(Progress::Body(b)) => Step::Answered(b),
            Err(e) => Step::Failed(Failure::Http(e)),
        }
    }

    fn plain_io(&mut self) -> Step {
        let Some(sock) = self.sock.as_ref() else {
            return no_socket();
        };
        if self.sent < self.request.len() {
            let rest = self.request.get(self.sent..).unwrap_or_default();
            match NoSigPipe(sock).write(rest) {
                Ok(n) => self.sent += n,
                Err(e) if would_block(&e) => {}
                Err(e) => return Step::Failed(Failure::Io(io_class(&e))),
            }
        }
        let mut buf = [0u8; 4096];
        for _ in 0..READS_PER_WAKE {
            let Some(sock) = self.sock.as_ref() else {
                return no_socket();
            };
            match (&*sock).read(&mut buf) {
                Ok(0) => return Step::of(self.reader.finish().map_err(Failure::Http)),
                Ok(n) => {
                    let step = self.feed(buf.get(..n).unwrap_or_default());
                    if !matches!(step, Step::Wait) {
                        return step;
                    }
                }
                Err(e) if would_block(&e) => return Step::Wait,
                Err(e) => return Step::Failed(Failure::Io(io_class(&e))),
            }
        }
        Step::Wait
    }

    /// Sends what rustls has queued: every pending record in one sendmsg.
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

    /// Reads all that is there, then writes once: the handshake replies
    /// and the request leave together.
    fn tls_io(&mut self) -> Step {
        if let Err(f) = self.tls_write() {
            return Step::Failed(f);
        }
        let mut eof = false;
        for _ in 0..READS_PER_WAKE {
            let (Some(sock), Some(tls)) = (self.sock.as_ref(), self.tls.as_mut()) else {
                return no_socket();
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
                        return Step::Failed(Failure::Tls(e.to_string()));
                    }
                    let step = self.drain_plaintext();
                    if !matches!(step, Step::Wait) {
                        return step;
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) => return Step::Failed(Failure::Io(io_class(&e))),
            }
        }
        if eof {
            return self.tls_eof();
        }
        match self.tls_write() {
            Ok(()) => Step::Wait,
            Err(f) => Step::Failed(f),
        }
    }

    fn tls_eof(&mut self) -> Step {
        let Some(tls) = self.tls.as_mut() else {
            return no_socket();
        };
        if let Err(e) = tls.process_new_packets() {
            return Step::Failed(Failure::Tls(e.to_string()));
        }
        if tls.is_handshaking() {
            return Step::Failed(Failure::Tls("connection closed during handshake".into()));
        }
        match self.drain_plaintext() {
            // No close_notify: a close-delimited body may be cut short.
            Step::Wait => Step::Failed(Failure::Http(HttpError::Truncated)),
            step => step,
        }
    }

    fn drain_plaintext(&mut self) -> Step {
        let mut buf = [0u8; 4096];
        // Bounded: the reader errors out past its caps.
        for _ in 0..1024 {
            let Some(tls) = self.tls.as_mut() else {
                return no_socket();
            };
            match tls.reader().read(&mut buf) {
                Ok(0) => return Step::of(self.reader.finish().map_err(Failure::Http)),
                Ok(n) => {
                    let step = self.feed(buf.get(..n).unwrap_or_default());
                    if !matches!(step, Step::Wait) {
                        return step;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Step::Failed(Failure::Http(HttpError::Truncated));
                }
                Err(e) => return Step::Failed(Failure::Io(io_class(&e))),
            }
        }
        Step::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn every_connection_sets_tcp_nodelay() {
        // Issue 11: without it Nagle holds the request record back until
        // the server's delayed ACK of the client's Finished (~40 ms).
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = start_connect(l.local_addr().unwrap()).unwrap();
        assert!(socket::getsockopt(&s, sockopt::TcpNoDelay).unwrap());
        let l6 = TcpListener::bind("[::1]:0");
        if let Ok(l6) = l6 {
            let s = start_connect(l6.local_addr().unwrap()).unwrap();
            assert!(socket::getsockopt(&s, sockopt::TcpNoDelay).unwrap());
        }
    }

    #[test]
    fn vectored_writes_go_out_in_one_call() {
        // All slices in one sendmsg, not one send per slice.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut srv, _) = l.accept().unwrap();
        let n = NoSigPipe(&c)
            .write_vectored(&[
                IoSlice::new(b"ccs..."),
                IoSlice::new(b"finished"),
                IoSlice::new(b"request"),
            ])
            .unwrap();
        assert_eq!(n, 21);
        let mut got = [0u8; 21];
        srv.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ccs...finishedrequest");
    }
}
