//! Asks several HTTP(S) servers at once from the calling thread.
//!
//! Every connection is a non-blocking socket driven by one `poll(2)` loop
//! (rustls `ClientConnection` for TLS), so the caller can stop at the first
//! definitive answer and nothing keeps running afterwards: when [`run`]
//! returns, every socket is closed and every resolver helper it started
//! has been killed (if still running) and reaped. Writes use `send`/`sendmsg` with `MSG_NOSIGNAL`, so a peer
//! reset gives `EPIPE`, never a `SIGPIPE` that would kill a C host (whose
//! SIGPIPE is at its default action). Every socket has `TCP_NODELAY`, and
//! the TLS records queued at one time leave in one `sendmsg`: after the
//! handshake the client's Finished and the request share one segment
//! instead of the request waiting for the server's delayed ACK (issue 11).
//!
//! [`connection`] is one exchange (socket, proxy tunnel, TLS, response
//! reader); [`driver`] is the loop over all of them with the deadline.
//!
//! Names that are not IP literals are resolved by [`super::resolve`]
//! (`/etc/hosts`, then a helper process running `getaddrinfo`), one
//! lookup per distinct host, polled from the loop; the deadline stops a
//! lookup like any other phase.
//!
//! The proxy comes only from the caller (never from `*_PROXY` variables):
//! HTTP CONNECT for https targets, an absolute-form GET for http targets.

mod connection;
mod driver;

use core::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustls::ClientConfig;
use zeroize::Zeroizing;

use super::http::HttpError;
use crate::config::ServerUrl;
pub use connection::{NoSigPipe, start_connect};
pub use driver::run;

/// One exchange: a GET of `url` with `query`, or (with `post`) a POST of
/// a JSON body. `Debug` omits the query and the body.
pub struct Exchange<'a> {
    /// The server.
    pub url: &'a ServerUrl,
    /// The query string (holds the OTP: wiped on drop, never logged).
    pub query: Zeroizing<String>,
    /// A POST instead of the GET (the etcd gateway).
    pub post: Option<Post>,
}

/// A POST's path, extra headers and JSON body (wiped on drop, never
/// logged).
pub struct Post {
    /// The request path (`/v3/kv/txn`).
    pub path: String,
    /// Extra headers (name, value); values may be tokens.
    pub headers: Vec<(String, Zeroizing<String>)>,
    /// The body.
    pub body: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Post {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Post")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Exchange<'_> {
    /// The request bytes; `absolute` for a plain-http target via a proxy.
    pub(crate) fn request(&self, absolute: bool) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match &self.post {
            None => super::http::get_request(self.url, &self.query, absolute),
            Some(p) => super::http::post_request(self.url, &p.path, &p.headers, &p.body, absolute),
        })
    }
}

impl fmt::Debug for Exchange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("url", &self.url.to_string())
            .field("query", &"[redacted]")
            .field("post", &self.post.as_ref().map(|p| p.path.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, Write as _};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::time::Duration;

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
            post: None,
        };
        assert!(!format!("{ex:?}").contains("secretotp"));
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
            post: None,
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
            post: None,
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
