//! A tiny HTTP proxy on loopback that counts what it carries: CONNECT
//! tunnels (https targets) and absolute-form GETs (http targets). It only
//! connects to loopback targets. One thread, non-blocking sockets.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Shared {
    tunnels: AtomicUsize,
    forwards: AtomicUsize,
    connections: AtomicUsize,
    targets: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A running proxy.
#[derive(Debug)]
pub struct ConnectProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    /// Starts a proxy on `127.0.0.1:0`. With `refuse` it answers every
    /// request with that status (e.g. 407) instead.
    ///
    /// # Errors
    /// When the socket cannot be bound or the thread cannot start.
    pub fn start(refuse: Option<u16>) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("test-proxy-{}", addr.port()))
            .spawn(move || run(&listener, refuse, &s))?;
        Ok(Self {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// CONNECT tunnels opened.
    #[must_use]
    pub fn tunnels(&self) -> usize {
        self.shared.tunnels.load(Ordering::SeqCst)
    }

    /// Absolute-form requests forwarded.
    #[must_use]
    pub fn forwards(&self) -> usize {
        self.shared.forwards.load(Ordering::SeqCst)
    }

    /// Client connections accepted.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The authorities asked for (`host:port`), in order.
    #[must_use]
    pub fn targets(&self) -> Vec<String> {
        self.shared
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops and joins the proxy thread (also done on drop).
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Side {
    sock: TcpStream,
    eof: bool,
    shut: bool,
}

struct PConn {
    client: Side,
    up: Option<Side>,
    head: Vec<u8>,
    to_up: Vec<u8>,
    to_client: Vec<u8>,
    closing: bool,
    done: bool,
    opened: Instant,
}

fn loopback_target(authority: &str) -> Option<SocketAddr> {
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().ok()?
    };
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

fn run(listener: &TcpListener, refuse: Option<u16>, shared: &Shared) {
    let started = Instant::now();
    let mut conns: Vec<PConn> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(300) {
        let mut busy = false;
        for _ in 0..16 {
            match listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    conns.push(PConn {
                        client: Side {
                            sock,
                            eof: false,
                            shut: false,
                        },
                        up: None,
                        head: Vec::new(),
                        to_up: Vec::new(),
                        to_client: Vec::new(),
                        closing: false,
                        done: false,
                        opened: Instant::now(),
                    });
                    busy = true;
                }
                Err(_) => break,
            }
        }
        for c in &mut conns {
            busy |= c.step(refuse, shared);
            if c.opened.elapsed() > Duration::from_secs(60) {
                c.done = true;
            }
        }
        conns.retain(|c| !c.done);
        std::thread::sleep(if busy {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(2)
        });
    }
}

fn pump(from: &mut Side, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 8192];
    let mut progress = false;
    for _ in 0..8 {
        if from.eof || into.len() > (256 << 10) {
            break;
        }
        match from.sock.read(&mut buf) {
            Ok(0) => {
                from.eof = true;
                progress = true;
            }
            Ok(n) => {
                into.extend_from_slice(buf.get(..n).unwrap_or_default());
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                from.eof = true;
                progress = true;
            }
        }
    }
    progress
}

fn flush(to: &mut Side, from: &mut Vec<u8>) -> Result<bool, ()> {
    let mut progress = false;
    while !from.is_empty() {
        match to.sock.write(from) {
            Ok(0) => return Err(()),
            Ok(n) => {
                from.drain(..n);
                progress = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return Err(()),
        }
    }
    Ok(progress)
}

impl PConn {
    fn step(&mut self, refuse: Option<u16>, shared: &Shared) -> bool {
        let mut busy = false;
        if self.up.is_none() && !self.closing {
            let mut head = std::mem::take(&mut self.head);
            busy |= pump(&mut self.client, &mut head);
            self.head = head;
            if let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") {
                self.start(end, refuse, shared);
                busy = true;
            } else if self.client.eof || self.head.len() > 16384 {
                self.done = true;
                return true;
            }
        }
        if let Some(up) = &mut self.up {
            busy |= pump(&mut self.client, &mut self.to_up);
            busy |= pump(up, &mut self.to_client);
            match flush(up, &mut self.to_up) {
                Ok(p) => busy |= p,
                Err(()) => self.done = true,
            }
            if self.client.eof && self.to_up.is_empty() && !up.shut {
                let _ = up.sock.shutdown(Shutdown::Write);
                up.shut = true;
            }
            if up.eof && self.to_client.is_empty() && !self.client.shut {
                let _ = self.client.sock.shutdown(Shutdown::Write);
                self.client.shut = true;
            }
            if self.client.eof && up.eof && self.to_client.is_empty() && self.to_up.is_empty() {
                self.done = true;
            }
        }
        match flush(&mut self.client, &mut self.to_client) {
            Ok(p) => busy |= p,
            Err(()) => self.done = true,
        }
        if self.closing && self.to_client.is_empty() {
            let _ = self.client.sock.shutdown(Shutdown::Write);
            self.done = true;
        }
        busy
    }

    fn start(&mut self, end: usize, refuse: Option<u16>, shared: &Shared) {
        let head = String::from_utf8_lossy(self.head.get(..end).unwrap_or_default()).into_owned();
        let rest = self.head.get(end + 4..).unwrap_or_default().to_vec();
        let mut first = head.split("\r\n").next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let target = first.next().unwrap_or_default().to_string();
        if let Some(code) = refuse {
            self.to_client =
                format!("HTTP/1.1 {code} Refused\r\nContent-Length: 0\r\n\r\n").into_bytes();
            self.closing = true;
            return;
        }
        let (authority, forward) = if method == "CONNECT" {
            (target.clone(), None)
        } else if let Some(abs) = target.strip_prefix("http://") {
            let (auth, path) = abs.find('/').map_or((abs, "/"), |i| {
                (abs.get(..i).unwrap_or(abs), abs.get(i..).unwrap_or("/"))
            });
            let auth = if auth.contains(':') {
                auth.to_string()
            } else {
                format!("{auth}:80")
            };
            let mut lines: Vec<String> = head.split("\r\n").map(str::to_string).collect();
            if let Some(l) = lines.first_mut() {
                *l = format!("{method} {path} HTTP/1.1");
            }
            (auth, Some(format!("{}\r\n\r\n", lines.join("\r\n"))))
        } else {
            self.to_client = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec();
            self.closing = true;
            return;
        };
        shared
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(authority.clone());
        let up = loopback_target(&authority)
            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
            .filter(|s| s.set_nonblocking(true).is_ok());
        let Some(up) = up else {
            self.to_client = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".to_vec();
            self.closing = true;
            return;
        };
        match forward {
            None => {
                shared.tunnels.fetch_add(1, Ordering::SeqCst);
                self.to_client = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
                self.to_up = rest;
            }
            Some(h) => {
                shared.forwards.fetch_add(1, Ordering::SeqCst);
                self.to_up = h.into_bytes();
                self.to_up.extend_from_slice(&rest);
            }
        }
        self.up = Some(Side {
            sock: up,
            eof: false,
            shut: false,
        });
        self.head.clear();
    }
}
