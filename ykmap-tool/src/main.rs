//! The `ykmap` binary: parse, run, map the result to the exit status
//! (0 ok, 1 failed, 2 usage or input error) with one line on stderr.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = ykmap::cli::Cli::parse();
    match ykmap::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ykmap: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
