//! Yubico Validation Protocol 2.0 client (SPEC §7).
//!
//! [`protocol`] is the protocol without I/O (nonce, signing, parsing,
//! judging one answer); the network client it asks every server through,
//! at once from the calling thread, is [`crate::net`] (HTTP/1.1, TLS,
//! name resolution within the deadline, the poll-loop transport), shared
//! with the etcd counters and LDAP.
//!
//! One attempt: a fresh nonce, the same signed request to every URL in
//! parallel, one overall deadline (`timeout`). The first definitive answer
//! wins and [`CloudValidator::verify`] returns at once, closing the other
//! connections; an answer that is not definitive is logged and the wait
//! goes on. When `verify` returns no socket is open and no thread started
//! by it is running (libpam may unload the module right after).
//!
//! Why a small HTTP/1.1 client of our own instead of reqwest or ureq, and
//! where each part lives: `README.md` beside this file. In short, neither
//! lets one thread wait on several servers and return at the first
//! definitive answer with nothing left running; one `poll(2)` loop on the
//! calling thread over non-blocking sockets and rustls `ClientConnection`s
//! gives both, with no environment lookups (proxies, CA paths) to switch
//! off and `MSG_NOSIGNAL` on every write.

pub mod protocol;

use std::path::Path;
use std::time::Instant;

use ring::rand::SecureRandom as _;
use yubiotp_core::Token;
use zeroize::Zeroizing;

use super::{CloudBackend, CloudVerdict};
use crate::config::{CloudSettings, HttpProxy, ServerUrl};
use crate::host::{Level, Log};
use crate::net::{tls, transport};
use protocol::{Answer, Echo, Judgement, Reason, Request, Status};
use transport::{Control, End, Exchange, Failure, Options};

/// Validates against the configured servers.
///
/// Besides the engine, its one user outside this crate is `ykmap check
/// --online` (`ykmap::cmd::check::online`), which builds one per URL and
/// reads the [`CloudVerdict`] and the log lines: this, [`CloudBackend`],
/// [`CloudVerdict`], [`CloudSettings`] and [`Log`] are the surface it needs.
pub struct CloudValidator<'a> {
    settings: &'a CloudSettings,
    log: &'a dyn Log,
    debug: bool,
}

impl core::fmt::Debug for CloudValidator<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CloudValidator")
            .field("settings", self.settings)
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

impl<'a> CloudValidator<'a> {
    /// A validator for one attempt.
    #[must_use]
    pub fn new(settings: &'a CloudSettings, log: &'a dyn Log, debug: bool) -> Self {
        Self {
            settings,
            log,
            debug,
        }
    }

    fn debug(&self, line: &str) {
        if self.debug {
            self.log.log(Level::Debug, line);
        }
    }

    fn no_answer(&self, level: Level, why: &str) -> CloudVerdict {
        self.log.log(level, &format!("cloud: {why}"));
        CloudVerdict::NoAnswer {
            summary: why.to_string(),
        }
    }

    /// Logs one non-definitive answer and returns its short summary.
    fn not_definitive(&self, url: &ServerUrl, reason: &Reason, ms: u128, len: usize) -> String {
        let id = self.settings.id();
        let (level, what) = match reason {
            Reason::Status(Status::BadSignature) => (
                Level::Err,
                format!(
                    "BAD_SIGNATURE: the server refused our request signature; \
                     the API key (cloud.key) is probably wrong for client id {id}"
                ),
            ),
            Reason::Status(Status::NoSuchClient) => (
                Level::Err,
                format!("NO_SUCH_CLIENT: client id {id} is unknown to the server; check cloud.id"),
            ),
            Reason::Status(Status::OperationNotAllowed) => (
                Level::Err,
                format!(
                    "OPERATION_NOT_ALLOWED: client id {id} is not allowed to verify OTPs \
                     on this server"
                ),
            ),
            Reason::Status(Status::MissingParameter) => (
                Level::Err,
                format!(
                    "MISSING_PARAMETER: the server found a parameter missing or malformed \
                     (client id {id}, or the nonce)"
                ),
            ),
            Reason::Status(Status::ReplayedRequest) => (
                Level::Warning,
                "REPLAYED_REQUEST: this OTP and nonce were seen before; \
                 possible MITM or server sync"
                    .to_string(),
            ),
            Reason::Status(s @ (Status::BackendError | Status::NotEnoughAnswers)) => (
                Level::Warning,
                format!("{} (server-side trouble)", s.as_str()),
            ),
            Reason::Status(s) => (Level::Warning, format!("unknown status {}", s.as_str())),
            Reason::BadSignature => (
                Level::Err,
                "OK with a wrong signature: not accepted; possible man-in-the-middle, \
                 or the server has another key for this client"
                    .to_string(),
            ),
            Reason::MissingSignature => (
                Level::Err,
                "OK without a signature while an API key is set: not accepted".to_string(),
            ),
            Reason::EchoMismatch(which) => (
                Level::Warning,
                format!(
                    "answer does not echo our {}: not accepted (possible replayed answer)",
                    match which {
                        Echo::Otp => "otp",
                        Echo::Nonce => "nonce",
                    }
                ),
            ),
            Reason::Garbage(g) => (
                Level::Warning,
                format!("unusable answer ({g}, {len} bytes)"),
            ),
        };
        self.log
            .log(level, &format!("cloud: {url}: {what}; after {ms} ms"));
        match reason {
            Reason::Status(s) => s.as_str().to_string(),
            Reason::BadSignature => "bad answer signature".into(),
            Reason::MissingSignature => "unsigned answer".into(),
            Reason::EchoMismatch(Echo::Otp) => "otp echo mismatch".into(),
            Reason::EchoMismatch(Echo::Nonce) => "nonce echo mismatch".into(),
            Reason::Garbage(g) => g.to_string(),
        }
    }
}

impl CloudBackend for CloudValidator<'_> {
    fn verify(&self, token: &Token) -> CloudVerdict {
        let start = Instant::now();
        // The settings are validated as a whole by the config layer (id,
        // at least one URL, https only without a key, a bounded timeout).
        let s = self.settings;
        let deadline = start.checked_add(s.timeout.get()).unwrap_or(start);
        let id = s.id();
        let key = s.key().map(crate::secret::ApiKey::expose);
        if key.is_none() {
            self.log.log(
                Level::Warning,
                "cloud: insecure_unsigned: no API key, so answers are trusted on TLS alone",
            );
        }
        for u in s.urls().iter().filter(|u| !u.https) {
            self.log.log(
                Level::Warning,
                &format!("cloud: {u}: plain http:// (the OTP travels in clear; answers are checked by signature only)"),
            );
        }
        let rng = ring::rand::SystemRandom::new();
        let Some(nonce) = protocol::new_nonce(|b| rng.fill(b)) else {
            return self.no_answer(Level::Err, "the system random generator failed");
        };
        let req = Request {
            id,
            otp: token.expose_string(),
            nonce,
        };
        let query = Zeroizing::new(req.query(key));
        let tls = if s.urls().iter().any(|u| u.https) {
            let (roots, report) = tls::load_roots(
                Path::new(tls::SYSTEM_ROOTS),
                s.cafile.as_deref(),
                s.capath.as_deref(),
            );
            for p in &report.problems {
                self.log
                    .log(Level::Err, &format!("cloud: trust anchors: {p}"));
            }
            self.debug(&format!(
                "cloud: trust anchors: {} system, {} cafile, {} capath",
                report.system, report.cafile, report.capath
            ));
            match tls::client_config(roots) {
                Ok(c) => Some(c),
                Err(e) => return self.no_answer(Level::Err, &e),
            }
        } else {
            None
        };
        let exchanges: Vec<Exchange<'_>> = s
            .urls()
            .iter()
            .map(|url| Exchange {
                url,
                query: query.clone(),
                post: None,
            })
            .collect();
        let opts = Options {
            proxy: s.proxy.as_ref().map(HttpProxy::url),
            tls,
            deadline,
            body_cap: protocol::MAX_BODY,
            resolver: &s.resolver,
        };
        self.debug(&format!(
            "cloud: asking {} server(s), timeout {} ms{}",
            exchanges.len(),
            s.timeout.get().as_millis(),
            if s.proxy.is_some() { ", via proxy" } else { "" }
        ));

        let mut verdict: Option<CloudVerdict> = None;
        let mut failures: Vec<String> = Vec::new();
        let end = transport::run(&exchanges, &opts, &mut |i, result| {
            let Some(url) = s.urls().get(i) else {
                return Control::Continue;
            };
            let ms = start.elapsed().as_millis();
            let body = match result {
                Ok(b) => b,
                Err(f) => {
                    self.log_failure(url, &f, ms);
                    failures.push(format!("{url}: {f}"));
                    return Control::Continue;
                }
            };
            let answer = match Answer::parse(&body) {
                Ok(a) => a,
                Err(g) => {
                    let why = self.not_definitive(url, &Reason::Garbage(g), ms, body.len());
                    failures.push(format!("{url}: {why}"));
                    return Control::Continue;
                }
            };
            match protocol::judge(&answer, &req, key) {
                Judgement::Accept { signed, counter } => {
                    self.log.log(
                        Level::Info,
                        &format!(
                            "cloud: {url}: OK ({}) after {ms} ms",
                            if signed {
                                "signed"
                            } else {
                                "UNSIGNED, insecure_unsigned"
                            }
                        ),
                    );
                    verdict = Some(CloudVerdict::Ok {
                        server: url.to_string(),
                        signed,
                        counter,
                    });
                    Control::Stop
                }
                Judgement::Reject {
                    status,
                    authenticated,
                } => {
                    self.log.log(
                        Level::Info,
                        &format!("cloud: {url}: {} after {ms} ms", status.as_str()),
                    );
                    if let Some(k) = key {
                        self.debug(&format!(
                            "cloud: {url}: rejection signature {:?}",
                            answer.signature(k)
                        ));
                    }
                    verdict = Some(CloudVerdict::Rejected {
                        server: url.to_string(),
                        status: status.as_str().to_string(),
                        authenticated,
                    });
                    Control::Stop
                }
                Judgement::NotDefinitive(reason) => {
                    let why = self.not_definitive(url, &reason, ms, body.len());
                    failures.push(format!("{url}: {why}"));
                    Control::Continue
                }
            }
        });
        let ms = start.elapsed().as_millis();
        match end {
            End::Stopped { pending } => {
                for (i, phase) in pending {
                    if let Some(url) = s.urls().get(i) {
                        self.debug(&format!("cloud: {url}: cancelled ({phase})"));
                    }
                }
            }
            End::AllDone => {}
            End::Deadline { pending } => {
                for (i, phase) in pending {
                    if let Some(url) = s.urls().get(i) {
                        self.log.log(
                            Level::Warning,
                            &format!("cloud: {url}: no answer within {ms} ms ({phase})"),
                        );
                        failures.push(format!("{url}: timed out ({phase})"));
                    }
                }
            }
        }
        verdict.unwrap_or_else(|| CloudVerdict::NoAnswer {
            summary: format!(
                "no definitive answer from {} server(s) in {ms} ms: {}",
                s.urls().len(),
                failures.join("; ")
            ),
        })
    }
}

impl CloudValidator<'_> {
    fn log_failure(&self, url: &ServerUrl, f: &Failure, ms: u128) {
        self.log
            .log(Level::Warning, &format!("cloud: {url}: {f}; after {ms} ms"));
    }
}
