//! The OTP prompt on `/dev/tty`: echo off, a deadline, and Ctrl-C, Ctrl-\,
//! SIGTERM and a hang-up taken from a signalfd (the signals are blocked
//! while the prompt is up, so no handler runs and the echo is restored on
//! every path by a guard, not by an async handler).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{LocalFlags, SetArg, Termios, tcgetattr, tcsetattr};
use pam_yubiotp::secret::SecretBytes;
use zeroize::Zeroizing;

/// Longest line read at the prompt (an OTP is at most 64 characters).
const MAX_LINE: usize = 256;

/// What one prompt gave.
#[derive(Debug)]
pub enum Reply {
    /// A line (without its newline).
    Line(SecretBytes),
    /// The deadline passed.
    Timeout,
    /// End of file or hang-up on the terminal.
    HangUp,
    /// Ctrl-C, Ctrl-\ or SIGTERM.
    Interrupted,
}

/// The controlling terminal with echo off while this lives.
pub struct Tty {
    file: File,
    saved: Option<Termios>,
    sigfd: SignalFd,
    old_mask: SigSet,
}

impl std::fmt::Debug for Tty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tty").finish_non_exhaustive()
    }
}

impl Tty {
    /// Opens `/dev/tty` (there is none without a controlling terminal:
    /// `None`), blocks the interrupting signals into a signalfd and turns
    /// echo off.
    #[must_use]
    pub fn open() -> Option<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/tty")
            .ok()?;
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGTERM,
            Signal::SIGTSTP,
        ] {
            mask.add(s);
        }
        let old_mask = mask.thread_swap_mask(SigmaskHow::SIG_BLOCK).ok()?;
        let Ok(sigfd) = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) else {
            let _ = old_mask.thread_set_mask();
            return None;
        };
        let saved = tcgetattr(file.as_fd()).ok();
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            quiet.local_flags.insert(LocalFlags::ECHONL);
            let _ = tcsetattr(file.as_fd(), SetArg::TCSANOW, &quiet);
        }
        Some(Self {
            file,
            saved,
            sigfd,
            old_mask,
        })
    }

    /// Writes `text` to the terminal.
    pub fn say(&mut self, text: &str) {
        let _ = self.file.write_all(text.as_bytes());
        let _ = self.file.flush();
    }

    /// Prints `prompt` and reads one line until `deadline`.
    pub fn ask(&mut self, prompt: &str, deadline: Instant) -> Reply {
        self.say(prompt);
        let mut line = Zeroizing::new(Vec::with_capacity(MAX_LINE + 1));
        let mut byte = Zeroizing::new([0u8; 1]);
        // Bounded: every round reads a byte, or ends, or waits for the
        // deadline; the line is capped.
        for _ in 0..100_000 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.say("\n");
                return Reply::Timeout;
            }
            let ms = u16::try_from(left.as_millis().min(10_000)).unwrap_or(10_000);
            let mut fds = [
                PollFd::new(self.file.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(_) => return Reply::HangUp,
            }
            let sig_ready = fds
                .get(1)
                .and_then(PollFd::revents)
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
            if sig_ready {
                return match self.sigfd.read_signal() {
                    Ok(Some(i)) if i.ssi_signo == Signal::SIGHUP as u32 => Reply::HangUp,
                    // Ctrl-Z: ignored at the prompt.
                    Ok(Some(i)) if i.ssi_signo == Signal::SIGTSTP as u32 => continue,
                    _ => Reply::Interrupted,
                };
            }
            match self.file.read(byte.as_mut_slice()) {
                Ok(0) => return Reply::HangUp,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Reply::HangUp,
            }
            match byte.first().copied().unwrap_or(0) {
                b'\n' | b'\r' => {
                    return Reply::Line(SecretBytes::new(line.to_vec()));
                }
                b => {
                    if line.len() < MAX_LINE {
                        line.push(b);
                    }
                }
            }
        }
        Reply::Timeout
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(self.file.as_fd(), SetArg::TCSANOW, t);
        }
        // Signals that came in while blocked were read from the signalfd
        // or are dropped with it; the mask goes back as it was.
        let _ = self.old_mask.thread_set_mask();
    }
}
