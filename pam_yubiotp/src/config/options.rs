//! The option table: every setting defined once (argument names, TOML key,
//! type, parser, default, one-line doc). The argument parser
//! ([`super::args`]), the file parser ([`super::file`]), the resolver,
//! [`known_args`]/[`known_keys`] and the man-page test all read it.
//!
//! # Adding an option
//!
//! 1. Add one entry to the `options!` invocation below: the field name and
//!    value type, its argument spellings (`"name" Value` for `name=value`,
//!    `"name" Flag` for a bare flag; none for a file-only key), its dotted
//!    TOML key (`None` for an argument-only option), the TOML value type,
//!    the default (omit `= …` for an option that is `None` when not given),
//!    the default as the docs say it, a parser from [`Input`] (write a new
//!    `fn` below when none fits) and a one-line doc. The entry's position
//!    is its place in `known_args()` and, grouped by section, in
//!    `known_keys()`, which the man pages must follow.
//! 2. Document it in man/pam_yubiotp.8.md OPTIONS (if it has an argument)
//!    and man/yubiotp.toml.5.md KEYS (if it has a key), in the same order,
//!    and rebuild the roff (man/build.sh); the `docs` test checks both.
//! 3. Read it where it is used: from [`Values`] in `resolve` (config/mod.rs)
//!    into [`super::Settings`] (or [`super::CloudSettings`] when it belongs
//!    to the cloud backend).
//!
//! Nothing else changes: parsing of both sources, precedence (defaults <
//! file < arguments), unknown-name refusal and the known-name lists follow
//! from the entry.

use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{
    FirstPass, HttpProxy, MAX_TIMEOUT_SECS, Mode, ServerUrl, SharedStore, Timeout, Unavailable,
};
use crate::secret::{ApiKey, SecretBytes};

/// A value as one source wrote it: a bare flag or `name=text` on the PAM
/// line, or a typed TOML value (already checked against [`TomlType`]).
#[derive(Debug)]
pub enum Input<'a> {
    /// A bare argument (`nullok`).
    Flag,
    /// `name=text`.
    Text(&'a str),
    /// A TOML boolean.
    Bool(bool),
    /// A TOML integer.
    Int(i64),
    /// A TOML float.
    Float(f64),
    /// A TOML array of strings.
    List(Vec<&'a str>),
}

/// How an argument is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgForm {
    /// A bare flag; `name=…` is an error.
    Flag,
    /// `name=value`; a bare `name` is an error.
    Value,
}

/// One spelling on the PAM line.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// The name before `=`.
    pub name: &'static str,
    /// Flag or `name=value`.
    pub form: ArgForm,
}

/// The TOML value type a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TomlType {
    /// A string.
    Str,
    /// An integer.
    Int,
    /// An integer or a float.
    Number,
    /// `true` / `false`.
    Bool,
    /// An array of strings.
    StrList,
    /// A string or an array of strings.
    StrOrList,
}

impl TomlType {
    /// For "must be …" messages.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Str => "a string",
            Self::Int => "an integer",
            Self::Number => "a number",
            Self::Bool => "true or false",
            Self::StrList => "an array of strings",
            Self::StrOrList => "a string or an array of strings",
        }
    }
}

type Setter = fn(&mut Layer, &str, Input<'_>) -> Result<(), String>;

/// One option's definition.
pub struct Opt {
    /// The field in [`Layer`] and [`Values`].
    pub field: &'static str,
    /// Its spellings on the PAM line (empty: file only).
    pub args: &'static [Arg],
    /// Its dotted TOML key (`None`: PAM line only).
    pub toml: Option<&'static str>,
    /// The TOML value type.
    pub toml_type: TomlType,
    /// The default, as the documentation says it.
    pub default: &'static str,
    /// One line for the documentation.
    pub doc: &'static str,
    set: Setter,
}

impl core::fmt::Debug for Opt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opt")
            .field("field", &self.field)
            .field("toml", &self.toml)
            .finish_non_exhaustive()
    }
}

impl Opt {
    /// Parses `input` (spelled `name`) into `layer`. The error says what is
    /// wrong without the item's name and never quotes a secret.
    ///
    /// # Errors
    /// A short reason.
    pub fn set(&self, layer: &mut Layer, name: &str, input: Input<'_>) -> Result<(), String> {
        (self.set)(layer, name, input)
    }
}

macro_rules! options {
    (@vty $t:ty) => { Option<$t> };
    (@vty $t:ty, $d:expr) => { $t };
    (@value $v:expr) => { $v };
    (@value $v:expr, $d:expr) => { $v.unwrap_or_else(|| $d) };
    ($(
        $field:ident : $ty:ty $(= $default:expr)?, shown $shown:literal;
        args [$($arg:literal $form:ident),*];
        toml $toml:expr, $tt:ident;
        parse $parse:expr;
        doc $doc:literal;
    )*) => {
        /// One source's settings (the file, or the module arguments):
        /// `None` where the source says nothing.
        #[derive(Debug, Clone, Default)]
        pub struct Layer {
            $(
                #[doc = $doc]
                pub $field: Option<$ty>,
            )*
        }

        /// Every option with the defaults applied.
        #[derive(Debug, Clone)]
        pub struct Values {
            $(
                #[doc = $doc]
                pub $field: options!(@vty $ty $(, $default)?),
            )*
        }

        impl Layer {
            /// `self` over `lower`: each option `self` gives wins.
            #[must_use]
            pub fn over(self, lower: Self) -> Self {
                Self { $( $field: self.$field.or(lower.$field), )* }
            }

            /// The defaults under `self`.
            #[must_use]
            pub fn values(self) -> Values {
                Values { $( $field: options!(@value self.$field $(, $default)?), )* }
            }
        }

        /// Every option, in documentation order.
        pub static OPTIONS: &[Opt] = &[$(
            Opt {
                field: stringify!($field),
                args: &[$(Arg { name: $arg, form: ArgForm::$form }),*],
                toml: $toml,
                toml_type: TomlType::$tt,
                default: $shown,
                doc: $doc,
                set: |layer, name, input| {
                    layer.$field = Some(($parse)(name, input)?);
                    Ok(())
                },
            },
        )*];
    };
}

options! {
    config: PathBuf, shown "/etc/yubiotp/yubiotp.toml (skipped when absent)";
        args ["config" Value]; toml None, Str; parse path;
        doc "The TOML configuration file.";
    mode: Mode = Mode::Cloud, shown "cloud";
        args ["mode" Value]; toml Some("mode"), Str; parse mode;
        doc "How OTPs are validated: cloud (alias client), local or hybrid.";
    authfile: PathBuf, shown "per-user ~/.yubico/authorized_yubikeys";
        args ["authfile" Value]; toml Some("authfile"), Str; parse path;
        doc "The central mapping file.";
    id: u64, shown "none (required in cloud and hybrid modes)";
        args ["id" Value]; toml Some("cloud.id"), Int; parse client_id;
        doc "The validation client id.";
    key: ApiKey, shown "none";
        args ["key" Value]; toml Some("cloud.key"), Str; parse api_key;
        doc "The API key (base64) that signs requests and answers.";
    insecure_unsigned: bool = false, shown "off";
        args ["insecure_unsigned" Flag]; toml Some("cloud.insecure_unsigned"), Bool; parse flag;
        doc "Run without an API key, trusting https answers on TLS alone.";
    urls: Vec<ServerUrl> = default_urls(), shown "https://api.yubico.com/wsapi/2.0/verify";
        args ["urllist" Value]; toml Some("cloud.urls"), StrList; parse urls;
        doc "The validation endpoints, asked in parallel.";
    // pam_yubico's single URL template (`...verify?id=%d&otp=%s`): its part
    // before `?` becomes the one validation endpoint. PAM line only.
    url: ServerUrl, shown "none";
        args ["url" Value]; toml None, Str; parse url_template;
        doc "pam_yubico's URL template, taken as a one-entry urllist.";
    timeout: Timeout = Timeout::default(), shown "5";
        args ["timeout" Value]; toml Some("cloud.timeout"), Number; parse timeout;
        doc "The deadline of the cloud step, in seconds.";
    cafile: PathBuf, shown "none";
        args ["cafile" Value, "cainfo" Value]; toml Some("cloud.cafile"), Str; parse path;
        doc "An extra trust anchor file (PEM).";
    capath: PathBuf, shown "none";
        args ["capath" Value]; toml Some("cloud.capath"), Str; parse path;
        doc "An extra trust anchor directory (PEM files).";
    proxy: HttpProxy, shown "none";
        args ["proxy" Value]; toml Some("cloud.proxy"), Str; parse proxy;
        doc "An http:// proxy (HTTPS goes through it with CONNECT).";
    // File only: a PAM argument must not choose a program the module runs.
    resolver: PathBuf = PathBuf::from(crate::net::resolve::DEFAULT_HELPER),
        shown "/usr/libexec/yubiotp/yubiotp-resolve";
        args []; toml Some("cloud.resolver"), Str; parse path;
        doc "The helper that resolves names not in /etc/hosts within the deadline.";
    keystore: PathBuf = PathBuf::from(super::DEFAULT_KEYSTORE), shown "/etc/yubiotp/keys";
        args ["keystore" Value]; toml Some("local.keystore"), Str; parse path;
        doc "The local key store.";
    statedir: PathBuf = PathBuf::from(super::DEFAULT_STATEDIR), shown "/var/lib/yubiotp";
        args ["statedir" Value]; toml Some("local.statedir"), Str; parse path;
        doc "The counter state directory.";
    // [counters]: file only (a PAM argument must not point the module at
    // another store, and the password belongs in the 0600 file).
    counters_store: SharedStore, shown "none (per-host counters)";
        args []; toml Some("counters.store"), Str; parse shared_store;
        doc "Where counters are shared across hosts: etcd.";
    counters_endpoints: Vec<ServerUrl>, shown "none (required with store)";
        args []; toml Some("counters.endpoints"), StrList; parse etcd_endpoints;
        doc "The etcd members (https://, or http:// on loopback), tried in order within the timeout.";
    counters_prefix: String = "/yubiotp/counters/".to_string(), shown "\"/yubiotp/counters/\"";
        args []; toml Some("counters.prefix"), Str; parse etcd_name;
        doc "The key prefix; the key of a public id is the prefix and its modhex.";
    counters_cafile: PathBuf, shown "none (system roots)";
        args []; toml Some("counters.cafile"), Str; parse path;
        doc "The trust anchor (PEM) for the etcd members.";
    counters_certfile: PathBuf, shown "none";
        args []; toml Some("counters.certfile"), Str; parse path;
        doc "The client certificate (PEM) for etcd.";
    counters_keyfile: PathBuf, shown "none";
        args []; toml Some("counters.keyfile"), Str; parse path;
        doc "The client key (PEM, root-only) for etcd.";
    counters_username: String, shown "none";
        args []; toml Some("counters.username"), Str; parse etcd_name;
        doc "The etcd user (with password: etcd's /v3/auth/authenticate token).";
    counters_password: SecretBytes, shown "none";
        args []; toml Some("counters.password"), Str; parse secret_text;
        doc "The etcd user's password.";
    counters_timeout: Timeout = Timeout::new(Duration::from_secs(2)).unwrap_or_default(), shown "2";
        args []; toml Some("counters.timeout"), Number; parse timeout;
        doc "The deadline of the shared-counter step, in seconds.";
    counters_unavailable: Unavailable = Unavailable::Deny, shown "deny";
        args []; toml Some("counters.unavailable"), Str; parse unavailable;
        doc "Store unreachable: deny (PAM_AUTHINFO_UNAVAIL) or local (accept on local counters, journal, push later).";
    token_id_length: usize = 12, shown "12";
        args ["token_id_length" Value]; toml Some("token_id_length"), Int; parse token_id_length;
        doc "The public id length in modhex characters (even, 2 to 32).";
    nullok: bool = false, shown "off";
        args ["nullok" Flag]; toml Some("nullok"), Bool; parse flag;
        doc "Let users with no mapped key through (PAM_IGNORE).";
    first_pass: FirstPass = FirstPass::Prompt, shown "prompt";
        args ["try_first_pass" Flag, "use_first_pass" Flag]; toml None, Bool; parse first_pass;
        doc "Take the OTP from the end of PAM_AUTHTOK (try: else prompt; use: never prompt).";
    debug: bool = false, shown "off";
        args ["debug" Flag]; toml Some("debug"), Bool; parse flag;
        doc "Verbose logging.";
    debug_file: DebugFile, shown "none (syslog only)";
        args ["debug_file" Value]; toml Some("debug_file"), Str; parse debug_file;
        doc "An existing root-owned log file that also gets every log line.";
    prompt: String = super::DEFAULT_PROMPT.to_string(), shown "\"YubiKey OTP: \"";
        args ["prompt" Value]; toml Some("prompt"), Str; parse prompt;
        doc "The conversation prompt.";
    // PAM line only: /etc/pam.d is root-controlled, and the helper path is
    // what a caller that is not root runs (it never reads this file).
    verifier: PathBuf = PathBuf::from(crate::verifier::DEFAULT_HELPER),
        shown "/usr/libexec/yubiotp/yubiotp-verify";
        args ["verifier" Value]; toml None, Str; parse path;
        doc "The setuid verifier that callers which are not root ask.";
    // File only, read by the verifier as root.
    max_failures: u32 = 5, shown "5";
        args []; toml Some("verifier.max_failures"), Int; parse count;
        doc "Failures per caller uid (each within the window of the last) before the verifier refuses.";
    window: Duration = Duration::from_secs(60), shown "60";
        args []; toml Some("verifier.window"), Number; parse seconds;
        doc "Seconds a failure is remembered after the previous one; also the first lockout.";
    failure_delay: Duration = Duration::from_secs(1), shown "1";
        args []; toml Some("verifier.failure_delay"), Number; parse seconds;
        doc "Seconds the verifier waits before answering each failure.";
    max_backoff: Duration = Duration::from_secs(300), shown "300";
        args []; toml Some("verifier.max_backoff"), Number; parse seconds;
        doc "The longest lockout (it doubles from the window up to this), seconds.";
    ratelimit_dir: PathBuf = PathBuf::from(crate::verifier::DEFAULT_RATELIMIT_DIR),
        shown "/run/yubiotp/ratelimit";
        args []; toml Some("verifier.ratelimit_dir"), Str; parse path;
        doc "The root-only directory of the per-uid failure counts.";
    // pam_yubico options kept for drop-in lines: accepted with a warning.
    verbose_otp: bool = false, shown "off";
        args ["verbose_otp" Flag]; toml None, Bool; parse flag;
        doc "pam_yubico's OTP echo: ignored with a warning (the OTP is read with echo off).";
    always_prompt: bool = false, shown "off";
        args ["always_prompt" Flag]; toml None, Bool; parse flag;
        doc "pam_yubico's prompt for keyless users: ignored with a warning.";
    // pam_yubico options refused as configuration errors naming the fix.
    alwaysok: Refused, shown "refused";
        args ["alwaysok" Flag]; toml None, Bool; parse refuse_alwaysok;
        doc "pam_yubico's presentation mode: refused.";
    chalresp_path: Refused, shown "refused";
        args ["chalresp_path" Value]; toml None, Str; parse refuse_chalresp;
        doc "pam_yubico's challenge-response directory: refused.";
    mysql: Refused, shown "refused";
        args ["mysql_server" Value, "mysql_port" Value, "mysql_user" Value,
            "mysql_password" Value, "mysql_database" Value];
        toml None, Str; parse refuse_mysql;
        doc "pam_yubico's MySQL mapping: refused.";
    ldap_uris: Vec<crate::ldap::LdapUri>, shown "none (LDAP not used)";
        args ["ldap_uri" Value, "ldapserver" Value, "ldap_server" Value]; toml Some("ldap.uri"), StrOrList; parse ldap_uris;
        doc "LDAP servers (ldap:// or ldaps://), tried in order within one deadline; when set, keys come from LDAP.";
    ldap_basedn: String, shown "none";
        args ["ldapdn" Value]; toml Some("ldap.basedn"), Str; parse ldap_dn;
        doc "The base DN: the parent of user_attr=USER entries, or where the filter search starts.";
    ldap_user_attr: String, shown "none";
        args ["user_attr" Value]; toml Some("ldap.user_attr"), Str; parse ldap_attr;
        doc "The naming attribute of user entries (DN user_attr=USER,basedn, the user name RFC 4514-escaped).";
    ldap_yubi_attr: String, shown "none (required with LDAP)";
        args ["yubi_attr" Value]; toml Some("ldap.yubi_attr"), Str; parse ldap_attr;
        doc "The attribute holding the user's public ids.";
    ldap_yubi_attr_prefix: String, shown "none";
        args ["yubi_attr_prefix" Value]; toml Some("ldap.yubi_attr_prefix"), Str; parse ldap_prefix;
        doc "Only values starting with this prefix count; the rest of the value is the public id.";
    ldap_filter: crate::ldap::proto::FilterTemplate, shown "none";
        args ["ldap_filter" Value]; toml Some("ldap.filter"), Str; parse ldap_filter;
        doc "A subtree search filter from basedn, %u standing for the user name (equality, presence, &, |, !).";
    ldap_bind_user: String, shown "none (anonymous)";
        args ["ldap_bind_user" Value]; toml Some("ldap.bind_user"), Str; parse ldap_dn;
        doc "The DN of a simple bind (with ldap.bind_password).";
    // Secret: from the 0600 file only.
    ldap_bind_password: crate::secret::SecretBytes, shown "none";
        args ["ldap_bind_password" Value]; toml Some("ldap.bind_password"), Str; parse file_only_secret;
        doc "The bind password; only in the 0600 config file (refused on the PAM line).";
    ldap_bind_as_user: bool = false, shown "off";
        args ["ldap_bind_as_user" Flag]; toml Some("ldap.bind_as_user"), Bool; parse flag;
        doc "Bind as user_attr=USER,basedn with the user's own password (PAM_AUTHTOK, typed before the OTP or set by an earlier module); needs user_attr, excludes bind_user.";
    ldap_cacertfile: PathBuf, shown "none";
        args ["ldap_cacertfile" Value]; toml Some("ldap.cacertfile"), Str; parse path;
        doc "An extra trust anchor file (PEM, root-owned) for LDAP TLS, beside the system roots.";
    ldap_clientcertfile: PathBuf, shown "none";
        args ["ldap_clientcertfile" Value]; toml Some("ldap.clientcertfile"), Str; parse path;
        doc "A client certificate chain (PEM) for LDAP TLS (with ldap.clientkeyfile).";
    // Names a secret: from the file only.
    ldap_clientkeyfile: PathBuf, shown "none";
        args ["ldap_clientkeyfile" Value]; toml Some("ldap.clientkeyfile"), Str; parse file_only_path;
        doc "The client certificate's key (PEM, root-owned, 0600); only in the config file.";
    ldap_starttls: bool = false, shown "off";
        args ["ldap_starttls" Flag]; toml Some("ldap.starttls"), Bool; parse flag;
        doc "StartTLS on ldap:// servers before binding.";
    ldap_allow_plaintext: bool = false, shown "off";
        args ["ldap_allow_plaintext" Flag]; toml Some("ldap.allow_plaintext"), Bool; parse flag;
        doc "Allow plaintext LDAP (no TLS) to servers that are not on the loopback interface.";
    // pam_yubico's `ldap_connection_timeout` bounds the connect alone;
    // here it is the same deadline as `ldap_timeout` (a drop-in line keeps
    // working, never with a longer wait than it asked for).
    ldap_timeout: Timeout = Timeout::default(), shown "5";
        args ["ldap_timeout" Value, "ldap_connection_timeout" Value]; toml Some("ldap.connection_timeout"), Number; parse timeout;
        doc "The deadline of the LDAP step (resolve, connect, TLS, bind, search), in seconds.";
}

/// The value of an option that is always refused (never constructed).
#[derive(Debug, Clone, Copy)]
pub enum Refused {}

/// Where `debug_file=` sends the module's log lines (besides syslog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugFile {
    /// An existing root-owned regular file, opened for appending.
    File(PathBuf),
    /// pam_yubico's `stdout`/`stderr`: ignored with a warning (the
    /// application's terminal or protocol stream is not a log).
    Stdio(&'static str),
}

/// The message of `mode=challenge-response` and `chalresp_path=`.
pub const CHALRESP_REFUSAL: &str = "challenge-response (pam_yubico mode=challenge-response) is not supported; see pam_u2f or use local mode (mode=local with ykmap key add)";

/// The message of `alwaysok`.
pub const ALWAYSOK_REFUSAL: &str = "pam_yubico's alwaysok disables the second factor; not supported — use a [default=ignore] control or remove the line";

/// The message of `mysql_*`.
pub const MYSQL_REFUSAL: &str = "pam_yubico's MySQL mapping is not supported; export it to a central authfile (user:pubid:...) and set authfile=";

/// The argument names, flags bare and options as `name=`, in table order.
#[must_use]
pub fn known_args() -> Vec<String> {
    OPTIONS
        .iter()
        .flat_map(|o| o.args.iter())
        .map(|a| match a.form {
            ArgForm::Flag => a.name.to_string(),
            ArgForm::Value => format!("{}=", a.name),
        })
        .collect()
}

/// The TOML sections, in file order (`""` is the top level).
pub const SECTIONS: &[&str] = &["", "cloud", "local", "verifier", "counters", "ldap"];

/// The section and key of a dotted TOML key.
#[must_use]
pub fn split_key(dotted: &str) -> (&str, &str) {
    dotted.split_once('.').unwrap_or(("", dotted))
}

/// Every dotted TOML key: the top level first, then each section, each in
/// table order.
#[must_use]
pub fn known_keys() -> Vec<&'static str> {
    SECTIONS
        .iter()
        .flat_map(|s| {
            OPTIONS
                .iter()
                .filter_map(|o| o.toml)
                .filter(move |k| split_key(k).0 == *s)
        })
        .collect()
}

/// The longest unknown name [`shown_name`] shows: a bare token longer than
/// this may itself be a secret. A constant, so that adding a long option
/// name (pam_yubico's `ldap_connection_timeout`) never widens what is shown.
const SHOWN_NAME_MAX: usize = 22;

/// How an unknown argument or key may be named in a log line: only a
/// leading run of `[a-z0-9_]` (what an option name is made of), never what
/// follows a separator (`key:SECRET`, `key SECRET`), and nothing at all when
/// that run is longer than [`SHOWN_NAME_MAX`] (a bare token that long may
/// itself be a secret). `None` means "show only the length".
#[must_use]
pub fn shown_name(raw: &str) -> (Option<&str>, bool) {
    let end = raw
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(raw.len());
    let prefix = raw.get(..end).unwrap_or("");
    let cut = end < raw.len();
    if prefix.is_empty() || prefix.len() > SHOWN_NAME_MAX {
        (None, true)
    } else {
        (Some(prefix), cut)
    }
}

/// `"name"`, `"name..." (value not shown)` or `(N characters, not shown)`.
#[must_use]
pub fn describe_unknown(raw: &str) -> String {
    match shown_name(raw) {
        (Some(p), false) => format!("{p:?}"),
        (Some(p), true) => format!("\"{p}...\" (value not shown)"),
        (None, _) => format!("({} characters, not shown)", raw.chars().count()),
    }
}

// ---- parsers: (spelled name, input) -> value ----

fn wrong() -> String {
    "wrong type of value".to_string()
}

fn text<'a>(input: &Input<'a>) -> Result<&'a str, String> {
    match input {
        Input::Text(t) => Ok(t),
        _ => Err(wrong()),
    }
}

fn path(_: &str, input: Input<'_>) -> Result<PathBuf, String> {
    let p = text(&input)?;
    let path = PathBuf::from(p);
    if !path.is_absolute() || p.contains('\0') {
        return Err("path must be absolute".into());
    }
    Ok(path)
}

fn mode(_: &str, input: Input<'_>) -> Result<Mode, String> {
    let t = text(&input)?;
    if t == "challenge-response" {
        return Err(CHALRESP_REFUSAL.into());
    }
    Mode::parse(t).ok_or_else(|| "must be cloud, client, local or hybrid".into())
}

fn client_id(_: &str, input: Input<'_>) -> Result<u64, String> {
    let id = match input {
        Input::Text(t) => t.parse::<u64>().ok(),
        Input::Int(i) => u64::try_from(i).ok(),
        _ => None,
    };
    id.filter(|i| *i > 0)
        .ok_or_else(|| "must be a positive integer".into())
}

fn api_key(_: &str, input: Input<'_>) -> Result<ApiKey, String> {
    let t = Zeroizing::new(text(&input)?.to_string());
    ApiKey::from_base64(&t).ok_or_else(|| "not base64".into())
}

fn flag(_: &str, input: Input<'_>) -> Result<bool, String> {
    match input {
        Input::Flag => Ok(true),
        Input::Bool(b) => Ok(b),
        _ => Err(wrong()),
    }
}

fn first_pass(name: &str, input: Input<'_>) -> Result<FirstPass, String> {
    match (name, input) {
        ("try_first_pass", Input::Flag) => Ok(FirstPass::Try),
        ("use_first_pass", Input::Flag) => Ok(FirstPass::Use),
        _ => Err(wrong()),
    }
}

fn default_urls() -> Vec<ServerUrl> {
    // A constant that parses; the empty list is unreachable.
    ServerUrl::parse(super::DEFAULT_URL).into_iter().collect()
}

fn urls(_: &str, input: Input<'_>) -> Result<Vec<ServerUrl>, String> {
    let list: Vec<&str> = match input {
        Input::Text(t) => {
            let l: Vec<&str> = t.split(';').filter(|u| !u.is_empty()).collect();
            if l.is_empty() {
                return Err("no URL given".into());
            }
            l
        }
        Input::List(l) => {
            if l.is_empty() {
                return Err("must not be empty".into());
            }
            l
        }
        _ => return Err(wrong()),
    };
    list.into_iter().map(ServerUrl::parse).collect()
}

fn url_template(_: &str, input: Input<'_>) -> Result<ServerUrl, String> {
    let t = text(&input)?;
    // ykclient fills `%s` with the OTP (and `%d` with the id); pam_yubico
    // refuses a template without `%s`.
    let Some((base, query)) = t.split_once('?') else {
        return Err("must be a template with ?...otp=%s (use urllist= for plain URLs)".into());
    };
    if !query.contains("%s") {
        return Err("must be a template with %s for the OTP".into());
    }
    ServerUrl::parse(base)
}

fn debug_file(_: &str, input: Input<'_>) -> Result<DebugFile, String> {
    match text(&input)? {
        "stdout" => Ok(DebugFile::Stdio("stdout")),
        "stderr" => Ok(DebugFile::Stdio("stderr")),
        p => path("", Input::Text(p)).map(DebugFile::File),
    }
}

fn refuse_alwaysok(_: &str, _: Input<'_>) -> Result<Refused, String> {
    Err(ALWAYSOK_REFUSAL.into())
}

fn refuse_chalresp(_: &str, _: Input<'_>) -> Result<Refused, String> {
    Err(CHALRESP_REFUSAL.into())
}

fn refuse_mysql(_: &str, _: Input<'_>) -> Result<Refused, String> {
    Err(MYSQL_REFUSAL.into())
}

fn timeout(_: &str, input: Input<'_>) -> Result<Timeout, String> {
    let secs = match input {
        Input::Text(t) => t
            .parse::<f64>()
            .map_err(|_| "must be a number of seconds".to_string())?,
        #[allow(clippy::cast_precision_loss)]
        Input::Int(i) => i as f64,
        Input::Float(f) => f,
        _ => return Err(wrong()),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT_SECS as f64 {
        return Err(format!(
            "must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}"
        ));
    }
    Timeout::new(Duration::from_secs_f64(secs)).ok_or_else(wrong)
}

fn proxy(_: &str, input: Input<'_>) -> Result<HttpProxy, String> {
    HttpProxy::parse(text(&input)?)
}

fn shared_store(_: &str, input: Input<'_>) -> Result<SharedStore, String> {
    match text(&input)? {
        "etcd" => Ok(SharedStore::Etcd),
        _ => Err("must be \"etcd\"".into()),
    }
}

fn unavailable(_: &str, input: Input<'_>) -> Result<Unavailable, String> {
    match text(&input)? {
        "deny" => Ok(Unavailable::Deny),
        "local" => Ok(Unavailable::Local),
        _ => Err("must be deny or local".into()),
    }
}

fn etcd_endpoints(_: &str, input: Input<'_>) -> Result<Vec<ServerUrl>, String> {
    let Input::List(list) = input else {
        return Err(wrong());
    };
    if list.is_empty() {
        return Err("must not be empty".into());
    }
    list.into_iter()
        .map(|t| {
            let u = ServerUrl::parse(t)?;
            let loopback = u
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
                || u.host == "localhost";
            if !u.https && !loopback {
                return Err(format!("{u}: must be https:// (http:// only on loopback)"));
            }
            if u.path != "/" {
                return Err(format!("{u}: give the member without a path"));
            }
            Ok(u)
        })
        .collect()
}

/// The etcd prefix or user name: 1 to 200 characters, no control ones.
fn etcd_name(_: &str, input: Input<'_>) -> Result<String, String> {
    let p = text(&input)?;
    if p.is_empty() || p.len() > 200 || p.chars().any(char::is_control) {
        return Err("must be 1 to 200 characters without control characters".into());
    }
    Ok(p.to_string())
}

fn secret_text(_: &str, input: Input<'_>) -> Result<SecretBytes, String> {
    Ok(SecretBytes::new(text(&input)?.as_bytes().to_vec()))
}

fn token_id_length(_: &str, input: Input<'_>) -> Result<usize, String> {
    let n = match input {
        Input::Text(t) => t.parse::<i64>().ok(),
        Input::Int(i) => Some(i),
        _ => None,
    };
    match n.and_then(|n| usize::try_from(n).ok()) {
        Some(n) if (2..=32).contains(&n) && n.is_multiple_of(2) => Ok(n),
        _ => Err("must be an even number from 2 to 32 (0, an empty public id, cannot match a mapping line)".into()),
    }
}

fn count(_: &str, input: Input<'_>) -> Result<u32, String> {
    match input {
        Input::Int(i) => u32::try_from(i)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| "must be an integer from 1 to 10000".into()),
        _ => Err(wrong()),
    }
}

fn seconds(_: &str, input: Input<'_>) -> Result<Duration, String> {
    let secs = match input {
        #[allow(clippy::cast_precision_loss)]
        Input::Int(i) => i as f64,
        Input::Float(f) => f,
        _ => return Err(wrong()),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err("must be a number of seconds from 0 to 86400".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn prompt(_: &str, input: Input<'_>) -> Result<String, String> {
    let p = text(&input)?;
    if p.chars().any(|c| c.is_control() && c != ' ') || p.chars().count() > 200 {
        return Err("must be at most 200 characters without control characters".into());
    }
    Ok(p.to_string())
}

fn ldap_uris(name: &str, input: Input<'_>) -> Result<Vec<crate::ldap::LdapUri>, String> {
    let list: Vec<String> = match input {
        Input::Text(t) => t
            .split([',', ' '])
            .filter(|u| !u.is_empty())
            .map(|u| {
                // pam_yubico's ldapserver= is a host name.
                if (name == "ldapserver" || name == "ldap_server") && !u.contains("://") {
                    format!("ldap://{u}")
                } else {
                    u.to_string()
                }
            })
            .collect(),
        Input::List(l) => l.into_iter().map(str::to_string).collect(),
        _ => return Err(wrong()),
    };
    if list.is_empty() {
        return Err("no URI given".into());
    }
    if list.len() > 16 {
        return Err("at most 16 URIs".into());
    }
    list.iter()
        .map(|u| crate::ldap::LdapUri::parse(u))
        .collect()
}

fn ldap_dn(_: &str, input: Input<'_>) -> Result<String, String> {
    let t = text(&input)?;
    if t.is_empty() || t.len() > 1024 || t.chars().any(char::is_control) {
        return Err("must be a DN of 1 to 1024 characters without control characters".into());
    }
    Ok(t.to_string())
}

fn ldap_attr(_: &str, input: Input<'_>) -> Result<String, String> {
    let t = text(&input)?;
    if crate::ldap::proto::is_attr_name(t) {
        Ok(t.to_string())
    } else {
        Err("must be an attribute name (letters, digits, '-', '.')".into())
    }
}

fn ldap_prefix(_: &str, input: Input<'_>) -> Result<String, String> {
    let t = text(&input)?;
    if t.is_empty() || t.len() > 128 || t.chars().any(char::is_control) {
        return Err("must be 1 to 128 characters without control characters".into());
    }
    Ok(t.to_string())
}

fn ldap_filter(_: &str, input: Input<'_>) -> Result<crate::ldap::proto::FilterTemplate, String> {
    crate::ldap::proto::FilterTemplate::parse(text(&input)?)
}

/// The PAM line is readable by every local user: a secret there is refused
/// (the TOML key's name is dotted, an argument's is not).
fn refuse_on_pam_line(name: &str) -> Result<(), String> {
    if name.contains('.') {
        Ok(())
    } else {
        Err(
            "a secret is never accepted on the PAM line (every local user can read it); put it in the 0600 config file's [ldap] section"
                .into(),
        )
    }
}

fn file_only_secret(name: &str, input: Input<'_>) -> Result<crate::secret::SecretBytes, String> {
    refuse_on_pam_line(name)?;
    let t = text(&input)?;
    Ok(crate::secret::SecretBytes::new(t.as_bytes().to_vec()))
}

fn file_only_path(name: &str, input: Input<'_>) -> Result<PathBuf, String> {
    refuse_on_pam_line(name)?;
    path(name, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_follow_the_table() {
        assert_eq!(known_args().first().map(String::as_str), Some("config="));
        assert!(known_args().contains(&"cainfo=".to_string()));
        assert_eq!(known_keys().first(), Some(&"mode"));
        assert_eq!(known_keys().last(), Some(&"ldap.connection_timeout"));
        for o in OPTIONS {
            assert!(!o.args.is_empty() || o.toml.is_some(), "{}", o.field);
            assert!(!o.doc.is_empty() && !o.default.is_empty());
        }
    }

    #[test]
    fn unknown_names_never_show_a_value() {
        let key = "mG5be6ZJU1qBGz24yPh/ESM3UdU=";
        for (raw, shown) in [
            ("nulok", "\"nulok\""),
            (
                &format!("key:{key}") as &str,
                "\"key...\" (value not shown)",
            ),
            ("url=https://x/", "\"url...\" (value not shown)"),
            ("mG5b+/x=", "\"m...\" (value not shown)"),
            (key, "\"m...\" (value not shown)"),
            (
                "abcdefghijklmnopqrstuvwxyz0123",
                "(30 characters, not shown)",
            ),
            ("ABCDEFGH", "(8 characters, not shown)"),
        ] {
            assert_eq!(describe_unknown(raw), shown, "{raw}");
        }
    }
}
