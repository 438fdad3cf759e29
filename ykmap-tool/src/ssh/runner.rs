//! The runner: spawns `sshd -T`, reads sshd's PAM service file with its
//! includes, and hands both to [`check`]. The only code of the checker that
//! touches the system.

use core::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::checks::{Problem, check};
use super::pam_stack::expand_stack;

/// Where and how [`read_and_check_with`] reads the live setup.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The sshd binary.
    pub sshd: PathBuf,
    /// `-f FILE` for sshd (its default when `None`).
    pub sshd_config: Option<PathBuf>,
    /// Evaluate `Match` blocks for this user (`-C user=…,host=…,addr=…`).
    pub user: Option<String>,
    /// The PAM configuration directory.
    pub pam_dir: PathBuf,
    /// The PAM service sshd uses (always `sshd` for OpenSSH).
    pub service: String,
    /// How long `sshd -T` may take.
    pub timeout: Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            sshd: PathBuf::from("/usr/sbin/sshd"),
            sshd_config: None,
            user: None,
            pam_dir: PathBuf::from("/etc/pam.d"),
            service: "sshd".to_string(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why the live setup could not be read.
#[derive(Debug)]
pub enum CheckError {
    /// `sshd -T` could not be run or failed.
    Sshd(String),
    /// The PAM file could not be read.
    Pam {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sshd(why) => write!(f, "sshd -T: {why}"),
            Self::Pam { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for CheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sshd(_) => None,
            Self::Pam { source, .. } => Some(source),
        }
    }
}

/// Runs `sshd -T` (with `-C user=USER,host=localhost,addr=127.0.0.1` when
/// `user` is given) and reads `/etc/pam.d/sshd` with its includes, then
/// [`check`]s them.
///
/// # Errors
/// [`CheckError`] when sshd cannot be run or the PAM file cannot be read.
pub fn read_and_check(user: Option<&str>) -> Result<Vec<Problem>, CheckError> {
    read_and_check_with(&ReadOptions {
        user: user.map(str::to_string),
        ..ReadOptions::default()
    })
}

/// [`read_and_check`] with every path and the time limit chosen.
///
/// # Errors
/// [`CheckError`].
pub fn read_and_check_with(opts: &ReadOptions) -> Result<Vec<Problem>, CheckError> {
    let sshd_t = run_sshd_t(opts)?;
    let stack = read_stack(&opts.pam_dir, &opts.service)?;
    Ok(check(&sshd_t, &stack))
}

/// Reads `<pam_dir>/<service>` and expands its includes from `pam_dir`.
///
/// # Errors
/// [`CheckError::Pam`] when the service file itself cannot be read.
pub fn read_stack(pam_dir: &Path, service: &str) -> Result<String, CheckError> {
    let path = pam_dir.join(service);
    let text = read_small(&path).map_err(|source| CheckError::Pam {
        path: path.clone(),
        source,
    })?;
    let load = |name: &str| {
        let p = if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            pam_dir.join(name)
        };
        read_small(&p).ok()
    };
    Ok(expand_stack(&text, &load))
}

fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = String::new();
    std::fs::File::open(path)?
        .take(1 << 20)
        .read_to_string(&mut buf)?;
    Ok(buf)
}

fn run_sshd_t(opts: &ReadOptions) -> Result<String, CheckError> {
    use std::io::Read;
    let mut cmd = Command::new(&opts.sshd);
    cmd.arg("-T");
    if let Some(f) = &opts.sshd_config {
        cmd.arg("-f").arg(f);
    }
    if let Some(u) = &opts.user {
        if u.is_empty() || u.contains([',', '=', ' ', '\n']) {
            return Err(CheckError::Sshd(format!("user name {u:?} cannot be used")));
        }
        cmd.arg("-C")
            .arg(format!("user={u},host=localhost,addr=127.0.0.1"));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CheckError::Sshd(format!("{}: {e}", opts.sshd.display())))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.take(4 << 20).read_to_string(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.take(64 << 10).read_to_string(&mut s);
        }
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if started.elapsed() < opts.timeout => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CheckError::Sshd(format!(
                    "did not finish within {} s",
                    opts.timeout.as_secs()
                )));
            }
            Err(e) => return Err(CheckError::Sshd(e.to_string())),
        }
    };
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let first = err
            .lines()
            .next()
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(CheckError::Sshd(format!("failed ({status}): {first}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::fixtures::*;

    #[test]
    fn reader_reports_failures_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_and_check_with(&ReadOptions {
            sshd: dir.path().join("no-such-sshd"),
            pam_dir: dir.path().to_path_buf(),
            ..ReadOptions::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("sshd -T: "), "{err}");
        assert!(matches!(
            read_stack(dir.path(), "sshd"),
            Err(CheckError::Pam { .. })
        ));
        std::fs::write(
            dir.path().join("sshd"),
            key_then_otp_stack().replace("@include common-account", "@include common-auth"),
        )
        .unwrap();
        std::fs::write(dir.path().join("common-auth"), DEBIAN_COMMON_AUTH).unwrap();
        let text = read_stack(dir.path(), "sshd").unwrap();
        assert!(
            text.contains("# >>> include common-auth\nauth\t[success=1"),
            "{text}"
        );
        // A fake sshd that prints the settings.
        let fake = dir.path().join("fake-sshd");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\ncat <<'EOF'\n{}EOF\n", key_then_otp_sshd()),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let p = read_and_check_with(&ReadOptions {
            sshd: fake.clone(),
            pam_dir: dir.path().to_path_buf(),
            user: Some("alice".into()),
            ..ReadOptions::default()
        })
        .unwrap();
        // common-auth (pulled in by the edited account include) asks for a password,
        // but after our module: only the lines before it count.
        assert!(p.is_empty(), "{p:#?}");
        // A user name that would inject connection keywords.
        assert!(
            read_and_check_with(&ReadOptions {
                sshd: fake,
                pam_dir: dir.path().to_path_buf(),
                user: Some("alice,addr=1.2.3.4".into()),
                ..ReadOptions::default()
            })
            .is_err()
        );
    }
}
