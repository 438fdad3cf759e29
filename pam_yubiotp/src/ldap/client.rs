//! One LDAP conversation on one socket, from the calling thread: the
//! socket is non-blocking, every wait is a `poll(2)` bounded by the one
//! deadline, TLS is a rustls `ClientConnection` driven by hand (for
//! `ldaps://` from the first byte, for StartTLS after the extended
//! operation), writes go through [`NoSigPipe`] (no SIGPIPE in the host).
//! Names are resolved by [`Lookups`] (IP literal, `/etc/hosts`, then the
//! killable helper) inside the same deadline. When a [`Conn`] is dropped
//! the socket is closed; no thread or process outlives the call.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::proto::{self, Response};
use crate::net::resolve::Lookups;
use crate::net::transport::{NoSigPipe, start_connect};

/// How often the resolver is looked at while a lookup runs.
const RESOLVER_TICK: Duration = Duration::from_millis(5);
/// Upper bound on wait iterations of one operation (safety net).
const MAX_WAITS: u32 = 100_000;

fn timeout_ms(deadline: Instant) -> Option<PollTimeout> {
    let d = deadline.checked_duration_since(Instant::now())?;
    let ms = d.as_millis().saturating_add(1).min(60_000);
    PollTimeout::try_from(ms).ok()
}

fn wait(sock: &TcpStream, flags: PollFlags, deadline: Instant) -> Result<(), String> {
    for _ in 0..MAX_WAITS {
        let t = timeout_ms(deadline).ok_or_else(|| "timed out".to_string())?;
        let mut fds = [PollFd::new(sock.as_fd(), flags)];
        match poll(&mut fds, t) {
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
    Err("timed out".into())
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Resolves `host` within `deadline` (port applied).
///
/// # Errors
/// The resolver's reason, or "timed out" (the helper is killed).
pub fn resolve(
    host: &str,
    port: u16,
    resolver: &std::path::Path,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, String> {
    let mut lookups = Lookups::new(resolver);
    lookups.start(host);
    loop {
        if let Some((_, ans)) = lookups.try_next() {
            return ans
                .map(|v| {
                    v.into_iter()
                        .map(|a| SocketAddr::new(a.ip(), port))
                        .collect()
                })
                .map_err(|e| format!("DNS: {e}"));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err("DNS: timed out, lookup stopped".into());
        }
        std::thread::sleep(RESOLVER_TICK.min(deadline - now));
    }
}

/// An open connection.
pub struct Conn {
    sock: TcpStream,
    tls: Option<ClientConnection>,
    plain: Vec<u8>,
    deadline: Instant,
    next_id: i32,
    /// The address connected to.
    pub peer: SocketAddr,
}

impl core::fmt::Debug for Conn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.peer)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects to the first address that answers, each attempt getting
    /// an equal share of what is left of `deadline`.
    ///
    /// # Errors
    /// The last connect error, or "timed out".
    pub fn open(addrs: &[SocketAddr], deadline: Instant) -> Result<Self, String> {
        let mut last = "no address".to_string();
        for (n, addr) in addrs.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("connect: timed out".into());
            }
            let share = u32::try_from(addrs.len() - n).unwrap_or(1).max(1);
            let until = Instant::now() + left / share;
            match Self::open_one(*addr, until) {
                Ok(sock) => {
                    return Ok(Self {
                        sock,
                        tls: None,
                        plain: Vec::new(),
                        deadline,
                        next_id: 1,
                        peer: *addr,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(format!("connect: {last}"))
    }

    fn open_one(addr: SocketAddr, until: Instant) -> Result<TcpStream, String> {
        let sock = start_connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        wait(&sock, PollFlags::POLLOUT, until).map_err(|e| format!("{addr}: {e}"))?;
        match sock.take_error() {
            Ok(None) => Ok(sock),
            Ok(Some(e)) | Err(e) => Err(format!("{addr}: {e}")),
        }
    }

    /// A fresh message id.
    pub fn id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// True once TLS is up.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn write_raw(&self, mut buf: &[u8]) -> Result<(), String> {
        while !buf.is_empty() {
            match NoSigPipe(&self.sock).write(buf) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
                Err(e) if would_block(&e) => wait(&self.sock, PollFlags::POLLOUT, self.deadline)?,
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }

    fn flush_tls(&mut self) -> Result<(), String> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        for _ in 0..MAX_WAITS {
            if !tls.wants_write() {
                return Ok(());
            }
            match tls.write_tls(&mut NoSigPipe(&self.sock)) {
                Ok(_) => {}
                Err(e) if would_block(&e) => wait(&self.sock, PollFlags::POLLOUT, self.deadline)?,
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Err("TLS: write loop".into())
    }

    /// Reads what the socket has (waiting for it); `Ok(false)` at EOF.
    fn fill(&mut self) -> Result<bool, String> {
        wait(&self.sock, PollFlags::POLLIN, self.deadline)?;
        if let Some(tls) = self.tls.as_mut() {
            let mut r = &self.sock;
            match tls.read_tls(&mut r) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(true),
                Err(e) => return Err(format!("read: {e}")),
            }
            tls.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
            let mut buf = [0u8; 8192];
            loop {
                match tls.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.plain.extend_from_slice(buf.get(..n).unwrap_or(&[])),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("TLS: {e}")),
                }
                if self.plain.len() > proto::MAX_MESSAGE * 2 {
                    return Err("answer too large".into());
                }
            }
            Ok(true)
        } else {
            let mut buf = [0u8; 8192];
            match (&self.sock).read(&mut buf) {
                Ok(0) => Ok(false),
                Ok(n) => {
                    self.plain.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                    Ok(true)
                }
                Err(e) if would_block(&e) => Ok(true),
                Err(e) => Err(format!("read: {e}")),
            }
        }
    }

    /// Sends one message.
    ///
    /// # Errors
    /// An I/O or TLS failure, or the deadline.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), String> {
        if let Some(tls) = self.tls.as_mut() {
            tls.writer()
                .write_all(msg)
                .map_err(|e| format!("TLS: {e}"))?;
            self.flush_tls()
        } else {
            self.write_raw(msg)
        }
    }

    /// The next response (any message id; the caller checks it).
    ///
    /// # Errors
    /// An I/O, TLS or protocol failure, the peer closing, or the deadline.
    pub fn recv(&mut self) -> Result<(i64, Response), String> {
        for _ in 0..MAX_WAITS {
            if let Some(n) = proto::frame(&self.plain).map_err(|e| e.to_string())? {
                let msg: Vec<u8> = self.plain.drain(..n).collect();
                return proto::parse_response(&msg).map_err(|e| e.to_string());
            }
            if !self.fill()? {
                return Err(if self.tls.is_some() {
                    // TLS 1.3: a refused client certificate shows only now.
                    "TLS connection closed by the server (a server that requires a client \
                     certificate does so when none, or one it does not trust, was sent)"
                        .into()
                } else {
                    "connection closed by the server".into()
                });
            }
        }
        Err("read loop".into())
    }

    /// Runs the TLS handshake for `name` on this socket.
    ///
    /// # Errors
    /// A TLS failure (certificate, alert) or the deadline.
    pub fn start_tls(&mut self, cfg: Arc<ClientConfig>, name: &str) -> Result<(), String> {
        if !self.plain.is_empty() {
            return Err("TLS: data before the handshake".into());
        }
        let server = ServerName::try_from(name.to_string())
            .map_err(|_| format!("TLS: bad server name {name:?}"))?;
        let conn = ClientConnection::new(cfg, server).map_err(|e| format!("TLS: {e}"))?;
        self.tls = Some(conn);
        for _ in 0..MAX_WAITS {
            self.flush_tls()?;
            let Some(tls) = self.tls.as_ref() else {
                return Err("TLS: lost".into());
            };
            if !tls.is_handshaking() {
                return Ok(());
            }
            if !self.fill()? {
                return Err("TLS: connection closed during the handshake".into());
            }
        }
        Err("TLS: handshake loop".into())
    }

    /// Sends an UnbindRequest and a TLS close_notify, not waiting for
    /// anything (the socket closes on drop).
    pub fn unbind(&mut self) {
        let id = self.id();
        let _ = self.send(&proto::unbind_request(id));
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
        let _ = self.flush_tls();
    }
}
