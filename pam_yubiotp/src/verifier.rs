//! The privileged verifier, `yubiotp-verify`: both halves of its protocol.
//!
//! A caller that is not root (a screen locker, `ykmap verify` run by a
//! user, the SSH helper) cannot read the 0600 config, key store or counter
//! state. Like `pam_unix` → `unix_chkpwd`, it runs a setuid-root helper
//! that validates **the caller's own** OTP and answers with an exit code.
//! The helper runs the very same [`crate::session`] flow (config, mapping,
//! engine, stores) behind a [`Host`] that takes the OTP from stdin: there is
//! no second validation path.
//!
//! # Protocol
//!
//! - `argv = [helper, USER, SERVICE]`, exactly; empty environment; stdin a
//!   socket carrying one line: the OTP (at most [`MAX_INPUT`] bytes, a
//!   trailing `\n` optional), never in argv — and, only when the caller
//!   knows that the mapping binds as the user (`ldap_bind_as_user` on its
//!   PAM line, or a config file it can read that sets
//!   `ldap.bind_as_user`), a second line: the user's password (1 to
//!   [`MAX_PASSWORD`] bytes, no `\n`). The helper takes a password line
//!   only when its own config sets `ldap.bind_as_user` (otherwise: a
//!   configuration error),
//!   and with that setting and no password line answers unavailable without
//!   asking the directory. The password is wiped when the attempt ends;
//!   stdout: at most one short reason line for the caller's log (never a
//!   key, private id, counter, the OTP or the password); stderr:
//!   `/dev/null`.
//! - The exit code is the answer ([`exit`]); [`answer_from`] maps it. A
//!   signal, a timeout or an unknown code is [`VerifierAnswer::Unavailable`]
//!   (PAM_AUTHINFO_UNAVAIL), never success.
//!
//! # What the helper trusts
//!
//! Nothing from the caller but USER, SERVICE, the OTP line and the
//! password line. It closes
//! every inherited descriptor above 2, clears its environment, reads only
//! the config path compiled into its binary (`/etc/yubiotp/yubiotp.toml`;
//! the test build in the tests crate compiles in a path beside itself), and
//! takes the caller from its real uid: a caller that is not root may verify
//! only itself (USER must be the passwd name of the real uid). A tty on
//! stdin, a closed stdin, a wrong argc or more than one OTP line is misuse:
//! refused and logged with the caller's uid. A wrong password (with
//! `ldap.bind_as_user`) is a rejection and counts as a failure. Per caller uid it counts
//! failures in a root-only directory ([`ratelimit`]) and refuses without
//! validating once the limit is reached. Every valid OTP is consumed
//! (counters committed) before it answers "accepted".

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::audit::escape;
use crate::child::Child;
use crate::config::{self, Settings};
use crate::host::{ConvError, Host, HostError, Level, Log};
use crate::outcome::Outcome;
use crate::secret::SecretBytes;

pub mod ratelimit;

/// Where the package installs the helper (mode 4755 root:root).
pub const DEFAULT_HELPER: &str = "/usr/libexec/yubiotp/yubiotp-verify";
/// The default rate-limit directory (`verifier.ratelimit_dir`).
pub const DEFAULT_RATELIMIT_DIR: &str = "/run/yubiotp/ratelimit";
/// Most bytes the helper reads from stdin: one OTP line (an OTP is at most
/// 64 characters) with room to spare; more is misuse.
pub const MAX_INPUT: usize = 256;
/// Most bytes of the password line (`ldap.bind_as_user`): what the module
/// reads at a prompt at most.
pub const MAX_PASSWORD: usize = crate::prompt::MAX_ANSWER;
/// Most bytes on stdin in all: both lines with their `\n`.
const MAX_STDIN: usize = MAX_INPUT + 1 + MAX_PASSWORD + 1;
/// Most bytes of the reason line the caller reads.
pub const MAX_REASON: usize = 512;
/// Longest USER or SERVICE argument.
pub const MAX_ARG: usize = 256;
/// How long the helper waits for its stdin line.
const STDIN_WAIT: Duration = Duration::from_secs(10);

/// The helper's exit codes: the whole answer.
pub mod exit {
    /// The OTP was valid and fresh and is now consumed.
    pub const ACCEPTED: u8 = 0;
    /// Malformed, not the user's key, replayed, rejected by the backend.
    pub const REJECTED: u8 = 1;
    /// Positively established: the user has no key (`nullok` may apply).
    pub const NO_KEY: u8 = 2;
    /// As [`NO_KEY`], and the config file sets `nullok`.
    pub const NO_KEY_NULLOK: u8 = 3;
    /// The user is not in the passwd database.
    pub const USER_UNKNOWN: u8 = 4;
    /// No definitive answer (server, file or state not usable).
    pub const UNAVAILABLE: u8 = 5;
    /// The configuration is wrong.
    pub const CONFIG_ERROR: u8 = 6;
    /// Misuse: wrong argc, another user, tty or oversized/closed stdin.
    pub const MISUSE: u8 = 7;
    /// Too many failures for this caller uid; nothing was validated.
    pub const RATE_LIMITED: u8 = 8;
}

/// What the helper answered, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifierAnswer {
    /// Exit 0: accepted and consumed.
    Accepted,
    /// Exit 1.
    Rejected(String),
    /// Exit 2 or 3: no key for this user (`nullok_in_config` for 3).
    NoKey {
        /// The config file sets `nullok`.
        nullok_in_config: bool,
        /// The helper's reason.
        reason: String,
    },
    /// Exit 4.
    UserUnknown(String),
    /// Exit 5, a signal, a timeout, an unknown code, a helper that could
    /// not be started.
    Unavailable(String),
    /// Exit 6.
    ConfigError(String),
    /// Exit 7.
    Misuse(String),
    /// Exit 8.
    RateLimited(String),
}

/// Maps an exit code (`None`: killed by a signal, not reaped, timed out)
/// and the reason line to the answer. Only code 0 is `Accepted`.
#[must_use]
pub fn answer_from(code: Option<i32>, reason: &str) -> VerifierAnswer {
    let r = || format!("verifier: {reason}");
    let Some(code) = code else {
        return VerifierAnswer::Unavailable("verifier killed or ended by a signal".into());
    };
    match u8::try_from(code) {
        Ok(exit::ACCEPTED) => VerifierAnswer::Accepted,
        Ok(exit::REJECTED) => VerifierAnswer::Rejected(r()),
        Ok(exit::NO_KEY) => VerifierAnswer::NoKey {
            nullok_in_config: false,
            reason: r(),
        },
        Ok(exit::NO_KEY_NULLOK) => VerifierAnswer::NoKey {
            nullok_in_config: true,
            reason: r(),
        },
        Ok(exit::USER_UNKNOWN) => VerifierAnswer::UserUnknown(r()),
        Ok(exit::UNAVAILABLE) => VerifierAnswer::Unavailable(r()),
        Ok(exit::CONFIG_ERROR) => VerifierAnswer::ConfigError(r()),
        Ok(exit::MISUSE) => VerifierAnswer::Misuse(r()),
        Ok(exit::RATE_LIMITED) => VerifierAnswer::RateLimited(r()),
        _ => VerifierAnswer::Unavailable(format!("verifier exited with unknown code {code}")),
    }
}

/// Asks the helper at `helper` whether `otp` is a valid, fresh OTP of
/// `user` (who must be the caller itself unless the caller is root), for
/// the log's `service`. Waits until `deadline` at most, then kills and
/// reaps the helper (its pid only). SIGCHLD is `SIG_DFL` during the wait
/// (a host with `SIG_IGN` would otherwise lose the exit status).
#[must_use]
pub fn ask(
    helper: &Path,
    user: &str,
    service: &str,
    otp: &SecretBytes,
    deadline: Instant,
) -> VerifierAnswer {
    ask_with_password(helper, user, service, otp, None, deadline)
}

/// [`ask`], with the user's password as the second stdin line when the
/// mapping binds as the user (`ldap.bind_as_user`). A password that
/// cannot be one line (a `\n` in it, or longer than [`MAX_PASSWORD`]) is
/// not sent: unavailable.
#[must_use]
pub fn ask_with_password(
    helper: &Path,
    user: &str,
    service: &str,
    otp: &SecretBytes,
    password: Option<&SecretBytes>,
    deadline: Instant,
) -> VerifierAnswer {
    let extra = password.map_or(0, |p| p.len() + 1);
    let mut line = Zeroizing::new(Vec::with_capacity(otp.len() + 1 + extra));
    line.extend_from_slice(otp.expose());
    line.push(b'\n');
    if let Some(p) = password {
        if p.is_empty() || p.len() > MAX_PASSWORD || p.expose().contains(&b'\n') {
            return VerifierAnswer::Unavailable(format!(
                "ldap.bind_as_user: the password cannot go to the verifier (empty, longer than \
                 {MAX_PASSWORD} bytes, or it holds a newline)"
            ));
        }
        line.extend_from_slice(p.expose());
        line.push(b'\n');
    }
    let _sigchld = crate::ffi::sys::SigchldDefault::new();
    let child = match Child::spawn(helper, &[user, service], Some(line), MAX_REASON) {
        Ok(c) => c,
        Err(e) => {
            return VerifierAnswer::Unavailable(format!(
                "verifier {} could not be started: {e}",
                helper.display()
            ));
        }
    };
    let f = child.run_until(deadline);
    if f.killed {
        return VerifierAnswer::Unavailable("verifier did not answer in time (killed)".into());
    }
    let reason = String::from_utf8_lossy(&f.stdout);
    let reason = escape(reason.trim_end(), 300);
    answer_from(f.status.and_then(|s| s.code()), &reason)
}

/// The verifier's answer as the module's outcome, with the `nullok` of the
/// PAM line (`nullok_arg`) and PAM_DISALLOW_NULL_AUTHTOK applied.
#[must_use]
pub fn outcome_of(answer: VerifierAnswer, nullok_arg: bool, disallow_null: bool) -> Outcome {
    match answer {
        VerifierAnswer::Accepted => Outcome::Success(crate::engine::Accepted::from_verifier()),
        VerifierAnswer::Rejected(r)
        | VerifierAnswer::Misuse(r)
        | VerifierAnswer::RateLimited(r) => Outcome::AuthErr(r),
        VerifierAnswer::NoKey {
            nullok_in_config,
            reason,
        } if (nullok_in_config || nullok_arg) && !disallow_null => Outcome::Ignore(reason),
        VerifierAnswer::NoKey { reason, .. } | VerifierAnswer::UserUnknown(reason) => {
            Outcome::UserUnknown(reason)
        }
        VerifierAnswer::Unavailable(r) => Outcome::AuthInfoUnavail(r),
        VerifierAnswer::ConfigError(r) => Outcome::ServiceErr(r),
    }
}

// ---------------------------------------------------------------- helper

/// The [`Host`] of the helper: USER and SERVICE from argv, the OTP from
/// stdin (handed out once), the password line as PAM_AUTHTOK, no other
/// PAM item, logs to syslog authpriv.
#[derive(Debug)]
struct PipeHost {
    user: String,
    service: String,
    caller_uid: u32,
    otp: Option<SecretBytes>,
    password: Option<SecretBytes>,
}

impl Log for PipeHost {
    fn log(&self, level: Level, line: &str) {
        crate::ffi::sys::syslog_line(level, &format!("caller_uid={} {line}", self.caller_uid));
    }
}

impl Host for PipeHost {
    fn user(&mut self) -> Result<String, HostError> {
        Ok(self.user.clone())
    }
    fn service(&self) -> Option<String> {
        Some(self.service.clone())
    }
    fn rhost(&self) -> Option<String> {
        None
    }
    fn authtok(&self) -> Result<Option<SecretBytes>, HostError> {
        // The password line (`ldap.bind_as_user` only); wiped on drop.
        Ok(self.password.clone())
    }
    fn set_authtok(&mut self, _: &SecretBytes) -> Result<(), HostError> {
        // The caller splits password and OTP itself; nothing goes back.
        Ok(())
    }
    fn prompt_secret(&mut self, _: &str) -> Result<SecretBytes, ConvError> {
        self.otp.take().ok_or(ConvError::NullResponse)
    }
    fn error_message(&mut self, _: &str) {}
}

/// Logs a refusal and ends with `code`, printing `why` for the caller.
fn refuse(caller_uid: u32, code: u8, why: &str) -> ExitCode {
    crate::ffi::sys::syslog_line(
        Level::Warning,
        &format!("caller_uid={caller_uid} refused: {}", escape(why, 200)),
    );
    println!("{}", escape(why, 200));
    ExitCode::from(code)
}

/// A USER or SERVICE argument: UTF-8, 1..=[`MAX_ARG`] bytes, no control
/// characters.
fn plain_arg(raw: &std::ffi::OsStr) -> Option<String> {
    let s = raw.to_str()?;
    (!s.is_empty() && s.len() <= MAX_ARG && !s.chars().any(char::is_control)).then(|| s.to_string())
}

/// What the caller sent: the OTP, and the password line if any.
type Input = (SecretBytes, Option<SecretBytes>);

/// Reads stdin: the OTP line (at most [`MAX_INPUT`] bytes) and an optional
/// password line (at most [`MAX_PASSWORD`]), waiting at most
/// [`STDIN_WAIT`]. `Err` names the misuse (never the bytes).
fn read_input() -> Result<Input, String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    // Read from fd 0 itself: std's stdin buffer would keep a copy of the
    // OTP and password that nothing wipes.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_STDIN + 1));
    let until = Instant::now() + STDIN_WAIT;
    let mut chunk = Zeroizing::new([0u8; 512]);
    // Bounded: each round reads at least one byte or ends, and the buffer
    // is capped; plus the overall wait.
    for _ in 0..=MAX_STDIN + 1 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no OTP line on stdin in time".into());
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let fd = std::io::stdin();
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("stdin: {e}")),
        }
        let room = (MAX_STDIN + 1)
            .saturating_sub(buf.len())
            .clamp(1, chunk.len());
        let n = match nix::unistd::read(fd.as_fd(), chunk.get_mut(..room).unwrap_or_default()) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("stdin: {e}")),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > MAX_STDIN {
            return Err(format!("more than {MAX_STDIN} bytes on stdin"));
        }
    }
    split_input(&buf)
}

/// Splits what stdin held into the OTP line and the optional password
/// line (pure, for the tests). `Err` names the misuse.
fn split_input(buf: &[u8]) -> Result<Input, String> {
    let text: &[u8] = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut lines = text.splitn(3, |b| *b == b'\n');
    let otp = lines.next().unwrap_or_default();
    let password = lines.next();
    if lines.next().is_some() {
        return Err("more than two lines on stdin".into());
    }
    if otp.is_empty() {
        return Err("no OTP on stdin".into());
    }
    if otp.len() > MAX_INPUT {
        return Err(format!("an OTP line of more than {MAX_INPUT} bytes"));
    }
    let password = match password {
        None => None,
        Some([]) => return Err("an empty password line".into()),
        Some(p) if p.len() > MAX_PASSWORD => {
            return Err(format!("a password line of more than {MAX_PASSWORD} bytes"));
        }
        Some(p) => Some(SecretBytes::new(p.to_vec())),
    };
    Ok((SecretBytes::new(otp.to_vec()), password))
}

/// The settings the helper validates with: the compiled-in file only (no
/// argument from anyone), `nullok` forced on so that "no key" comes back
/// as its own outcome (the caller applies `nullok`); the file's own
/// `nullok` is returned beside them.
fn helper_settings(config_path: &Path) -> Result<(Settings, bool), config::ConfigError> {
    let file = config::load_file(config_path, false)?;
    let mut s = config::resolve(file.as_ref(), &config::Layer::default())?;
    let nullok = s.nullok;
    s.nullok = true;
    s.first_pass = config::FirstPass::Prompt;
    Ok((s, nullok))
}

fn exit_for(outcome: &Outcome, nullok_in_config: bool) -> u8 {
    match outcome {
        Outcome::Success(_) => exit::ACCEPTED,
        Outcome::AuthErr(_) | Outcome::ConvErr(_) => exit::REJECTED,
        Outcome::Ignore(_) if nullok_in_config => exit::NO_KEY_NULLOK,
        Outcome::Ignore(_) => exit::NO_KEY,
        Outcome::UserUnknown(_) => exit::USER_UNKNOWN,
        Outcome::AuthInfoUnavail(_) => exit::UNAVAILABLE,
        Outcome::ServiceErr(_) => exit::CONFIG_ERROR,
    }
}

/// The whole `yubiotp-verify` program; `config_path` is compiled into the
/// binary that calls this (never taken from argv or the environment).
#[must_use]
pub fn helper_main(config_path: &Path) -> ExitCode {
    // Whatever was inherited stays out: descriptors above 2, the
    // environment, the umask.
    let stdin_was_open = crate::ffi::sys::fd_is_open(0);
    crate::ffi::sys::close_inherited_fds();
    fill_std_fds();
    crate::ffi::sys::clear_environment();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    crate::ffi::sys::open_authpriv_log();
    let caller_uid = nix::unistd::getuid().as_raw();
    // A file size limit set by the caller would make the counter and
    // rate-limit writes fail (the rate limit then counting nothing): lift
    // it, as root may.
    if let Err(e) = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_FSIZE,
        nix::libc::RLIM_INFINITY,
        nix::libc::RLIM_INFINITY,
    ) {
        return refuse(
            caller_uid,
            exit::UNAVAILABLE,
            &format!("cannot lift the caller's RLIMIT_FSIZE: {e}"),
        );
    }

    let argv: Vec<std::ffi::OsString> = std::env::args_os().take(4).collect();
    let [_, user, service] = argv.as_slice() else {
        return refuse(
            caller_uid,
            exit::MISUSE,
            "usage: yubiotp-verify USER SERVICE (OTP on stdin)",
        );
    };
    let (Some(user), Some(service)) = (plain_arg(user), plain_arg(service)) else {
        return refuse(
            caller_uid,
            exit::MISUSE,
            "USER or SERVICE is not plain text",
        );
    };
    if !stdin_was_open {
        return refuse(caller_uid, exit::MISUSE, "stdin is closed");
    }
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return refuse(caller_uid, exit::MISUSE, "stdin is a terminal");
    }
    if caller_uid != 0 {
        match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(caller_uid)) {
            Ok(Some(pw)) if pw.name == user => {}
            Ok(_) => {
                return refuse(
                    caller_uid,
                    exit::MISUSE,
                    &format!("uid {caller_uid} may verify only itself, not {user:?}"),
                );
            }
            Err(e) => {
                return refuse(
                    caller_uid,
                    exit::UNAVAILABLE,
                    &format!("passwd lookup: {e}"),
                );
            }
        }
    }
    let (otp, password) = match read_input() {
        Ok(o) => o,
        Err(why) => return refuse(caller_uid, exit::MISUSE, &why),
    };
    let (settings, nullok_in_config) = match helper_settings(config_path) {
        Ok(s) => s,
        Err(e) => return refuse(caller_uid, exit::CONFIG_ERROR, &e.to_string()),
    };
    let as_user = settings
        .ldap
        .as_ref()
        .is_some_and(crate::session::binds_as_user);
    match (as_user, &password) {
        (false, Some(_)) => {
            // The PAM line says bind_as_user and this file does not: a
            // configuration mismatch (PAM_SERVICE_ERR), not the user's
            // failure (PAM_AUTH_ERR would count toward faillock).
            return refuse(
                caller_uid,
                exit::CONFIG_ERROR,
                "a password line, but the config does not set ldap.bind_as_user",
            );
        }
        (true, None) => {
            return refuse(
                caller_uid,
                exit::UNAVAILABLE,
                "ldap.bind_as_user needs the user's password and the caller sent none \
                 (a caller that is not root sends it with ldap_bind_as_user on its PAM line)",
            );
        }
        _ => {}
    }
    let limiter = ratelimit::Limiter::new(&settings.verifier, caller_uid);
    // Held until the attempt is counted: one attempt per uid at a time.
    let admission = match limiter.admit() {
        Ok(a) => a,
        Err(e) => return refuse(caller_uid, exit::UNAVAILABLE, &format!("rate limit: {e}")),
    };
    match admission.locked_for() {
        Ok(None) => {}
        Ok(Some(left)) => {
            return refuse(
                caller_uid,
                exit::RATE_LIMITED,
                &format!(
                    "too many failures for uid {caller_uid}; refused without validating for {}s more",
                    left.as_secs() + 1
                ),
            );
        }
        Err(e) => return refuse(caller_uid, exit::UNAVAILABLE, &format!("rate limit: {e}")),
    }
    let mut host = PipeHost {
        user,
        service,
        caller_uid,
        otp: Some(otp),
        password,
    };
    let outcome = crate::session::authenticate_with(&mut host, Ok(settings.clone()));
    let code = exit_for(&outcome, nullok_in_config);
    let noted = match code {
        exit::ACCEPTED => admission.success(),
        exit::REJECTED => admission.failure(),
        _ => Ok(()),
    };
    if let Err(e) = noted {
        host.log(Level::Err, &format!("rate limit state: {e}"));
    }
    // The delay runs with the uid's lock held, so parallel attempts wait it
    // out too.
    if code == exit::REJECTED && !settings.verifier.failure_delay.is_zero() {
        std::thread::sleep(settings.verifier.failure_delay);
    }
    drop(admission);
    if !outcome.reason().is_empty() {
        println!("{}", escape(outcome.reason(), 300));
    }
    ExitCode::from(code)
}

/// Opens `/dev/null` on any of 0, 1, 2 that is closed, so no file the
/// helper opens later becomes its stdin/stdout/stderr.
fn fill_std_fds() {
    use std::os::fd::IntoRawFd;
    for fd in 0..=2 {
        if !crate::ffi::sys::fd_is_open(fd) {
            // open(2) returns the lowest free number: this very fd.
            if let Ok(f) = std::fs::OpenOptions::new()
                .read(fd == 0)
                .write(fd != 0)
                .open("/dev/null")
            {
                let _ = f.into_raw_fd();
            }
        }
    }
}

/// The config path of a test build: `yubiotp.toml` beside the running
/// binary (which the test copied, root-owned, into a root-owned dir). Never
/// used by the installed helper, which compiles in
/// [`config::DEFAULT_CONFIG`].
///
/// # Errors
/// When the binary's own path cannot be read.
pub fn config_beside_exe() -> Result<PathBuf, std::io::Error> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    Ok(crate::atomic::parent_dir(&exe).join("yubiotp.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zero_is_accepted_and_unknown_codes_are_unavailable() {
        assert_eq!(answer_from(Some(0), ""), VerifierAnswer::Accepted);
        for code in [None, Some(9), Some(42), Some(-1), Some(255), Some(256)] {
            assert!(
                matches!(answer_from(code, "x"), VerifierAnswer::Unavailable(_)),
                "{code:?}"
            );
        }
        for code in 1..=8 {
            assert_ne!(answer_from(Some(code), "x"), VerifierAnswer::Accepted);
        }
    }

    #[test]
    fn outcomes_never_succeed_or_ignore_by_mistake() {
        use crate::outcome::code;
        // 2 and 3 ("no key") are the nullok rows, checked below.
        for c in [1, 4, 5, 6, 7, 8, 9, 100] {
            let o = outcome_of(answer_from(Some(c), "r"), false, false);
            assert_ne!(o.pam_code(), code::SUCCESS, "{c}");
            assert_ne!(o.pam_code(), code::IGNORE, "{c}");
        }
        let no_key = || answer_from(Some(i32::from(exit::NO_KEY)), "r");
        assert_eq!(outcome_of(no_key(), true, false).pam_code(), code::IGNORE);
        assert_eq!(
            outcome_of(no_key(), true, true).pam_code(),
            code::USER_UNKNOWN
        );
        let cfg = answer_from(Some(i32::from(exit::NO_KEY_NULLOK)), "r");
        assert_eq!(outcome_of(cfg, false, false).pam_code(), code::IGNORE);
        assert_eq!(
            outcome_of(answer_from(Some(0), ""), false, false).pam_code(),
            code::SUCCESS
        );
    }

    #[test]
    fn stdin_is_the_otp_line_and_at_most_a_password_line() {
        let (otp, pw) = split_input(b"cccc\n").unwrap();
        assert_eq!(otp.expose(), b"cccc");
        assert!(pw.is_none());
        assert!(split_input(b"cccc").unwrap().1.is_none());
        let (otp, pw) = split_input(b"cccc\npass word\n").unwrap();
        assert_eq!(otp.expose(), b"cccc");
        assert_eq!(pw.unwrap().expose(), b"pass word");
        assert!(split_input(b"cccc\npw").unwrap().1.is_some());
        for (bad, why) in [
            (&b""[..], "no OTP"),
            (b"\n", "no OTP"),
            (b"\npw\n", "no OTP"),
            (b"cccc\n\n", "empty password"),
            (b"a\nb\nc\n", "more than two"),
            (b"a\nb\n\n", "more than two"),
        ] {
            let e = split_input(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long_otp = [b'c'; MAX_INPUT + 1];
        assert!(split_input(&long_otp).is_err());
        let mut long_pw = b"cccc\n".to_vec();
        long_pw.extend_from_slice(&[b'p'; MAX_PASSWORD + 1]);
        let e = split_input(&long_pw).unwrap_err();
        assert!(!e.contains("ppp"), "never the bytes: {e}");
    }

    #[test]
    fn a_password_that_is_not_one_line_is_not_sent() {
        for pw in [&b"two\nlines"[..], b""] {
            let a = ask_with_password(
                Path::new("/nonexistent/yubiotp-verify"),
                "u",
                "s",
                &SecretBytes::new(b"x".to_vec()),
                Some(&SecretBytes::new(pw.to_vec())),
                Instant::now() + Duration::from_secs(5),
            );
            assert!(
                matches!(a, VerifierAnswer::Unavailable(ref r) if r.contains("cannot go to the verifier")),
                "{a:?}"
            );
        }
    }

    #[test]
    fn a_missing_helper_is_unavailable() {
        let a = ask(
            Path::new("/nonexistent/yubiotp-verify"),
            "u",
            "s",
            &SecretBytes::new(b"x".to_vec()),
            Instant::now() + Duration::from_secs(5),
        );
        assert!(matches!(a, VerifierAnswer::Unavailable(_)));
    }
}
