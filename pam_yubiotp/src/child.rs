//! Helper processes the module runs and can always stop: spawn with an
//! empty environment, feed stdin from a buffer, collect stdout (capped),
//! and at the caller's deadline kill and reap the child — that pid only.
//!
//! Used by the cloud resolver ([`crate::net::resolve`]) and the
//! privileged verifier client ([`crate::verifier::ask`], the `pam_unix` →
//! `unix_chkpwd` pattern: secret on stdin, verdict in the exit code; it
//! also holds SIGCHLD at `SIG_DFL` around the wait).
//!
//! Rules, because the module runs inside somebody else's process:
//! - no thread: the caller drives I/O with [`Child::pump`] from its own
//!   loop, or blocks in [`Child::run_until`] (one `poll(2)` with the
//!   deadline);
//! - every descriptor above 2 is closed in the child before `exec` (a host
//!   fd without `O_CLOEXEC` never reaches a helper);
//! - the environment is cleared, the working directory is `/`, stdout is
//!   a pipe, stderr is `/dev/null`, stdin is `/dev/null` or a Unix socket
//!   (written with `send(MSG_NOSIGNAL)`: a child that stops reading gives
//!   `EPIPE`, never a SIGPIPE in the host); std resets the signal mask and
//!   SIGPIPE for the child;
//! - reaping is `waitpid` on the child's pid only (std's `try_wait`), never
//!   `waitpid(-1)`, so the host's other children are not touched;
//! - a host with SIGCHLD set to `SIG_IGN` (or a handler that reaps every
//!   child) makes `waitpid` fail with `ECHILD`: the child is then treated
//!   as finished, and its output is used as read;
//! - the child is killed only while its stdout is still open: a child that
//!   closed it has exited (or is exiting), and with `SIG_IGN` its pid may
//!   already be free for reuse, so it is not signalled;
//! - dropping a [`Child`] that has not finished kills and reaps it.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, send};
use zeroize::Zeroizing;

/// How long a killed child may take to be reaped before it is left (it
/// was sent SIGKILL; only a task stuck in the kernel takes this long).
const REAP_GRACE: Duration = Duration::from_millis(500);
/// Pause between `waitpid(WNOHANG)` attempts while reaping.
const REAP_STEP: Duration = Duration::from_millis(1);
/// Upper bound on `poll` rounds in [`Child::run_until`].
const MAX_ROUNDS: u32 = 100_000;

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its exit status; `None` when `waitpid` said `ECHILD` (the host
    /// ignores SIGCHLD or reaped it) or it was left unreaped.
    pub status: Option<ExitStatus>,
    /// Its stdout, at most the cap given to [`Child::spawn`].
    pub stdout: Vec<u8>,
    /// It wrote more than the cap (the rest was not read).
    pub overflow: bool,
    /// It was killed (deadline or drop) rather than ending on its own.
    pub killed: bool,
}

/// A running helper. Not `Clone`; dropping it kills and reaps the child.
pub struct Child {
    proc: std::process::Child,
    stdin: Option<UnixStream>,
    input: Zeroizing<Vec<u8>>,
    written: usize,
    stdout: Option<ChildStdout>,
    out: Vec<u8>,
    cap: usize,
    overflow: bool,
    reaped: bool,
}

impl core::fmt::Debug for Child {
    // `input` is what the helper gets on stdin (the OTP, a password): never
    // shown, whatever `Zeroizing` prints.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.proc.id())
            .field("input_len", &self.input.len())
            .field("written", &self.written)
            .field("reaped", &self.reaped)
            .finish_non_exhaustive()
    }
}

fn nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL)?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

impl Child {
    /// Starts `program` with `args`, an empty environment, `input` on its
    /// stdin (`None`: stdin is `/dev/null`) and stdout collected up to
    /// `stdout_cap` bytes.
    ///
    /// The program must pass [`crate::fs_policy::check_program`] (root's,
    /// not writable by others, in a trusted directory chain): the module
    /// runs it with root's privileges in sshd or sudo.
    ///
    /// # Errors
    /// The `spawn` error (`NotFound` for a missing program, ...), or
    /// `PermissionDenied` for a program that cannot be trusted.
    pub fn spawn<S: AsRef<OsStr>>(
        program: &Path,
        args: &[S],
        input: Option<Zeroizing<Vec<u8>>>,
        stdout_cap: usize,
    ) -> io::Result<Self> {
        // The checked file itself is run (argv[0] stays `program`): a link
        // in the chain cannot be swapped for another between check and exec.
        let checked = match crate::fs_policy::check_program(program) {
            Ok(real) => real,
            Err(crate::fs_policy::OpenError::NotFound(_)) => {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    e.to_string(),
                ));
            }
        };
        // Both ends close-on-exec; std dup2s the child's end onto fd 0.
        let (stdin, theirs) = match &input {
            Some(_) => {
                let (ours, theirs) = UnixStream::pair()?;
                ours.set_nonblocking(true)?;
                (Some(ours), Stdio::from(OwnedFd::from(theirs)))
            }
            None => (None, Stdio::null()),
        };
        let mut cmd = Command::new(&checked);
        cmd.arg0(program)
            .args(args)
            .env_clear()
            .current_dir("/")
            .stdin(theirs)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // Whatever the host left open without O_CLOEXEC stays out.
        crate::ffi::sys::close_fds_above_2_on_exec(&mut cmd);
        let mut proc = cmd.spawn()?;
        let stdout = proc.stdout.take();
        let mut child = Self {
            proc,
            stdin,
            input: input.unwrap_or_default(),
            written: 0,
            stdout,
            out: Vec::new(),
            cap: stdout_cap,
            overflow: false,
            reaped: false,
        };
        // Drop kills and reaps if this fails.
        if let Some(s) = &child.stdout {
            nonblocking(s.as_fd())?;
        }
        if child.input.is_empty() {
            child.stdin = None;
        }
        Ok(child)
    }

    /// The child's pid.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.proc.id()
    }

    /// The descriptors to poll and what for (stdin: `POLLOUT` while input
    /// is left; stdout: `POLLIN` until end of file).
    #[must_use]
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut v = Vec::new();
        if let Some(s) = &self.stdin {
            v.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(s) = &self.stdout {
            v.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        v
    }

    /// True once stdout reached end of file (or the cap): nothing more
    /// will be read, [`Child::finish`] will not kill.
    #[must_use]
    pub fn output_done(&self) -> bool {
        self.stdout.is_none()
    }

    /// Non-blocking I/O: writes what stdin takes, reads what stdout has.
    /// Returns [`Child::output_done`].
    pub fn pump(&mut self) -> bool {
        if let Some(s) = self.stdin.as_mut() {
            // Bounded by the input length (each write makes progress).
            loop {
                let rest = self.input.get(self.written..).unwrap_or_default();
                if rest.is_empty() {
                    self.stdin = None;
                    break;
                }
                match send(s.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
                    Ok(0) => {
                        self.stdin = None;
                        break;
                    }
                    Ok(n) => self.written += n,
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => break,
                    // EPIPE and the like: the child stopped reading.
                    Err(_) => {
                        self.stdin = None;
                        break;
                    }
                }
            }
        }
        if let Some(s) = self.stdout.as_mut() {
            let mut buf = [0u8; 4096];
            // Bounded: each read either ends, blocks, or adds to a capped buffer.
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        self.stdout = None;
                        break;
                    }
                    Ok(n) => {
                        let chunk = buf.get(..n).unwrap_or_default();
                        if self.out.len() + chunk.len() > self.cap {
                            self.overflow = true;
                            self.stdout = None;
                            break;
                        }
                        self.out.extend_from_slice(chunk);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.stdout = None;
                        break;
                    }
                }
            }
        }
        self.output_done()
    }

    /// Waits (bounded) for `waitpid` on this pid. `None`: `ECHILD`, or
    /// still not reaped after the grace period.
    fn reap(&mut self, grace: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + grace;
        // Bounded by the grace period.
        loop {
            match self.proc.try_wait() {
                Ok(Some(st)) => {
                    self.reaped = true;
                    return Some(st);
                }
                Ok(None) if Instant::now() < until => std::thread::sleep(REAP_STEP),
                Ok(None) => return None,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // ECHILD: the host ignores SIGCHLD or reaped it itself.
                Err(_) => {
                    self.reaped = true;
                    return None;
                }
            }
        }
    }

    fn kill_and_reap(&mut self) -> Option<ExitStatus> {
        if self.reaped {
            return None;
        }
        // Closing our ends first: a child blocked writing gets EPIPE.
        self.stdin = None;
        let alive = self.stdout.is_some();
        self.stdout = None;
        if alive {
            let _ = self.proc.kill();
        }
        self.reap(REAP_GRACE)
    }

    /// Ends the child: if its output is complete, waits for it to exit
    /// (up to `grace`, then kills it); otherwise kills it now. Always
    /// reaps (this pid only).
    #[must_use]
    pub fn finish(mut self, grace: Duration) -> Finished {
        let mut killed = false;
        let status = if self.output_done() {
            self.stdin = None;
            match self.reap(grace) {
                Some(st) => Some(st),
                None if self.reaped => None,
                None => {
                    // Closed stdout yet still running after the grace.
                    killed = true;
                    let _ = self.proc.kill();
                    self.reap(REAP_GRACE)
                }
            }
        } else {
            killed = true;
            self.kill_and_reap()
        };
        Finished {
            status,
            stdout: core::mem::take(&mut self.out),
            overflow: self.overflow,
            killed,
        }
    }

    /// Runs the child to completion on one `poll(2)` loop, or kills it at
    /// `deadline`. A self-contained alternative to driving [`Child::pump`]
    /// from the caller's own loop.
    #[must_use]
    pub fn run_until(mut self, deadline: Instant) -> Finished {
        for _ in 0..MAX_ROUNDS {
            if self.pump() {
                let left = deadline.saturating_duration_since(Instant::now());
                return self.finish(left);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let ms = deadline
                .saturating_duration_since(now)
                .as_millis()
                .saturating_add(1)
                .min(60_000);
            let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let mut fds = self.poll_fds();
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        self.finish(Duration::ZERO)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.kill_and_reap();
    }
}

/// True when `pid` is no child of ours any more (reaped).
#[cfg(test)]
pub(crate) fn reaped(pid: u32) -> bool {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    waitpid(pid, Some(WaitPidFlag::WNOHANG)) == Err(Errno::ECHILD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_collected_and_the_child_reaped() {
        let c = Child::spawn(Path::new("/bin/echo"), &["hello"], None, 1024).unwrap();
        let pid = c.id();
        let f = c.run_until(Instant::now() + Duration::from_secs(20));
        assert_eq!(f.stdout, b"hello\n");
        assert!(f.status.unwrap().success());
        assert!(!f.killed && !f.overflow);
        assert!(reaped(pid), "the pid is no longer our child");
    }

    #[test]
    fn the_environment_is_empty_and_stdin_is_fed() {
        let c = Child::spawn(
            Path::new("/bin/sh"),
            &["-c", "env; cat"],
            Some(Zeroizing::new(b"from stdin".to_vec())),
            1024,
        )
        .unwrap();
        let f = c.run_until(Instant::now() + Duration::from_secs(20));
        let out = String::from_utf8(f.stdout).unwrap();
        // sh sets PWD (and maybe SHLVL/_) itself; nothing else comes in.
        for line in out.lines().filter(|l| l.contains('=')) {
            assert!(
                ["PWD=", "SHLVL=", "_=", "OLDPWD="]
                    .iter()
                    .any(|p| line.starts_with(p)),
                "inherited {line}"
            );
        }
        assert!(out.ends_with("from stdin"), "{out}");
    }

    #[test]
    fn a_child_that_hangs_is_killed_at_the_deadline_and_reaped() {
        let c = Child::spawn(Path::new("/bin/sleep"), &["30"], None, 1024).unwrap();
        let pid = c.id();
        let f = c.run_until(Instant::now() + Duration::from_millis(50));
        assert!(f.killed);
        assert!(!f.status.unwrap().success());
        assert!(reaped(pid));
    }

    #[test]
    fn dropping_kills_and_reaps() {
        let c = Child::spawn(Path::new("/bin/sleep"), &["30"], None, 1024).unwrap();
        let pid = c.id();
        drop(c);
        assert!(reaped(pid));
    }

    #[test]
    fn output_past_the_cap_is_refused() {
        let c = Child::spawn(Path::new("/bin/echo"), &["0123456789"], None, 4).unwrap();
        let f = c.run_until(Instant::now() + Duration::from_secs(20));
        assert!(f.overflow);
        assert!(f.stdout.len() <= 4);
    }

    #[test]
    fn descriptors_above_2_do_not_reach_the_child() {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        let dir = yubiotp_testsupport::tempdir();
        let path = dir.path().join("inheritable-marker");
        let f = std::fs::File::create(&path).unwrap();
        // As a careless host would leave it: inheritable.
        fcntl(&f, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        let c = Child::spawn(
            Path::new("/bin/ls"),
            &["-l", "/proc/self/fd"],
            None,
            1 << 16,
        )
        .unwrap();
        let out = c.run_until(Instant::now() + Duration::from_secs(20));
        let listed = String::from_utf8(out.stdout).unwrap();
        assert!(listed.contains("/proc/"), "ls ran: {listed}");
        assert!(!listed.contains("inheritable-marker"), "leaked: {listed}");
        drop(f);
    }

    #[test]
    fn a_missing_program_is_not_found() {
        let e = Child::spawn(Path::new("/nonexistent/helper"), &["x"], None, 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_program_others_can_change_is_not_run() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root to own the test program");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let d = yubiotp_testsupport::tempdir();
        let prog = d.path().join("helper");
        std::fs::write(&prog, "#!/bin/sh\necho ran\n").unwrap();
        for mode in [0o777, 0o775, 0o757] {
            std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = Child::spawn(&prog, &["x"], None, 16).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{mode:o}");
        }
        // Not root's.
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&prog, Some(2001), None).unwrap();
        let e = Child::spawn(&prog, &["x"], None, 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        // In a directory others can write.
        std::os::unix::fs::chown(&prog, Some(0), None).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Child::spawn(&prog, &["x"], None, 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Sound: it runs.
        let f = Child::spawn(&prog, &["x"], None, 16)
            .unwrap()
            .run_until(Instant::now() + Duration::from_secs(20));
        assert_eq!(f.stdout, b"ran\n");
    }
}
