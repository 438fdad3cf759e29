//! A peer that resets the connection must not raise SIGPIPE: a C host
//! (sshd, sudo) has SIGPIPE at its default action, which kills it.
//!
//! The Rust test harness ignores SIGPIPE, which would hide the problem, so
//! each test blocks SIGPIPE in its own thread and watches it through a
//! signalfd: on Linux a blocked signal stays pending even when its action
//! is "ignore", and a SIGPIPE from `send`/`writev` is directed at the
//! writing thread (verify() does all its I/O on the calling thread).
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

mod cloud_common;

use cloud_common::*;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

fn watch_sigpipe() -> SignalFd {
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).unwrap();
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).unwrap()
}

#[test]
fn the_watch_sees_a_sigpipe_from_writev() {
    // Control for the test below: std's vectored write to a closed socket.
    use std::io::Write as _;
    let sfd = watch_sigpipe();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = (&c).write_vectored(&[std::io::IoSlice::new(b"x")]);
    assert!(sfd.read_signal().unwrap().is_some());
}

#[test]
fn peer_resets_raise_no_sigpipe() {
    let sfd = watch_sigpipe();
    let pki = TestPki::generate().unwrap();
    let dir = yubiotp_testsupport::tempdir();
    let cafile = pki.write_ca(dir.path()).unwrap();
    for round in 0..10 {
        for b in [Behavior::Reset, Behavior::ResetOnAccept] {
            let plain = mock(b.clone());
            let tls = MockServer::start(
                Config::new(b.clone())
                    .key(&test_key())
                    .tls(pki.identity(CertKind::Good).server_config().unwrap()),
            )
            .unwrap();
            let mut s = settings(&[plain.url(), tls.url(), tls.url_localhost()]);
            s.cafile = Some(cafile.clone());
            let (v, _, _) = verify(&s);
            assert_no_answer(&v);
            assert!(
                sfd.read_signal().unwrap().is_none(),
                "SIGPIPE raised ({b:?}, round {round})"
            );
        }
    }
}

#[test]
fn the_transport_writer_gives_epipe_not_sigpipe() {
    // Deterministic: a socket shut down for writing. rustls writes TLS
    // records with `write_vectored`; std turns that into writev(2), which
    // raises SIGPIPE (see the control above). The transport's writer sends
    // every byte with send(MSG_NOSIGNAL).
    use pam_yubiotp::net::transport::NoSigPipe;
    use std::io::Write as _;
    let sfd = watch_sigpipe();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut w = NoSigPipe(&c);
    for _ in 0..3 {
        let e = w
            .write_vectored(&[std::io::IoSlice::new(b"x"), std::io::IoSlice::new(b"y")])
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(w.write(b"z").is_err());
    }
    assert!(sfd.read_signal().unwrap().is_none(), "SIGPIPE raised");
}
