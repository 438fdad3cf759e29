//! `ykmap map add|remove|list`: edits of the central authfile, or of a
//! user's own `~/.yubico/authorized_yubikeys` when no authfile is set.
//!
//! A per-user file is read and written with the user's file-system
//! identity (`setfsuid`), never as root: the kernel then creates
//! `~/.yubico` (0700) and the file (0600) owned by the user, and refuses
//! whatever the user could not do (a symlink planted by the user is never
//! followed: every open uses `O_NOFOLLOW`).

use std::path::{Path, PathBuf};

use pam_yubiotp::config::Settings;
use pam_yubiotp::fs_policy::{self, FilePolicy, Owner};
use pam_yubiotp::ldap::{self, LdapSettings};
use pam_yubiotp::mapping::{self, KeyLookup, Mapping, Passwd, USER_FILE, USER_FILE_MAX};
use pam_yubiotp::privs;

use crate::cli::MapCmd;
use crate::error::{CliError, CliResult};
use crate::locked_edit;
use crate::mapping_text;
use crate::settings::Loaded;
use crate::warn;

/// Largest central authfile the module reads.
const AUTHFILE_MAX: u64 = FilePolicy::ROOT_SHARED.max_size;

/// Runs a `map` command.
///
/// # Errors
/// See [`CliError`].
pub fn run(cmd: &MapCmd, loaded: &Loaded) -> CliResult {
    let settings = loaded.paths()?;
    if let Some(l) = &settings.ldap {
        return match cmd {
            MapCmd::List { user: Some(u) } => list_ldap(l, u, settings.token_id_length),
            MapCmd::List { user: None } => Err(CliError::input(
                "the mapping is in LDAP (ldap.uri): give a USER to look up",
            )),
            _ => Err(CliError::input(
                "the mapping is in LDAP (ldap.uri): edit the directory, not a file",
            )),
        };
    }
    match cmd {
        MapCmd::Add { user, pubids } => add(&settings, user, pubids),
        MapCmd::Remove { user, pubids } => remove(&settings, user, pubids),
        MapCmd::List { user } => list(&settings, user.as_deref()),
    }
}

fn passwd(user: &str) -> CliResult<Option<Passwd>> {
    mapping::lookup_user(user).map_err(CliError::failed)
}

fn known_user(user: &str) -> CliResult<Passwd> {
    passwd(user)?.ok_or_else(|| {
        CliError::failed(format!(
            "no user {user:?} in the passwd database (needed for ~{user}/{USER_FILE}, \
             as no central authfile is configured)"
        ))
    })
}

/// Applies `change` to the mapping file that holds `user`'s keys.
fn edit_mapping<T>(
    settings: &Settings,
    user: &str,
    change: impl FnOnce(&[u8]) -> CliResult<(Option<Vec<u8>>, T)>,
) -> CliResult<(PathBuf, T)> {
    match &settings.authfile {
        Some(path) => {
            if passwd(user)?.is_none() {
                warn(&format!("{user:?} is not in the passwd database"));
            }
            // Root's lock, temp file and rename must not happen in a
            // directory somebody else could swap or write.
            if let Some(Err(e)) = path.parent().map(fs_policy::check_dir_chain) {
                return Err(CliError::failed(format!(
                    "refusing to edit {}: {e}",
                    path.display()
                )));
            }
            let v = locked_edit::edit_locked(path, AUTHFILE_MAX, 0o644, Owner::Root, |old| {
                change(old.unwrap_or_default())
            })?;
            audit_central(path);
            Ok((path.clone(), v))
        }
        None => {
            let pw = known_user(user)?;
            let path = user_file(&pw)?;
            let v = privs::as_user(pw.uid, pw.gid, || {
                prepare_user_dir(&pw)?;
                locked_edit::edit_locked(
                    &path,
                    USER_FILE_MAX,
                    0o600,
                    Owner::RootOr(pw.uid),
                    |old| change(old.unwrap_or_default()),
                )
            })
            .map_err(CliError::failed)??;
            Ok((path, v))
        }
    }
}

fn user_file(pw: &Passwd) -> CliResult<PathBuf> {
    if !pw.home.is_absolute() || pw.home == Path::new("/") {
        return Err(CliError::failed(format!(
            "home directory {:?} of {} is not usable",
            pw.home, pw.name
        )));
    }
    Ok(pw.home.join(USER_FILE))
}

/// Checks the home directory like the module does, and creates
/// `~/.yubico` (0700) if needed. Runs with the user's fs identity.
fn prepare_user_dir(pw: &Passwd) -> CliResult<()> {
    let owner = Owner::RootOr(pw.uid);
    let meta = std::fs::symlink_metadata(&pw.home)
        .map_err(|e| CliError::failed(format!("{}: {e}", pw.home.display())))?;
    fs_policy::check_dir(&meta, owner, 0o022)
        .map_err(|v| CliError::failed(format!("{}: {v}", pw.home.display())))?;
    let dir = pw.home.join(".yubico");
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) => fs_policy::check_dir(&meta, owner, 0o022)
            .map_err(|v| CliError::failed(format!("{}: {v}", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| CliError::failed(format!("{}: {e}", dir.display())))
        }
        Err(e) => Err(CliError::failed(format!("{}: {e}", dir.display()))),
    }
}

/// Warns when the module would refuse the central file as it now is.
fn audit_central(path: &Path) {
    if let Err(e) = fs_policy::open_checked(path, &FilePolicy::ROOT_SHARED) {
        warn(&format!("the module will refuse it: {e}"));
    }
}

fn add(settings: &Settings, user: &str, pubids: &[String]) -> CliResult {
    mapping_text::validate_user(user)?;
    let ids = mapping_text::parse_pubids(pubids, settings.token_id_length)?;
    let (path, plan) = edit_mapping(settings, user, |old| {
        let mut plan = mapping_text::add(old, user, &ids);
        Ok((plan.content.take(), plan))
    })?;
    for (id, others) in &plan.shared {
        warn(&format!(
            "{id} is also mapped to {} in {}",
            others.join(", "),
            path.display()
        ));
    }
    for id in &plan.already {
        println!("{user}: already has {id}");
    }
    for id in &plan.added {
        println!("{user}: added {id}");
    }
    Ok(())
}

fn remove(settings: &Settings, user: &str, pubids: &[String]) -> CliResult {
    mapping_text::validate_user(user)?;
    let ids = mapping_text::parse_pubids(pubids, settings.token_id_length)?;
    let (path, plan) = edit_mapping(settings, user, |old| {
        let mut plan = mapping_text::remove(old, user, &ids);
        Ok((plan.content.take(), plan))
    })?;
    for id in &plan.removed {
        println!("{user}: removed {id}");
    }
    if plan.removed.is_empty() && plan.lines_removed > 0 {
        println!(
            "{user}: removed {} line(s) without keys",
            plan.lines_removed
        );
    }
    for id in &plan.missing {
        warn(&format!("{user} has no key {id} in {}", path.display()));
    }
    if plan.removed.is_empty() && plan.lines_removed == 0 {
        return Err(CliError::failed(format!(
            "nothing to remove for {user} in {}",
            path.display()
        )));
    }
    Ok(())
}

/// Reads the central file exactly as the module does (directory chain,
/// owner, mode, size) and parses it.
///
/// # Errors
/// Whatever makes the module refuse the file.
pub fn read_central(path: &Path) -> CliResult<Option<Mapping>> {
    if let Some(dir) = path.parent() {
        fs_policy::check_dir_chain(dir).map_err(|e| CliError::failed(format!("authfile {e}")))?;
    }
    match fs_policy::read_checked(path, &FilePolicy::ROOT_SHARED) {
        Ok(bytes) => Ok(Some(mapping::parse_mapping(&bytes))),
        Err(fs_policy::OpenError::NotFound(_)) => Ok(None),
        Err(e) => Err(CliError::failed(format!("authfile {e}"))),
    }
}

fn report_problems(path: &Path, m: &Mapping) {
    for p in &m.problems {
        warn(&format!("{}:{}: {}", path.display(), p.line, p.reason));
    }
}

fn print_user(user: &str, keys: &[yubiotp_core::PublicId]) {
    let ids: Vec<String> = keys.iter().map(ToString::to_string).collect();
    println!("{user}:{}", ids.join(":"));
}

fn user_json(user: &str, keys: &[yubiotp_core::PublicId]) -> serde_json::Value {
    let ids: Vec<String> = keys.iter().map(ToString::to_string).collect();
    serde_json::json!({ "user": user, "public_ids": ids })
}

/// `map list --json`: `{"mappings": [{"user": …, "public_ids": […]}]}`.
fn print_users(json: bool, users: &[(&str, &[yubiotp_core::PublicId])]) {
    if json {
        let list: Vec<_> = users.iter().map(|(u, k)| user_json(u, k)).collect();
        crate::print_json(&serde_json::json!({ "mappings": list }));
    } else {
        for (u, k) in users {
            print_user(u, k);
        }
    }
}

/// `map list USER` with the LDAP mapping: the module's search, and what it
/// makes of the answer (the same rules: exact ids, one entry). With
/// `ldap.bind_as_user` the tool has no password of the user's: it
/// searches anonymously and says so (what it shows may then differ from
/// what the user's own bind would read).
fn list_ldap(l: &LdapSettings, user: &str, token_id_length: usize) -> CliResult {
    mapping_text::validate_user(user)?;
    if pam_yubiotp::session::binds_as_user(l) {
        crate::note(ldap_anonymous_note());
    }
    match ldap::query(l, user, None).map_err(CliError::failed)? {
        ldap::Answer::NoEntry(why) => Err(CliError::failed(format!("{user}: LDAP: {why}"))),
        ldap::Answer::Refused(why) => Err(CliError::failed(why)),
        ldap::Answer::Entry(found) => {
            crate::note(&format!("from {} entry {:?}", found.server, found.dn));
            match ldap::keys_in(&found, l.yubi_attr_prefix.as_deref(), token_id_length) {
                KeyLookup::Keys(keys) => {
                    print_users(crate::json(), &[(user, keys.as_slice())]);
                    Ok(())
                }
                KeyLookup::NoKeys(why) => Err(CliError::failed(format!("{user}: {why}"))),
                KeyLookup::UnknownUser(why) => {
                    Err(CliError::failed(format!("no user {user:?} ({why})")))
                }
                KeyLookup::Unavailable(why) | KeyLookup::Refused(why) => Err(CliError::failed(why)),
            }
        }
    }
}

/// What `map list` and `check --online` say when the module binds as the
/// user.
#[must_use]
pub fn ldap_anonymous_note() -> &'static str {
    "ldap.bind_as_user: the module binds as each user with the user's own password, which \
     ykmap does not have; it searches anonymously instead (a directory that shows the key \
     attribute only to the user's own bind answers \"no key\" here)"
}

fn list(settings: &Settings, user: Option<&str>) -> CliResult {
    let json = crate::json();
    if let Some(u) = user {
        mapping_text::validate_user(u)?;
    }
    match (&settings.authfile, user) {
        (Some(path), _) => {
            let m = read_central(path)?.ok_or_else(|| {
                CliError::failed(format!("authfile {}: does not exist", path.display()))
            })?;
            report_problems(path, &m);
            let users = mapping_text::users(&m);
            match user {
                None => {
                    let all: Vec<(&str, &[yubiotp_core::PublicId])> = users
                        .iter()
                        .map(|(u, k)| (u.as_str(), k.as_slice()))
                        .collect();
                    print_users(json, &all);
                    Ok(())
                }
                Some(u) => match users.iter().find(|(name, _)| name == u) {
                    Some((_, keys)) if !keys.is_empty() => {
                        print_users(json, &[(u, keys.as_slice())]);
                        Ok(())
                    }
                    _ => Err(CliError::failed(format!(
                        "no key mapped to {u} in {}",
                        path.display()
                    ))),
                },
            }
        }
        (None, Some(u)) => {
            let pw = known_user(u)?;
            match mapping::keys_from_user_file(&pw, settings.token_id_length) {
                KeyLookup::Keys(keys) => {
                    print_users(json, &[(u, keys.as_slice())]);
                    Ok(())
                }
                KeyLookup::NoKeys(why) => Err(CliError::failed(format!("{u}: {why}"))),
                KeyLookup::UnknownUser(why) => {
                    Err(CliError::failed(format!("no user {u:?} ({why})")))
                }
                KeyLookup::Unavailable(why) | KeyLookup::Refused(why) => Err(CliError::failed(why)),
            }
        }
        (None, None) => Err(CliError::input(
            "no central authfile is configured: give a USER to read \
             ~USER/.yubico/authorized_yubikeys, or --authfile PATH",
        )),
    }
}
