//! One log line per attempt (SPEC §8), built only from fields that are
//! safe to log: service, user, remote host, public id, mode, backend,
//! outcome, reason and elapsed milliseconds. User-controlled text is
//! escaped and truncated.

use core::fmt::Write as _;

use yubiotp_core::PublicId;

use crate::host::Level;
use crate::outcome::Outcome;

/// Escapes control and non-ASCII characters as `\xNN` and cuts the text to
/// `max` characters (marking the cut with `…`).
#[must_use]
pub fn escape(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if c.is_ascii_graphic() || c == ' ' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// What one attempt did, filled in as the flow goes.
#[derive(Debug, Default, Clone)]
pub struct AttemptRecord {
    /// PAM service.
    pub service: Option<String>,
    /// User name as PAM gave it.
    pub user: Option<String>,
    /// Remote host.
    pub rhost: Option<String>,
    /// The OTP's public id, once parsed.
    pub public_id: Option<PublicId>,
    /// `cloud`, `local`, `hybrid`.
    pub mode: Option<&'static str>,
    /// Which backend decided.
    pub backend: Option<crate::engine::Backend>,
}

impl AttemptRecord {
    /// The summary line and its level.
    #[must_use]
    pub fn line(&self, outcome: &Outcome, elapsed_ms: u128) -> (Level, String) {
        let opt = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "-".to_string(), |s| escape(s, 64))
        };
        let mut line = format!(
            "service={} user=\"{}\" rhost={} pubid={} mode={} backend={} outcome={}",
            opt(&self.service),
            opt(&self.user),
            opt(&self.rhost),
            self.public_id
                .map_or_else(|| "-".to_string(), |p| p.to_string()),
            self.mode.unwrap_or("-"),
            self.backend.map_or("-", crate::engine::Backend::name),
            outcome.name(),
        );
        if !outcome.reason().is_empty() {
            let _ = write!(line, " reason=\"{}\"", escape(outcome.reason(), 300));
        }
        let _ = write!(line, " elapsed_ms={elapsed_ms}");
        let level = match outcome {
            Outcome::Success(_) | Outcome::Ignore(_) | Outcome::UserUnknown(_) => Level::Notice,
            Outcome::AuthErr(_) | Outcome::ConvErr(_) => Level::Warning,
            Outcome::AuthInfoUnavail(_) | Outcome::ServiceErr(_) => Level::Err,
        };
        (level, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_injection() {
        assert_eq!(escape("alice\nroot", 64), "alice\\x0aroot");
        assert_eq!(escape("a\x1b[31m\"", 64), "a\\x1b[31m\\\"");
        assert_eq!(escape(&"x".repeat(100), 4), "xxxx…");
        assert_eq!(escape("é", 4), "\\xc3\\xa9");
    }
}
