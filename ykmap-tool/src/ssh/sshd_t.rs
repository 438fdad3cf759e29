//! Parsing the text printed by `sshd -T`: the effective settings, and the
//! methods of `AuthenticationMethods`.

use core::fmt;
use std::collections::BTreeMap;

/// The settings of `sshd -T` that matter here (keys are lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshdSettings {
    values: BTreeMap<String, String>,
}

impl SshdSettings {
    /// The value of `key` (lower case), as printed by `sshd -T`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub(super) fn yes(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v.eq_ignore_ascii_case("yes"))
    }

    /// Whether keyboard-interactive authentication is on (older sshd also
    /// print `challengeresponseauthentication`).
    #[must_use]
    pub fn kbd_interactive(&self) -> Option<bool> {
        self.yes("kbdinteractiveauthentication")
            .or_else(|| self.yes("challengeresponseauthentication"))
    }

    /// Whether `ForceCommand` runs the SSH helper `yubiotp-ssh` (by any
    /// path; sshd -T prints `forcecommand none` without one).
    #[must_use]
    pub fn force_command_is_helper(&self) -> bool {
        self.get("forcecommand")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|w| w.rsplit('/').next())
            .is_some_and(|base| base == "yubiotp-ssh")
    }

    /// `AuthenticationMethods` as lists of methods; `None` for `any` (or
    /// when absent).
    #[must_use]
    pub fn method_lists(&self) -> Option<Vec<Vec<Method>>> {
        let v = self.get("authenticationmethods")?;
        if v.trim().eq_ignore_ascii_case("any") || v.trim().is_empty() {
            return None;
        }
        Some(
            v.split_whitespace()
                .map(|list| list.split(',').map(Method::parse).collect())
                .collect(),
        )
    }
}

/// One method of an `AuthenticationMethods` list, e.g. `keyboard-interactive:pam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `publickey`, `password`, `keyboard-interactive`, …
    pub name: String,
    /// The part after `:`, if any (`pam` for keyboard-interactive).
    pub sub: Option<String>,
}

impl Method {
    fn parse(s: &str) -> Self {
        match s.split_once(':') {
            Some((n, sub)) => Self {
                name: n.to_ascii_lowercase(),
                sub: Some(sub.to_ascii_lowercase()),
            },
            None => Self {
                name: s.to_ascii_lowercase(),
                sub: None,
            },
        }
    }

    pub(super) fn is_kbd(&self) -> bool {
        self.name == "keyboard-interactive"
    }

    /// Whether sshd runs the PAM auth stack for this method.
    pub(super) fn uses_pam(&self) -> bool {
        self.name == "password" || (self.is_kbd() && self.sub.as_deref().is_none_or(|s| s == "pam"))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sub {
            Some(s) => write!(f, "{}:{s}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The list as written in `AuthenticationMethods` (`a,b:c`).
pub(super) fn list_text(list: &[Method]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the text printed by `sshd -T`: one `keyword value…` per line.
#[must_use]
pub fn parse_sshd_t(text: &str) -> SshdSettings {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        values
            .entry(k.to_ascii_lowercase())
            .or_insert_with(|| v.trim().to_string());
    }
    SshdSettings { values }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::fixtures::*;
    use crate::ssh::{ProblemKind, Recipe, check, recipe};

    #[test]
    fn sshd_t_parsing() {
        let s = parse_sshd_t(&key_then_otp_sshd());
        assert_eq!(s.get("usepam"), Some("yes"));
        assert_eq!(s.kbd_interactive(), Some(true));
        assert_eq!(recipe(&s), Recipe::KeyThenOtp);
        let lists = s.method_lists().unwrap();
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0][1].to_string(), "keyboard-interactive:pam");
        assert_eq!(parse_sshd_t(DEBIAN_STOCK).method_lists(), None);
        // Nothing at all.
        assert_eq!(
            kinds(&check("", "")),
            vec![
                ProblemKind::SshdOutputIncomplete,
                ProblemKind::NoPamMethod,
                ProblemKind::MethodsAny,
                ProblemKind::ModuleMissing
            ]
        );
    }
}
