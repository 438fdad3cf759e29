//! The verifier for the end-to-end tests: pam_yubiotp's `yubiotp-verify`
//! (the same `helper_main`), except for the one compiled-in choice: the
//! config is `yubiotp.toml` beside this binary, not /etc/yubiotp. Each test
//! copies it root:root 4755 into its own root-owned directory with its
//! config, so a non-root caller still chooses no path at run time. Never
//! installed (`CARGO_BIN_EXE_yubiotp-test-verify`).

fn main() -> std::process::ExitCode {
    match pam_yubiotp::verifier::config_beside_exe() {
        Ok(path) => pam_yubiotp::verifier::helper_main(&path),
        Err(_) => std::process::ExitCode::from(pam_yubiotp::verifier::exit::CONFIG_ERROR),
    }
}
