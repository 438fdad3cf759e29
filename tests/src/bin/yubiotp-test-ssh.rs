//! `yubiotp-ssh` for the end-to-end tests: the same `run`, except for two
//! compiled-in choices: the verifier is `yubiotp-verify` beside this
//! binary (the tests put the setuid test verifier there, in a root-owned
//! directory), not /usr/libexec/yubiotp; and the prompt gives up after
//! 3 s instead of 60, so the time limit can be tested. Never installed.

fn main() -> std::process::ExitCode {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return std::process::ExitCode::from(yubiotp_ssh::exit::CONFIG);
    };
    let dir = exe
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    yubiotp_ssh::run(&yubiotp_ssh::Options {
        verifier: dir.join("yubiotp-verify"),
        prompt_limit: std::time::Duration::from_secs(3),
        ..yubiotp_ssh::Options::installed()
    })
}
