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
use crate::host::{Host, HostError, Level};
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
    let outcome = attempt(host, args, &mut record);
    let (level, line) = record.line(&outcome, started.elapsed().as_millis());
    host.log(level, &line);
    outcome
}

fn attempt<H: Host, S: AsRef<str>>(
    host: &mut H,
    args: &[S],
    record: &mut AttemptRecord,
) -> Outcome {
    let settings = match config::from_module_args(args) {
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
    let user = match host.user() {
        Ok(u) => u,
        Err(HostError::Conversation) => {
            return Outcome::ConvErr("conversation failed while asking for the user name".into());
        }
        Err(HostError::Failed) => return Outcome::ServiceErr("no usable user name".into()),
    };
    record.user = Some(user.clone());
    let keys = match keys_for(&user, &settings) {
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
    let typed = match prompt::obtain_otp(host, &settings) {
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
    run_engine(host, &settings, &token, record)
}

fn keys_for(user: &str, settings: &Settings) -> KeyLookup {
    let pw = match mapping::lookup_user(user) {
        Ok(Some(pw)) => pw,
        Ok(None) => return KeyLookup::UnknownUser,
        Err(e) => return KeyLookup::Unavailable(e),
    };
    source(settings).keys_for(&pw, settings.token_id_length)
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
