//! `yubiotp-verify USER SERVICE` (OTP on stdin): the privileged verifier of
//! pam_yubiotp, installed setuid root as /usr/libexec/yubiotp/yubiotp-verify.
//! Reads only /etc/yubiotp/yubiotp.toml (compiled in). See
//! `pam_yubiotp::verifier` and yubiotp-verify(8).

fn main() -> std::process::ExitCode {
    pam_yubiotp::verifier::helper_main(std::path::Path::new(pam_yubiotp::config::DEFAULT_CONFIG))
}
