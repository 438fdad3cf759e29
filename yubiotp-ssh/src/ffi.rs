//! The few process-level calls with no safe wrapper: taking the OTP out of
//! the environment (wiped in place, then unset), close-on-exec for every
//! inherited descriptor above 2, resetting signal dispositions before the
//! exec, and syslog(3) on LOG_AUTHPRIV.

use std::ffi::CString;

use pam_yubiotp::secret::SecretBytes;

/// Takes `name` out of the environment: copies its value, overwrites the
/// value's bytes where they lie (the exec'd environment block, which
/// `/proc/<pid>/environ` shows) with NULs, then unsets it.
pub(crate) fn take_env_secret(name: &std::ffi::CStr) -> Option<SecretBytes> {
    // SAFETY: called first thing in main of a single-threaded program,
    // before any other code reads or writes the environment; getenv's
    // pointer is valid until the environment changes, and we change it only
    // after the last use.
    unsafe {
        let p = libc::getenv(name.as_ptr());
        if p.is_null() {
            return None;
        }
        let len = libc::strlen(p);
        let bytes = std::slice::from_raw_parts_mut(p.cast::<u8>(), len);
        let value = SecretBytes::new(bytes.to_vec());
        for b in bytes.iter_mut() {
            std::ptr::write_volatile(b, 0);
        }
        libc::unsetenv(name.as_ptr());
        Some(value)
    }
}

/// Marks every descriptor above 2 close-on-exec (close_range with
/// CLOSE_RANGE_CLOEXEC, else fcntl on 3..1024), so nothing sshd or a
/// library left open reaches the user's shell or the verifier.
pub(crate) fn cloexec_above_2() {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: plain integers; only sets a flag on this process's descriptors.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc != 0 {
        for fd in 3..1024 {
            // SAFETY: as above; EBADF for unused numbers is harmless.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// Every catchable signal back to SIG_DFL (Rust's runtime ignores SIGPIPE;
/// an ignored signal would survive the exec) and an empty signal mask.
pub(crate) fn reset_signals() {
    for sig in 1..libc::SIGRTMIN() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no Rust code as a handler; invalid
        // numbers only give EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: a zeroed sigset_t is filled by sigemptyset; the pointers are
    // valid for the calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &raw const set, std::ptr::null_mut());
    }
}

/// Opens syslog as `yubiotp-ssh` on LOG_AUTHPRIV with the pid.
pub(crate) fn open_log() {
    // SAFETY: a 'static NUL-terminated ident (openlog keeps the pointer).
    unsafe { libc::openlog(c"yubiotp-ssh".as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV) };
}

/// One syslog line at `priority` (LOG_WARNING, LOG_INFO, ...), NULs dropped.
pub(crate) fn syslog(priority: libc::c_int, line: &str) {
    let Ok(msg) = CString::new(line.replace('\0', "")) else {
        return;
    };
    // SAFETY: the format is the literal "%s" with one NUL-terminated argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
}
