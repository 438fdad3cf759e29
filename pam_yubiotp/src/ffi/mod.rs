//! The C boundary, and the only module with `unsafe`. Three entry points
//! (`pam_sm_authenticate`, `pam_sm_setcred`, `pam_sm_acct_mgmt`), each run
//! inside `catch_unwind` so no panic ever unwinds into libpam (a caught
//! panic is PAM_SERVICE_ERR, SPEC §6), and [`LibPam`], the [`Host`] over a
//! `pam_handle_t`. Everything else in the crate sees PAM only through
//! [`Host`].

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pam::constants::{
    PAM_DISALLOW_NULL_AUTHTOK, PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_SILENT, PamResultCode,
};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost, Service};
use pam::module::PamHandle;
use zeroize::Zeroizing;

use crate::host::{ConvError, Host, HostError, Level, Log};
use crate::outcome::code;
use crate::secret::SecretBytes;

pub(crate) mod sys;

const PAM_AUTHTOK: c_int = 6;

unsafe extern "C" {
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// The [`Host`] over a live `pam_handle_t`. Holds the raw pointer and makes
/// a short-lived reference for each call, so no two references overlap.
struct LibPam {
    raw: *mut PamHandle,
    silent: bool,
    disallow_null: bool,
}

impl LibPam {
    fn handle(&self) -> &PamHandle {
        // SAFETY: `raw` was checked non-null at the entry point and libpam
        // keeps the handle alive for the whole call; the reference does not
        // outlive this method's caller expression.
        unsafe { &*self.raw }
    }

    fn handle_mut(&mut self) -> &mut PamHandle {
        // SAFETY: as in `handle`; `&mut self` guarantees no other reference
        // made by this struct is alive.
        unsafe { &mut *self.raw }
    }

    fn send(
        &self,
        style: pam::constants::PamMessageStyle,
        text: &str,
    ) -> Result<Option<SecretBytes>, ConvError> {
        let conv = match self.handle().get_item::<Conv>() {
            Ok(Some(conv)) => conv,
            Ok(None) | Err(_) => return Err(ConvError::NoConversation),
        };
        match conv.send(style, text) {
            Ok(Some(answer)) => Ok(Some(SecretBytes::new(answer.as_bytes().to_vec()))),
            Ok(None) => Ok(None),
            Err(PamResultCode::PAM_CONV_ERR) => Err(ConvError::NullResponse),
            Err(_) => Err(ConvError::Failed),
        }
    }
}

fn level_priority(level: Level) -> c_int {
    match level {
        Level::Err => libc::LOG_ERR,
        Level::Warning => libc::LOG_WARNING,
        Level::Notice => libc::LOG_NOTICE,
        Level::Info => libc::LOG_INFO,
        Level::Debug => libc::LOG_DEBUG,
    }
}

/// `line` as a C string, NUL bytes dropped.
fn c_line(line: &str) -> Option<CString> {
    let cleaned: Vec<u8> = line.bytes().filter(|b| *b != 0).collect();
    CString::new(cleaned).ok()
}

fn syslog_raw(raw: *const PamHandle, level: Level, line: &str) {
    let Some(msg) = c_line(line) else {
        return;
    };
    // SAFETY: `raw` is a live handle (checked non-null by the caller); the
    // format is a literal "%s" and its one argument a NUL-terminated string.
    unsafe { pam_syslog(raw, level_priority(level), c"%s".as_ptr(), msg.as_ptr()) };
}

impl Log for LibPam {
    fn log(&self, level: Level, line: &str) {
        syslog_raw(self.raw, level, line);
    }
}

impl Host for LibPam {
    fn user(&mut self) -> Result<String, HostError> {
        match self.handle_mut().get_user(None) {
            Ok(user) if !user.is_empty() => Ok(user),
            Ok(_) => Err(HostError::Failed),
            Err(PamResultCode::PAM_CONV_ERR) => Err(HostError::Conversation),
            Err(_) => Err(HostError::Failed),
        }
    }

    fn service(&self) -> Option<String> {
        match self.handle().get_item::<Service>() {
            Ok(Some(s)) => Some(s.0.to_string_lossy().into_owned()),
            _ => None,
        }
    }

    fn rhost(&self) -> Option<String> {
        match self.handle().get_item::<RHost>() {
            Ok(Some(s)) => Some(s.0.to_string_lossy().into_owned()),
            _ => None,
        }
    }

    fn authtok(&self) -> Result<Option<SecretBytes>, HostError> {
        match self.handle().get_item::<AuthTok>() {
            Ok(Some(tok)) => Ok(Some(SecretBytes::new(tok.as_bytes().to_vec()))),
            Ok(None) => Ok(None),
            Err(_) => Err(HostError::Failed),
        }
    }

    fn set_authtok(&mut self, value: &SecretBytes) -> Result<(), HostError> {
        if value.expose().contains(&0) {
            return Err(HostError::Failed);
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(value.len() + 1));
        buf.extend_from_slice(value.expose());
        buf.push(0);
        let raw = self.raw;
        // SAFETY: `raw` is a live handle; `buf` is NUL-terminated with no
        // interior NUL and outlives the call; libpam copies the string.
        let rc = unsafe { pam_set_item(raw, PAM_AUTHTOK, buf.as_ptr().cast()) };
        if rc == code::SUCCESS {
            Ok(())
        } else {
            Err(HostError::Failed)
        }
    }

    fn prompt_secret(&mut self, prompt: &str) -> Result<SecretBytes, ConvError> {
        self.send(PAM_PROMPT_ECHO_OFF, prompt)?
            .ok_or(ConvError::NullResponse)
    }

    fn error_message(&mut self, text: &str) {
        if !self.silent {
            let _ = self.send(PAM_ERROR_MSG, text);
        }
    }

    fn disallow_null_authtok(&self) -> bool {
        self.disallow_null
    }
}

/// Copies `argv` into owned strings.
///
/// # Safety
/// `argv` must point to `argc` valid C strings (libpam guarantees this).
unsafe fn collect_args(argc: c_int, argv: *const *const c_char) -> Result<Vec<String>, String> {
    let n = usize::try_from(argc).map_err(|_| "negative argc".to_string())?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if argv.is_null() {
        return Err("argv is NULL".into());
    }
    // SAFETY: libpam passes `argc` pointers in `argv`.
    let ptrs = unsafe { std::slice::from_raw_parts(argv, n) };
    ptrs.iter()
        .enumerate()
        .map(|(i, p)| {
            if p.is_null() {
                return Err(format!("argument {} is NULL", i + 1));
            }
            // SAFETY: non-null, NUL-terminated, alive for the call.
            let c = unsafe { CStr::from_ptr(*p) };
            c.to_str()
                .map(str::to_string)
                .map_err(|_| format!("argument {} is not UTF-8", i + 1))
        })
        .collect()
}

/// Runs `body`, turning a panic into PAM_SERVICE_ERR (logged, without the
/// panic's message, which could hold anything).
fn guard(raw: *mut PamHandle, body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(rc) => rc,
        Err(_) => {
            if !raw.is_null() {
                syslog_raw(
                    raw,
                    Level::Err,
                    "internal fault (panic caught at the PAM boundary)",
                );
            }
            code::SERVICE_ERR
        }
    }
}

/// PAM entry point: authenticate with a Yubico OTP.
///
/// # Safety
/// Called by libpam with a valid handle and argument vector.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    guard(pamh, || {
        if pamh.is_null() {
            return code::SERVICE_ERR;
        }
        // SAFETY: libpam passes a valid argument vector of `argc` strings.
        let args = match unsafe { collect_args(argc, argv) } {
            Ok(a) => a,
            Err(why) => {
                syslog_raw(pamh, Level::Err, &format!("configuration error: {why}"));
                return code::SERVICE_ERR;
            }
        };
        #[allow(clippy::cast_sign_loss)]
        let flags = flags as pam::constants::PamFlag;
        let mut host = LibPam {
            raw: pamh,
            silent: flags & PAM_SILENT != 0,
            disallow_null: flags & PAM_DISALLOW_NULL_AUTHTOK != 0,
        };
        crate::session::authenticate(&mut host, &args).pam_code()
    })
}

/// PAM entry point: nothing to set; PAM_SUCCESS (SPEC §6).
///
/// # Safety
/// Called by libpam.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_setcred(
    pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    guard(pamh, || code::SUCCESS)
}

/// PAM entry point: this module makes no account decision; PAM_IGNORE.
///
/// # Safety
/// Called by libpam.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    guard(pamh, || code::IGNORE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_service_err() {
        let rc = guard(std::ptr::null_mut(), || -> c_int {
            std::panic::panic_any("boom")
        });
        assert_eq!(rc, code::SERVICE_ERR);
        assert_eq!(
            guard(std::ptr::null_mut(), || code::AUTH_ERR),
            code::AUTH_ERR
        );
    }
}
