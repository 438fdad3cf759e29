//! The resolver helper for the end-to-end tests: the same code as
//! pam_yubiotp's `yubiotp-resolve` binary, built with this crate so the
//! tests can name it (`CARGO_BIN_EXE_yubiotp-test-resolve`).

fn main() -> std::process::ExitCode {
    pam_yubiotp::net::resolve::helper_main()
}
