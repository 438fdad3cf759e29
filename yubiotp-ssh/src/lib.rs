//! `yubiotp-ssh`: a Yubico OTP second factor for SSH sessions, run by sshd
//! as `ForceCommand` (or a key's `command=`) after publickey.
//!
//! ```text
//! sshd ─► yubiotp-ssh (as the user, no privileges, no secrets)
//!   YUBIOTP taken from env (wiped, unset) │ else prompt on /dev/tty
//!   ─► verifier::ask(yubiotp-verify, user, "sshd-helper", otp)
//!   ─► accepted: exec the user's shell as sshd would │ else exit 77/69/78
//! ```
//!
//! Who the user is comes from getuid() and passwd only; the environment is
//! sshd's (and the user's own start-up files'), so it decides nothing but
//! the session kind (`SSH_ORIGINAL_COMMAND`, set by sshd) and the rhost in
//! the log line (`SSH_CONNECTION`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod ffi;
pub mod tty;

use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use pam_yubiotp::audit::escape;
use pam_yubiotp::secret::SecretBytes;
use pam_yubiotp::verifier::{self, VerifierAnswer};

/// The verifier's service name for this helper.
pub const SERVICE: &str = "sshd-helper";
/// The environment variable the client sends the OTP in.
pub const ENV_NAME: &str = "YUBIOTP";
/// Debian's sftp server, what `internal-sftp` is mapped to.
pub const DEFAULT_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// Prompt tries on a terminal.
pub const TRIES: usize = 3;
/// Overall limit for the prompt.
pub const PROMPT_LIMIT: Duration = Duration::from_secs(60);
/// How long one verifier call may take.
pub const VERIFY_LIMIT: Duration = Duration::from_secs(30);

/// Exit codes (sysexits), told apart from the command's own.
pub mod exit {
    /// EX_NOPERM: no valid OTP.
    pub const DENIED: u8 = 77;
    /// EX_UNAVAILABLE: the verifier or its backend gave no answer.
    pub const UNAVAILABLE: u8 = 69;
    /// EX_CONFIG: the configuration (sshd, verifier, passwd) is wrong.
    pub const CONFIG: u8 = 78;
}

/// The compiled-in choices of a build (the installed binary, or the test
/// build that finds its verifier beside itself).
#[derive(Debug, Clone)]
pub struct Options {
    /// The setuid verifier.
    pub verifier: PathBuf,
    /// The sftp server `internal-sftp` is mapped to.
    pub sftp_server: PathBuf,
    /// How long the prompt waits for all its tries together.
    pub prompt_limit: Duration,
}

impl Options {
    /// The installed paths.
    #[must_use]
    pub fn installed() -> Self {
        Self {
            verifier: PathBuf::from(verifier::DEFAULT_HELPER),
            sftp_server: PathBuf::from(DEFAULT_SFTP_SERVER),
            prompt_limit: PROMPT_LIMIT,
        }
    }
}

/// What sshd asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// No `SSH_ORIGINAL_COMMAND`: an interactive login shell.
    Login,
    /// The sftp subsystem; the command line to run (internal-sftp mapped).
    Subsystem(OsString),
    /// A command, passed to `shell -c` unchanged.
    Command(OsString),
}

impl Kind {
    /// The terminal to prompt on: none for a subsystem, else `/dev/tty`
    /// when there is a controlling terminal.
    fn and_then_tty(&self) -> Option<tty::Tty> {
        match self {
            Kind::Subsystem(_) => None,
            Kind::Login | Kind::Command(_) => tty::Tty::open(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Login => "shell",
            Kind::Subsystem(_) => "subsystem",
            Kind::Command(_) => "command",
        }
    }
}

/// Why a session kind cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindError(pub String);

/// Decides the session kind from `SSH_ORIGINAL_COMMAND` (`None`: unset).
///
/// # Errors
/// `internal-sftp` when `sftp_server` is not there to stand in for it.
pub fn session_kind(original: Option<&OsStr>, sftp_server: &Path) -> Result<Kind, KindError> {
    let Some(cmd) = original else {
        return Ok(Kind::Login);
    };
    let bytes = cmd.as_bytes();
    let first_end = bytes
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let (first, rest) = bytes.split_at(first_end);
    if first == b"internal-sftp" {
        if !sftp_server.is_file() {
            return Err(KindError(format!(
                "sshd runs the sftp subsystem as internal-sftp, which a ForceCommand cannot \
                 run, and {} is not installed: set `Subsystem sftp {}` in sshd_config",
                sftp_server.display(),
                sftp_server.display()
            )));
        }
        let mut line = sftp_server.as_os_str().as_bytes().to_vec();
        line.extend_from_slice(rest);
        return Ok(Kind::Subsystem(OsStr::from_bytes(&line).to_os_string()));
    }
    if first == sftp_server.as_os_str().as_bytes() || first.ends_with(b"/sftp-server") {
        return Ok(Kind::Subsystem(cmd.to_os_string()));
    }
    Ok(Kind::Command(cmd.to_os_string()))
}

/// The remote address from `SSH_CONNECTION`'s first field: an IP literal,
/// else "unknown".
#[must_use]
pub fn rhost(ssh_connection: Option<&OsStr>) -> String {
    ssh_connection
        .and_then(OsStr::to_str)
        .and_then(|s| s.split_ascii_whitespace().next())
        .and_then(|f| f.parse::<IpAddr>().ok())
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

/// argv[0] and the arguments sshd would give `shell` for `kind`.
#[must_use]
pub fn shell_argv(shell: &Path, kind: &Kind) -> (OsString, Vec<OsString>) {
    match kind {
        Kind::Login => {
            let base = shell.file_name().unwrap_or(shell.as_os_str());
            let mut a0 = OsString::from("-");
            a0.push(base);
            (a0, Vec::new())
        }
        Kind::Subsystem(c) | Kind::Command(c) => (
            shell.as_os_str().to_os_string(),
            vec![OsString::from("-c"), c.clone()],
        ),
    }
}

/// The user's shell from passwd, `/bin/sh` when empty.
#[must_use]
pub fn login_shell(passwd_shell: &Path) -> PathBuf {
    if passwd_shell.as_os_str().is_empty() {
        PathBuf::from("/bin/sh")
    } else {
        passwd_shell.to_path_buf()
    }
}

struct Ctx {
    user: String,
    rhost: String,
    kind: Kind,
}

impl Ctx {
    fn fields(&self) -> String {
        let mut s = format!(
            "user={} rhost={} kind={}",
            escape(&self.user, 64),
            self.rhost,
            self.kind.name()
        );
        if let Kind::Command(c) | Kind::Subsystem(c) = &self.kind {
            s.push_str(&format!(
                " command=\"{}\"",
                escape(&String::from_utf8_lossy(c.as_bytes()), 200)
            ));
        }
        s
    }

    /// The one failure line (for fail2ban) and a short message on stderr.
    fn fail(&self, code: u8, reason: &str, tell: &str) -> ExitCode {
        ffi::syslog(
            libc::LOG_WARNING,
            &format!(
                "denied {} reason=\"{}\" exit={code}",
                self.fields(),
                escape(reason, 200)
            ),
        );
        tell_stderr(tell);
        ExitCode::from(code)
    }
}

/// One message line on stderr; a closed or broken stderr is ignored (no
/// panic: `eprintln!` would panic on EPIPE).
fn tell_stderr(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "yubiotp-ssh: {text}");
}

/// A failed verification, as the exit code and what the user is told.
fn refusal(a: &VerifierAnswer) -> (u8, String, &'static str) {
    match a {
        // Never asked for an acceptance (`run` lets those in first); if it
        // ever were, it still refuses.
        VerifierAnswer::Accepted => (
            exit::DENIED,
            "internal: refusal asked for an accepted answer".into(),
            "OTP not accepted",
        ),
        VerifierAnswer::Rejected(r) => (exit::DENIED, r.clone(), "OTP not accepted"),
        VerifierAnswer::Misuse(r) => (exit::DENIED, r.clone(), "OTP not accepted"),
        VerifierAnswer::RateLimited(r) => (exit::DENIED, r.clone(), "too many failures, try later"),
        VerifierAnswer::NoKey { reason, .. } | VerifierAnswer::UserUnknown(reason) => {
            (exit::DENIED, reason.clone(), "no YubiKey for this account")
        }
        VerifierAnswer::Unavailable(r) => (
            exit::UNAVAILABLE,
            r.clone(),
            "OTP validation is unavailable, try later",
        ),
        VerifierAnswer::ConfigError(r) => {
            (exit::CONFIG, r.clone(), "OTP validation is misconfigured")
        }
    }
}

/// The whole program.
#[must_use]
pub fn run(opts: &Options) -> ExitCode {
    // Before anything else: the OTP out of the environment.
    let env_otp = ffi::take_env_secret(c"YUBIOTP");
    ffi::cloexec_above_2();
    ffi::open_log();
    let uid = nix::unistd::getuid();
    let pw = match nix::unistd::User::from_uid(uid) {
        Ok(Some(pw)) => pw,
        Ok(None) => {
            ffi::syslog(
                libc::LOG_WARNING,
                &format!("denied uid={uid} reason=\"uid not in passwd\""),
            );
            tell_stderr("this account is not in the passwd database");
            return ExitCode::from(exit::CONFIG);
        }
        Err(e) => {
            ffi::syslog(
                libc::LOG_WARNING,
                &format!("denied uid={uid} reason=\"passwd lookup: {e}\""),
            );
            tell_stderr("the passwd database cannot be read");
            return ExitCode::from(exit::UNAVAILABLE);
        }
    };
    let rhost = rhost(std::env::var_os("SSH_CONNECTION").as_deref());
    let original = std::env::var_os("SSH_ORIGINAL_COMMAND");
    let kind = match session_kind(original.as_deref(), &opts.sftp_server) {
        Ok(k) => k,
        Err(KindError(why)) => {
            let ctx = Ctx {
                user: pw.name.clone(),
                rhost,
                kind: Kind::Subsystem(original.unwrap_or_default()),
            };
            return ctx.fail(exit::CONFIG, &why, &why);
        }
    };
    let ctx = Ctx {
        user: pw.name.clone(),
        rhost,
        kind,
    };

    let answer = match env_otp {
        Some(otp) => ask(opts, &ctx, &otp),
        // A subsystem never prompts (its stream is the protocol); the
        // terminal is opened only for a shell or a command.
        None => match ctx.kind.and_then_tty() {
            None => {
                return ctx.fail(
                    exit::DENIED,
                    "no OTP (no YUBIOTP in the environment and no terminal)",
                    "an OTP is required: send it in YUBIOTP (ssh -o SetEnv=YUBIOTP=...) or use a terminal (ssh -t)",
                );
            }
            Some(mut t) => prompt(opts, &ctx, &mut t),
        },
    };
    match answer {
        VerifierAnswer::Accepted => {}
        a => {
            let (code, reason, tell) = refusal(&a);
            return ctx.fail(code, &reason, tell);
        }
    }
    ffi::syslog(libc::LOG_INFO, &format!("accepted {}", ctx.fields()));
    exec(&ctx, &login_shell(&pw.shell))
}

fn ask(opts: &Options, ctx: &Ctx, otp: &SecretBytes) -> VerifierAnswer {
    verifier::ask(
        &opts.verifier,
        &ctx.user,
        SERVICE,
        otp,
        Instant::now() + VERIFY_LIMIT,
    )
}

/// Up to [`TRIES`] prompts within `opts.prompt_limit` ([`PROMPT_LIMIT`]
/// when installed); the terminal's echo is
/// restored when `t` drops (every path).
fn prompt(opts: &Options, ctx: &Ctx, t: &mut tty::Tty) -> VerifierAnswer {
    let deadline = Instant::now() + opts.prompt_limit;
    let mut last = VerifierAnswer::Rejected("no OTP entered".into());
    for i in 0..TRIES {
        let line = match t.ask("YubiKey OTP: ", deadline) {
            tty::Reply::Line(l) => l,
            tty::Reply::Timeout => {
                return VerifierAnswer::Rejected("no OTP within the time limit".into());
            }
            tty::Reply::HangUp => return VerifierAnswer::Rejected("hang-up at the prompt".into()),
            tty::Reply::Interrupted => {
                return VerifierAnswer::Rejected("interrupted at the prompt".into());
            }
        };
        if line.is_empty() {
            last = VerifierAnswer::Rejected("empty OTP".into());
        } else {
            last = ask(opts, ctx, &line);
            match &last {
                VerifierAnswer::Rejected(_) => {}
                _ => return last,
            }
        }
        if i + 1 < TRIES {
            t.say("OTP not accepted, try again.\n");
        }
    }
    last
}

/// Replaces this process with the user's shell, as sshd would run it.
fn exec(ctx: &Ctx, shell: &Path) -> ExitCode {
    let (arg0, args) = shell_argv(shell, &ctx.kind);
    let mut cmd = Command::new(shell);
    cmd.arg0(arg0)
        .args(args)
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k != ENV_NAME));
    ffi::reset_signals();
    let e = cmd.exec();
    ctx.fail(
        exit::CONFIG,
        &format!("exec {}: {e}", shell.display()),
        "the login shell could not be started",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SFTP: &str = "/usr/lib/openssh/sftp-server";

    #[test]
    fn session_kinds_come_from_ssh_original_command() {
        let sftp = Path::new(SFTP);
        assert_eq!(session_kind(None, sftp), Ok(Kind::Login));
        assert_eq!(
            session_kind(Some(OsStr::new("printf x; exit 7")), sftp),
            Ok(Kind::Command("printf x; exit 7".into()))
        );
        assert_eq!(
            session_kind(Some(OsStr::new(SFTP)), sftp),
            Ok(Kind::Subsystem(SFTP.into()))
        );
        if sftp.is_file() {
            assert_eq!(
                session_kind(Some(OsStr::new("internal-sftp -l INFO")), sftp),
                Ok(Kind::Subsystem(format!("{SFTP} -l INFO").into()))
            );
        }
        let missing = Path::new("/nonexistent/sftp-server");
        let e = session_kind(Some(OsStr::new("internal-sftp")), missing).unwrap_err();
        assert!(e.0.contains("internal-sftp"), "{e:?}");
        // Not a prefix match: a command merely starting with the word.
        assert_eq!(
            session_kind(Some(OsStr::new("internal-sftpx")), sftp),
            Ok(Kind::Command("internal-sftpx".into()))
        );
    }

    #[test]
    fn rhost_is_an_ip_literal_or_unknown() {
        assert_eq!(
            rhost(Some(OsStr::new("192.0.2.7 51234 192.0.2.1 22"))),
            "192.0.2.7"
        );
        assert_eq!(rhost(Some(OsStr::new("::1 5 ::1 22"))), "::1");
        assert_eq!(rhost(Some(OsStr::new("evil\nhost 1 2 3"))), "unknown");
        assert_eq!(rhost(Some(OsStr::new(""))), "unknown");
        assert_eq!(rhost(None), "unknown");
    }

    #[test]
    fn argv_is_what_sshd_would_use() {
        let sh = Path::new("/bin/bash");
        assert_eq!(shell_argv(sh, &Kind::Login), ("-bash".into(), vec![]));
        assert_eq!(
            shell_argv(sh, &Kind::Command("a 'b c' \"d\"".into())),
            (
                "/bin/bash".into(),
                vec!["-c".into(), "a 'b c' \"d\"".into()]
            )
        );
        assert_eq!(login_shell(Path::new("")), PathBuf::from("/bin/sh"));
        assert_eq!(login_shell(sh), sh.to_path_buf());
    }

    #[test]
    fn the_log_line_escapes_and_cuts_the_command() {
        let mut cmd = String::from("x\u{1b}[2J\nFAKE user=root\r");
        cmd.push_str(&"A".repeat(100 * 1024));
        let ctx = Ctx {
            user: "alice".into(),
            rhost: "192.0.2.7".into(),
            kind: Kind::Command(cmd.into()),
        };
        let f = ctx.fields();
        assert!(f.len() < 1200, "{}", f.len());
        assert!(!f.chars().any(char::is_control), "{f:?}");
        assert!(f.contains("\\x1b") && f.contains("\\x0a"), "{f}");
        assert!(f.starts_with("user=alice rhost=192.0.2.7 kind=command "));
    }

    #[test]
    fn only_accepted_execs_and_codes_are_sysexits() {
        let r = |s: &str| s.to_string();
        assert_eq!(refusal(&VerifierAnswer::Rejected(r("x"))).0, 77);
        assert_eq!(refusal(&VerifierAnswer::Misuse(r("x"))).0, 77);
        assert_eq!(refusal(&VerifierAnswer::RateLimited(r("x"))).0, 77);
        assert_eq!(refusal(&VerifierAnswer::UserUnknown(r("x"))).0, 77);
        assert_eq!(
            refusal(&VerifierAnswer::NoKey {
                nullok_in_config: true,
                reason: r("x")
            })
            .0,
            77
        );
        assert_eq!(refusal(&VerifierAnswer::Unavailable(r("x"))).0, 69);
        assert_eq!(refusal(&VerifierAnswer::ConfigError(r("x"))).0, 78);
    }
}
