//! One authentication, top to bottom: settings → the user's keys → the OTP
//! → parse → is it one of the user's keys → validate → outcome, and one log
//! line about it.

use std::time::Instant;

use yubiotp_core::Token;

use crate::audit::AttemptRecord;
use crate::backend::CloudBackend;
use crate::backend::cloud::CloudValidator;
use crate::config::{self, Settings};
use crate::engine::{self, Verdict};
use crate::host::{Host, HostError, Level, Log};
use crate::ldap::LdapSource;
use crate::mapping::{self, KeyLookup, MappingSource};
use crate::outcome::Outcome;
use crate::prompt::{self, Obtained, PromptError};

/// Runs one authentication for the module arguments `args` and logs one
/// summary line through the host.
pub fn authenticate<H: Host, S: AsRef<str>>(host: &mut H, args: &[S]) -> Outcome {
    let started = Instant::now();
    let mut record = AttemptRecord {
        service: host.service(),
        rhost: host.rhost(),
        ..AttemptRecord::default()
    };
    let settings = config::from_module_args(args);
    let debug_file = match &settings {
        Ok(s) => s
            .debug_file
            .as_deref()
            .and_then(|p| match debug_file::open(p) {
                Ok(f) => Some(f),
                Err(e) => {
                    host.log(Level::Warning, &format!("debug_file {}: {e}", p.display()));
                    None
                }
            }),
        Err(_) => None,
    };
    let mut host = Tee {
        inner: host,
        file: debug_file.as_ref(),
    };
    let outcome = match settings {
        Ok(settings) => attempt(&mut host, &settings, &mut record),
        Err(e) if e.kind == config::ConfigErrorKind::Unreadable => {
            Outcome::AuthInfoUnavail(e.to_string())
        }
        Err(e) => Outcome::ServiceErr(e.to_string()),
    };
    let (level, line) = record.line(&outcome, started.elapsed().as_millis());
    host.log(level, &line);
    outcome
}

fn attempt<H: Host>(host: &mut H, settings: &Settings, record: &mut AttemptRecord) -> Outcome {
    record.mode = Some(settings.mode.name());
    for warning in &settings.warnings {
        host.log(Level::Warning, warning);
    }
    let user = match host.user() {
        Ok(u) => u,
        Err(HostError::Conversation) => {
            return Outcome::ConvErr("conversation failed while asking for the user name".into());
        }
        Err(HostError::Failed) => return Outcome::ServiceErr("no usable user name".into()),
    };
    record.user = Some(user.clone());
    let keys = match keys_for(&user, settings) {
        KeyLookup::Keys(keys) => keys,
        KeyLookup::NoKeys(why) if settings.nullok && !host.disallow_null_authtok() => {
            return Outcome::Ignore(why);
        }
        KeyLookup::NoKeys(why) => return Outcome::UserUnknown(why),
        KeyLookup::UnknownUser => {
            return Outcome::UserUnknown("not in the passwd database".into());
        }
        KeyLookup::Unavailable(why) => return Outcome::AuthInfoUnavail(why),
    };
    if settings.debug {
        host.log(
            Level::Debug,
            &format!("{} key(s) mapped to the user", keys.len()),
        );
    }
    let typed = match prompt::obtain_otp(host, settings) {
        Ok(Obtained::Otp(typed)) => typed,
        Ok(Obtained::Unusable(why)) => return Outcome::AuthErr(why),
        Err(PromptError::Conv(e)) => return Outcome::ConvErr(format!("conversation: {e:?}")),
        Err(PromptError::AuthTok(why)) => return Outcome::ServiceErr(why),
    };
    let token = match typed
        .expose_str()
        .map(|s| Token::parse(s, settings.token_id_length))
    {
        Some(Ok(token)) => token,
        Some(Err(e)) => return Outcome::AuthErr(format!("malformed OTP: {e}")),
        None => return Outcome::AuthErr("malformed OTP: not UTF-8".into()),
    };
    record.public_id = Some(token.public_id);
    if !keys.contains(&token.public_id) {
        return Outcome::AuthErr(format!(
            "key {} is not mapped to this user",
            token.public_id
        ));
    }
    run_engine(host, settings, &token, record)
}

/// With a central authfile the user is mapped as written, whether or not
/// the passwd database knows them (virtual users of OpenVPN, RADIUS, mail
/// services, as pam_yubico does); passwd is asked only to find a per-user
/// file's home directory (SPEC §4).
fn keys_for(user: &str, settings: &Settings) -> KeyLookup {
    source(settings).keys_for(user, settings.token_id_length)
}

/// The one mapping source: LDAP when configured (as in pam_yubico), else
/// the central file, else the per-user file.
#[must_use]
pub fn source(settings: &Settings) -> Box<dyn MappingSource + '_> {
    match (&settings.ldap, &settings.authfile) {
        (Some(l), _) => Box::new(LdapSource { settings: l }),
        (None, Some(file)) => Box::new(mapping::CentralFile(file)),
        (None, None) => Box::new(mapping::UserFile),
    }
}

/// The host with every log line also appended to the `debug_file`.
struct Tee<'a, H: Host> {
    inner: &'a mut H,
    file: Option<&'a std::fs::File>,
}

impl<H: Host> Log for Tee<'_, H> {
    fn log(&self, level: Level, line: &str) {
        self.inner.log(level, line);
        if let Some(f) = self.file {
            debug_file::append(f, level, line);
        }
    }
}

impl<H: Host> Host for Tee<'_, H> {
    fn user(&mut self) -> Result<String, HostError> {
        self.inner.user()
    }
    fn service(&self) -> Option<String> {
        self.inner.service()
    }
    fn rhost(&self) -> Option<String> {
        self.inner.rhost()
    }
    fn authtok(&self) -> Result<Option<crate::secret::SecretBytes>, HostError> {
        self.inner.authtok()
    }
    fn set_authtok(&mut self, value: &crate::secret::SecretBytes) -> Result<(), HostError> {
        self.inner.set_authtok(value)
    }
    fn prompt_secret(
        &mut self,
        prompt: &str,
    ) -> Result<crate::secret::SecretBytes, crate::host::ConvError> {
        self.inner.prompt_secret(prompt)
    }
    fn error_message(&mut self, text: &str) {
        self.inner.error_message(text);
    }
    fn disallow_null_authtok(&self) -> bool {
        self.inner.disallow_null_authtok()
    }
}

/// pam_yubico's `debug_file=`, the safe way: the file must already exist
/// as a regular file owned by root, not writable by group or other, below
/// directories only root can change; it is opened `O_WRONLY|O_APPEND|
/// O_NOFOLLOW|O_NOCTTY|O_NONBLOCK|O_CLOEXEC`, never created. It gets the
/// same (already redacted) lines as syslog.
mod debug_file {
    use std::fs::File;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::path::Path;

    use crate::fs_policy;
    use crate::host::Level;

    pub(super) fn open(path: &Path) -> Result<File, String> {
        path.parent()
            .map_or(Ok(()), fs_policy::check_dir_chain)
            .map_err(|e| e.to_string())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| format!("cannot be opened for appending (it is never created): {e}"))?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.file_type().is_file() {
            return Err("not a regular file".into());
        }
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err("must be owned by root and not writable by group or other".into());
        }
        Ok(file)
    }

    pub(super) fn append(mut file: &File, level: Level, line: &str) {
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        // One write per line (O_APPEND keeps concurrent lines whole); a
        // failure to log never changes the outcome.
        let _ = file.write_all(
            format!("pam_yubiotp[{}]: {level:?}: {clean}\n", std::process::id()).as_bytes(),
        );
    }
}

/// The engine's verdict on a token already known to be the user's, with
/// the cloud client built when the mode uses it.
fn run_engine<H: Host>(
    host: &H,
    settings: &Settings,
    token: &Token,
    record: &mut AttemptRecord,
) -> Outcome {
    let cloud = settings
        .cloud
        .as_ref()
        .map(|c| CloudValidator::new(c, host, settings.debug));
    let cloud = cloud.as_ref().map(|c| c as &dyn CloudBackend);
    match engine::validate(settings, token, cloud, host) {
        Verdict::Accepted(accepted) => {
            record.backend = Some(accepted.backend());
            Outcome::Success(accepted)
        }
        Verdict::Rejected(why) => Outcome::AuthErr(why),
        Verdict::Unavailable(why) => Outcome::AuthInfoUnavail(why),
    }
}
