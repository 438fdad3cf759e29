//! The result of one attempt, and its one mapping to a PAM code (SPEC §6).

use std::os::raw::c_int;

use crate::engine::Accepted;

/// Linux-PAM result codes used by this module.
pub mod code {
    use std::os::raw::c_int;
    /// PAM_SUCCESS
    pub const SUCCESS: c_int = 0;
    /// PAM_SERVICE_ERR
    pub const SERVICE_ERR: c_int = 3;
    /// PAM_AUTH_ERR
    pub const AUTH_ERR: c_int = 7;
    /// PAM_AUTHINFO_UNAVAIL
    pub const AUTHINFO_UNAVAIL: c_int = 9;
    /// PAM_USER_UNKNOWN
    pub const USER_UNKNOWN: c_int = 10;
    /// PAM_CONV_ERR
    pub const CONV_ERR: c_int = 19;
    /// PAM_IGNORE
    pub const IGNORE: c_int = 25;
}

/// One row of SPEC §6 each; the string is the reason for the log line.
#[derive(Debug)]
pub enum Outcome {
    /// OTP valid, fresh, mapped to this user.
    Success(Accepted),
    /// Malformed, unmapped, bad CRC or private id, replayed, rejected.
    AuthErr(String),
    /// Unknown user, or no mapped key (without `nullok`).
    UserUnknown(String),
    /// `nullok` and the user positively has no key.
    Ignore(String),
    /// No definitive answer, or a file or state that cannot be trusted.
    AuthInfoUnavail(String),
    /// Configuration error or internal fault.
    ServiceErr(String),
    /// The conversation failed.
    ConvErr(String),
}

impl Outcome {
    /// The PAM code (SPEC §6). The only place that yields PAM_SUCCESS, and
    /// only from an [`Accepted`].
    #[must_use]
    pub fn pam_code(&self) -> c_int {
        match self {
            Self::Success(_) => code::SUCCESS,
            Self::AuthErr(_) => code::AUTH_ERR,
            Self::UserUnknown(_) => code::USER_UNKNOWN,
            Self::Ignore(_) => code::IGNORE,
            Self::AuthInfoUnavail(_) => code::AUTHINFO_UNAVAIL,
            Self::ServiceErr(_) => code::SERVICE_ERR,
            Self::ConvErr(_) => code::CONV_ERR,
        }
    }

    /// Short name for the log line.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Success(_) => "success",
            Self::AuthErr(_) => "auth_err",
            Self::UserUnknown(_) => "user_unknown",
            Self::Ignore(_) => "ignore",
            Self::AuthInfoUnavail(_) => "authinfo_unavail",
            Self::ServiceErr(_) => "service_err",
            Self::ConvErr(_) => "conv_err",
        }
    }

    /// The reason text (empty for success).
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Self::Success(_) => "",
            Self::AuthErr(r)
            | Self::UserUnknown(r)
            | Self::Ignore(r)
            | Self::AuthInfoUnavail(r)
            | Self::ServiceErr(r)
            | Self::ConvErr(r) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §6, one row per variant: the only PAM_SUCCESS comes from an
    /// `Accepted`, and no failure maps to PAM_SUCCESS or PAM_IGNORE except
    /// the designed `nullok` row.
    #[test]
    fn spec_result_table() {
        let rows: Vec<(Outcome, c_int)> = vec![
            (Outcome::Success(Accepted::for_table_test()), code::SUCCESS),
            (Outcome::AuthErr("replayed".into()), code::AUTH_ERR),
            (Outcome::UserUnknown("no key".into()), code::USER_UNKNOWN),
            (Outcome::Ignore("nullok".into()), code::IGNORE),
            (
                Outcome::AuthInfoUnavail("down".into()),
                code::AUTHINFO_UNAVAIL,
            ),
            (Outcome::ServiceErr("config".into()), code::SERVICE_ERR),
            (Outcome::ConvErr("conv".into()), code::CONV_ERR),
        ];
        for (outcome, expected) in &rows {
            assert_eq!(outcome.pam_code(), *expected, "{outcome:?}");
            let is_success = matches!(outcome, Outcome::Success(_));
            assert_eq!(outcome.pam_code() == code::SUCCESS, is_success);
            let is_ignore = matches!(outcome, Outcome::Ignore(_));
            assert_eq!(outcome.pam_code() == code::IGNORE, is_ignore);
        }
        use pam::constants::PamResultCode as P;
        for (ours, libpam) in [
            (code::SUCCESS, P::PAM_SUCCESS),
            (code::AUTH_ERR, P::PAM_AUTH_ERR),
            (code::IGNORE, P::PAM_IGNORE),
            (code::USER_UNKNOWN, P::PAM_USER_UNKNOWN),
            (code::AUTHINFO_UNAVAIL, P::PAM_AUTHINFO_UNAVAIL),
            (code::SERVICE_ERR, P::PAM_SERVICE_ERR),
            (code::CONV_ERR, P::PAM_CONV_ERR),
        ] {
            assert_eq!(ours, libpam as c_int);
        }
    }
}
