//! `ykmap enable` / `ykmap disable`: the pam-auth-update profile is put
//! where pam-auth-update sees it only once the configuration works.
//!
//! An installed but unconfigured pam_yubiotp (the default configuration:
//! cloud mode, no client id) fails every login with PAM_SERVICE_ERR, and
//! must: a configuration error never fails open. So the packages install
//! the profile to [`PROFILE_SOURCE`], out of pam-auth-update's sight, and
//! `ykmap enable` first runs every check of `ykmap check`, refuses while
//! any problem is left, then writes the profile to [`PROFILE_DIR`] (with
//! the `--config`, `--authfile`, `--keystore`, `--statedir` it was given
//! as module arguments, so the module reads what was checked) and runs
//! `pam-auth-update --enable yubiotp`. `ykmap disable` runs
//! `pam-auth-update --remove yubiotp` and deletes the profile again.

use std::path::{Path, PathBuf};
use std::process::Command;

use pam_yubiotp::atomic::{self, Perms};

use crate::cli::{CheckArgs, EnableArgs, GlobalArgs};
use crate::cmd::check;
use crate::error::{CliError, CliResult, io_failed};
use crate::{locked_edit, settings};

/// Where the packages install the profile (pam-auth-update does not look
/// here).
pub const PROFILE_SOURCE: &str = "usr/share/pam_yubiotp/pam-configs/yubiotp";
/// pam-auth-update's profile directory.
pub const PROFILE_DIR: &str = "usr/share/pam-configs";
/// The profile's name.
pub const PROFILE: &str = "yubiotp";

fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

/// The profile with the module line's arguments extended by `args`.
fn render(text: &str, args: &[String]) -> CliResult<String> {
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 128);
    for line in text.lines() {
        out.push_str(line);
        if !line.trim_start().starts_with('#') && line.contains("pam_yubiotp.so") {
            found = true;
            for a in args {
                if a.contains(char::is_whitespace) {
                    return Err(CliError::input(format!(
                        "{a:?}: a path with white space cannot be a PAM module argument"
                    )));
                }
                out.push(' ');
                out.push_str(a);
            }
        }
        out.push('\n');
    }
    if found {
        Ok(out)
    } else {
        Err(CliError::failed(
            "the profile has no pam_yubiotp.so line".to_string(),
        ))
    }
}

fn pam_auth_update(root: &Path, args: &[&str]) -> CliResult {
    let mut cmd = Command::new("pam-auth-update");
    if root != Path::new("/") {
        cmd.arg("--root").arg(root);
    }
    let status = cmd
        .args(args)
        .status()
        .map_err(|e| CliError::failed(format!("pam-auth-update: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "pam-auth-update {}: {status}",
            args.join(" ")
        )))
    }
}

/// Runs `enable`.
///
/// # Errors
/// A check found a problem (nothing changed), or writing the profile or
/// pam-auth-update failed.
pub fn run_enable(args: &EnableArgs, g: &GlobalArgs) -> CliResult {
    let root = settings::absolute(&args.root)?;
    let check_args = CheckArgs {
        online: false,
        pamdir: root.join("etc/pam.d"),
    };
    let problems = check::audit(&check_args, g)?;
    if !problems.is_empty() {
        for p in &problems {
            println!("{p}");
        }
        return Err(CliError::failed(format!(
            "{} problem(s) found: the pam-auth-update profile was not installed, so \
             nothing changed (an enabled but broken configuration refuses every login)",
            problems.len()
        )));
    }
    let source = match &args.profile {
        Some(p) => settings::absolute(p)?,
        None => under(&root, PROFILE_SOURCE),
    };
    let text = std::fs::read_to_string(&source).map_err(|e| io_failed(&source, &e))?;
    let module_args = settings::load_raw(g)?.module_args();
    let profile = render(&text, &module_args)?;
    let dir = under(&root, PROFILE_DIR);
    let target = dir.join(PROFILE);
    atomic::replace_durably(
        &dir,
        &target,
        &locked_edit::temp_prefix(&target)?,
        profile.as_bytes(),
        Perms {
            mode: 0o644,
            owner: None,
        },
        &locked_edit::hook,
    )?;
    println!("installed {}", target.display());
    pam_auth_update(&root, &["--enable", PROFILE])?;
    println!("enabled: pam-auth-update --enable {PROFILE}");
    Ok(())
}

/// Runs `disable`.
///
/// # Errors
/// pam-auth-update or the removal failed.
pub fn run_disable(args: &EnableArgs) -> CliResult {
    let root = settings::absolute(&args.root)?;
    let target = under(&root, PROFILE_DIR).join(PROFILE);
    if !target.exists() {
        println!("{} is not installed: nothing to do", target.display());
        return Ok(());
    }
    pam_auth_update(&root, &["--remove", PROFILE])?;
    std::fs::remove_file(&target).map_err(|e| io_failed(&target, &e))?;
    atomic::sync_dir(&under(&root, PROFILE_DIR))?;
    println!("disabled and removed {}", target.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_appends_arguments_to_the_module_line_only() {
        let text = "Name: x\nAuth:\n\trequired\tpam_yubiotp.so nullok\n";
        let out = render(text, &["config=/e/y.toml".into()]).unwrap();
        assert_eq!(
            out,
            "Name: x\nAuth:\n\trequired\tpam_yubiotp.so nullok config=/e/y.toml\n"
        );
        assert!(render("Name: x\n", &[]).is_err());
        assert!(render(text, &["config=/a b".into()]).is_err());
    }
}
