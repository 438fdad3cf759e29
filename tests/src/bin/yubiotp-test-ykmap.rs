//! `ykmap` for the end-to-end tests: the same `main` as ykmap-tool's
//! binary, built with this crate so the tests can name it
//! (`CARGO_BIN_EXE_yubiotp-test-ykmap`).

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = ykmap::cli::Cli::parse();
    match ykmap::run(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ykmap: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
