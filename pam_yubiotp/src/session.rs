//! One authentication, top to bottom: settings → the user's keys → the OTP
//! → parse → is it one of the user's keys → validate → outcome, and one log
//! line about it.

use std::time::{Duration, Instant};

use yubiotp_core::Token;

use crate::audit::AttemptRecord;
use crate::backend::CloudBackend;
use crate::backend::cloud::CloudValidator;
use crate::config::{self, Settings};
use crate::engine::{self, Verdict};
use crate::host::{Host, HostError, Level, Log};
use crate::ldap::{Bind, LdapSource};
use crate::mapping::{self, KeyLookup, MappingSource};
use crate::outcome::Outcome;
use crate::prompt::{self, Obtained, PromptError};
use crate::secret::SecretBytes;
use crate::verifier;

/// Runs one authentication for the module arguments `args` and logs one
/// summary line through the host. A caller that is not root asks the
/// privileged verifier ([`crate::verifier`]) when it is installed, unless
/// the settings are readable and in cloud mode (nothing root-only needed).
pub fn authenticate<H: Host, S: AsRef<str>>(host: &mut H, args: &[S]) -> Outcome {
    let started = Instant::now();
    let mut record = AttemptRecord {
        service: host.service(),
        rhost: host.rhost(),
        ..AttemptRecord::default()
    };
    let outcome = if nix::unistd::geteuid().is_root() {
        let settings = config::from_module_args(args);
        let debug_file = settings
            .as_ref()
            .ok()
            .and_then(|s| s.debug_file.as_deref())
            .and_then(|p| match debug_file::open(p) {
                Ok(f) => Some(f),
                Err(e) => {
                    host.log(Level::Warning, &format!("debug_file {}: {e}", p.display()));
                    None
                }
            });
        let mut tee = Tee {
            inner: host,
            file: debug_file.as_ref(),
        };
        let outcome = attempt(&mut tee, settings, &mut record);
        let (level, line) = record.line(&outcome, started.elapsed().as_millis());
        tee.log(level, &line);
        return outcome;
    } else {
        unprivileged(host, args, &mut record)
    };
    let (level, line) = record.line(&outcome, started.elapsed().as_millis());
    host.log(level, &line);
    outcome
}

/// [`authenticate`] with settings already resolved (the verifier helper,
/// which reads only its compiled-in file).
pub fn authenticate_with<H: Host>(
    host: &mut H,
    settings: Result<Settings, config::ConfigError>,
) -> Outcome {
    let started = Instant::now();
    let mut record = AttemptRecord {
        service: host.service(),
        rhost: host.rhost(),
        ..AttemptRecord::default()
    };
    let outcome = attempt(host, settings, &mut record);
    let (level, line) = record.line(&outcome, started.elapsed().as_millis());
    host.log(level, &line);
    outcome
}

/// Extra time the helper gets beyond the cloud timeout of the PAM line:
/// lock waits, the failure delay, a cloud timeout set only in the file.
const VERIFIER_MARGIN: Duration = Duration::from_secs(20);

/// A caller that is not root: cloud mode with readable settings runs here;
/// everything else goes to the verifier, which gets only the OTP (the
/// password, if typed in front of it, goes on in PAM_AUTHTOK as usual) —
/// and, when this caller knows the mapping binds as the user
/// (`ldap_bind_as_user` on the PAM line, or a readable config that sets
/// `ldap.bind_as_user`), the password from PAM_AUTHTOK as a second line.
/// Without the helper the in-process attempt runs and fails closed as
/// before, after a log line naming the missing helper.
fn unprivileged<H: Host, S: AsRef<str>>(
    host: &mut H,
    args: &[S],
    record: &mut AttemptRecord,
) -> Outcome {
    let in_process = config::from_module_args(args);
    if matches!(&in_process, Ok(s) if s.mode == config::Mode::Cloud) {
        return attempt(host, in_process, record);
    }
    let line = match config::parse_args(args) {
        Ok(l) => l,
        Err(e) => return Outcome::ServiceErr(e.to_string()),
    };
    let as_user = line.ldap_bind_as_user == Some(true)
        || matches!(&in_process, Ok(s) if s.ldap.as_ref().is_some_and(binds_as_user));
    // Only what this side uses: the prompt, first_pass, token_id_length,
    // nullok and verifier= of the PAM line. Everything else (mode, cloud,
    // [ldap] options that need the file's ldap.uri, ...) is the helper's,
    // from its own file, and is not resolved here.
    let front_layer = config::Layer {
        mode: Some(config::Mode::Local),
        prompt: line.prompt.clone(),
        first_pass: line.first_pass,
        token_id_length: line.token_id_length,
        nullok: line.nullok,
        verifier: line.verifier.clone(),
        ..config::Layer::default()
    };
    let front = match config::resolve(None, &front_layer) {
        Ok(s) => s,
        Err(e) => return Outcome::ServiceErr(e.to_string()),
    };
    let helper = front.verifier.helper.clone();
    if std::fs::symlink_metadata(&helper).is_err() {
        host.log(
            Level::Err,
            &format!(
                "uid {} is not root and the verifier {} is missing: local and hybrid mode \
                 (and a root-only config) cannot work for this caller",
                nix::unistd::geteuid(),
                helper.display()
            ),
        );
        return attempt(host, in_process, record);
    }
    record.mode = Some("verifier");
    let user = match user_of(host) {
        Ok(u) => u,
        Err(outcome) => return outcome,
    };
    record.user = Some(user.clone());
    let typed = match token_of(host, &front) {
        Ok((token, typed)) => {
            record.public_id = Some(token.public_id);
            typed
        }
        Err(outcome) => return outcome,
    };
    let password = if as_user {
        match user_password(host, &typed) {
            Ok(p) => Some(p),
            Err(outcome) => return outcome,
        }
    } else {
        None
    };
    let timeout = line.timeout.map_or(Duration::ZERO, config::Timeout::get)
        + line
            .ldap_timeout
            .map_or(Duration::ZERO, config::Timeout::get);
    let deadline = Instant::now() + timeout + VERIFIER_MARGIN;
    let service = host.service().unwrap_or_else(|| "-".to_string());
    let answer = verifier::ask_with_password(
        &helper,
        &user,
        &service,
        &typed,
        password.as_ref(),
        deadline,
    );
    drop(password);
    let outcome = verifier::outcome_of(answer, front.nullok, host.disallow_null_authtok());
    if let Outcome::Success(a) = &outcome {
        record.backend = Some(a.backend());
    }
    outcome
}

fn attempt<H: Host>(
    host: &mut H,
    settings: Result<Settings, config::ConfigError>,
    record: &mut AttemptRecord,
) -> Outcome {
    let settings = match settings {
        Ok(s) => s,
        Err(e) if e.kind == config::ConfigErrorKind::Unreadable => {
            return Outcome::AuthInfoUnavail(e.to_string());
        }
        Err(e) => return Outcome::ServiceErr(e.to_string()),
    };
    record.mode = Some(settings.mode.name());
    for warning in &settings.warnings {
        host.log(Level::Warning, warning);
    }
    let user = match user_of(host) {
        Ok(u) => u,
        Err(outcome) => return outcome,
    };
    record.user = Some(user.clone());
    let (keys, token) = match settings.ldap.as_ref().filter(|l| binds_as_user(l)) {
        // The directory gives the keys only to the user's own bind, and
        // the password comes with (or before) the OTP: the OTP first, then
        // the password from PAM_AUTHTOK, then the lookup (so this mode
        // always prompts, as pam_yubico's always_prompt would).
        Some(ldap) => {
            let (token, typed) = match token_of(host, &settings) {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            record.public_id = Some(token.public_id);
            let password = match user_password(host, &typed) {
                Ok(p) => p,
                Err(outcome) => return outcome,
            };
            let lookup = LdapSource {
                settings: ldap,
                password: Some(&password),
            }
            .keys_for(&user, settings.token_id_length);
            drop(password);
            match keys_or_outcome(host, &settings, lookup) {
                Ok(keys) => (keys, token),
                Err(outcome) => return outcome,
            }
        }
        None => {
            let keys = match keys_or_outcome(host, &settings, keys_for(&user, &settings)) {
                Ok(keys) => keys,
                Err(outcome) => return outcome,
            };
            let (token, _) = match token_of(host, &settings) {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            (keys, token)
        }
    };
    record.public_id = Some(token.public_id);
    if !keys.contains(&token.public_id) {
        return Outcome::AuthErr(format!(
            "key {} is not mapped to this user",
            token.public_id
        ));
    }
    run_engine(host, &settings, &token, record)
}

/// True when the LDAP mapping binds as the user ([`Bind::AsUser`]).
#[must_use]
pub fn binds_as_user(l: &crate::ldap::LdapSettings) -> bool {
    matches!(l.bind, Bind::AsUser)
}

/// The keys of a lookup, or the outcome it means (`nullok` applied to a
/// positively established "no key" only).
fn keys_or_outcome<H: Host>(
    host: &H,
    settings: &Settings,
    lookup: KeyLookup,
) -> Result<Vec<yubiotp_core::PublicId>, Outcome> {
    let keys = match lookup {
        KeyLookup::Keys(keys) => keys,
        KeyLookup::NoKeys(why) if settings.nullok && !host.disallow_null_authtok() => {
            return Err(Outcome::Ignore(why));
        }
        KeyLookup::NoKeys(why) => return Err(Outcome::UserUnknown(why)),
        KeyLookup::UnknownUser(why) => return Err(Outcome::UserUnknown(why)),
        KeyLookup::Unavailable(why) => return Err(Outcome::AuthInfoUnavail(why)),
        KeyLookup::Refused(why) => return Err(Outcome::AuthErr(why)),
    };
    if settings.debug {
        host.log(
            Level::Debug,
            &format!("{} key(s) mapped to the user", keys.len()),
        );
    }
    Ok(keys)
}

/// The OTP, parsed (and as typed), or the outcome when there is none.
fn token_of<H: Host>(host: &mut H, settings: &Settings) -> Result<(Token, SecretBytes), Outcome> {
    let typed = otp_of(host, settings)?;
    match typed
        .expose_str()
        .map(|s| Token::parse(s, settings.token_id_length))
    {
        Some(Ok(token)) => Ok((token, typed)),
        Some(Err(e)) => Err(Outcome::AuthErr(format!("malformed OTP: {e}"))),
        None => Err(Outcome::AuthErr("malformed OTP: not UTF-8".into())),
    }
}

/// The user's password for `ldap.bind_as_user`, read from PAM_AUTHTOK once
/// the OTP is in hand (a password typed in front of the OTP is there by
/// then; so is one an earlier module set). None, or empty, is
/// PAM_AUTHINFO_UNAVAIL — never "no key", whatever `nullok` says; sshd's
/// placeholder (an invalid user or a refused root login) is PAM_AUTH_ERR.
/// PAM_AUTHTOK that is the OTP itself (`use_first_pass` with the OTP
/// alone) holds no password.
pub(crate) fn user_password<H: Host>(host: &H, otp: &SecretBytes) -> Result<SecretBytes, Outcome> {
    let tok = host
        .authtok()
        .map_err(|_| Outcome::ServiceErr("could not read PAM_AUTHTOK".into()))?;
    match tok {
        Some(t) if prompt::is_sshd_placeholder(t.expose()) => {
            host.log(
                Level::Warning,
                "PAM_AUTHTOK is sshd's placeholder password (invalid user or refused root login)",
            );
            Err(Outcome::AuthErr(
                "ldap.bind_as_user: PAM_AUTHTOK is sshd's placeholder password".into(),
            ))
        }
        Some(t) if t.len() > prompt::MAX_ANSWER => Err(Outcome::AuthErr(format!(
            "ldap.bind_as_user: the password in PAM_AUTHTOK is longer than {} bytes",
            prompt::MAX_ANSWER
        ))),
        Some(t) if !t.is_empty() && t.expose() != otp.expose() => Ok(t),
        _ => Err(Outcome::AuthInfoUnavail(crate::ldap::NEEDS_PASSWORD.into())),
    }
}

/// The user name from the host, or the outcome when there is none.
fn user_of<H: Host>(host: &mut H) -> Result<String, Outcome> {
    host.user().map_err(|e| match e {
        HostError::Conversation => {
            Outcome::ConvErr("conversation failed while asking for the user name".into())
        }
        HostError::Failed => Outcome::ServiceErr("no usable user name".into()),
    })
}

/// The OTP-sized text (SPEC §5), or the outcome when there is none.
fn otp_of<H: Host>(host: &mut H, settings: &Settings) -> Result<SecretBytes, Outcome> {
    match prompt::obtain_otp(host, settings) {
        Ok(Obtained::Otp(typed)) => Ok(typed),
        Ok(Obtained::Unusable(why)) => Err(Outcome::AuthErr(why)),
        Err(PromptError::Conv(e)) => Err(Outcome::ConvErr(format!("conversation: {e:?}"))),
        Err(PromptError::AuthTok(why)) => Err(Outcome::ServiceErr(why)),
    }
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
        (Some(l), _) => Box::new(LdapSource {
            settings: l,
            password: None,
        }),
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
        let line = format!("pam_yubiotp[{}]: {level:?}: {clean}\n", std::process::id());
        // Past the caller's RLIMIT_FSIZE the write would raise SIGXFSZ and
        // kill the host: the line is dropped instead (syslog has it).
        let end = file
            .metadata()
            .map_or(u64::MAX, |m| m.len())
            .saturating_add(line.len() as u64);
        if !crate::atomic::fsize_allows(end) {
            return;
        }
        // One write per line (O_APPEND keeps concurrent lines whole); a
        // failure to log never changes the outcome.
        let _ = file.write_all(line.as_bytes());
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
