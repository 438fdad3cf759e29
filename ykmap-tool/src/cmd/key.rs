//! `ykmap key add|remove|list|import` and `ykmap counter show|reset`: the
//! local key store and counter state, through the library's stores.
//!
//! Order of writes: counter state first, then the key store. A key is
//! never in the key store without state because of us (a crash in between
//! leaves at most state for a key the store does not hold, which nothing
//! reads); existing state is never lowered except by `counter reset
//! --force`.

use std::path::Path;

use yubiotp_core::{
    AesKey, Counter, KeyMaterial, PrivateId, PublicId, Token, decrypt, public_id_to_serial,
};

use pam_yubiotp::config::Settings;
use pam_yubiotp::fs_policy::OpenError;

use crate::cli::{CounterCmd, KeyAddArgs, KeyCmd};
use crate::error::{CliError, CliResult};
use crate::import;
use crate::input::{SecretInput, read_input};
use crate::locked_edit;
use crate::mapping_text::parse_pubid;
use crate::settings::Loaded;
use crate::{note, warn};
use pam_yubiotp::store::keydir::{self, Keys, Migrated};
use pam_yubiotp::store::{CounterStore, StoreError};

/// Loads the key store; a missing file is an empty store.
///
/// # Errors
/// An untrusted, unreadable or corrupt key store.
pub fn load_keystore(path: &Path) -> CliResult<Keys> {
    match Keys::open(path) {
        Ok(ks) => Ok(ks),
        Err(StoreError::Open(OpenError::NotFound(_))) => Ok(Keys::empty()),
        Err(e) => Err(e.into()),
    }
}

fn counters(settings: &Settings) -> CliResult<CounterStore> {
    CounterStore::create_dir(&settings.local.statedir).map_err(CliError::from)
}

/// Decrypts `otp` with `key` and checks that it belongs to `id` and that
/// its CRC and private id are right; returns its counters.
///
/// # Errors
/// Not an OTP of `id` (exit 2), or it does not decrypt to this key (exit 1).
pub fn counter_from_otp(id: &PublicId, key: &KeyMaterial, otp: &str) -> CliResult<Counter> {
    let token = Token::parse(otp.trim(), id.len_chars())
        .map_err(|e| CliError::input(format!("--otp: {e}")))?;
    if token.public_id != *id {
        return Err(CliError::input(format!(
            "--otp: the OTP is from key {}, not {id}",
            token.public_id
        )));
    }
    let plain = decrypt(&token.ciphertext, &key.aes_key);
    if !plain.crc_ok {
        return Err(CliError::failed(format!(
            "the OTP does not decrypt with the AES key of {id} (CRC mismatch)"
        )));
    }
    if plain.private_id != key.private_id {
        return Err(CliError::failed(format!(
            "the OTP's private id does not match the one of {id}"
        )));
    }
    Ok(plain.counter())
}

/// Creates `id`'s state at `start`, or raises existing state to `start`;
/// existing state is never lowered. Returns a line describing the state.
/// How [`ensure_state`] describes a state it created at (0,0).
const CREATED_AT_ZERO: &str = "counter state created at use=0 session=0";

fn ensure_state(counters: &CounterStore, id: &PublicId, start: Counter) -> CliResult<String> {
    match counters.init(id, start) {
        Ok(()) => return Ok(format!("counter state created at {start}")),
        Err(StoreError::Exists(_)) => {}
        Err(StoreError::Corrupt { .. }) => {
            warn(&format!(
                "the counter state of {id} is corrupt; the module refuses this key until \
                 `ykmap counter reset {id} --otp OTP --force`"
            ));
            return Ok("counter state corrupt (kept)".to_string());
        }
        Err(e) => return Err(e.into()),
    }
    if start == Counter::default() {
        let cur = counters.read(id)?;
        return Ok(format!("existing counter state kept at {cur}"));
    }
    match counters.set(id, start, false) {
        Ok(_) => Ok(format!("counter state raised to {start}")),
        Err(StoreError::WouldLower { current, .. }) => {
            warn(&format!(
                "the existing counter state of {id} ({current}) is newer than the OTP's \
                 ({start}); kept"
            ));
            Ok(format!("existing counter state kept at {current}"))
        }
        Err(e) => Err(e.into()),
    }
}

fn serial_text(id: &PublicId) -> String {
    public_id_to_serial(id).map_or_else(|| "-".to_string(), |s| s.to_string())
}

/// Runs a `key` command.
///
/// # Errors
/// See [`CliError`].
pub fn run(cmd: &KeyCmd, loaded: &Loaded) -> CliResult {
    let settings = loaded.paths()?;
    match cmd {
        KeyCmd::Add(args) => add(&settings, args),
        KeyCmd::Remove { pubid } => remove(&settings, pubid),
        KeyCmd::List => list(&settings),
        KeyCmd::Import { file, force } => import_keys(&settings, file, *force),
        KeyCmd::Migrate => migrate(&settings),
    }
}

/// Said whenever a key's counter state starts at (0,0).
const START_AT_ZERO: &str = "counter state starts at use=0 session=0: any OTP this key \
produced before (for YubiCloud, other sites) is accepted once on this host; for a key \
already in use, set the state from a fresh OTP: ykmap counter reset PUBID --otp OTP";

fn add(settings: &Settings, args: &KeyAddArgs) -> CliResult {
    let id = parse_pubid(&args.pubid, settings.token_id_length)?;
    let mut input = SecretInput::new();
    let aes = input.get(&args.aes_key, "AES key")?;
    let aes_key =
        AesKey::from_hex(aes.trim()).map_err(|e| CliError::input(format!("--aes-key: {e}")))?;
    let private = input.get(&args.private_id, "private id")?;
    let private_id = PrivateId::from_hex(private.trim())
        .map_err(|e| CliError::input(format!("--private-id: {e}")))?;
    let key = KeyMaterial {
        aes_key,
        private_id,
    };
    let start = match &args.otp {
        Some(otp) => counter_from_otp(&id, &key, &input.get(otp, "OTP")?)?,
        None => Counter::default(),
    };
    let keystore = &settings.local.keystore;
    if load_keystore(keystore)?.contains(&id) && !args.force {
        return Err(CliError::failed(format!(
            "{id} is already in the key store {}; use --force to replace it",
            keystore.display()
        )));
    }
    let counters = counters(settings)?;
    let mut state = ensure_state(&counters, &id, start)?;
    if let Some(shared) = crate::cmd::shared::seed(settings, &id, start)? {
        state = format!("{state}; {shared}");
    }
    let replaced = keydir::update(keystore, &locked_edit::hook, |ks| {
        if ks.contains(&id) && !args.force {
            return Err(StoreError::Exists(id));
        }
        Ok(ks.insert(id, key))
    })?;
    println!(
        "{id}: {} the key store {} (serial {}); {state}",
        if replaced { "replaced in" } else { "added to" },
        keystore.display(),
        serial_text(&id)
    );
    if state.starts_with(CREATED_AT_ZERO) {
        warn(START_AT_ZERO);
    }
    Ok(())
}

fn remove(settings: &Settings, pubid: &str) -> CliResult {
    let id = parse_pubid(pubid, settings.token_id_length)?;
    let keystore = &settings.local.keystore;
    let held = load_keystore(keystore)?.contains(&id);
    if held {
        keydir::update(keystore, &locked_edit::hook, |ks| {
            if ks.remove(&id) {
                Ok(())
            } else {
                Err(StoreError::Unknown(id))
            }
        })?;
    }
    let state_removed = match CounterStore::open(&settings.local.statedir) {
        Ok(c) => match c.remove(&id) {
            Ok(()) => true,
            Err(StoreError::Unknown(_)) => false,
            Err(e) => return Err(e.into()),
        },
        Err(StoreError::Open(OpenError::NotFound(_))) => false,
        Err(e) => return Err(e.into()),
    };
    if !held && !state_removed {
        return Err(CliError::failed(format!(
            "{id} is not in the key store {}",
            keystore.display()
        )));
    }
    println!(
        "{id}: {}{}",
        if held {
            "removed from the key store"
        } else {
            "was not in the key store"
        },
        if state_removed {
            "; counter state removed"
        } else {
            "; had no counter state"
        }
    );
    if let Some(authfile) = &settings.authfile
        && let Ok(Some(m)) = crate::cmd::map::read_central(authfile)
    {
        let users = crate::mapping_text::other_users(&m, &id, "");
        if !users.is_empty() {
            warn(&format!(
                "{id} is still mapped to {} in {}",
                users.join(", "),
                authfile.display()
            ));
        }
    }
    Ok(())
}

/// The state of one key, as shown by `key list` and `counter show`.
fn state_text(counters: Option<&CounterStore>, id: &PublicId) -> String {
    let Some(c) = counters else {
        return "state=unavailable".to_string();
    };
    match c.read(id) {
        Ok(counter) => counter.to_string(),
        Err(StoreError::StateMissing { .. }) => "state=missing".to_string(),
        Err(StoreError::Corrupt { .. }) => "state=corrupt".to_string(),
        Err(_) => "state=unreadable".to_string(),
    }
}

fn counter_json(c: yubiotp_core::Counter) -> serde_json::Value {
    serde_json::json!({ "use": c.use_counter(), "session": c.session() })
}

fn state_json(counters: Option<&CounterStore>, id: &PublicId) -> (&'static str, serde_json::Value) {
    let Some(c) = counters else {
        return ("unavailable", serde_json::Value::Null);
    };
    match c.read(id) {
        Ok(counter) => ("ok", counter_json(counter)),
        Err(StoreError::StateMissing { .. }) => ("missing", serde_json::Value::Null),
        Err(StoreError::Corrupt { .. }) => ("corrupt", serde_json::Value::Null),
        Err(_) => ("unreadable", serde_json::Value::Null),
    }
}

fn list(settings: &Settings) -> CliResult {
    let keystore = &settings.local.keystore;
    let ks = match Keys::open(keystore) {
        Ok(ks) => ks,
        Err(StoreError::Open(OpenError::NotFound(_))) => {
            note(&format!(
                "the key store {} does not exist yet",
                keystore.display()
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let counters = CounterStore::open(&settings.local.statedir).ok();
    if crate::json() {
        // {"keys": [{"public_id", "serial" (number or null), "state"
        // ("ok", "missing", "corrupt", "unreadable", "unavailable"),
        // "counter" ({"use", "session"} or null)}]}
        let keys: Vec<_> = ks
            .ids()
            .into_iter()
            .map(|id| {
                let (state, counter) = state_json(counters.as_ref(), &id);
                serde_json::json!({
                    "public_id": id.to_string(),
                    "serial": public_id_to_serial(&id),
                    "state": state,
                    "counter": counter,
                })
            })
            .collect();
        crate::print_json(&serde_json::json!({ "keys": keys }));
        return Ok(());
    }
    for id in ks.ids() {
        println!(
            "{id}  serial={}  {}",
            serial_text(&id),
            state_text(counters.as_ref(), &id)
        );
    }
    Ok(())
}

fn import_keys(settings: &Settings, file: &str, force: bool) -> CliResult {
    let bytes = read_input(file, import::MAX_INPUT)?;
    let shown = if file == "-" { "standard input" } else { file };
    let parsed = import::parse(&bytes, settings.token_id_length)
        .map_err(|e| CliError::input(format!("{shown}: {e}; nothing imported")))?;
    if parsed.keys.is_empty() {
        return Err(CliError::input(format!(
            "{shown}: no Yubico OTP key found; nothing imported"
        )));
    }
    let dups = import::duplicates(&parsed.keys);
    if let Some((first, second, id)) = dups.first() {
        if !force {
            return Err(CliError::input(format!(
                "{shown}: line {second}: public id {id} already on line {first}; nothing \
                 imported (--force lets the last one win)"
            )));
        }
        for (first, second, id) in &dups {
            warn(&format!(
                "{shown}: line {second}: public id {id} also on line {first}; the later line wins"
            ));
        }
    }
    // Last record of each id wins (in the order of those last records).
    let mut seen = std::collections::HashSet::new();
    let mut keys: Vec<&import::ImportedKey> = parsed
        .keys
        .iter()
        .rev()
        .filter(|k| seen.insert(k.public_id))
        .collect();
    keys.reverse();
    let keystore = &settings.local.keystore;
    let existing = load_keystore(keystore)?;
    if !force && let Some(k) = keys.iter().find(|k| existing.contains(&k.public_id)) {
        return Err(CliError::input(format!(
            "{shown}: line {}: public id {} is already in the key store {}; nothing \
             imported (--force replaces)",
            k.line,
            k.public_id,
            keystore.display()
        )));
    }
    let counters = counters(settings)?;
    // All states in one batch (two syncs), then the keys in one write.
    let ids: Vec<PublicId> = keys.iter().map(|k| k.public_id).collect();
    let at_zero = !counters.init_many(&ids, Counter::default())?.is_empty();
    // With [counters], each key's shared value is seeded (never lowered).
    for id in &ids {
        if let Some(shared) = crate::cmd::shared::seed(settings, id, Counter::default())? {
            note(&format!("{id}: {shared}"));
        }
    }
    let replaced = keydir::update(keystore, &locked_edit::hook, |ks| {
        if !force && let Some(k) = keys.iter().find(|k| ks.contains(&k.public_id)) {
            return Err(StoreError::Exists(k.public_id));
        }
        let mut replaced = 0usize;
        for k in &keys {
            if ks.insert(k.public_id, k.key.clone()) {
                replaced += 1;
            }
        }
        Ok(replaced)
    })?;
    for k in &keys {
        println!(
            "{}  serial={}",
            k.public_id,
            k.serial
                .map_or_else(|| serial_text(&k.public_id), |s| s.to_string())
        );
    }
    println!(
        "imported {} key(s) into {} ({replaced} replaced)",
        keys.len(),
        keystore.display()
    );
    if parsed.skipped > 0 {
        note(&format!(
            "skipped {} record(s) of other credential types",
            parsed.skipped
        ));
    }
    if at_zero {
        warn(START_AT_ZERO);
    }
    Ok(())
}

fn migrate(settings: &Settings) -> CliResult {
    let keystore = &settings.local.keystore;
    let dir = keydir::dir_of(keystore)?;
    match keydir::migrate(keystore)? {
        Migrated::Done(n) => println!(
            "migrated {n} key(s) from {} to {} (one file per key); {} removed",
            keystore.display(),
            dir.display(),
            keystore.display()
        ),
        Migrated::Already => println!(
            "{} is already in the per-key layout: nothing to do",
            dir.display()
        ),
        Migrated::Nothing => note(&format!(
            "neither {} nor {} exists: nothing to migrate (the first `ykmap key add` or \
             `import` creates {})",
            keystore.display(),
            dir.display(),
            dir.display()
        )),
    }
    Ok(())
}

/// Runs a `counter` command.
///
/// # Errors
/// See [`CliError`].
pub fn run_counter(cmd: &CounterCmd, loaded: &Loaded) -> CliResult {
    let settings = loaded.paths()?;
    match cmd {
        CounterCmd::Show { pubid } => {
            let id = parse_pubid(pubid, settings.token_id_length)?;
            let counters = CounterStore::open(&settings.local.statedir)?;
            let c = counters.read(&id)?;
            let shared = crate::cmd::shared::show(&settings, &id)?;
            if crate::json() {
                // {"public_id", "counter": {"use", "session"}, "shared": text|null}
                crate::print_json(&serde_json::json!({
                    "public_id": id.to_string(),
                    "counter": counter_json(c),
                    "shared": shared,
                }));
            } else {
                match shared {
                    Some(shared) => println!("{id}  {c}  shared {shared}"),
                    None => println!("{id}  {c}"),
                }
            }
            Ok(())
        }
        CounterCmd::Reset { pubid, otp, force } => {
            let otp = SecretInput::new().get(otp, "OTP")?;
            reset(&settings, pubid, &otp, *force)
        }
    }
}

fn reset(settings: &Settings, pubid: &str, otp: &str, force: bool) -> CliResult {
    let id = parse_pubid(pubid, settings.token_id_length)?;
    let ks = load_keystore(&settings.local.keystore)?;
    let key = ks.get(&id)?;
    let key = key.as_ref().ok_or_else(|| {
        CliError::failed(format!(
            "{id} is not in the key store {}",
            settings.local.keystore.display()
        ))
    })?;
    let c = counter_from_otp(&id, key, otp)?;
    let counters = counters(settings)?;
    let previous = match counters.set(&id, c, force) {
        Ok(prev) => prev,
        Err(StoreError::StateMissing { .. }) => {
            counters.init(&id, c)?;
            None
        }
        Err(StoreError::WouldLower { current, .. }) => {
            return Err(CliError::failed(format!(
                "{id}: the OTP's counters ({c}) are below the state ({current}): it is an old \
                 OTP; use a fresh one, or --force to lower the state (re-opens the OTPs in \
                 between)"
            )));
        }
        Err(e @ (StoreError::Corrupt { .. } | StoreError::Open(OpenError::Untrusted(..)))) => {
            return Err(CliError::failed(format!(
                "{e}; the last accepted counters are unknown: rerun with --force to replace \
                 the state with this OTP's counters"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(prev) = previous
        && prev > c
    {
        warn(&format!(
            "{id}: counter state lowered from {prev} to {c}; OTPs in between are valid again"
        ));
    }
    match previous {
        Some(prev) => println!("{id}: counter state set to {c} (was {prev})"),
        None => println!("{id}: counter state set to {c}"),
    }
    if let Some(shared) = crate::cmd::shared::reset(settings, &id, c, force)? {
        println!("{id}: {shared}");
    }
    Ok(())
}
