//! The user's keys from an LDAP directory, as pam_yubico's LDAP options
//! do it, without its defects: the user name is escaped in DNs (RFC 4514)
//! and never pasted into filter text (the filter is built as BER, see
//! [`proto::FilterTemplate`]); key ids match exactly; the bind password is
//! never logged, nor the user's password with `ldap.bind_as_user`; the search is bounded (size limit 2, a time limit, one
//! entry expected — several are an error); TLS through rustls with the
//! cloud client's trust rules; no plaintext to a non-loopback server
//! unless `ldap.allow_plaintext`.
//!
//! The client is our own ([`client`], [`proto`], [`ber`]): the `ldap3`
//! crate's sync API builds a tokio runtime per connection and resolves
//! names on tokio's blocking pool, a thread that can outlive the call.
//! Here every wait is a `poll(2)` in the calling thread under one
//! deadline, and names go through the killable resolver helper.
//!
//! Result rules (the same as for the mapping files):
//! - the entry answered with values of `yubi_attr` (after the prefix) that
//!   are public ids: those keys;
//! - with `ldap.bind_as_user`, the directory refusing the user's own
//!   password (invalidCredentials) is the user's failure, a rejection
//!   ([`Answer::Refused`], PAM_AUTH_ERR), not an outage;
//! - the entry answered without such values: "no key", positively
//!   established (PAM_IGNORE with `nullok`);
//! - the directory answering cleanly that no entry is the user's (search
//!   done, zero entries and no referral; or noSuchObject whose matched DN
//!   is the base DN itself): the user is unknown, PAM_USER_UNKNOWN, never
//!   PAM_IGNORE even with `nullok` — an ACL that hides entries from this
//!   bind gives the same answer for a user who exists and has a key;
//! - anything else — unreachable, slow, TLS or bind failure, an error
//!   result, several entries, values with the prefix that are not public
//!   ids and no valid one — is unavailable, never "no key".

pub mod ber;
pub mod client;
pub mod proto;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use yubiotp_core::PublicId;

use crate::fs_policy::{self, FilePolicy, Owner};
use crate::mapping::KeyLookup;
use crate::net::tls;
use crate::secret::SecretBytes;
use client::Conn;
use proto::{FilterTemplate, Response, Scope, Search};

/// Default `ldap.connection_timeout`, seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;

/// One server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUri {
    /// `ldaps://` (TLS from the first byte).
    pub ldaps: bool,
    /// Host name or IP literal (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl LdapUri {
    /// Parses `ldap://host[:port][/]` or `ldaps://…` (`[v6]` in brackets).
    /// A DN, attributes or extensions in the URI are refused (use the
    /// options).
    ///
    /// # Errors
    /// A short reason.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ldaps, rest) = if let Some(r) = s.strip_prefix("ldaps://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("ldap://") {
            (false, r)
        } else {
            return Err("must start with ldap:// or ldaps://".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '@', '#']) || rest.is_empty() {
            return Err("must be ldap[s]://host[:port] (no DN or query)".into());
        }
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or("unclosed '['")?;
            (h, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or("bad port")?,
            None if ldaps => 636,
            None => 389,
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("bad host".into());
        }
        Ok(Self {
            ldaps,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl core::fmt::Display for LdapUri {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let scheme = if self.ldaps { "ldaps" } else { "ldap" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// How the module binds.
#[derive(Debug, Clone)]
pub enum Bind {
    /// No bind (anonymous).
    Anonymous,
    /// A simple bind as `dn` (the password is never logged).
    Simple {
        /// The bind DN.
        dn: String,
        /// The password (from the 0600 config file only).
        password: SecretBytes,
    },
    /// pam_yubico 2.27's `ldap_bind_as_user`: a simple bind as
    /// `user_attr=USER,basedn` (the name RFC 4514-escaped) with the user's
    /// own password, which the caller passes to [`query`] (never logged).
    AsUser,
}

/// The LDAP mapping settings, checked as a whole.
#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// Servers, tried in order within one deadline.
    pub uris: Vec<LdapUri>,
    /// The base DN (`ldapdn`).
    pub basedn: String,
    /// With `basedn` and no filter: the user's DN is `user_attr=USER,basedn`.
    pub user_attr: Option<String>,
    /// The attribute holding public ids.
    pub yubi_attr: String,
    /// Only values starting with this count; the rest is the id.
    pub yubi_attr_prefix: Option<String>,
    /// A subtree search from `basedn` with this filter (`%u` = the user).
    pub filter: Option<FilterTemplate>,
    /// How to bind.
    pub bind: Bind,
    /// Extra trust anchors (root-owned PEM).
    pub cacertfile: Option<PathBuf>,
    /// Client certificate chain and key (PEM; the key root-owned 0600).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// StartTLS on `ldap://` URIs.
    pub starttls: bool,
    /// Allow plaintext to non-loopback servers.
    pub allow_plaintext: bool,
    /// The deadline of the LDAP step.
    pub timeout: Duration,
    /// The resolver helper (`cloud.resolver`).
    pub resolver: PathBuf,
}

/// The user's entry as the directory returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The server that answered.
    pub server: String,
    /// The entry's DN.
    pub dn: String,
    /// The values of `yubi_attr`.
    pub values: Vec<Vec<u8>>,
}

/// A clean answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The user's entry.
    Entry(Found),
    /// The directory says there is no entry for the user (why).
    NoEntry(String),
    /// [`Bind::AsUser`]: the directory refused the user's own password
    /// (invalidCredentials): a definitive "no", the other servers are not
    /// asked (why, without the password).
    Refused(String),
}

fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

impl LdapSettings {
    /// `user_attr=USER,basedn`, the user name escaped per RFC 4514: the
    /// DN of the base-object search and of [`Bind::AsUser`]. `None`
    /// without `user_attr`.
    #[must_use]
    pub fn user_dn(&self, user: &str) -> Option<String> {
        self.user_attr
            .as_ref()
            .map(|attr| format!("{attr}={},{}", proto::escape_dn_value(user), self.basedn))
    }

    /// How the module binds, in words (logs, ykmap); never a password.
    #[must_use]
    pub fn describe_bind(&self, user: &str) -> String {
        match &self.bind {
            Bind::Anonymous => "anonymous (no bind)".to_string(),
            Bind::Simple { dn, .. } => format!("as {dn:?} with ldap.bind_password"),
            Bind::AsUser => format!(
                "as the user, {:?}, with the user's own password (PAM_AUTHTOK)",
                self.user_dn(user).unwrap_or_default()
            ),
        }
    }

    /// The search for `user`: (base, scope, filter).
    #[must_use]
    pub fn search_for(&self, user: &str) -> (String, Scope, proto::Filter) {
        match (&self.filter, self.user_dn(user)) {
            (Some(f), _) => (self.basedn.clone(), Scope::Sub, f.build(user)),
            (None, Some(dn)) => (
                dn,
                Scope::Base,
                proto::Filter::Present("objectClass".into()),
            ),
            // resolve() refuses this combination.
            (None, None) => (
                self.basedn.clone(),
                Scope::Base,
                proto::Filter::Present("objectClass".into()),
            ),
        }
    }

    /// A one-line description of the search for `user` (logs, ykmap).
    #[must_use]
    pub fn describe(&self, user: &str) -> String {
        let (base, scope, filter) = self.search_for(user);
        format!(
            "base {base:?} scope {} filter {} attribute {}",
            match scope {
                Scope::Base => "base",
                Scope::One => "one",
                Scope::Sub => "sub",
            },
            proto::filter_text(&filter),
            self.yubi_attr
        )
    }

    fn tls_config(&self) -> Result<Arc<ClientConfig>, String> {
        let (roots, report): (RootCertStore, _) = tls::load_roots(
            Path::new(tls::SYSTEM_ROOTS),
            self.cacertfile.as_deref(),
            None,
        );
        if let Some(p) = report.problems.first() {
            return Err(format!("ldap.{p}"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots);
        let mut cfg = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let (chain, key) = load_client_cert(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("ldap.clientcertfile: {e}"))?
            }
        };
        cfg.enable_sni = true;
        cfg.key_log = Arc::new(rustls::NoKeyLog);
        Ok(Arc::new(cfg))
    }
}

fn load_client_cert(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let public = FilePolicy {
        owner: Owner::Root,
        forbidden_mode: 0o022,
        max_size: 1 << 20,
    };
    let secret = FilePolicy {
        owner: Owner::Root,
        forbidden_mode: 0o077,
        max_size: 1 << 20,
    };
    let pem =
        fs_policy::read_checked(cert, &public).map_err(|e| format!("ldap.clientcertfile {e}"))?;
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err("ldap.clientcertfile: no certificate found".into());
    }
    let pem =
        fs_policy::read_checked(key, &secret).map_err(|e| format!("ldap.clientkeyfile {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| "ldap.clientkeyfile: no private key found".to_string())?;
    Ok((chain, key))
}

/// Asks the directory for `user`'s entry: each URI in order, all within
/// one deadline (each gets an equal share of what is left).
///
/// `password` is the user's own password for [`Bind::AsUser`] (ignored
/// otherwise). With [`Bind::AsUser`] and no password the search runs
/// anonymously: only `ykmap`'s checks do that (and say so); the module
/// never asks without the password ([`LdapSource`]). An empty password is
/// refused (a simple bind with an empty password is an unauthenticated,
/// i.e. anonymous, bind: RFC 4513 §5.1.2).
///
/// # Errors
/// Why no server gave a clean answer (every server's reason).
pub fn query(
    s: &LdapSettings,
    user: &str,
    password: Option<&SecretBytes>,
) -> Result<Answer, String> {
    if matches!(s.bind, Bind::AsUser) && password.is_some_and(SecretBytes::is_empty) {
        return Err("LDAP: ldap.bind_as_user: the user's password is empty".into());
    }
    let deadline = Instant::now() + s.timeout;
    let tls = if s.starttls || s.uris.iter().any(|u| u.ldaps) {
        Some(s.tls_config()?)
    } else {
        None
    };
    let mut reasons = Vec::new();
    for (n, uri) in s.uris.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            reasons.push(format!("{uri}: not tried (deadline)"));
            continue;
        }
        let share = u32::try_from(s.uris.len() - n).unwrap_or(1).max(1);
        let until = Instant::now() + left / share;
        match query_one(s, uri, tls.as_ref(), user, password, until) {
            Ok(a) => return Ok(a),
            Err(e) => reasons.push(format!("{uri}: {e}")),
        }
    }
    Err(format!("LDAP: {}", reasons.join("; ")))
}

const PLAINTEXT_REFUSED: &str = "refusing plaintext LDAP to a non-loopback server, not connecting (use ldaps://, ldap.starttls, or set ldap.allow_plaintext)";

fn query_one(
    s: &LdapSettings,
    uri: &LdapUri,
    tls: Option<&Arc<ClientConfig>>,
    user: &str,
    password: Option<&SecretBytes>,
    deadline: Instant,
) -> Result<Answer, String> {
    let mut addrs = client::resolve(&uri.host, uri.port, &s.resolver, deadline)?;
    if !(uri.ldaps || s.starttls || s.allow_plaintext) {
        // Decided before any connection: no plaintext byte (bind DN,
        // password, user name) ever leaves for another host.
        addrs.retain(|a| a.ip().is_loopback());
        if addrs.is_empty() {
            return Err(PLAINTEXT_REFUSED.into());
        }
    }
    let mut c = Conn::open(&addrs, deadline)?;
    let res = converse(s, uri, tls, user, password, deadline, &mut c);
    c.unbind();
    res
}

fn expect_id(got: i64, want: i32) -> Result<(), String> {
    if got == i64::from(want) {
        Ok(())
    } else if got == 0 {
        Err("the server closed the session (notice of disconnection)".into())
    } else {
        Err("answer to another message".into())
    }
}

fn result_error(op: &str, r: &proto::LdapResult) -> String {
    let mut m = format!("{op}: {} ({})", proto::code_name(r.code), r.code);
    if !r.message.is_empty() {
        m.push_str(&format!(": {}", r.message));
    }
    m
}

fn converse(
    s: &LdapSettings,
    uri: &LdapUri,
    tls: Option<&Arc<ClientConfig>>,
    user: &str,
    password: Option<&SecretBytes>,
    deadline: Instant,
    c: &mut Conn,
) -> Result<Answer, String> {
    let need_tls = uri.ldaps || s.starttls;
    if need_tls {
        let cfg = tls.ok_or("TLS settings missing")?.clone();
        if !uri.ldaps {
            let id = c.id();
            c.send(&proto::starttls_request(id))?;
            let (got, r) = c.recv()?;
            expect_id(got, id)?;
            match r {
                Response::Extended(r) if r.code == 0 => {}
                Response::Extended(r) => return Err(result_error("StartTLS", &r)),
                _ => return Err("StartTLS: unexpected answer".into()),
            }
        }
        c.start_tls(cfg, &uri.host)?;
    } else if !c.peer.ip().is_loopback() && !s.allow_plaintext {
        // query_one connects to loopback addresses only; kept as a guard.
        return Err(PLAINTEXT_REFUSED.into());
    }
    let creds = match (&s.bind, password) {
        (Bind::Simple { dn, password }, _) => Some((dn.clone(), password)),
        (Bind::AsUser, Some(pw)) => Some((
            s.user_dn(user)
                .ok_or("ldap.bind_as_user without ldap.user_attr")?,
            pw,
        )),
        // ykmap's anonymous probe; the module never gets here (LdapSource).
        (Bind::AsUser, None) | (Bind::Anonymous, _) => None,
    };
    if let Some((dn, password)) = creds {
        if password.is_empty() {
            return Err("bind: empty password (that would be an anonymous bind)".into());
        }
        let id = c.id();
        let msg = zeroize::Zeroizing::new(proto::bind_request(id, &dn, password.expose()));
        c.send(&msg)?;
        drop(msg);
        let (got, r) = c.recv()?;
        expect_id(got, id)?;
        match r {
            Response::Bind(r) if r.code == 0 => {}
            // The user's own password, refused: the user's failure. The
            // message is the server's; it never holds the password.
            Response::Bind(r) if r.code == 49 && matches!(s.bind, Bind::AsUser) => {
                return Ok(Answer::Refused(format!(
                    "{uri}: {}",
                    result_error("bind as the user", &r)
                )));
            }
            Response::Bind(r) => return Err(result_error("bind", &r)),
            _ => return Err("bind: unexpected answer".into()),
        }
    }
    let (base, scope, filter) = s.search_for(user);
    let left = deadline.saturating_duration_since(Instant::now());
    let time_limit = i32::try_from(left.as_secs().saturating_add(1)).unwrap_or(i32::MAX);
    let attrs = [s.yubi_attr.as_str()];
    let id = c.id();
    c.send(&proto::search_request(
        id,
        &Search {
            base: &base,
            scope,
            filter: &filter,
            attrs: &attrs,
            size_limit: 2,
            time_limit,
        },
    ))?;
    let mut entries = Vec::new();
    let mut referral = false;
    for _ in 0..16 {
        let (got, r) = c.recv()?;
        expect_id(got, id)?;
        match r {
            Response::Entry(e) => {
                entries.push(e);
                if entries.len() > 1 {
                    return Err("several entries match the user (ambiguous)".into());
                }
            }
            Response::Reference => referral = true,
            Response::Done(r) if r.code == 0 => {
                return match entries.pop() {
                    Some(e) => Ok(Answer::Entry(Found {
                        server: uri.to_string(),
                        values: e
                            .values(&s.yubi_attr)
                            .into_iter()
                            .map(<[u8]>::to_vec)
                            .collect(),
                        dn: e.dn,
                    })),
                    None if referral => Err(
                        "no entry here, but the directory refers elsewhere (referrals are not \
                         followed)"
                            .into(),
                    ),
                    None => Ok(Answer::NoEntry("no entry matches the user".into())),
                };
            }
            Response::Done(r)
                if r.code == 32
                    && scope == Scope::Base
                    && normalize_dn(&r.matched_dn) == normalize_dn(&s.basedn) =>
            {
                return Ok(Answer::NoEntry("the user's entry does not exist".into()));
            }
            Response::Done(r) if r.code == 4 => {
                return Err("several entries match the user (ambiguous)".into());
            }
            Response::Done(r) => return Err(result_error("search", &r)),
            _ => return Err("search: unexpected answer".into()),
        }
    }
    Err("search: too many references".into())
}

/// What the entry's values say, by the file rules: valid ids (exact, of
/// `token_id_length` characters) after the prefix, or none with every
/// prefixed value valid, or a problem.
#[must_use]
pub fn keys_in(found: &Found, prefix: Option<&str>, token_id_length: usize) -> KeyLookup {
    let mut keys: Vec<PublicId> = Vec::new();
    let mut bad = 0usize;
    for v in &found.values {
        let Ok(text) = core::str::from_utf8(v) else {
            if prefix.is_none() {
                bad += 1;
            }
            continue;
        };
        let id = match prefix {
            Some(p) => match text.strip_prefix(p) {
                Some(rest) => rest,
                None => continue,
            },
            None => text,
        };
        match PublicId::from_modhex(id.trim()) {
            Ok(k) if id.trim().len() == token_id_length => {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            _ => bad += 1,
        }
    }
    if !keys.is_empty() {
        KeyLookup::Keys(keys)
    } else if bad > 0 {
        KeyLookup::Unavailable(format!(
            "LDAP entry {:?}: {bad} value(s) of the key attribute are not public ids of {token_id_length} characters",
            found.dn
        ))
    } else {
        KeyLookup::NoKeys(format!("LDAP entry {:?} has no key", found.dn))
    }
}

/// The LDAP mapping source.
#[derive(Debug)]
pub struct LdapSource<'a> {
    /// Its settings.
    pub settings: &'a LdapSettings,
    /// The user's own password, for [`Bind::AsUser`] (`None` otherwise).
    pub password: Option<&'a SecretBytes>,
}

/// Why [`Bind::AsUser`] cannot work without the password (logged).
pub const NEEDS_PASSWORD: &str = "ldap.bind_as_user needs the user's password, and PAM_AUTHTOK holds none: type it in front of the OTP at the prompt, or stack the password module first (try_first_pass/use_first_pass)";

impl crate::mapping::MappingSource for LdapSource<'_> {
    /// The directory is the authority, as the central file is for
    /// virtual users: no passwd lookup.
    fn keys_for(&self, user: &str, token_id_length: usize) -> KeyLookup {
        if matches!(self.settings.bind, Bind::AsUser)
            && self.password.is_none_or(SecretBytes::is_empty)
        {
            // Never an anonymous search in its place: an ACL that hides
            // the key attribute from anonymous readers would read as "no
            // key", and nullok would let the user through.
            return KeyLookup::Unavailable(NEEDS_PASSWORD.into());
        }
        match query(self.settings, user, self.password) {
            Ok(Answer::Entry(f)) => keys_in(
                &f,
                self.settings.yubi_attr_prefix.as_deref(),
                token_id_length,
            ),
            Ok(Answer::NoEntry(why)) => KeyLookup::UnknownUser(format!("LDAP: {why}")),
            Ok(Answer::Refused(why)) => KeyLookup::Refused(format!("LDAP: {why}")),
            Err(e) => KeyLookup::Unavailable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            LdapUri::parse("ldap://Dir.example:1389/").unwrap(),
            LdapUri {
                ldaps: false,
                host: "dir.example".into(),
                port: 1389
            }
        );
        assert_eq!(LdapUri::parse("ldaps://h").unwrap().port, 636);
        assert_eq!(LdapUri::parse("ldap://[::1]:5").unwrap().host, "::1");
        for bad in [
            "http://h",
            "ldap://",
            "ldap://h/dc=x",
            "ldap://h:0",
            "ldapi://x",
            "ldap://a b",
        ] {
            assert!(LdapUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_follow_the_file_rules() {
        let f = |vals: &[&str]| Found {
            server: String::new(),
            dn: "uid=a".into(),
            values: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
        };
        assert!(
            matches!(keys_in(&f(&["ccccccdbjrgf"]), None, 12), KeyLookup::Keys(k) if k.len() == 1)
        );
        // Exact: a longer value is not the key (pam_yubico compares a prefix).
        assert!(matches!(
            keys_in(&f(&["ccccccdbjrgfxx"]), None, 12),
            KeyLookup::Unavailable(_)
        ));
        assert!(matches!(keys_in(&f(&[]), None, 12), KeyLookup::NoKeys(_)));
        assert!(matches!(
            keys_in(&f(&["other text", "yubikey:ccccccdbjrgf"]), Some("yubikey:"), 12),
            KeyLookup::Keys(k) if k.len() == 1
        ));
        assert!(matches!(
            keys_in(&f(&["other text"]), Some("yubikey:"), 12),
            KeyLookup::NoKeys(_)
        ));
        assert!(matches!(
            keys_in(&f(&["yubikey:zz"]), Some("yubikey:"), 12),
            KeyLookup::Unavailable(_)
        ));
    }

    fn resolved(toml: &str, args: &[&str]) -> Result<crate::config::Settings, String> {
        let file = crate::config::parse_file(toml)?;
        let args = crate::config::parse_args(args).map_err(|e| e.to_string())?;
        crate::config::resolve(Some(&file), &args).map_err(|e| e.to_string())
    }

    #[test]
    fn ldap_table_resolves_with_pam_yubico_names_and_rules() {
        let base = "mode = \"local\"\n[ldap]\nbasedn = \"dc=x\"\nuser_attr = \"uid\"\nyubi_attr = \"yubiKeyId\"\n";
        let s = resolved(&format!("{base}uri = \"ldaps://a\"\n"), &[]).unwrap();
        let l = s.ldap.unwrap();
        assert_eq!(l.uris.len(), 1);
        assert!(matches!(l.bind, Bind::Anonymous));
        let s = resolved(
            &format!("{base}uri = [\"ldap://a\", \"ldaps://b:1636\"]\nbind_user = \"cn=r\"\nbind_password = \"pw-Secret-1\"\n"),
            &[],
        )
        .unwrap();
        let l = s.ldap.unwrap();
        assert_eq!(l.uris.len(), 2);
        assert!(
            !format!("{l:?}").contains("pw-Secret-1"),
            "Debug hides the password"
        );
        // The PAM line: pam_yubico's names, ldapserver= is a host.
        let s = resolved(base, &["ldapserver=dir.example", "ldap_starttls"]).unwrap();
        let l = s.ldap.unwrap();
        assert_eq!(l.uris[0].to_string(), "ldap://dir.example:389");
        assert!(l.starttls);
        for (toml, args, needle) in [
            (format!("{base}uri = \"ldap://a\"\nbind_user = \"cn=r\"\n"), vec![], "bind_password"),
            ("mode = \"local\"\n[ldap]\nuri = \"ldap://a\"\nbasedn = \"dc=x\"\nuser_attr = \"uid\"\n".to_string(), vec![], "yubi_attr"),
            (format!("{base}uri = \"ldap://a\"\nbind_as_user = true\nbind_user = \"cn=r\"\nbind_password = \"pw-Secret-2\"\n"), vec![], "exclude each other"),
            ("mode = \"local\"\n[ldap]\nuri = \"ldap://a\"\nbasedn = \"dc=x\"\nfilter = \"(uid=%u)\"\nyubi_attr = \"k\"\nbind_as_user = true\n".to_string(), vec![], "needs ldap.user_attr"),
            ("mode = \"local\"\n[ldap]\nuri = \"ldap://a\"\nbasedn = \"dc=x\"\nfilter = \"(uid=%u)\"\nyubi_attr = \"k\"\n".to_string(), vec!["ldap_bind_as_user"], "needs ldap.user_attr"),
            (base.to_string(), vec!["ldap_uri=ldap://a", "ldap_bind_password=pw-Secret-2"], "never accepted"),
            (base.to_string(), vec!["ldap_uri=ldap://a", "ldap_clientkeyfile=/k"], "never accepted"),
            (base.to_string(), vec!["ldap_uri=http://a"], "ldap://"),
        ] {
            let e = resolved(&toml, &args).unwrap_err();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("pw-Secret-2"), "{e}");
        }
        // bind_as_user: in the file or on the PAM line (pam_yubico's flag).
        for (toml, args) in [
            (
                format!("{base}uri = \"ldap://a\"\nbind_as_user = true\n"),
                vec![],
            ),
            (
                format!("{base}uri = \"ldap://a\"\n"),
                vec!["ldap_bind_as_user"],
            ),
        ] {
            let l = resolved(&toml, &args).unwrap().ldap.unwrap();
            assert!(matches!(l.bind, Bind::AsUser));
            assert_eq!(l.user_dn("a+b").unwrap(), "uid=a\\+b,dc=x");
            assert!(l.describe_bind("u").contains("\"uid=u,dc=x\""));
        }
        // LDAP options without a server: an error, not the files silently.
        assert!(resolved(base, &[]).unwrap_err().contains("ldap.uri"));
        assert!(resolved("mode = \"local\"\n", &[]).unwrap().ldap.is_none());
    }

    /// Settings of one server (`uri`, or none), `uid` and `yubiKeyId`, no
    /// TLS, the resolver unset.
    fn fixture(uri: Option<&str>, basedn: &str, bind: Bind, timeout_s: u64) -> LdapSettings {
        LdapSettings {
            uris: uri
                .map(|u| LdapUri::parse(u).unwrap())
                .into_iter()
                .collect(),
            basedn: basedn.into(),
            user_attr: Some("uid".into()),
            yubi_attr: "yubiKeyId".into(),
            yubi_attr_prefix: None,
            filter: None,
            bind,
            cacertfile: None,
            client_cert: None,
            starttls: false,
            allow_plaintext: false,
            timeout: Duration::from_secs(timeout_s),
            resolver: PathBuf::new(),
        }
    }

    #[test]
    fn user_dn_is_escaped() {
        let s = fixture(None, "ou=people,dc=x", Bind::Anonymous, 1);
        assert_eq!(s.search_for("a,b=c").0, "uid=a\\,b\\=c,ou=people,dc=x");
        assert!(s.describe("x").contains("scope base"));
    }

    #[test]
    fn bind_as_user_never_asks_without_the_password() {
        use crate::mapping::MappingSource as _;
        let s = fixture(
            Some("ldap://127.0.0.1:1"),
            "ou=people,dc=x",
            Bind::AsUser,
            1,
        );
        let empty = SecretBytes::new(Vec::new());
        for password in [None, Some(&empty)] {
            let src = LdapSource {
                settings: &s,
                password,
            };
            assert!(
                matches!(src.keys_for("alice", 12), KeyLookup::Unavailable(ref r) if r.contains("needs the user's password")),
                "{password:?}"
            );
        }
        assert!(
            query(&s, "alice", Some(&empty))
                .unwrap_err()
                .contains("empty")
        );
    }

    #[test]
    fn plaintext_to_a_remote_server_is_refused_before_connecting() {
        // TEST-NET-1: a connect would hang until the deadline.
        let s = fixture(Some("ldap://192.0.2.1"), "dc=x", Bind::Anonymous, 30);
        let e = query(&s, "alice", None).unwrap_err();
        assert!(
            e.contains("refusing plaintext") && e.contains("not connecting"),
            "{e}"
        );
    }
}
