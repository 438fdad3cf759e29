//! `yubiotp-ssh`: see the library and yubiotp-ssh(1).

fn main() -> std::process::ExitCode {
    yubiotp_ssh::run(&yubiotp_ssh::Options::installed())
}
