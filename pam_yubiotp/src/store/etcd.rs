//! Shared counters in etcd v3, through its JSON gateway (`/v3/kv/range`,
//! `/v3/kv/txn`, `/v3/auth/authenticate`; base64 keys and values), over
//! the module's own poll-loop HTTP(S) client: no runtime, no thread.
//!
//! The key of a public id is `prefix` + its modhex; the value is
//! `v1 UUUUU SSS` (use and session counters, decimal, zero-padded), so
//! byte order is counter order and etcd's `VALUE < new` compare is the
//! counter compare.
//!
//! One step, within `counters.timeout`:
//!
//! 1. **contact**: the members are asked in parallel (an authenticate
//!    with `username`/`password`, else a linearizable range of the key);
//!    the first to answer is used for the rest. Every request carries
//!    `Grpc-Metadata-hasleader: true`, so a member without a leader
//!    refuses at once. Nothing is written here: any failure is
//!    [`SharedError::Unreachable`].
//! 2. **range** of the key (linearizable): a stored value at or above the
//!    new one is [`Advance::Stale`], without a write.
//! 3. **txn**: `create_revision(key) == 0` → put; else a nested txn
//!    `value(key) < new` → put, else range. Success of a compare is the
//!    acceptance, fleet-wide. A failure after this request was sent is
//!    [`SharedError::Unknown`].

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::ClientConfig;
use serde_json::{Value, json};
use yubiotp_core::{Counter, PublicId};
use zeroize::Zeroizing;

use super::shared::{Advance, Counters, SharedError};
use crate::config::{ServerUrl, SharedSettings};
use crate::net::tls;
use crate::net::transport::{self, Control, End, Exchange, Failure, Options, Phase, Post};

/// Largest reply accepted (a range of one key is a few hundred bytes).
pub const MAX_REPLY: usize = 64 * 1024;

/// The stored value for `c`: `v1 UUUUU SSS`.
#[must_use]
pub fn encode(c: Counter) -> String {
    format!("v1 {:05} {:03}", c.use_counter(), c.session())
}

/// Parses a stored value; `None` when it is not exactly [`encode`]'s form.
#[must_use]
pub fn decode(v: &[u8]) -> Option<Counter> {
    let s = core::str::from_utf8(v).ok()?;
    let rest = s.strip_prefix("v1 ")?;
    let (u, sess) = rest.split_once(' ')?;
    if u.len() != 5 || sess.len() != 3 {
        return None;
    }
    if !u.bytes().chain(sess.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let u: u16 = u.parse().ok().filter(|u| *u <= 0x7fff)?;
    let sess: u8 = sess.parse().ok()?;
    Some(Counter::new(u, sess))
}

struct Contact {
    endpoint: usize,
    token: Option<Zeroizing<String>>,
}

/// The etcd store of one attempt (one deadline).
pub struct EtcdStore<'a> {
    settings: &'a SharedSettings,
    tls: Option<Arc<ClientConfig>>,
    deadline: Instant,
    contact: Option<Contact>,
}

impl core::fmt::Debug for EtcdStore<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.settings.endpoints.len())
            .finish_non_exhaustive()
    }
}

/// Why one request failed, and whether it may have reached the member.
struct CallError {
    sent: bool,
    why: String,
}

fn sent_before(f: &Failure) -> bool {
    matches!(f, Failure::Io(_) | Failure::Http(_))
}

impl<'a> EtcdStore<'a> {
    /// The store for one attempt; its deadline starts now.
    ///
    /// # Errors
    /// The TLS settings cannot be built (a trust or identity file is
    /// missing or untrusted): unreachable.
    pub fn new(settings: &'a SharedSettings) -> Result<Self, SharedError> {
        let deadline = Instant::now() + settings.timeout.get();
        let tls = if settings.endpoints.iter().any(|u| u.https) {
            let (roots, report) = tls::load_roots(
                Path::new(tls::SYSTEM_ROOTS),
                settings.cafile.as_deref(),
                None,
            );
            if let Some(p) = report.problems.first() {
                return Err(SharedError::Unreachable(format!("trust anchors: {p}")));
            }
            let cfg = match &settings.cert {
                Some(c) => tls::client_config_with_cert(roots, &c.certfile, &c.keyfile),
                None => tls::client_config(roots),
            };
            Some(cfg.map_err(SharedError::Unreachable)?)
        } else {
            None
        };
        Ok(Self {
            settings,
            tls,
            deadline,
            contact: None,
        })
    }

    fn key(&self, id: &PublicId) -> String {
        B64.encode(format!("{}{}", self.settings.prefix, id.to_modhex()))
    }

    fn headers(&self) -> Vec<(String, Zeroizing<String>)> {
        let mut h = vec![(
            "Grpc-Metadata-hasleader".to_string(),
            Zeroizing::new("true".to_string()),
        )];
        if let Some(t) = self.contact.as_ref().and_then(|c| c.token.as_ref()) {
            h.push(("Authorization".to_string(), t.clone()));
        }
        h
    }

    /// POSTs `body` to `path` on each of `targets` in parallel; the first
    /// 200 answer wins (its index into the endpoints and its JSON).
    fn call(
        &self,
        targets: &[usize],
        path: &str,
        body: &Zeroizing<Vec<u8>>,
    ) -> Result<(usize, Value), CallError> {
        let exchanges: Vec<Exchange<'_>> = targets
            .iter()
            .filter_map(|i| self.settings.endpoints.get(*i))
            .map(|url: &ServerUrl| Exchange {
                url,
                query: Zeroizing::new(String::new()),
                post: Some(Post {
                    path: path.to_string(),
                    headers: self.headers(),
                    body: body.clone(),
                }),
            })
            .collect();
        let opts = Options {
            proxy: None,
            tls: self.tls.clone(),
            deadline: self.deadline,
            body_cap: MAX_REPLY,
            resolver: &self.settings.resolver,
        };
        let mut won: Option<(usize, Value)> = None;
        let mut errors: Vec<String> = Vec::new();
        let mut sent = false;
        let end = transport::run(&exchanges, &opts, &mut |i, r| {
            let Some(&ep) = targets.get(i) else {
                return Control::Continue;
            };
            let name = self
                .settings
                .endpoints
                .get(ep)
                .map(ToString::to_string)
                .unwrap_or_default();
            match r {
                Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(v) if v.is_object() => {
                        won = Some((ep, v));
                        Control::Stop
                    }
                    _ => {
                        sent = true;
                        errors.push(format!("{name}: reply is not a JSON object"));
                        Control::Continue
                    }
                },
                Err(f) => {
                    sent |= sent_before(&f);
                    errors.push(format!("{name}: {f}"));
                    Control::Continue
                }
            }
        });
        if let Some(w) = won {
            return Ok(w);
        }
        if let End::Deadline { pending } | End::Stopped { pending } = &end {
            for (i, phase) in pending {
                sent |= *phase == Phase::Waiting;
                let name = targets
                    .get(*i)
                    .and_then(|ep| self.settings.endpoints.get(*ep))
                    .map(ToString::to_string)
                    .unwrap_or_default();
                errors.push(format!("{name}: no answer within the timeout ({phase})"));
            }
        }
        Err(CallError {
            sent,
            why: if errors.is_empty() {
                "no endpoint".to_string()
            } else {
                errors.join("; ")
            },
        })
    }

    fn range_body(&self, id: &PublicId) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(json!({ "key": self.key(id) }).to_string().into_bytes())
    }

    /// Step 1: the first member that answers (authenticated if asked).
    fn contact(&mut self, id: &PublicId) -> Result<Option<Value>, SharedError> {
        if self.contact.is_some() {
            return Ok(None);
        }
        let all: Vec<usize> = (0..self.settings.endpoints.len()).collect();
        let unreachable = |e: CallError| SharedError::Unreachable(e.why);
        match &self.settings.login {
            Some(login) => {
                let username = &login.username;
                let pw = login.password.expose_str().ok_or_else(|| {
                    SharedError::Unreachable("counters.password is not UTF-8".into())
                })?;
                // Serialized straight from borrowed strings into a wiped
                // buffer: no unwiped `serde_json::Value` copy of the
                // password.
                #[derive(serde::Serialize)]
                struct Auth<'a> {
                    name: &'a str,
                    password: &'a str,
                }
                let mut body = Zeroizing::new(Vec::with_capacity(username.len() + pw.len() + 64));
                serde_json::to_writer(
                    &mut *body,
                    &Auth {
                        name: username,
                        password: pw,
                    },
                )
                .map_err(|e| SharedError::Unreachable(format!("authenticate request: {e}")))?;
                let (ep, v) = self
                    .call(&all, "/v3/auth/authenticate", &body)
                    .map_err(unreachable)?;
                let token = v
                    .get("token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty() && t.len() < 4096)
                    .ok_or_else(|| SharedError::Unreachable("no token in the reply".into()))?;
                self.contact = Some(Contact {
                    endpoint: ep,
                    token: Some(Zeroizing::new(token.to_string())),
                });
                Ok(None)
            }
            None => {
                let body = self.range_body(id);
                let (ep, v) = self
                    .call(&all, "/v3/kv/range", &body)
                    .map_err(unreachable)?;
                self.contact = Some(Contact {
                    endpoint: ep,
                    token: None,
                });
                Ok(Some(v))
            }
        }
    }

    fn chosen(&self) -> Vec<usize> {
        self.contact
            .as_ref()
            .map(|c| c.endpoint)
            .into_iter()
            .collect()
    }

    /// The stored value in a range reply.
    fn stored(v: &Value) -> Result<Option<Counter>, String> {
        let Some(kvs) = v.get("kvs").and_then(Value::as_array) else {
            return Ok(None);
        };
        let Some(kv) = kvs.first() else {
            return Ok(None);
        };
        let raw = kv
            .get("value")
            .and_then(Value::as_str)
            .and_then(|s| B64.decode(s).ok())
            .unwrap_or_default();
        decode(&raw)
            .map(Some)
            .ok_or_else(|| "the stored value is not a counter".to_string())
    }

    /// The conditional write alone, on the member already contacted.
    fn txn(&self, id: &PublicId, new: Counter) -> Result<Advance, SharedError> {
        let k = self.key(id);
        let val = B64.encode(encode(new));
        let put = json!({ "request_put": { "key": k, "value": val } });
        let body = json!({
            "compare": [{ "key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
            "success": [put],
            "failure": [{ "request_txn": {
                "compare": [{ "key": k, "target": "VALUE", "result": "LESS", "value": val }],
                "success": [put],
                "failure": [{ "request_range": { "key": k } }]
            }}]
        });
        let body = Zeroizing::new(body.to_string().into_bytes());
        let (_, v) = self
            .call(&self.chosen(), "/v3/kv/txn", &body)
            .map_err(|e| {
                if e.sent {
                    SharedError::Unknown(e.why)
                } else {
                    SharedError::Unreachable(e.why)
                }
            })?;
        let field = |v: &Value, snake: &str, camel: &str| -> Option<Value> {
            v.get(snake).or_else(|| v.get(camel)).cloned()
        };
        if v.get("succeeded").and_then(Value::as_bool) == Some(true) {
            return Ok(Advance::Advanced);
        }
        let inner = v
            .get("responses")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| field(r, "response_txn", "responseTxn"))
            .ok_or_else(|| SharedError::Unknown("unexpected txn reply".into()))?;
        if inner.get("succeeded").and_then(Value::as_bool) == Some(true) {
            return Ok(Advance::Advanced);
        }
        let range = inner
            .get("responses")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| field(r, "response_range", "responseRange"))
            .ok_or_else(|| SharedError::Unknown("unexpected txn reply".into()))?;
        match Self::stored(&range) {
            Ok(Some(c)) => Ok(Advance::Stale(c)),
            Ok(None) => Err(SharedError::Unknown(
                "compare failed but the key is absent".into(),
            )),
            Err(e) => Err(SharedError::Unknown(e)),
        }
    }

    /// Pushes a journaled value (max-merge): done when stored or stale.
    ///
    /// # Errors
    /// As [`Counters::advance`].
    pub fn push(&mut self, id: &PublicId, c: Counter) -> Result<Advance, SharedError> {
        self.contact(id)?;
        self.txn(id, c)
    }

    /// Sets the stored value to `c` unconditionally (`ykmap counter reset`).
    ///
    /// # Errors
    /// As [`Counters::advance`].
    pub fn put(&mut self, id: &PublicId, c: Counter) -> Result<(), SharedError> {
        self.contact(id)?;
        let body = json!({ "key": self.key(id), "value": B64.encode(encode(c)) });
        let body = Zeroizing::new(body.to_string().into_bytes());
        self.call(&self.chosen(), "/v3/kv/put", &body)
            .map(|_| ())
            .map_err(|e| SharedError::Unknown(e.why))
    }
}

impl EtcdStore<'_> {
    /// For `ykmap check --online`: contacts the store (authenticating if
    /// configured) and writes `<prefix>probe` (not a modhex id, so it is
    /// never a counter).
    ///
    /// # Errors
    /// The member that failed and why.
    pub fn probe(&mut self) -> Result<(), SharedError> {
        let all: Vec<usize> = (0..self.settings.endpoints.len()).collect();
        if self.settings.login.is_some() {
            let dummy =
                PublicId::from_modhex("").map_err(|_| SharedError::Unknown("internal".into()))?;
            self.contact(&dummy)?;
        }
        let targets = if self.contact.is_some() {
            self.chosen()
        } else {
            all
        };
        let key = B64.encode(format!("{}probe", self.settings.prefix));
        let body = json!({ "key": key, "value": B64.encode("ykmap check --online") });
        let body = Zeroizing::new(body.to_string().into_bytes());
        self.call(&targets, "/v3/kv/put", &body)
            .map(|_| ())
            .map_err(|e| SharedError::Unreachable(e.why))
    }
}

impl Counters for EtcdStore<'_> {
    fn advance(&mut self, id: &PublicId, new: Counter) -> Result<Advance, SharedError> {
        if let Some(stored) = self.get(id)?
            && stored >= new
        {
            return Ok(Advance::Stale(stored));
        }
        self.txn(id, new)
    }

    fn get(&mut self, id: &PublicId) -> Result<Option<Counter>, SharedError> {
        let reply = match self.contact(id)? {
            Some(v) => v,
            None => {
                let body = self.range_body(id);
                self.call(&self.chosen(), "/v3/kv/range", &body)
                    .map_err(|e| SharedError::Unreachable(e.why))?
                    .1
            }
        };
        Self::stored(&reply).map_err(SharedError::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_fixed_width_and_ordered() {
        let cs = [
            Counter::new(0, 0),
            Counter::new(0, 255),
            Counter::new(1, 0),
            Counter::new(12, 3),
            Counter::new(0x7fff, 255),
        ];
        for w in cs.windows(2) {
            let (a, b) = (encode(w[0]), encode(w[1]));
            assert_eq!(a.len(), b.len());
            assert!(a < b, "{a} !< {b}");
        }
        for c in cs {
            assert_eq!(decode(encode(c).as_bytes()), Some(c));
        }
        for bad in [
            "",
            "v1 1 2",
            "v1 00001 0002",
            "v2 00001 002",
            "v1 40000 000",
            "v1 00001 256",
        ] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }
}
