//! Process-level system calls the safe wrappers (std, nix) do not offer
//! without `unsafe`: closing inherited descriptors (in a child before
//! `exec`, and at the start of the setuid verifier), SIGCHLD's disposition
//! around a wait, clearing the environment, and syslog(3) for the verifier
//! (which has no PAM handle to hand `pam_syslog`).

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::host::Level;

/// Makes `cmd`'s child close every descriptor above 2 at `exec` (std's own
/// pipes are already dup2'd onto 0-2; anything the host left open without
/// `O_CLOEXEC` must not reach a helper). They are marked close-on-exec
/// rather than closed, so std's own exec-error pipe keeps working.
pub(crate) fn close_fds_above_2_on_exec(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only
    // calls close_range(2) / fcntl(2), both async-signal-safe; it touches no
    // lock, allocates nothing and cannot panic.
    unsafe {
        cmd.pre_exec(|| {
            cloexec_above_2_raw();
            Ok(())
        });
    }
}

/// close_range(3, ~0U, CLOSE_RANGE_CLOEXEC), falling back to
/// fcntl(FD_CLOEXEC) on 3..=1023 (kernels before 5.11). Async-signal-safe.
fn cloexec_above_2_raw() {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: close_range takes plain integers and only sets a flag on
    // this (forked) process's descriptors.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc != 0 {
        for fd in 3..1024 {
            // SAFETY: as above; EBADF for unused numbers is harmless.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// close_range(3, ~0U, 0), falling back to closing 3..=1023 one by one on a
/// kernel without it (before 5.9). Async-signal-safe.
fn close_above_2_raw() {
    // SAFETY: close_range takes plain integers and closes descriptors of
    // this process only; nothing in Rust owns the fds above 2 at the call
    // sites (a freshly forked child, or the verifier's very first step).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc != 0 {
        for fd in 3..1024 {
            // SAFETY: as above; EBADF for unused numbers is harmless.
            unsafe { libc::close(fd) };
        }
    }
}

/// The verifier's first step: closes every descriptor above 2 it was
/// started with.
pub(crate) fn close_inherited_fds() {
    close_above_2_raw();
}

/// True when descriptor `fd` is open.
pub(crate) fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Drops the whole environment of this process (the verifier trusts none
/// of it; also keeps libc's resolver and locale variables out).
pub(crate) fn clear_environment() {
    // SAFETY: called first thing in the single-threaded verifier, before
    // anything reads the environment.
    unsafe { libc::clearenv() };
}

/// SIGCHLD set to `SIG_DFL` for as long as this guard lives, the old
/// action put back when it is dropped.
///
/// Why: a host that ignores SIGCHLD (`SIG_IGN`) has its children reaped by
/// the kernel, so `waitpid` on the verifier's pid fails with `ECHILD` and
/// its exit status, the verdict, is lost. pam_unix does the same around
/// unix_chkpwd. It is process-wide: a child of the host that exits during
/// the wait stays a zombie instead of being auto-reaped (harmless, and the
/// host's own handler, if any, is back right after).
pub(crate) struct SigchldDefault {
    old: libc::sigaction,
    set: bool,
}

impl core::fmt::Debug for SigchldDefault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigchldDefault")
            .field("set", &self.set)
            .finish_non_exhaustive()
    }
}

impl SigchldDefault {
    pub(crate) fn new() -> Self {
        // SAFETY: sigaction structs are plain data; zeroed is a valid value
        // (empty mask, no flags, SIG_DFL handler).
        let mut new: libc::sigaction = unsafe { core::mem::zeroed() };
        new.sa_sigaction = libc::SIG_DFL;
        // SAFETY: as above.
        let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; SIGCHLD is a valid
        // signal; SIG_DFL installs no Rust code as a handler.
        let rc = unsafe { libc::sigaction(libc::SIGCHLD, &raw const new, &raw mut old) };
        Self { old, set: rc == 0 }
    }
}

impl Drop for SigchldDefault {
    fn drop(&mut self) {
        if self.set {
            // SAFETY: `old` is what sigaction gave back; restoring it puts
            // the host's own disposition (or handler) back unchanged.
            unsafe { libc::sigaction(libc::SIGCHLD, &raw const self.old, core::ptr::null_mut()) };
        }
    }
}

/// Opens syslog as `yubiotp-verify` on LOG_AUTHPRIV (what pam_syslog uses).
pub(crate) fn open_authpriv_log() {
    // SAFETY: the ident is a 'static NUL-terminated literal (openlog keeps
    // the pointer); the other arguments are flags.
    unsafe {
        libc::openlog(
            c"yubiotp-verify".as_ptr(),
            libc::LOG_PID,
            libc::LOG_AUTHPRIV,
        )
    };
}

/// One syslog line (NULs dropped), format "%s".
pub(crate) fn syslog_line(level: Level, line: &str) {
    let Some(msg) = super::c_line(line) else {
        return;
    };
    // SAFETY: the format is a literal "%s" and its one argument a
    // NUL-terminated string that outlives the call.
    unsafe { libc::syslog(super::level_priority(level), c"%s".as_ptr(), msg.as_ptr()) };
}
