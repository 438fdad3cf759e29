//! The one way tests collect the module's log lines.
//!
//! - In process (the scripted fake host, the cloud validator): the test's
//!   `Log` implementation pushes every line into a [`CapturedLog`].
//! - Through libpam under pam_wrapper: `pam_syslog` lines are echoed on
//!   stderr as `SYSLOG(<prio>)…`; [`pam_wrapper_syslog`] picks them out.
//!
//! The level type is the caller's (`pam_yubiotp::host::Level`), so this
//! crate does not depend on the module.

use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Log lines in the order they were written, each with its level.
#[derive(Debug)]
pub struct CapturedLog<L>(Mutex<Vec<(L, String)>>);

impl<L> Default for CapturedLog<L> {
    fn default() -> Self {
        Self(Mutex::new(Vec::new()))
    }
}

impl<L: Copy + PartialEq + Debug> CapturedLog<L> {
    fn guard(&self) -> MutexGuard<'_, Vec<(L, String)>> {
        // A test that panicked while logging fails anyway; keep the lines.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one line (what the test's `Log::log` calls).
    pub fn push(&self, level: L, line: &str) {
        self.guard().push((level, line.to_string()));
    }

    /// Every line so far.
    #[must_use]
    pub fn lines(&self) -> Vec<(L, String)> {
        self.guard().clone()
    }

    /// Every line as `<level>: <line>\n`, for messages and `contains` checks.
    #[must_use]
    pub fn text(&self) -> String {
        self.guard()
            .iter()
            .map(|(l, s)| format!("{l:?}: {s}\n"))
            .collect()
    }

    /// True when some line at `level` contains `needle`.
    #[must_use]
    pub fn has(&self, level: L, needle: &str) -> bool {
        self.guard()
            .iter()
            .any(|(l, s)| *l == level && s.contains(needle))
    }

    /// Panics when any line contains any of `secrets`.
    pub fn assert_none_contains(&self, secrets: &[&str]) {
        for (_, line) in self.guard().iter() {
            for secret in secrets {
                assert!(!line.contains(secret), "log line leaks {secret:?}: {line}");
            }
        }
    }
}

/// The syslog lines in pam_wrapper's stderr (`SYSLOG(<prio>)…`), in order.
#[must_use]
pub fn pam_wrapper_syslog(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("SYSLOG(")).collect()
}
