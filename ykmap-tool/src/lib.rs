//! `ykmap`, the admin tool of pam_yubiotp, as a library: the command
//! implementations and the pure parsers behind them. It reuses the module's
//! own configuration resolver, mapping parser, stores and authentication
//! flow, so the tool and the module never disagree about a file.
//!
//! ```text
//! main ─► cli (clap) ─► settings::load (config::load_file + resolve)
//!      ─► cmd::{map, key, otp, verify, check, softkey, ssh}
//!           map ─► mapping_text (pure, over mapping::parse_mapping)
//!               ─► locked_edit (names) ─► pam_yubiotp::atomic (lock, temp, rename)
//!           key ─► import (pure parsers) ─► pam_yubiotp::store::{KeyStore, CounterStore}
//!           verify ─► tty::TtyHost ─► pam_yubiotp::session::authenticate
//!           check --online ─► cmd::check::online ─► pam_yubiotp::backend::cloud::CloudValidator
//!           ssh check ─► ssh (runs sshd -T, reads /etc/pam.d/sshd, pure checks)
//!           migrate ─► pam_yubiotp::config::compat (pam_yubico's options) ─► locked_edit
//!      ─► exit 0 / 1 (failed) / 2 (usage or input), one line on stderr
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod cmd;
pub mod error;
pub mod import;
pub mod input;
pub mod locked_edit;
pub mod mapping_text;
pub mod settings;
pub mod softkey;
pub mod ssh;
pub mod tty;

use cli::{Cli, Command};
use error::CliResult;

/// Prints a warning on stderr (the command goes on).
pub fn warn(msg: &str) {
    eprintln!("ykmap: warning: {msg}");
}

/// Prints a remark on stderr.
pub fn note(msg: &str) {
    eprintln!("ykmap: note: {msg}");
}

/// Runs the parsed command line.
///
/// # Errors
/// The command's [`error::CliError`].
pub fn run(cli: &Cli) -> CliResult {
    let g = &cli.global;
    match &cli.command {
        Command::Map(cmd) => cmd::map::run(cmd, &settings::load(g)?),
        Command::Key(cmd) => cmd::key::run(cmd, &settings::load(g)?),
        Command::Counter(cmd) => cmd::key::run_counter(cmd, &settings::load(g)?),
        Command::Otp(cmd) => cmd::otp::run(cmd, settings::load(g).ok().as_ref()),
        Command::Modhex(cmd) => cmd::otp::run_modhex(cmd),
        Command::Serial(args) => cmd::otp::run_serial(args),
        Command::Verify(args) => cmd::verify::run(args, &settings::load_raw(g)?),
        Command::Check(args) => cmd::check::run(args, g),
        Command::Softkey(cmd) => cmd::softkey::run(cmd, g),
        Command::Ssh(cmd) => cmd::ssh::run(cmd),
        Command::Migrate(args) => cmd::migrate::run(args, g),
    }
}
