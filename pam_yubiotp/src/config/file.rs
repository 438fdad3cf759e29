//! The raw TOML file: every key optional, unknown keys refused.

use core::fmt;

use serde::Deserialize;
use zeroize::Zeroizing;

/// A string holding a secret in the raw file (`cloud.key`).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct RawSecret(Zeroizing<String>);

impl std::ops::Deref for RawSecret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A TOML integer or float.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Number {
    /// As a float.
    #[must_use]
    pub fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

/// `[cloud]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloud {
    /// Client id.
    pub id: Option<i64>,
    /// API key (base64).
    pub key: Option<RawSecret>,
    /// Allow no key (https only).
    pub insecure_unsigned: Option<bool>,
    /// Endpoints.
    pub urls: Option<Vec<String>>,
    /// Deadline in seconds.
    pub timeout: Option<Number>,
    /// Extra CA file.
    pub cafile: Option<String>,
    /// Extra CA directory.
    pub capath: Option<String>,
    /// Proxy URL.
    pub proxy: Option<String>,
    /// Resolver helper program (file only, never a PAM argument).
    pub resolver: Option<String>,
}

/// `[local]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocal {
    /// Key store path.
    pub keystore: Option<String>,
    /// Counter state directory.
    pub statedir: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// `mode`
    pub mode: Option<String>,
    /// `authfile`
    pub authfile: Option<String>,
    /// `token_id_length`
    pub token_id_length: Option<i64>,
    /// `nullok`
    pub nullok: Option<bool>,
    /// `debug`
    pub debug: Option<bool>,
    /// `prompt`
    pub prompt: Option<String>,
    /// `[cloud]`
    pub cloud: Option<RawCloud>,
    /// `[local]`
    pub local: Option<RawLocal>,
}

/// Every key the file accepts, dotted, for the man-page consistency test.
pub const KNOWN_KEYS: &[&str] = &[
    "mode",
    "authfile",
    "token_id_length",
    "nullok",
    "debug",
    "prompt",
    "cloud.id",
    "cloud.key",
    "cloud.insecure_unsigned",
    "cloud.urls",
    "cloud.timeout",
    "cloud.cafile",
    "cloud.capath",
    "cloud.proxy",
    "cloud.resolver",
    "local.keystore",
    "local.statedir",
];

/// Parses the TOML text. The error names the line and, for unknown, missing
/// or duplicate keys, the key; never a value.
///
/// # Errors
/// A one-line description.
pub fn parse_file(text: &str) -> Result<RawFile, String> {
    toml::from_str::<RawFile>(text).map_err(|e| {
        let line_no = e
            .span()
            .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
        // Only messages that name keys (never values) are passed on: the
        // value in question could be the API key pasted in the wrong place.
        let first = e.message().lines().next().unwrap_or("");
        let msg = if ["unknown field", "missing field", "duplicate key"]
            .iter()
            .any(|p| first.starts_with(p))
        {
            first.to_string()
        } else {
            "invalid value or syntax (value not shown)".to_string()
        };
        match line_no {
            Some(n) => format!("line {n}: {msg}"),
            None => msg,
        }
    })
}
