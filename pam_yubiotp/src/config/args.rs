//! Module arguments from the PAM line (`name=value` or a bare flag).

use std::path::PathBuf;
use std::time::Duration;

use super::{
    ConfigError, FirstPass, Mode, ServerUrl, absolute, parse_prompt, parse_timeout,
    parse_token_id_length,
};
use crate::secret::ApiKey;

/// Every setting the PAM line may override; `None`/`false` = not given.
#[derive(Debug, Clone, Default)]
pub struct ArgOverrides {
    /// `config=`
    pub config: Option<PathBuf>,
    /// `mode=`
    pub mode: Option<Mode>,
    /// `authfile=`
    pub authfile: Option<PathBuf>,
    /// `id=`
    pub id: Option<u64>,
    /// `key=`
    pub key: Option<ApiKey>,
    /// `insecure_unsigned`
    pub insecure_unsigned: bool,
    /// `urllist=`
    pub urls: Option<Vec<ServerUrl>>,
    /// `timeout=`
    pub timeout: Option<Duration>,
    /// `cafile=` (or pam_yubico's `cainfo=`)
    pub cafile: Option<PathBuf>,
    /// `capath=`
    pub capath: Option<PathBuf>,
    /// `proxy=`
    pub proxy: Option<ServerUrl>,
    /// `keystore=`
    pub keystore: Option<PathBuf>,
    /// `statedir=`
    pub statedir: Option<PathBuf>,
    /// `token_id_length=`
    pub token_id_length: Option<usize>,
    /// `nullok`
    pub nullok: bool,
    /// `try_first_pass` / `use_first_pass`
    pub first_pass: Option<FirstPass>,
    /// `debug`
    pub debug: bool,
    /// `prompt=`
    pub prompt: Option<String>,
}

/// The argument names this module knows, flags and `name=` options, for
/// the man-page consistency test and `ykmap check`.
pub const KNOWN_ARGS: &[&str] = &[
    "config=",
    "mode=",
    "authfile=",
    "id=",
    "key=",
    "insecure_unsigned",
    "urllist=",
    "timeout=",
    "cafile=",
    "cainfo=",
    "capath=",
    "proxy=",
    "keystore=",
    "statedir=",
    "token_id_length=",
    "nullok",
    "try_first_pass",
    "use_first_pass",
    "debug",
    "prompt=",
];

/// Parses the module arguments. Unknown names, values on flags, flags
/// without values and malformed values are errors naming the argument
/// (never the value of `key=`).
///
/// # Errors
/// [`ConfigError`].
pub fn parse_args<S: AsRef<str>>(argv: &[S]) -> Result<ArgOverrides, ConfigError> {
    let mut o = ArgOverrides::default();
    for raw in argv {
        let raw = raw.as_ref();
        let (name, value) = match raw.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (raw, None),
        };
        let need = |v: Option<&str>| -> Result<String, ConfigError> {
            v.map(str::to_string).ok_or_else(|| {
                ConfigError::new(format!("argument {name}: needs a value ({name}=...)"))
            })
        };
        match (name, value) {
            ("insecure_unsigned", None) => o.insecure_unsigned = true,
            ("nullok", None) => o.nullok = true,
            ("try_first_pass", None) => o.first_pass = Some(FirstPass::Try),
            ("use_first_pass", None) => o.first_pass = Some(FirstPass::Use),
            ("debug", None) => o.debug = true,
            (
                "insecure_unsigned" | "nullok" | "try_first_pass" | "use_first_pass" | "debug",
                Some(_),
            ) => {
                return Err(ConfigError::new(format!("argument {name}: takes no value")));
            }
            ("config", v) => o.config = Some(absolute("config", &need(v)?)?),
            ("mode", v) => {
                o.mode = Some(Mode::parse(&need(v)?).ok_or_else(|| {
                    ConfigError::new("argument mode: must be cloud, client, local or hybrid")
                })?);
            }
            ("authfile", v) => o.authfile = Some(absolute("authfile", &need(v)?)?),
            ("id", v) => {
                o.id = Some(
                    need(v)?
                        .parse::<u64>()
                        .ok()
                        .filter(|i| *i > 0)
                        .ok_or_else(|| {
                            ConfigError::new("argument id: must be a positive integer")
                        })?,
                );
            }
            ("key", v) => {
                let text = zeroize::Zeroizing::new(need(v)?);
                o.key = Some(
                    ApiKey::from_base64(&text)
                        .ok_or_else(|| ConfigError::new("argument key: not base64"))?,
                );
            }
            ("urllist", v) => {
                let text = need(v)?;
                let urls = text
                    .split(';')
                    .filter(|u| !u.is_empty())
                    .map(|u| {
                        ServerUrl::parse(u)
                            .map_err(|e| ConfigError::new(format!("argument urllist: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if urls.is_empty() {
                    return Err(ConfigError::new("argument urllist: no URL given"));
                }
                o.urls = Some(urls);
            }
            ("timeout", v) => {
                let secs = need(v)?.parse::<f64>().map_err(|_| {
                    ConfigError::new("argument timeout: must be a number of seconds")
                })?;
                o.timeout = Some(parse_timeout("argument timeout", secs)?);
            }
            ("cafile" | "cainfo", v) => o.cafile = Some(absolute(name, &need(v)?)?),
            ("capath", v) => o.capath = Some(absolute("capath", &need(v)?)?),
            ("proxy", v) => {
                o.proxy = Some(
                    ServerUrl::parse_proxy(&need(v)?)
                        .map_err(|e| ConfigError::new(format!("argument proxy: {e}")))?,
                );
            }
            ("keystore", v) => o.keystore = Some(absolute("keystore", &need(v)?)?),
            ("statedir", v) => o.statedir = Some(absolute("statedir", &need(v)?)?),
            ("token_id_length", v) => {
                let n = need(v)?.parse::<i64>().map_err(|_| {
                    ConfigError::new(
                        "argument token_id_length: must be an even number from 0 to 32",
                    )
                })?;
                o.token_id_length = Some(parse_token_id_length("argument token_id_length", n)?);
            }
            ("prompt", v) => o.prompt = Some(parse_prompt("argument prompt", &need(v)?)?),
            _ => {
                let shown: String = name.chars().take(40).filter(|c| !c.is_control()).collect();
                return Err(ConfigError::new(format!("unknown argument {shown:?}")));
            }
        }
    }
    Ok(o)
}
