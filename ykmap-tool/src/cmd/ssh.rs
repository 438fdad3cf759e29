//! `ykmap ssh check`: the sshd settings and PAM stack against the two
//! supported SSH recipes, through [`crate::ssh`].

use crate::cli::SshCmd;
use crate::error::{CliError, CliResult};
use crate::ssh::{self, ReadOptions};

/// Runs `ssh …`.
///
/// # Errors
/// Problems found, or sshd or its PAM stack cannot be read (exit 1).
pub fn run(cmd: &SshCmd) -> CliResult {
    let SshCmd::Check(args) = cmd;
    let opts = ReadOptions {
        sshd: args.sshd.clone(),
        sshd_config: args.sshd_config.clone(),
        user: args.user.clone(),
        pam_dir: args.pam_dir.clone(),
        ..ReadOptions::default()
    };
    let problems = ssh::read_and_check_with(&opts).map_err(|e| CliError::failed(e.to_string()))?;
    if problems.is_empty() {
        println!("sshd and its PAM stack match a supported recipe: no problem found");
        return Ok(());
    }
    for p in &problems {
        println!("{p}");
    }
    Err(CliError::failed(format!(
        "{} problem(s) found",
        problems.len()
    )))
}
