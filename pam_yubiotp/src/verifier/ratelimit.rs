//! The verifier's rate limit, per caller uid (pam_unix has none).
//!
//! One file per uid, `<ratelimit_dir>/<uid>` (root-only dir, 0600 files,
//! written with [`crate::atomic`] under `<uid>.lock`, so a crash leaves the
//! old or the new count), holding `failures last_failure_ms locked_until_ms`
//! on `CLOCK_BOOTTIME` (monotonic, counts suspend; `/run` starts empty at
//! boot, so the clock and the files begin together; setting the wall clock
//! unlocks nothing).
//!
//! A failure within `window` of the previous one (or of the end of the
//! lockout) adds to the count, else
//! the count starts again at 1. From `max_failures` on, every failure locks
//! the uid out for `window · 2^(count − max_failures)`, at most
//! `max_backoff`; while locked, the helper refuses without validating (the
//! OTP is not consumed). A success removes the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::atomic::{self, Perms};
use crate::config::VerifierSettings;
use crate::fs_policy::{self, FilePolicy, OpenError, Owner};
use crate::store::StoreError;

const POLICY: FilePolicy = FilePolicy {
    owner: Owner::Root,
    forbidden_mode: 0o077,
    max_size: 256,
};

/// The state of one uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// Failures counted.
    pub failures: u32,
    /// When the last one was (ms of CLOCK_BOOTTIME).
    pub last_failure_ms: u64,
    /// Refuse until then (ms of CLOCK_BOOTTIME).
    pub locked_until_ms: u64,
}

impl State {
    fn parse(text: &str) -> Option<Self> {
        let mut it = text.split_ascii_whitespace().map(str::parse::<u64>);
        let (Some(Ok(f)), Some(Ok(l)), Some(Ok(u)), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return None;
        };
        Some(Self {
            failures: u32::try_from(f).ok()?,
            last_failure_ms: l,
            locked_until_ms: u,
        })
    }

    /// The state after one more failure at `now`.
    #[must_use]
    pub fn after_failure(self, now: u64, limits: &VerifierSettings) -> Self {
        let window = ms(limits.window);
        // Counted from the end of a lockout too: the attempts refused during
        // it are not failures, and the backoff must still grow after it.
        let since = now.saturating_sub(self.last_failure_ms.max(self.locked_until_ms));
        let failures = if self.failures > 0 && since <= window {
            self.failures.saturating_add(1)
        } else {
            1
        };
        let locked_until_ms = if failures >= limits.max_failures {
            let doublings = (failures - limits.max_failures).min(32);
            let lock = window
                .saturating_mul(1u64 << doublings)
                .min(ms(limits.max_backoff));
            now.saturating_add(lock)
        } else {
            self.locked_until_ms
        };
        Self {
            failures,
            last_failure_ms: now,
            locked_until_ms,
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> Result<u64, String> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map_err(|e| format!("CLOCK_BOOTTIME: {e}"))?;
    let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
    Ok(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000))
}

/// The rate limit of one caller uid.
#[derive(Debug)]
pub struct Limiter {
    limits: VerifierSettings,
    dir: PathBuf,
    file: PathBuf,
    lock: PathBuf,
}

impl Limiter {
    /// For `uid` under `limits`.
    #[must_use]
    pub fn new(limits: &VerifierSettings, uid: u32) -> Self {
        let dir = limits.ratelimit_dir.clone();
        Self {
            file: dir.join(uid.to_string()),
            lock: dir.join(format!("{uid}.lock")),
            dir,
            limits: limits.clone(),
        }
    }

    /// Makes sure the directory exists (0700 root, parents 0755) and is
    /// trusted: root-owned, nothing for group/other, a root-owned chain.
    fn ensure_dir(&self) -> Result<(), String> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        if let Some(parent) = self.dir.parent()
            && !parent.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", self.dir.display())),
        }
        let meta = std::fs::symlink_metadata(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o077 != 0 {
            return Err(format!(
                "{}: must be a directory owned by root with mode 0700",
                self.dir.display()
            ));
        }
        fs_policy::check_dir_chain(&self.dir).map_err(|e| e.to_string())
    }

    fn read(&self) -> Result<State, String> {
        match fs_policy::read_checked(&self.file, &POLICY) {
            Ok(bytes) => core::str::from_utf8(&bytes)
                .ok()
                .and_then(State::parse)
                .ok_or_else(|| format!("{}: not a rate-limit state", self.file.display())),
            Err(OpenError::NotFound(_)) => Ok(State::default()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Takes the uid's lock for a whole attempt, so attempts of one uid run
    /// one at a time: N helpers started at once cannot all pass the
    /// lockout check before any failure is counted. Waits at most
    /// [`ADMIT_WAIT`] for an attempt in progress.
    ///
    /// # Errors
    /// An untrusted directory, or the lock not had in time (fail closed).
    pub fn admit(&self) -> Result<Admission<'_>, String> {
        self.ensure_dir()?;
        let lock = atomic::lock_exclusive(&self.lock, Owner::Root, ADMIT_WAIT)
            .map_err(|e| e.to_string())?;
        Ok(Admission {
            limiter: self,
            _lock: lock,
        })
    }

    /// `Some(time left)` when the uid is locked out now.
    ///
    /// # Errors
    /// An untrusted or unreadable directory or state (fail closed).
    pub fn check(&self) -> Result<Option<Duration>, String> {
        self.admit()?.locked_for()
    }

    /// Counts one failure.
    ///
    /// # Errors
    /// When the state cannot be read or written.
    pub fn failure(&self) -> Result<(), String> {
        self.admit()?.failure()
    }

    /// A success: the count is gone.
    ///
    /// # Errors
    /// When the state cannot be removed.
    pub fn success(&self) -> Result<(), String> {
        self.admit()?.success()
    }

    /// The state file (for tests and `ykmap check`).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// How long an attempt waits for another attempt of the same uid.
pub const ADMIT_WAIT: Duration = Duration::from_secs(30);

/// One attempt of a uid, holding its lock (see [`Limiter::admit`]).
#[derive(Debug)]
pub struct Admission<'a> {
    limiter: &'a Limiter,
    _lock: atomic::Lock,
}

impl Admission<'_> {
    /// `Some(time left)` when the uid is locked out now.
    ///
    /// # Errors
    /// An unreadable state (fail closed).
    pub fn locked_for(&self) -> Result<Option<Duration>, String> {
        let state = self.limiter.read()?;
        let now = now_ms()?;
        Ok((state.locked_until_ms > now)
            .then(|| Duration::from_millis(state.locked_until_ms - now)))
    }

    /// Counts one failure.
    ///
    /// # Errors
    /// When the state cannot be read or written.
    pub fn failure(&self) -> Result<(), String> {
        let l = self.limiter;
        let next = l.read()?.after_failure(now_ms()?, &l.limits);
        let text = format!(
            "{} {} {}\n",
            next.failures, next.last_failure_ms, next.locked_until_ms
        );
        let prefix = ".ratelimit.tmp.";
        atomic::replace_durably(
            &l.dir,
            &l.file,
            prefix,
            text.as_bytes(),
            Perms::PRIVATE,
            &atomic::no_hook,
        )
        .map_err(|e: StoreError| e.to_string())
    }

    /// A success: the count is gone.
    ///
    /// # Errors
    /// When the state cannot be removed.
    pub fn success(&self) -> Result<(), String> {
        let l = self.limiter;
        match std::fs::remove_file(&l.file) {
            Ok(()) => atomic::sync_dir(&l.dir).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", l.file.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> VerifierSettings {
        VerifierSettings {
            helper: PathBuf::from("/x"),
            max_failures: 5,
            window: Duration::from_secs(60),
            failure_delay: Duration::ZERO,
            max_backoff: Duration::from_secs(300),
            ratelimit_dir: PathBuf::from("/x"),
        }
    }

    #[test]
    fn five_failures_in_a_minute_lock_and_backoff_doubles_to_five_minutes() {
        let l = limits();
        let mut s = State::default();
        for i in 0..4 {
            s = s.after_failure(1000 + i * 1000, &l);
            assert_eq!(s.locked_until_ms, 0, "{i}");
        }
        s = s.after_failure(5000, &l);
        assert_eq!(s.failures, 5);
        assert_eq!(s.locked_until_ms, 5000 + 60_000);
        s = s.after_failure(70_000, &l);
        assert_eq!(s.locked_until_ms, 70_000 + 120_000);
        s = s.after_failure(200_000, &l);
        assert_eq!(s.locked_until_ms, 200_000 + 240_000);
        s = s.after_failure(250_000, &l);
        assert_eq!(s.locked_until_ms, 250_000 + 300_000, "capped");
        // A failure long after the last one starts again.
        let t = s.after_failure(10_000_000, &l);
        assert_eq!(t.failures, 1);
    }

    #[test]
    fn state_round_trips_and_junk_is_refused() {
        assert_eq!(
            State::parse("3 10 20\n"),
            Some(State {
                failures: 3,
                last_failure_ms: 10,
                locked_until_ms: 20
            })
        );
        for junk in ["", "1 2", "1 2 3 4", "a b c", "-1 2 3"] {
            assert_eq!(State::parse(junk), None, "{junk}");
        }
    }
}
