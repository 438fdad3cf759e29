//! `ykmap verify USER [OTP]`: the module's own authentication flow
//! (`pam_yubiotp::session::authenticate`) with the terminal as host. Run
//! by a user who is not root, that flow asks the setuid verifier
//! (`pam_yubiotp::verifier`, /usr/libexec/yubiotp/yubiotp-verify) exactly
//! as a screen locker's module does: a user can test their own key (and
//! only their own), the OTP is consumed, the path options are not used.

use pam_yubiotp::outcome::{Outcome, code};
use pam_yubiotp::secret::SecretBytes;
use pam_yubiotp::session;

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult};
use crate::mapping_text::validate_user;
use crate::settings::Loaded;
use crate::tty::TtyHost;

/// The name of a PAM code.
#[must_use]
pub fn pam_code_name(c: i32) -> &'static str {
    match c {
        code::SUCCESS => "PAM_SUCCESS",
        code::SERVICE_ERR => "PAM_SERVICE_ERR",
        code::AUTH_ERR => "PAM_AUTH_ERR",
        code::AUTHINFO_UNAVAIL => "PAM_AUTHINFO_UNAVAIL",
        code::USER_UNKNOWN => "PAM_USER_UNKNOWN",
        code::CONV_ERR => "PAM_CONV_ERR",
        code::IGNORE => "PAM_IGNORE",
        _ => "PAM_?",
    }
}

/// Runs `verify`: prints the outcome, its reason and the PAM code.
///
/// # Errors
/// Any outcome but success (exit 1).
pub fn run(args: &VerifyArgs, loaded: &Loaded) -> CliResult {
    validate_user(&args.user)?;
    let mut module_args = loaded.module_args();
    if args.debug {
        module_args.push("debug".to_string());
    }
    if let Some(v) = &args.verifier {
        module_args.push(format!("verifier={}", v.display()));
    }
    // "-": the OTP's line from standard input (never in the process list).
    let answer = match &args.otp {
        Some(o) => {
            let otp = crate::input::SecretInput::new().get(o, "OTP")?;
            Some(SecretBytes::new(otp.trim().as_bytes().to_vec()))
        }
        None => None,
    };
    let mut host = TtyHost::new(&args.user, answer);
    let outcome = session::authenticate(&mut host, &module_args);
    let pam = outcome.pam_code();
    println!("outcome: {}", outcome.name());
    if !outcome.reason().is_empty() {
        println!("reason:  {}", outcome.reason());
    }
    if let Outcome::Success(accepted) = &outcome {
        println!("backend: {}", accepted.backend().name());
    }
    println!("pam:     {} ({pam})", pam_code_name(pam));
    if host.authtok_set() {
        println!("note:    the text before the OTP was set as PAM_AUTHTOK for the next module");
    }
    match outcome {
        Outcome::Success(_) => Ok(()),
        other => Err(CliError::failed(format!(
            "{} is not authenticated ({})",
            args.user,
            pam_code_name(other.pam_code())
        ))),
    }
}
