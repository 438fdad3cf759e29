//! `ykmap migrate`: translates the `pam_yubico.so` lines of a PAM service
//! file into `pam_yubiotp.so` lines plus a `yubiotp.toml` fragment, using
//! the module's own table of pam_yubico options
//! (`pam_yubiotp::config::compat`). `id=`/`key=` (and the LDAP options)
//! move out of the world-readable PAM line into the 0600 TOML file.
//!
//! The preview (without `--write`) never prints a secret: `cloud.key` and
//! `ldap.bind_password` are shown redacted; they are written only with
//! `--write`, into the 0600 file. Anything that can't be translated is
//! named with the reason, nothing is written, and the exit status is 1.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pam_yubiotp::config::compat::{self, How};
use pam_yubiotp::config::options::{CHALRESP_REFUSAL, describe_unknown, known_args};
use pam_yubiotp::config::{DEFAULT_CONFIG, HttpProxy, ServerUrl};
use pam_yubiotp::fs_policy::Owner;

use crate::cli::{GlobalArgs, MigrateArgs};
use crate::error::{CliError, CliResult};
use crate::ssh::pam_fields;
use crate::{input, note};
use crate::{locked_edit, settings};

/// Largest service file read.
const SERVICE_MAX: usize = 1 << 20;

/// TOML keys whose values are secrets: redacted in the preview.
const SECRET_KEYS: &[&str] = &["cloud.key", "ldap.bind_password"];

/// One TOML value of the fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Int(u64),
    Str(String),
    Bool(bool),
}

impl Value {
    fn toml(&self) -> String {
        match self {
            Self::Int(i) => i.to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Str(s) => {
                let mut out = String::from("\"");
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c if c.is_control() => {
                            let _ = write!(out, "\\u{:04X}", u32::from(c));
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
                out
            }
        }
    }
}

/// The whole translation of one file.
#[derive(Debug, Default)]
struct Migration {
    /// `(line number, new line)` for each pam_yubico line translated.
    lines: Vec<(usize, String)>,
    /// The new file text.
    text: String,
    /// Dotted TOML key → value and the line it came from, in first-seen order.
    toml: Vec<(String, Value, usize)>,
    /// Remarks: what was dropped and why.
    notes: Vec<String>,
    /// What could not be translated, and why.
    left: Vec<String>,
    /// Lines that are already pam_yubiotp's.
    ours: Vec<usize>,
}

fn base_name(module: &str) -> &str {
    module.rsplit('/').next().unwrap_or(module)
}

/// The PAM line is `[-]type control module args…`; `control` may be a
/// `[…]` group (kept whole by [`pam_fields`]): `(type, control, module,
/// arguments)`.
fn split_line(fields: &[String]) -> Option<(&str, &str, &str, &[String])> {
    match fields {
        [ty, control, module, args @ ..] => Some((ty, control, module, args)),
        _ => None,
    }
}

/// A field as the module gets it: `[a b]` → `a b`.
fn unbracket(f: &str) -> &str {
    f.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(f)
}

fn bracket(arg: &str) -> String {
    if arg.contains(char::is_whitespace) || arg.contains(']') {
        format!("[{}]", arg.replace(']', "\\]"))
    } else {
        arg.to_string()
    }
}

impl Migration {
    fn set(&mut self, key: String, value: Value, line: usize, here: &str) {
        if let Some((_, old, first)) = self.toml.iter().find(|(k, _, _)| *k == key) {
            if *old != value {
                self.left.push(format!(
                    "{here}: {key} differs from line {first}'s; one configuration file holds one value: give this service its own file (config=PATH)"
                ));
            }
            return;
        }
        self.toml.push((key, value, line));
    }

    /// Translates one argument of a pam_yubico line into `out` (the new
    /// line's arguments) or the TOML fragment.
    fn arg(&mut self, raw: &str, out: &mut Vec<String>, line: usize, here: &str) {
        let arg = unbracket(raw);
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let Some(row) = compat::find(name) else {
            let spelled = if value.is_some() {
                format!("{name}=")
            } else {
                name.to_string()
            };
            if known_args().contains(&spelled) {
                out.push(bracket(arg));
            } else {
                self.left.push(format!(
                    "{here}: argument {} is not a pam_yubico option",
                    describe_unknown(arg)
                ));
            }
            return;
        };
        if row.value != value.is_some() {
            self.left.push(format!(
                "{here}: {name} {}",
                if row.value {
                    "needs a value"
                } else {
                    "takes no value"
                }
            ));
            return;
        }
        let v = value.unwrap_or("");
        match row.how {
            How::Same => self.same(name, v, arg, out, here),
            How::Renamed(ours) if name == "url" => match url_template(v) {
                Ok(u) => out.push(bracket(&format!("{ours}={u}"))),
                Err(e) => self.left.push(format!("{here}: url: {e}")),
            },
            How::Renamed(ours) => out.push(bracket(&format!("{ours}={v}"))),
            How::Secret("cloud.id") => match v.parse::<u64>() {
                Ok(id) if id > 0 => self.set("cloud.id".into(), Value::Int(id), line, here),
                _ => self.left.push(format!(
                    "{here}: id is not a positive integer (value not shown)"
                )),
            },
            How::Secret(key) => self.set(key.into(), Value::Str(v.into()), line, here),
            How::Warned(why) => self.notes.push(format!(
                "{here}: {name} dropped: pam_yubiotp ignores it ({why})"
            )),
            How::Refused(why) => self.left.push(format!("{here}: {name}: {why}")),
            How::Ldap(key) => {
                let value = match (name, value) {
                    (_, None) => Value::Bool(true),
                    ("ldapserver" | "ldap_server", Some(host)) => {
                        Value::Str(format!("ldap://{host}"))
                    }
                    ("ldap_connection_timeout", Some(t)) => match t.parse::<u64>() {
                        Ok(t) => Value::Int(t),
                        Err(_) => {
                            self.left.push(format!(
                                "{here}: ldap_connection_timeout is not a number of seconds"
                            ));
                            return;
                        }
                    },
                    (_, Some(v)) => Value::Str(v.into()),
                };
                self.set(format!("ldap.{key}"), value, line, here);
            }
        }
    }

    fn same(&mut self, name: &str, v: &str, arg: &str, out: &mut Vec<String>, here: &str) {
        match name {
            "mode" => match v {
                "client" | "cloud" => out.push("mode=cloud".into()),
                "challenge-response" => self.left.push(format!("{here}: mode: {CHALRESP_REFUSAL}")),
                _ => self
                    .left
                    .push(format!("{here}: mode={v:?} is not a pam_yubico mode")),
            },
            "proxy" => match HttpProxy::parse(v) {
                Ok(_) => out.push(bracket(arg)),
                Err(e) => self.left.push(format!("{here}: proxy: {e}")),
            },
            "urllist" => match v
                .split(';')
                .filter(|u| !u.is_empty())
                .try_for_each(|u| ServerUrl::parse(u).map(drop))
            {
                Ok(()) => out.push(bracket(arg)),
                Err(e) => self.left.push(format!("{here}: urllist: {e}")),
            },
            _ => out.push(bracket(arg)),
        }
    }

    /// The fragment; secrets shown as a placeholder unless `full`.
    fn fragment(&self, full: bool) -> String {
        let mut out = String::new();
        let mut section = "";
        let mut keys: Vec<&(String, Value, usize)> = self.toml.iter().collect();
        // Top-level keys first, then [cloud], then [ldap].
        keys.sort_by_key(|(k, _, _)| match k.split_once('.') {
            None => 0,
            Some(("cloud", _)) => 1,
            Some(_) => 2,
        });
        for (key, value, line) in keys {
            let (sec, name) = key.split_once('.').unwrap_or(("", key));
            if sec != section {
                let _ = writeln!(out, "[{sec}]");
                section = sec;
            }
            if SECRET_KEYS.contains(&key.as_str()) && !full {
                let _ = writeln!(
                    out,
                    "{name} = \"...\"  # from line {line}, not shown: written only with --write"
                );
            } else {
                let _ = writeln!(out, "{name} = {}", value.toml());
            }
        }
        out
    }
}

/// pam_yubico's `url=` template (`https://h/wsapi/2.0/verify?id=%d&otp=%s`):
/// the part before `?`, which must be a validation URL.
fn url_template(t: &str) -> Result<String, String> {
    let (base, query) = t.split_once('?').ok_or("not a template with ?...otp=%s")?;
    if !query.contains("%s") {
        return Err("the template has no %s for the OTP".into());
    }
    ServerUrl::parse(base)?;
    Ok(base.to_string())
}

fn translate(text: &str, shown: &str, config_arg: Option<&str>) -> Migration {
    let mut m = Migration::default();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        let here = format!("{shown}:{n}");
        let body = line.strip_suffix('\n').unwrap_or(line);
        let content = body.split('#').next().unwrap_or("");
        let fields = pam_fields(content);
        let Some((ty, control, module, rest)) = split_line(&fields) else {
            m.text.push_str(line);
            continue;
        };
        let module = base_name(module);
        if module == "pam_yubiotp.so" {
            m.ours.push(n);
        }
        if module != "pam_yubico.so" {
            m.text.push_str(line);
            continue;
        }
        if body.trim_end().ends_with('\\') {
            m.left.push(format!(
                "{here}: a backslash-continued line: join it into one line first"
            ));
            m.text.push_str(line);
            continue;
        }
        let mut args: Vec<String> = config_arg.map(|c| vec![bracket(c)]).unwrap_or_default();
        for raw in rest {
            m.arg(raw, &mut args, n, &here);
        }
        let mut new = format!("{ty} {control} pam_yubiotp.so");
        for a in &args {
            new.push(' ');
            new.push_str(a);
        }
        m.text.push_str(&new);
        if line.ends_with('\n') {
            m.text.push('\n');
        }
        m.lines.push((n, new));
    }
    let cloud = !m.lines.is_empty();
    if cloud && !m.toml.iter().any(|(k, _, _)| k == "cloud.key") {
        m.left.push(format!(
            "{shown}: no key= (pam_yubico then runs unsigned): pam_yubiotp needs the API key as cloud.key in the configuration file (get one at https://upgrade.yubico.com/getapikey/)"
        ));
    }
    m
}

/// Runs `ykmap migrate`.
///
/// # Errors
/// Input errors (unreadable file), anything left untranslated (exit 1,
/// nothing written), or a failed write.
pub fn run(args: &MigrateArgs, g: &GlobalArgs) -> CliResult {
    let stdin = args.file == Path::new("-");
    if stdin && args.write {
        return Err(CliError::input(
            "--write needs a service file, not - (standard input)",
        ));
    }
    let file = args.file.to_string_lossy();
    // The file holds the API key: the buffer is wiped on drop.
    let bytes = input::read_input(&file, SERVICE_MAX)?;
    let text = zeroize::Zeroizing::new(
        core::str::from_utf8(&bytes)
            .map_err(|_| CliError::input(format!("{file}: not UTF-8")))?
            .to_string(),
    );
    let shown = if stdin {
        "-".to_string()
    } else {
        args.file.display().to_string()
    };
    let config_path = match &g.config {
        Some(p) => settings::absolute(p)?,
        None => PathBuf::from(DEFAULT_CONFIG),
    };
    // The module reads the default file by itself; another one is named
    // on the line (absolute, as the module wants it).
    let config_arg = (config_path != Path::new(DEFAULT_CONFIG))
        .then(|| format!("config={}", config_path.display()));
    let m = translate(&text, &shown, config_arg.as_deref());
    for n in &m.ours {
        note(&format!(
            "{shown}:{n}: already pam_yubiotp.so; left as it is"
        ));
    }
    if m.lines.is_empty() && m.left.is_empty() {
        println!("{shown}: no pam_yubico.so line; nothing to change");
        return Ok(());
    }
    println!("# pam_yubiotp.so lines for {shown} (each replaces the pam_yubico.so line):");
    for (n, line) in &m.lines {
        println!("{shown}:{n}: {line}");
    }
    let fragment = m.fragment(false);
    if !fragment.is_empty() {
        println!(
            "# yubiotp.toml fragment for {} (root-owned, mode 0600):",
            config_path.display()
        );
        print!("{fragment}");
    }
    for n in &m.notes {
        note(n);
    }
    if !m.left.is_empty() {
        for l in &m.left {
            eprintln!("ykmap: not translated: {l}");
        }
        return Err(CliError::failed(format!(
            "{} item(s) not translated; nothing written",
            m.left.len()
        )));
    }
    if args.write {
        write(args, &m, &config_path, &text)?;
    }
    Ok(())
}

fn write(args: &MigrateArgs, m: &Migration, config_path: &Path, original: &str) -> CliResult {
    if !m.toml.is_empty() {
        // The fragment holds secrets (cloud.key, ldap.bind_password), and an
        // existing (empty) file keeps its owner and mode: it must already
        // be root's and private.
        if let Ok(meta) = std::fs::symlink_metadata(config_path) {
            use std::os::unix::fs::MetadataExt as _;
            if meta.uid() != 0 || meta.mode() & 0o077 != 0 || !meta.file_type().is_file() {
                return Err(CliError::failed(format!(
                    "{} exists but is not a root-owned file of mode 0600 (uid {}, mode {:o}): \
                     the fragment holds secrets; fix it or remove it (nothing written)",
                    config_path.display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                )));
            }
        }
        let full = m.fragment(true);
        let wrote = locked_edit::edit_locked(config_path, 64 << 10, 0o600, Owner::Root, |old| {
            match old {
                // A second run (e.g. --in-place after checking the copy).
                Some(b) if b == full.as_bytes() => Ok((None, false)),
                Some(b) if !b.iter().all(u8::is_ascii_whitespace) => {
                    Err(CliError::failed(format!(
                        "{} already exists: merge the fragment above into it by hand (nothing written)",
                        config_path.display()
                    )))
                }
                _ => Ok((Some(full.into_bytes()), true)),
            }
        })?;
        if wrote {
            println!("wrote {} (mode 0600)", config_path.display());
        } else {
            println!("{} already holds the fragment", config_path.display());
        }
    }
    let target = if args.in_place {
        args.file.clone()
    } else {
        let mut name = args.file.clone().into_os_string();
        name.push(".pam_yubiotp");
        PathBuf::from(name)
    };
    let new = m.text.as_bytes().to_vec();
    locked_edit::edit_locked(&target, 1 << 20, 0o644, Owner::Root, |old| {
        if args.in_place && old != Some(original.as_bytes()) {
            return Err(CliError::failed(format!(
                "{} changed while it was translated; nothing written",
                target.display()
            )));
        }
        Ok((Some(new), ()))
    })?;
    println!("wrote {}", target.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_default_line() {
        let m = translate(
            "auth required pam_yubico.so mode=client try_first_pass id=16 key=bWc1YmU2WkpVMXFCR3oyNHlQaC9FU00zVWRVPQ==\n",
            "f",
            None,
        );
        assert!(m.left.is_empty(), "{:?}", m.left);
        assert_eq!(
            m.lines,
            vec![(
                1,
                "auth required pam_yubiotp.so mode=cloud try_first_pass".to_string()
            )]
        );
        assert!(!m.fragment(false).contains("bWc1"));
        assert!(m.fragment(true).contains("key = \"bWc1"));
    }

    #[test]
    fn brackets_and_comments() {
        let m = translate(
            "auth [success=1 default=ignore] /lib/security/pam_yubico.so [urllist=https://a/v] key=a2V5 id=1 # note\n",
            "f",
            Some("config=/etc/x.toml"),
        );
        assert!(m.left.is_empty(), "{:?}", m.left);
        assert_eq!(
            m.lines[0].1,
            "auth [success=1 default=ignore] pam_yubiotp.so config=/etc/x.toml urllist=https://a/v"
        );
    }
}
