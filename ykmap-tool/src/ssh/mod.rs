//! `ykmap ssh check`'s engine: checks an sshd setup for the two supported
//! SSH recipes (SPEC §10):
//!
//! - **key, then OTP**: `AuthenticationMethods publickey,keyboard-interactive:pam`,
//!   `KbdInteractiveAuthentication yes`, `UsePAM yes`, and an sshd PAM auth
//!   stack that asks only for the OTP (no system password);
//! - **password+OTP**: sshd's `password` or `keyboard-interactive` method
//!   with `pam_yubiotp.so` (which hands the password part to
//!   `pam_unix.so use_first_pass`).
//!
//! [`check`] is pure: it takes the text of `sshd -T` and the text of the
//! sshd PAM stack and returns every problem found, in plain words.
//! [`read_and_check`] is the thin reader around it: it runs `sshd -T` and
//! reads `/etc/pam.d/sshd`, following `@include`, `include` and `substack`.
//!
//! The reader marks what it inlined with comment lines
//! (`# >>> include FILE` … `# <<< include FILE`, same for `substack`), so
//! [`check`] knows where each rule came from and which rules a substack
//! holds. An `@include` line that was not expanded (the pure function was
//! given the raw file) is judged by its name: `common-auth`,
//! `password-auth` and `system-auth` are the distribution's password stack.
//!
//! ```text
//! runner (spawns sshd -T, reads /etc/pam.d) ─► checks::check
//!   ─► sshd_t::parse_sshd_t ─► recipe::recipe ─► check_sshd
//!   ─► pam_stack::parse_auth_stack (after pam_stack::expand_stack) ─► check_stack
//! ```
//!
//! This lives in the admin tool, not in `pam_yubiotp`: the crate that sshd
//! loads spawns no process.

mod checks;
#[cfg(test)]
mod fixtures;
mod pam_stack;
pub(crate) use pam_stack::fields as pam_fields;
mod recipe;
mod runner;
mod sshd_t;

pub use checks::{Problem, ProblemKind, check};
pub use pam_stack::{
    Control, Item, MAX_INCLUDE_DEPTH, MODULE, MODULE_BUILD_NAME, PASSWORD_MODULES, PASSWORD_STACKS,
    Rule, expand_stack, parse_auth_stack,
};
pub use recipe::{Recipe, recipe};
pub use runner::{CheckError, ReadOptions, read_and_check, read_and_check_with, read_stack};
pub use sshd_t::{Method, SshdSettings, parse_sshd_t};
