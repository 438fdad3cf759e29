//! Settings: built-in defaults, then the TOML file, then the module
//! arguments (last wins), resolved once into the typed [`Settings`].
//!
//! Every configuration error names the item and never a secret value.

mod args;
mod file;
mod url;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::{ArgOverrides, KNOWN_ARGS, parse_args};
pub use file::{KNOWN_KEYS, RawCloud, RawFile, RawLocal, RawSecret, parse_file};
pub use url::ServerUrl;

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

/// Cloud validation settings.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// Client id sent as `id=`.
    pub id: Option<u64>,
    /// API key for signing requests and checking answers.
    pub key: Option<ApiKey>,
    /// Allow running without `key` (https only, never advances local counters).
    pub insecure_unsigned: bool,
    /// Endpoints, queried in parallel.
    pub urls: Vec<ServerUrl>,
    /// Overall deadline of the cloud step.
    pub timeout: Duration,
    /// Extra trust anchor file (PEM).
    pub cafile: Option<PathBuf>,
    /// Extra trust anchor directory (PEM files).
    pub capath: Option<PathBuf>,
    /// HTTP(S) proxy.
    pub proxy: Option<ServerUrl>,
    /// The resolver helper for names not in /etc/hosts (`cloud.resolver`,
    /// from the root-owned file only; default
    /// [`crate::backend::cloud::resolve::DEFAULT_HELPER`]).
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

/// Fully resolved, typed settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Validation mode.
    pub mode: Mode,
    /// Central mapping file; `None` means per-user files.
    pub authfile: Option<PathBuf>,
    /// Cloud half.
    pub cloud: CloudSettings,
    /// Local half.
    pub local: LocalSettings,
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
    /// Non-fatal remarks found while resolving (logged as warnings).
    pub warnings: Vec<String>,
}

/// A configuration error: PAM_SERVICE_ERR, logged naming the item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {message}")]
pub struct ConfigError {
    /// What is wrong, naming the item (never a secret value).
    pub message: String,
    /// The config file exists but this (unprivileged) caller may not read
    /// it: not a mistake in the file, so the session reports
    /// PAM_AUTHINFO_UNAVAIL rather than PAM_SERVICE_ERR.
    pub unreadable: bool,
}

impl ConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self {
            message: msg.into(),
            unreadable: false,
        }
    }
}

fn absolute(item: &str, p: &str) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(p);
    if !path.is_absolute() || p.contains('\0') {
        return Err(ConfigError::new(format!("{item}: path must be absolute")));
    }
    Ok(path)
}

fn parse_timeout(item: &str, secs: f64) -> Result<Duration, ConfigError> {
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT_SECS as f64 {
        return Err(ConfigError::new(format!(
            "{item}: must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_token_id_length(item: &str, n: i64) -> Result<usize, ConfigError> {
    match usize::try_from(n) {
        Ok(n) if n <= 32 && n.is_multiple_of(2) => Ok(n),
        _ => Err(ConfigError::new(format!(
            "{item}: must be an even number from 0 to 32"
        ))),
    }
}

fn parse_prompt(item: &str, p: &str) -> Result<String, ConfigError> {
    if p.chars().any(|c| c.is_control() && c != ' ') || p.chars().count() > 200 {
        return Err(ConfigError::new(format!(
            "{item}: must be at most 200 characters without control characters"
        )));
    }
    Ok(p.to_string())
}

/// Resolves defaults ← `file` ← `args` into [`Settings`], checking that the
/// combination is usable for the chosen mode.
///
/// # Errors
/// [`ConfigError`] naming the first bad or missing item.
pub fn resolve(file: Option<&RawFile>, args: &ArgOverrides) -> Result<Settings, ConfigError> {
    let empty = RawFile::default();
    let f = file.unwrap_or(&empty);
    let fc = f.cloud.clone().unwrap_or_default();
    let fl = f.local.clone().unwrap_or_default();
    let mut warnings = Vec::new();

    let mode = match (&args.mode, &f.mode) {
        (Some(m), _) => *m,
        (None, Some(s)) => Mode::parse(s)
            .ok_or_else(|| ConfigError::new("mode: must be cloud, client, local or hybrid"))?,
        (None, None) => Mode::Cloud,
    };

    let authfile = match (&args.authfile, &f.authfile) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => Some(absolute("authfile", p)?),
        (None, None) => None,
    };

    let key = match (&args.key, &fc.key) {
        (Some(k), _) => {
            warnings.push(
                "key= on the PAM line is readable by every local user; move it to the config file"
                    .to_string(),
            );
            Some(k.clone())
        }
        (None, Some(k)) => {
            Some(ApiKey::from_base64(k).ok_or_else(|| ConfigError::new("cloud.key: not base64"))?)
        }
        (None, None) => None,
    };
    let id = match (args.id, fc.id) {
        (Some(i), _) => Some(i),
        (None, Some(i)) => Some(
            u64::try_from(i)
                .ok()
                .filter(|i| *i > 0)
                .ok_or_else(|| ConfigError::new("cloud.id: must be a positive integer"))?,
        ),
        (None, None) => None,
    };
    let urls = match (&args.urls, &fc.urls) {
        (Some(u), _) => u.clone(),
        (None, Some(list)) => {
            if list.is_empty() {
                return Err(ConfigError::new("cloud.urls: must not be empty"));
            }
            list.iter()
                .map(|u| {
                    ServerUrl::parse(u).map_err(|e| ConfigError::new(format!("cloud.urls: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        (None, None) => vec![
            ServerUrl::parse(DEFAULT_URL)
                .map_err(|e| ConfigError::new(format!("default URL: {e}")))?,
        ],
    };
    let timeout = match (args.timeout, fc.timeout) {
        (Some(t), _) => t,
        (None, Some(t)) => parse_timeout("cloud.timeout", t.as_f64())?,
        (None, None) => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
    };
    let cafile = match (&args.cafile, &fc.cafile) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => Some(absolute("cloud.cafile", p)?),
        (None, None) => None,
    };
    let capath = match (&args.capath, &fc.capath) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => Some(absolute("cloud.capath", p)?),
        (None, None) => None,
    };
    let proxy = match (&args.proxy, &fc.proxy) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => Some(
            ServerUrl::parse_proxy(p).map_err(|e| ConfigError::new(format!("cloud.proxy: {e}")))?,
        ),
        (None, None) => None,
    };
    // File only: a PAM argument must not choose a program the module runs.
    let resolver = match &fc.resolver {
        Some(p) => absolute("cloud.resolver", p)?,
        None => PathBuf::from(crate::backend::cloud::resolve::DEFAULT_HELPER),
    };
    let insecure_unsigned = args.insecure_unsigned || fc.insecure_unsigned.unwrap_or(false);

    let keystore = match (&args.keystore, &fl.keystore) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => absolute("local.keystore", p)?,
        (None, None) => PathBuf::from(DEFAULT_KEYSTORE),
    };
    let statedir = match (&args.statedir, &fl.statedir) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => absolute("local.statedir", p)?,
        (None, None) => PathBuf::from(DEFAULT_STATEDIR),
    };
    let token_id_length = match (args.token_id_length, f.token_id_length) {
        (Some(n), _) => n,
        (None, Some(n)) => parse_token_id_length("token_id_length", n)?,
        (None, None) => 12,
    };
    if token_id_length > 16 {
        warnings.push(format!(
            "token_id_length={token_id_length} is above 16; most validation servers refuse such OTPs"
        ));
    }
    let prompt = match (&args.prompt, &f.prompt) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => parse_prompt("prompt", p)?,
        (None, None) => DEFAULT_PROMPT.to_string(),
    };

    let settings = Settings {
        mode,
        authfile,
        cloud: CloudSettings {
            id,
            key,
            insecure_unsigned,
            urls,
            timeout,
            cafile,
            capath,
            proxy,
            resolver,
        },
        local: LocalSettings { keystore, statedir },
        token_id_length,
        nullok: args.nullok || f.nullok.unwrap_or(false),
        first_pass: args.first_pass.unwrap_or_default(),
        debug: args.debug || f.debug.unwrap_or(false),
        prompt,
        warnings,
    };
    check_mode(&settings)?;
    Ok(settings)
}

fn check_mode(s: &Settings) -> Result<(), ConfigError> {
    if !s.mode.uses_cloud() {
        return Ok(());
    }
    let c = &s.cloud;
    if c.id.is_none() {
        return Err(ConfigError::new(format!(
            "mode={} needs cloud.id (id=)",
            s.mode.name()
        )));
    }
    if c.key.is_none() && !c.insecure_unsigned {
        return Err(ConfigError::new(format!(
            "mode={} needs cloud.key (the API key), or insecure_unsigned",
            s.mode.name()
        )));
    }
    if c.key.is_none() && c.urls.iter().any(|u| !u.https) {
        return Err(ConfigError::new(
            "cloud.urls: http:// URLs need cloud.key (answers must be signed)",
        ));
    }
    Ok(())
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
pub fn load_file(path: &Path, explicit: bool) -> Result<Option<RawFile>, ConfigError> {
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
                unreadable: true,
            });
        }
        Err(e) => return Err(ConfigError::new(format!("config file {e}"))),
    };
    let text = core::str::from_utf8(&text)
        .map_err(|_| ConfigError::new(format!("config file {}: not UTF-8", path.display())))?;
    let raw = parse_file(text)
        .map_err(|e| ConfigError::new(format!("config file {}: {e}", path.display())))?;
    if raw.cloud.as_ref().is_some_and(|c| c.key.is_some()) {
        let (_, meta) = fs_policy::open_checked(path, &CONFIG_POLICY)
            .map_err(|e| ConfigError::new(format!("config file {e}")))?;
        let mode = std::os::unix::fs::MetadataExt::mode(&meta);
        if mode & 0o044 != 0 {
            return Err(ConfigError::new(format!(
                "config file {}: holds cloud.key but has mode {:04o}; make it 0600",
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

    #[test]
    fn defaults() {
        let s = resolve(None, &parse_args(&["mode=local"]).unwrap()).unwrap();
        assert_eq!(s.mode, Mode::Local);
        assert_eq!(s.local.keystore, PathBuf::from(DEFAULT_KEYSTORE));
        assert_eq!(s.local.statedir, PathBuf::from(DEFAULT_STATEDIR));
        assert_eq!(s.token_id_length, 12);
        assert_eq!(s.prompt, DEFAULT_PROMPT);
        assert_eq!(s.cloud.timeout, Duration::from_secs(5));
        assert_eq!(s.cloud.urls[0].to_string(), DEFAULT_URL);
        assert!(s.authfile.is_none() && !s.nullok && !s.debug);
        // Cloud is the default mode and needs id and key.
        let e = resolve(None, &ArgOverrides::default()).unwrap_err();
        assert!(e.message.contains("cloud.id"), "{e}");
    }

    #[test]
    fn file_then_args_last_wins() {
        let file = parse_file(&format!(
            "mode = \"hybrid\"\ntoken_id_length = 16\nprompt = \"OTP: \"\n[cloud]\nid = 7\nkey = \"{KEY}\"\nurls = [\"https://a.example/v\", \"http://127.0.0.1:9/v\"]\ntimeout = 1.5\n[local]\nstatedir = \"/srv/state\"\n"
        ))
        .unwrap();
        let s = resolve(Some(&file), &ArgOverrides::default()).unwrap();
        assert_eq!(s.mode, Mode::Hybrid);
        assert_eq!(s.token_id_length, 16);
        assert_eq!(s.cloud.id, Some(7));
        assert_eq!(s.cloud.urls.len(), 2);
        assert_eq!(s.cloud.timeout, Duration::from_millis(1500));
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
        assert_eq!(s.cloud.id, Some(9));
        assert_eq!(s.token_id_length, 8);
        assert_eq!(s.cloud.urls.len(), 2);
        assert_eq!(s.cloud.urls[1].host, "c.example");
        assert_eq!(s.cloud.timeout, Duration::from_secs(2));
        assert_eq!(s.first_pass, FirstPass::Try);
        assert_eq!(s.prompt, "Key: ");
        assert_eq!(s.local.statedir, PathBuf::from("/var/x"));
        // key= on the PAM line works but warns (world-readable /etc/pam.d).
        let args = parse_args(&[format!("key={KEY}"), "id=1".to_string()]).unwrap();
        let s = resolve(None, &args).unwrap();
        assert!(s.cloud.key.is_some());
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
        let e = parse_file(&format!("[cloud]\nkey = \"{secret}\"\nid = 1\n")).unwrap();
        let err = resolve(Some(&e), &ArgOverrides::default()).unwrap_err();
        assert!(!err.message.contains(secret), "{err}");
        assert!(
            !format!("{e:?}").contains(secret),
            "raw file Debug redacts the key"
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
        let d = crate::testutil::tempdir();
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
