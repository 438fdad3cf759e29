//! Settings: built-in defaults, then the TOML file, then the module
//! arguments (last wins), resolved once into the typed [`Settings`].
//!
//! Every option is defined once, in the table of [`options`]: its argument
//! names, TOML key, parser, default and doc. [`parse_args`] and
//! [`parse_file`] turn each source into a [`Layer`] of already-validated
//! typed values; [`resolve`] stacks them (defaults < file < arguments) and
//! checks what needs several options together (the cloud half), so that
//! the backends receive typed values they need not check again.
//!
//! **Adding an option**: one entry in the `options!` table in
//! `config/options.rs` (see that module's doc for the fields), its entries
//! in man/pam_yubiotp.8.md and/or man/yubiotp.toml.5.md (the `docs` test
//! holds the pages to the table), and reading it from [`Values`] where
//! `resolve` builds [`Settings`].
//!
//! Every configuration error names the item and never a secret value; an
//! unknown argument or key is named only by a prefix that may be an option
//! name ([`options::describe_unknown`]).

mod args;
pub mod compat;
mod file;
pub mod options;
mod url;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::parse_args;
pub use file::parse_file;
pub use options::{Layer, OPTIONS, Values, known_args, known_keys};
pub use url::{HttpProxy, ServerUrl};

use crate::fs_policy::{self, FilePolicy, OpenError, Owner};
use crate::secret::ApiKey;

/// Default TOML file, skipped when absent.
pub const DEFAULT_CONFIG: &str = "/etc/yubiotp/yubiotp.toml";
/// Default key store.
pub const DEFAULT_KEYSTORE: &str = "/etc/yubiotp/keys";
/// Default counter state directory.
pub const DEFAULT_STATEDIR: &str = "/var/lib/yubiotp";
/// YubiCloud's one validation endpoint.
pub const DEFAULT_URL: &str = "https://api.yubico.com/wsapi/2.0/verify";
/// Default prompt.
pub const DEFAULT_PROMPT: &str = "YubiKey OTP: ";
/// Default `timeout`, seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
/// Longest accepted `timeout`, seconds.
pub const MAX_TIMEOUT_SECS: u64 = 600;

/// How OTPs are validated (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Validation Protocol 2.0 servers only.
    Cloud,
    /// AES key and counters on this host only.
    Local,
    /// Cloud first; local when no server answers definitively.
    Hybrid,
}

impl Mode {
    /// Parses `cloud`, `client` (alias), `local`, `hybrid`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cloud" | "client" => Some(Self::Cloud),
            "local" => Some(Self::Local),
            "hybrid" => Some(Self::Hybrid),
            _ => None,
        }
    }

    /// The canonical name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Cloud => "cloud",
            Self::Local => "local",
            Self::Hybrid => "hybrid",
        }
    }

    /// True for modes that ask validation servers.
    #[must_use]
    pub fn uses_cloud(self) -> bool {
        matches!(self, Self::Cloud | Self::Hybrid)
    }

    /// True for modes that decrypt on the host.
    #[must_use]
    pub fn uses_local(self) -> bool {
        matches!(self, Self::Local | Self::Hybrid)
    }
}

/// Where the OTP comes from (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstPass {
    /// Always prompt (a long answer is read as password+OTP).
    #[default]
    Prompt,
    /// Use an OTP at the end of PAM_AUTHTOK if there is one, else prompt.
    Try,
    /// Use an OTP at the end of PAM_AUTHTOK, never prompt.
    Use,
}

/// The overall deadline of the cloud step: above zero, at most
/// [`MAX_TIMEOUT_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(Duration);

impl Timeout {
    /// `d` when it is above zero and at most [`MAX_TIMEOUT_SECS`].
    #[must_use]
    pub fn new(d: Duration) -> Option<Self> {
        (!d.is_zero() && d <= Duration::from_secs(MAX_TIMEOUT_SECS)).then_some(Self(d))
    }

    /// The deadline.
    #[must_use]
    pub fn get(self) -> Duration {
        self.0
    }
}

impl Default for Timeout {
    fn default() -> Self {
        Self(Duration::from_secs(DEFAULT_TIMEOUT_SECS))
    }
}

/// How answers are authenticated.
#[derive(Debug, Clone)]
pub enum CloudAuth {
    /// Requests are signed and answers must be, with this API key.
    Signed(ApiKey),
    /// `insecure_unsigned`: no key, answers trusted on TLS alone (every URL
    /// is https).
    Unsigned,
}

/// Cloud validation settings, checked as a whole: a client id, at least one
/// URL, and https only when there is no API key.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    id: u64,
    auth: CloudAuth,
    urls: Vec<ServerUrl>,
    /// Overall deadline of the cloud step.
    pub timeout: Timeout,
    /// Extra trust anchor file (PEM).
    pub cafile: Option<PathBuf>,
    /// Extra trust anchor directory (PEM files).
    pub capath: Option<PathBuf>,
    /// HTTP proxy.
    pub proxy: Option<HttpProxy>,
    /// The resolver helper for names not in /etc/hosts (`cloud.resolver`,
    /// from the root-owned file only; default
    /// [`crate::net::resolve::DEFAULT_HELPER`]).
    pub resolver: PathBuf,
}

impl CloudSettings {
    /// Settings for client `id` asking `urls`, with the default timeout and
    /// no extra trust anchors or proxy.
    ///
    /// # Errors
    /// An empty URL list, a zero id, or an `http://` URL without a key.
    pub fn new(id: u64, auth: CloudAuth, urls: Vec<ServerUrl>) -> Result<Self, ConfigError> {
        if id == 0 {
            return Err(ConfigError::new("cloud.id: must be a positive integer"));
        }
        if urls.is_empty() {
            return Err(ConfigError::new("cloud.urls: must not be empty"));
        }
        if matches!(auth, CloudAuth::Unsigned) && urls.iter().any(|u| !u.https) {
            return Err(ConfigError::new(
                "cloud.urls: http:// URLs need cloud.key (answers must be signed)",
            ));
        }
        Ok(Self {
            id,
            auth,
            urls,
            timeout: Timeout::default(),
            cafile: None,
            capath: None,
            proxy: None,
            resolver: PathBuf::from(crate::net::resolve::DEFAULT_HELPER),
        })
    }

    /// Client id sent as `id=`.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How answers are authenticated.
    #[must_use]
    pub fn auth(&self) -> &CloudAuth {
        &self.auth
    }

    /// The API key, when answers are signed.
    #[must_use]
    pub fn key(&self) -> Option<&ApiKey> {
        match &self.auth {
            CloudAuth::Signed(k) => Some(k),
            CloudAuth::Unsigned => None,
        }
    }

    /// Endpoints, queried in parallel (never empty).
    #[must_use]
    pub fn urls(&self) -> &[ServerUrl] {
        &self.urls
    }

    /// The same settings asking only the `i`th URL.
    #[must_use]
    pub fn only_url(&self, i: usize) -> Option<Self> {
        let url = self.urls.get(i)?.clone();
        Some(Self {
            urls: vec![url],
            ..self.clone()
        })
    }
}

/// Where counters are shared between hosts (`counters.store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedStore {
    /// etcd v3 through its JSON gateway.
    Etcd,
}

/// What an unreachable shared store means (`counters.unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// PAM_AUTHINFO_UNAVAIL.
    Deny,
    /// Accept on the local counters alone, journal, push later.
    Local,
}

/// An etcd user and password: each attempt buys a token with them.
#[derive(Debug, Clone)]
pub struct EtcdLogin {
    /// The user.
    pub username: String,
    /// The password.
    pub password: crate::secret::SecretBytes,
}

/// A TLS client certificate and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain.
    pub certfile: PathBuf,
    /// The private key (root-only file).
    pub keyfile: PathBuf,
}

/// The `[counters]` table, resolved.
#[derive(Debug, Clone)]
pub struct SharedSettings {
    /// The store kind.
    pub store: SharedStore,
    /// The members, tried in order.
    pub endpoints: Vec<ServerUrl>,
    /// The key prefix.
    pub prefix: String,
    /// Extra trust anchor.
    pub cafile: Option<PathBuf>,
    /// The TLS client identity, if any.
    pub cert: Option<ClientCert>,
    /// The etcd user, if any (with a certificate too: etcd then goes by
    /// the token).
    pub login: Option<EtcdLogin>,
    /// The step's deadline.
    pub timeout: Timeout,
    /// What an unreachable store means.
    pub unavailable: Unavailable,
    /// The resolver helper (`cloud.resolver`).
    pub resolver: PathBuf,
}

/// Local validation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSettings {
    /// Key store path.
    pub keystore: PathBuf,
    /// Counter state directory.
    pub statedir: PathBuf,
}

/// The privileged verifier: where the module finds it, and the rate
/// limit it applies per caller uid (read from the file by the verifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// The helper a caller that is not root asks (`verifier=`).
    pub helper: PathBuf,
    /// Failures (each within `window` of the previous) before refusing.
    pub max_failures: u32,
    /// How long a failure is remembered; also the first lockout.
    pub window: Duration,
    /// Pause before answering each failure.
    pub failure_delay: Duration,
    /// The longest lockout.
    pub max_backoff: Duration,
    /// Root-only directory of the per-uid counts.
    pub ratelimit_dir: PathBuf,
}

/// Fully resolved, typed settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Validation mode.
    pub mode: Mode,
    /// Central mapping file; `None` means per-user files.
    pub authfile: Option<PathBuf>,
    /// Cloud half: `Some` exactly in the modes that use the cloud.
    pub cloud: Option<CloudSettings>,
    /// Local half.
    pub local: LocalSettings,
    /// Shared counters (`[counters]`), when `counters.store` is set.
    pub shared: Option<SharedSettings>,
    /// LDAP mapping: `Some` when `ldap.uri` is set (then the files are
    /// not read).
    pub ldap: Option<crate::ldap::LdapSettings>,
    /// Public id length in modhex characters.
    pub token_id_length: usize,
    /// Let users with no mapped key through (PAM_IGNORE).
    pub nullok: bool,
    /// Where the OTP comes from.
    pub first_pass: FirstPass,
    /// Verbose logging.
    pub debug: bool,
    /// The conversation prompt.
    pub prompt: String,
    /// `debug_file=`: an existing root-owned file that also gets every log
    /// line (opened by the session, never created).
    pub debug_file: Option<PathBuf>,
    /// The privileged verifier and its rate limit.
    pub verifier: VerifierSettings,
    /// Non-fatal remarks found while resolving (logged as warnings).
    pub warnings: Vec<String>,
}

/// What kind of configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A mistake in the arguments or the file: PAM_SERVICE_ERR.
    Invalid,
    /// The config file exists but this (unprivileged) caller may not read
    /// it: not a mistake in the file, so the session reports
    /// PAM_AUTHINFO_UNAVAIL.
    Unreadable,
}

/// A configuration error, logged naming the item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {message}")]
pub struct ConfigError {
    /// What is wrong, naming the item (never a secret value).
    pub message: String,
    /// Invalid or unreadable.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self {
            message: msg.into(),
            kind: ConfigErrorKind::Invalid,
        }
    }
}

fn shared_settings(v: &Values) -> Result<Option<SharedSettings>, ConfigError> {
    let Some(store) = v.counters_store else {
        let set = v.counters_endpoints.is_some()
            || v.counters_cafile.is_some()
            || v.counters_certfile.is_some()
            || v.counters_keyfile.is_some()
            || v.counters_username.is_some()
            || v.counters_password.is_some();
        if set {
            return Err(ConfigError::new(
                "the [counters] table needs counters.store".to_string(),
            ));
        }
        return Ok(None);
    };
    let Some(endpoints) = v.counters_endpoints.clone() else {
        return Err(ConfigError::new(
            "counters.store needs counters.endpoints".to_string(),
        ));
    };
    let cert = match (&v.counters_certfile, &v.counters_keyfile) {
        (None, None) => None,
        (Some(c), Some(k)) => Some(ClientCert {
            certfile: c.clone(),
            keyfile: k.clone(),
        }),
        _ => {
            return Err(ConfigError::new(
                "counters: give certfile and keyfile together".to_string(),
            ));
        }
    };
    let login = match (&v.counters_username, &v.counters_password) {
        (None, None) => None,
        (Some(u), Some(p)) => Some(EtcdLogin {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => {
            return Err(ConfigError::new(
                "counters: give username and password together".to_string(),
            ));
        }
    };
    Ok(Some(SharedSettings {
        store,
        endpoints,
        prefix: v.counters_prefix.clone(),
        cafile: v.counters_cafile.clone(),
        cert,
        login,
        timeout: v.counters_timeout,
        unavailable: v.counters_unavailable,
        resolver: v.resolver.clone(),
    }))
}

/// Resolves defaults ← `file` ← `args` into [`Settings`], checking that the
/// combination is usable for the chosen mode.
///
/// # Errors
/// [`ConfigError`] naming the first missing item or bad combination.
pub fn resolve(file: Option<&Layer>, args: &Layer) -> Result<Settings, ConfigError> {
    let mut warnings = Vec::new();
    if args.key.is_some() {
        warnings.push(
            "key= on the PAM line is readable by every local user; move it to the config file"
                .to_string(),
        );
    }
    if args.url.is_some() && args.urls.is_some() {
        return Err(ConfigError::new(
            "url= and urllist= both given: keep urllist= (url= is pam_yubico's older spelling)",
        ));
    }
    let mut v: Values = args
        .clone()
        .over(file.cloned().unwrap_or_default())
        .values();
    let ldap = ldap_settings(&mut v)?;
    if v.verbose_otp {
        warnings.push(
            "verbose_otp (pam_yubico) is ignored: the OTP is always read with echo off".to_string(),
        );
    }
    if v.always_prompt {
        warnings.push(
            "always_prompt (pam_yubico) is ignored: a user without a key is answered without a prompt".to_string(),
        );
    }
    let shared = shared_settings(&v)?;
    let debug_file = match v.debug_file {
        Some(options::DebugFile::File(p)) => Some(p),
        Some(options::DebugFile::Stdio(name)) => {
            warnings.push(format!(
                "debug_file={name} (pam_yubico) is ignored: the module logs to syslog only"
            ));
            None
        }
        None => None,
    };
    let urls = match v.url {
        Some(u) => vec![u],
        None => v.urls,
    };
    if v.token_id_length > 16 {
        warnings.push(format!(
            "token_id_length={} is above 16; most validation servers refuse such OTPs",
            v.token_id_length
        ));
    }
    let cloud = if v.mode.uses_cloud() {
        let Some(id) = v.id else {
            return Err(ConfigError::new(format!(
                "mode={} needs cloud.id (id=)",
                v.mode.name()
            )));
        };
        let auth = match (v.key, v.insecure_unsigned) {
            (Some(k), _) => CloudAuth::Signed(k),
            (None, true) => CloudAuth::Unsigned,
            (None, false) => {
                return Err(ConfigError::new(format!(
                    "mode={} needs cloud.key (the API key), or insecure_unsigned",
                    v.mode.name()
                )));
            }
        };
        let mut c = CloudSettings::new(id, auth, urls)?;
        c.timeout = v.timeout;
        c.cafile = v.cafile;
        c.capath = v.capath;
        c.proxy = v.proxy;
        c.resolver = v.resolver;
        Some(c)
    } else {
        None
    };
    Ok(Settings {
        ldap,
        mode: v.mode,
        authfile: v.authfile,
        cloud,
        local: LocalSettings {
            keystore: v.keystore,
            statedir: v.statedir,
        },
        shared,
        token_id_length: v.token_id_length,
        nullok: v.nullok,
        first_pass: v.first_pass,
        debug: v.debug,
        prompt: v.prompt,
        debug_file,
        verifier: VerifierSettings {
            helper: v.verifier,
            max_failures: v.max_failures,
            window: v.window,
            failure_delay: v.failure_delay,
            max_backoff: v.max_backoff,
            ratelimit_dir: v.ratelimit_dir,
        },
        warnings,
    })
}

/// The `[ldap]` half, checked as a whole (pam_yubico's rules: yubi_attr
/// and ldapdn always; user_attr or a filter to find the user).
fn ldap_settings(v: &mut Values) -> Result<Option<crate::ldap::LdapSettings>, ConfigError> {
    use crate::ldap::{Bind, LdapSettings};
    let Some(uris) = v.ldap_uris.take() else {
        // An LDAP option without a server would silently leave the files
        // as the mapping: a configuration error instead.
        let stray = v.ldap_basedn.is_some()
            || v.ldap_user_attr.is_some()
            || v.ldap_yubi_attr.is_some()
            || v.ldap_yubi_attr_prefix.is_some()
            || v.ldap_filter.is_some()
            || v.ldap_bind_user.is_some()
            || v.ldap_bind_password.is_some()
            || v.ldap_cacertfile.is_some()
            || v.ldap_clientcertfile.is_some()
            || v.ldap_clientkeyfile.is_some()
            || v.ldap_starttls
            || v.ldap_allow_plaintext
            || v.ldap_bind_as_user;
        if stray {
            return Err(ConfigError::new(
                "LDAP options are set but ldap.uri (ldap_uri=) is not: give the server, or remove them",
            ));
        }
        return Ok(None);
    };
    let need = |what: &str| ConfigError::new(format!("ldap.uri is set: {what}"));
    let basedn = v
        .ldap_basedn
        .take()
        .ok_or_else(|| need("ldap.basedn (ldapdn=) is required"))?;
    let yubi_attr = v
        .ldap_yubi_attr
        .take()
        .ok_or_else(|| need("ldap.yubi_attr (yubi_attr=) is required"))?;
    if v.ldap_user_attr.is_none() && v.ldap_filter.is_none() {
        return Err(need(
            "ldap.user_attr (user_attr=) or ldap.filter (ldap_filter=) is required",
        ));
    }
    if v.ldap_bind_as_user {
        if v.ldap_user_attr.is_none() {
            return Err(need(
                "ldap.bind_as_user (ldap_bind_as_user) needs ldap.user_attr (user_attr=): the bind DN is user_attr=USER,basedn",
            ));
        }
        if v.ldap_bind_user.is_some() || v.ldap_bind_password.is_some() {
            return Err(need(
                "ldap.bind_as_user (ldap_bind_as_user) and ldap.bind_user/ldap.bind_password exclude each other: bind as the user or as the service account, not both",
            ));
        }
    }
    let bind = match (v.ldap_bind_user.take(), v.ldap_bind_password.take()) {
        (None, None) if v.ldap_bind_as_user => Bind::AsUser,
        (None, None) => Bind::Anonymous,
        (Some(dn), Some(password)) => Bind::Simple { dn, password },
        (Some(_), None) => {
            return Err(need(
                "ldap.bind_user needs ldap.bind_password (in the 0600 config file)",
            ));
        }
        (None, Some(_)) => return Err(need("ldap.bind_password needs ldap.bind_user")),
    };
    let client_cert = match (v.ldap_clientcertfile.take(), v.ldap_clientkeyfile.take()) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((c, k)),
        _ => {
            return Err(need(
                "ldap.clientcertfile and ldap.clientkeyfile go together",
            ));
        }
    };
    Ok(Some(LdapSettings {
        uris,
        basedn,
        user_attr: v.ldap_user_attr.take(),
        yubi_attr,
        yubi_attr_prefix: v.ldap_yubi_attr_prefix.take(),
        filter: v.ldap_filter.take(),
        bind,
        cacertfile: v.ldap_cacertfile.take(),
        client_cert,
        starttls: v.ldap_starttls,
        allow_plaintext: v.ldap_allow_plaintext,
        timeout: v.ldap_timeout.get(),
        resolver: v.resolver.clone(),
    }))
}

/// The file policy for the TOML file: root-owned, not writable by
/// group/other, at most 64 KiB.
pub const CONFIG_POLICY: FilePolicy = FilePolicy {
    owner: Owner::Root,
    forbidden_mode: 0o022,
    max_size: 64 << 10,
};

/// Reads and parses the TOML file at `path`. `Ok(None)` when `explicit` is
/// false and the file does not exist.
///
/// # Errors
/// [`ConfigError`] for a missing explicit file, an untrusted or unreadable
/// file, a syntax error, an unknown key or a wrong type, or a file that
/// holds `cloud.key` while readable by group/other.
pub fn load_file(path: &Path, explicit: bool) -> Result<Option<Layer>, ConfigError> {
    let checked = path
        .parent()
        .map_or(Ok(()), fs_policy::check_dir_chain)
        .and_then(|()| fs_policy::read_checked(path, &CONFIG_POLICY));
    let text = match checked {
        Ok(t) => t,
        Err(OpenError::NotFound(_)) if !explicit => return Ok(None),
        Err(OpenError::PermissionDenied(p)) if !nix::unistd::geteuid().is_root() => {
            return Err(ConfigError {
                message: format!(
                    "config file {}: unreadable for uid {} (the module needs root to read its configuration)",
                    p.display(),
                    nix::unistd::geteuid()
                ),
                kind: ConfigErrorKind::Unreadable,
            });
        }
        Err(e) => return Err(ConfigError::new(format!("config file {e}"))),
    };
    let text = core::str::from_utf8(&text)
        .map_err(|_| ConfigError::new(format!("config file {}: not UTF-8", path.display())))?;
    let raw = parse_file(text)
        .map_err(|e| ConfigError::new(format!("config file {}: {e}", path.display())))?;
    let secret = match (
        raw.key.is_some(),
        raw.counters_password.is_some(),
        raw.ldap_bind_password.is_some(),
    ) {
        (true, _, _) => Some("cloud.key"),
        (false, true, _) => Some("counters.password"),
        (false, false, true) => Some("ldap.bind_password"),
        (false, false, false) => None,
    };
    if let Some(what) = secret {
        let (_, meta) = fs_policy::open_checked(path, &CONFIG_POLICY)
            .map_err(|e| ConfigError::new(format!("config file {e}")))?;
        let mode = std::os::unix::fs::MetadataExt::mode(&meta);
        if mode & 0o044 != 0 {
            return Err(ConfigError::new(format!(
                "config file {}: holds {what} but has mode {:04o}; make it 0600",
                path.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(Some(raw))
}

/// The whole resolution as the module does it: parse the arguments, load
/// the file they name (or the default), resolve.
///
/// # Errors
/// [`ConfigError`].
pub fn from_module_args<S: AsRef<str>>(argv: &[S]) -> Result<Settings, ConfigError> {
    let args = parse_args(argv)?;
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let file = load_file(&path, explicit)?;
    resolve(file.as_ref(), &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "mG5be6ZJU1qBGz24yPh/ESM3UdU=";

    fn counters(table: &str) -> Result<Option<SharedSettings>, String> {
        let file = parse_file(&format!("mode = \"local\"\n[counters]\n{table}"))?;
        resolve(Some(&file), &Layer::default())
            .map(|s| s.shared)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn counters_table() {
        assert!(
            resolve(None, &parse_args(&["mode=local"]).unwrap())
                .unwrap()
                .shared
                .is_none()
        );
        let s = counters("store = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.prefix, "/yubiotp/counters/");
        assert_eq!(s.unavailable, Unavailable::Deny);
        assert_eq!(s.timeout.get(), Duration::from_secs(2));
        assert!(s.cert.is_none() && s.login.is_none());
        let s = counters(
            "store = \"etcd\"\nendpoints = [\"https://e:2379\"]\nunavailable = \"local\"\n\
             username = \"u\"\npassword = \"sekrit\"\ntimeout = 0.5\nprefix = \"/p/\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.unavailable, Unavailable::Local);
        assert_eq!(s.prefix, "/p/");
        assert!(
            !format!("{s:?}").contains("sekrit"),
            "Debug hides the password"
        );
        for (bad, why) in [
            (
                "endpoints = [\"http://127.0.0.1:2379\"]\n",
                "needs counters.store",
            ),
            ("store = \"etcd\"\n", "needs counters.endpoints"),
            (
                "store = \"consul\"\nendpoints = [\"https://e\"]\n",
                "must be \"etcd\"",
            ),
            (
                "store = \"etcd\"\nendpoints = [\"http://e.example:2379\"]\n",
                "only on loopback",
            ),
            (
                "store = \"etcd\"\nendpoints = [\"https://e/v3\"]\n",
                "without a path",
            ),
            (
                "store = \"etcd\"\nendpoints = [\"https://e\"]\nusername = \"u\"\n",
                "together",
            ),
            (
                "store = \"etcd\"\nendpoints = [\"https://e\"]\nkeyfile = \"/k\"\n",
                "together",
            ),
            (
                "store = \"etcd\"\nendpoints = [\"https://e\"]\nunavailable = \"maybe\"\n",
                "deny or local",
            ),
        ] {
            let e = counters(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // File only: no PAM argument reaches the table.
        assert!(parse_args(&["store=etcd"]).is_err());
    }

    #[test]
    fn defaults() {
        let s = resolve(None, &parse_args(&["mode=local"]).unwrap()).unwrap();
        assert_eq!(s.mode, Mode::Local);
        assert_eq!(s.local.keystore, PathBuf::from(DEFAULT_KEYSTORE));
        assert_eq!(s.local.statedir, PathBuf::from(DEFAULT_STATEDIR));
        assert_eq!(s.token_id_length, 12);
        assert_eq!(s.prompt, DEFAULT_PROMPT);
        assert!(s.cloud.is_none(), "no cloud half in local mode");
        assert!(s.authfile.is_none() && !s.nullok && !s.debug);
        let s = resolve(None, &parse_args(&["id=1", "insecure_unsigned"]).unwrap()).unwrap();
        let c = s.cloud.unwrap();
        assert_eq!(c.timeout.get(), Duration::from_secs(5));
        assert_eq!(c.urls()[0].to_string(), DEFAULT_URL);
        // Cloud is the default mode and needs id and key.
        let e = resolve(None, &Layer::default()).unwrap_err();
        assert!(e.message.contains("cloud.id"), "{e}");
    }

    #[test]
    fn file_then_args_last_wins() {
        let file = parse_file(&format!(
            "mode = \"hybrid\"\ntoken_id_length = 16\nprompt = \"OTP: \"\n[cloud]\nid = 7\nkey = \"{KEY}\"\nurls = [\"https://a.example/v\", \"http://127.0.0.1:9/v\"]\ntimeout = 1.5\n[local]\nstatedir = \"/srv/state\"\n"
        ))
        .unwrap();
        let s = resolve(Some(&file), &Layer::default()).unwrap();
        assert_eq!(s.mode, Mode::Hybrid);
        assert_eq!(s.token_id_length, 16);
        let c = s.cloud.as_ref().unwrap();
        assert_eq!(c.id(), 7);
        assert_eq!(c.urls().len(), 2);
        assert_eq!(c.timeout.get(), Duration::from_millis(1500));
        assert_eq!(s.local.statedir, PathBuf::from("/srv/state"));
        assert!(s.warnings.is_empty());
        let args = parse_args(&[
            "mode=client",
            "id=9",
            "token_id_length=8",
            "urllist=https://b.example/v;https://c.example/v",
            "timeout=2",
            "try_first_pass",
            "prompt=Key: ",
            "statedir=/var/x",
        ])
        .unwrap();
        let s = resolve(Some(&file), &args).unwrap();
        assert_eq!(s.mode, Mode::Cloud);
        let c = s.cloud.as_ref().unwrap();
        assert_eq!(c.id(), 9);
        assert_eq!(s.token_id_length, 8);
        assert_eq!(c.urls().len(), 2);
        assert_eq!(c.urls()[1].host, "c.example");
        assert_eq!(c.timeout.get(), Duration::from_secs(2));
        assert_eq!(s.first_pass, FirstPass::Try);
        assert_eq!(s.prompt, "Key: ");
        assert_eq!(s.local.statedir, PathBuf::from("/var/x"));
        // key= on the PAM line works but warns (world-readable /etc/pam.d).
        let args = parse_args(&[format!("key={KEY}"), "id=1".to_string()]).unwrap();
        let s = resolve(None, &args).unwrap();
        assert!(s.cloud.unwrap().key().is_some());
        assert!(s.warnings.iter().any(|w| w.contains("key=")));
    }

    #[test]
    fn bad_values_are_errors_naming_the_item_not_the_secret() {
        for bad in [
            "nulok",
            "degub",
            "alwaysok",
            "mode=clowd",
            "timeout=0",
            "timeout=-1",
            "timeout=1e9",
            "timeout=5s",
            "timeout=",
            "token_id_length=13",
            "token_id_length=40",
            "token_id_length=-2",
            "token_id_length=0",
            "key:c2VjcmV0IHN0dWZm",
            "urllist=",
            "urllist=ftp://x/",
            "urllist=https://",
            "id=0",
            "id=x",
            "debug=yes",
            "config=relative.toml",
            "keystore=keys",
            "proxy=socks5://h:1",
            "url=https://x/%d",
        ] {
            assert!(parse_args(&[bad]).is_err(), "{bad}");
        }
        let secret = "c2VjcmV0IHN0dWZm!!";
        let e = parse_args(&[format!("key={secret}")]).unwrap_err();
        assert!(
            e.message.contains("key") && !e.message.contains(secret),
            "{e}"
        );
        // A TOML error on the key line never quotes the value.
        let e = parse_file("[cloud]\nkey = \"abc\ndef\"\n").unwrap_err();
        assert!(!e.contains("abc"), "{e}");
        let e = parse_file("bogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        // A secret pasted into the wrong field or with the wrong type.
        for text in [
            format!("[cloud]\nid = \"{secret}\"\n"),
            "cloud.key = 12345678\n".to_string(),
            "[cloud]\n\"key\" = 12345678\n".to_string(),
            format!("mode = {secret}\n"),
        ] {
            let e = parse_file(&text).unwrap_err();
            assert!(!e.contains(secret) && !e.contains("12345678"), "{e}");
            assert!(e.starts_with("line "), "{e}");
        }
        // A bad key is refused when the file is parsed, without quoting it.
        let err = parse_file(&format!("[cloud]\nkey = \"{secret}\"\nid = 1\n")).unwrap_err();
        assert!(err.contains("cloud.key") && !err.contains(secret), "{err}");
        let e = parse_file(&format!("[cloud]\nkey = \"{KEY}\"\nid = 1\n")).unwrap();
        assert!(
            !format!("{e:?}").contains(KEY),
            "the file layer's Debug redacts the key"
        );
        // An unknown key is named only as far as it may be a name.
        let err = parse_file(&format!("\"{secret}\" = 1\n")).unwrap_err();
        assert!(
            !err.contains(secret) && err.starts_with("line 1: unknown field"),
            "{err}"
        );
        // A quoted dotted key at the top level is not the section's key.
        assert!(parse_file("\"cloud.id\" = 1\n").is_err());
        // token_id_length = 0 can never match a mapping line.
        assert!(
            parse_file("token_id_length = 0\n")
                .unwrap_err()
                .contains("token_id_length")
        );
    }

    #[test]
    fn mode_requirements() {
        let need = |args: &[&str]| resolve(None, &parse_args(args).unwrap());
        assert!(need(&["mode=cloud", "id=1"]).is_err(), "no key");
        assert!(need(&["mode=cloud", "id=1", "insecure_unsigned"]).is_ok());
        assert!(
            need(&[
                "mode=cloud",
                "id=1",
                "insecure_unsigned",
                "urllist=http://127.0.0.1:1/v"
            ])
            .is_err(),
            "http without a key"
        );
        assert!(
            need(&["mode=hybrid", "insecure_unsigned"]).is_err(),
            "no id"
        );
        assert!(need(&["mode=local"]).is_ok());
    }

    #[test]
    fn config_file_checks() {
        use std::os::unix::fs::PermissionsExt;
        let d = yubiotp_testsupport::tempdir();
        let p = d.path().join("c.toml");
        assert!(
            load_file(&p, false).unwrap().is_none(),
            "absent default is fine"
        );
        assert!(load_file(&p, true).is_err(), "absent explicit is an error");
        std::fs::write(&p, format!("[cloud]\nkey = \"{KEY}\"\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_file(&p, true).unwrap_err();
        assert!(
            e.message.contains("0600") && !e.message.contains(KEY),
            "{e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_file(&p, true).unwrap().is_some());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(load_file(&p, true).is_err(), "world-writable");
    }
}
