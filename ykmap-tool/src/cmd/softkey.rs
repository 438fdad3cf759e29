//! `ykmap softkey new|otp|show`.
//!
//! `otp` holds an exclusive `flock` on the key file while it computes,
//! commits and prints the next OTP; the new counters are durable (temp
//! file, fsync, rename, fsync dir) before the OTP is printed, so two
//! concurrent invocations, or one after a crash, never print the same OTP.
//! The lock is taken on the opened file; if the path was renamed over in
//! the meantime the open is retried, so every holder sees the latest file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::libc;
use yubiotp_core::{AesKey, Counter, KeyMaterial, PrivateId, PublicId, mint_token};
use zeroize::Zeroizing;

use crate::cli::GlobalArgs;
use crate::cli::SoftkeyCmd;
use crate::cmd::key::load_keystore;
use crate::error::{CliError, CliResult};
use crate::locked_edit;
use crate::mapping_text::parse_pubid;
use crate::settings;
use crate::softkey::{MAX_FILE, SoftKey};
use pam_yubiotp::atomic::{self, Perms};
use pam_yubiotp::store::{CounterStore, StoreError, keydir};

/// `n` random bytes from the kernel.
///
/// # Errors
/// When `/dev/urandom` cannot be read.
pub fn random_bytes(n: usize) -> CliResult<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| CliError::failed(format!("/dev/urandom: {e}")))?;
    Ok(buf)
}

fn io(path: &Path, e: &std::io::Error) -> CliError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return CliError::failed(format!("{}: is a symlink; refusing it", path.display()));
    }
    CliError::failed(format!("{}: {e}", path.display()))
}

/// Runs a `softkey` command.
///
/// # Errors
/// See [`CliError`].
pub fn run(cmd: &SoftkeyCmd, g: &GlobalArgs) -> CliResult {
    match cmd {
        SoftkeyCmd::New {
            path,
            public_id,
            register,
        } => new(g, path, public_id.as_deref(), *register),
        SoftkeyCmd::Otp { path, power_up } => otp(path, *power_up),
        SoftkeyCmd::Show { path } => show(path),
    }
}

fn new(g: &GlobalArgs, path: &Path, public_id: Option<&str>, register: bool) -> CliResult {
    let settings = if register {
        Some(settings::load(g)?.paths()?)
    } else {
        None
    };
    let id = match (public_id, &settings) {
        (Some(text), Some(s)) => parse_pubid(text, s.token_id_length)?,
        (Some(text), None) => PublicId::from_modhex(text)
            .ok()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| CliError::input(format!("invalid public id {text:?}")))?,
        (None, _) => {
            let r = random_bytes(5)?;
            let mut raw = [0xffu8; 6];
            for (d, s) in raw.iter_mut().skip(1).zip(r.iter()) {
                *d = *s;
            }
            PublicId::from_array(raw)
        }
    };
    if let Some(s) = &settings
        && id.len_chars() != s.token_id_length
    {
        return Err(CliError::input(format!(
            "public id {id} has {} characters, but token_id_length is {}",
            id.len_chars(),
            s.token_id_length
        )));
    }
    let secret = random_bytes(22)?;
    let mut aes = [0u8; 16];
    let mut private = [0u8; 6];
    for (d, s) in aes.iter_mut().chain(private.iter_mut()).zip(secret.iter()) {
        *d = *s;
    }
    let soft = SoftKey {
        public_id: id,
        key: KeyMaterial {
            aes_key: AesKey::from_bytes(aes),
            private_id: PrivateId::from_bytes(private),
        },
        last: Counter::default(),
    };
    zeroize::Zeroize::zeroize(&mut aes);
    zeroize::Zeroize::zeroize(&mut private);
    if let Some(s) = &settings
        && load_keystore(&s.local.keystore)?.contains(&id)
    {
        return Err(CliError::failed(format!(
            "{id} is already in the key store {}",
            s.local.keystore.display()
        )));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io(path, &e))?;
    let written = file
        .write_all(soft.render().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io(path, &e))
        .and_then(
            |()| match path.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(dir) => atomic::sync_dir(dir).map_err(CliError::from),
                None => atomic::sync_dir(Path::new(".")).map_err(CliError::from),
            },
        );
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    println!("{}: software key {id}", path.display());
    if let Some(s) = &settings {
        let registered = (|| -> CliResult<()> {
            let counters = CounterStore::create_dir(&s.local.statedir)?;
            match counters.init(&id, Counter::default()) {
                Ok(()) | Err(StoreError::Exists(_)) => {}
                Err(e) => return Err(e.into()),
            }
            keydir::update(&s.local.keystore, &locked_edit::hook, |ks| {
                if ks.contains(&id) {
                    return Err(StoreError::Exists(id));
                }
                ks.insert(id, soft.key.clone());
                Ok(())
            })
            .map_err(CliError::from)
        })();
        if let Err(e) = registered {
            let _ = std::fs::remove_file(path);
            return Err(CliError::failed(format!(
                "{}; {} removed again",
                e.message(),
                path.display()
            )));
        }
        println!(
            "{id}: added to the key store {}; counter state at {}",
            s.local.keystore.display(),
            Counter::default()
        );
    }
    Ok(())
}

/// Opens the key file for reading, refusing symlinks, special files, other
/// owners and any access for group/other.
fn open_key_file(path: &Path, write: bool) -> CliResult<(File, std::fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io(path, &e))?;
    let meta = file.metadata().map_err(|e| io(path, &e))?;
    if !meta.is_file() {
        return Err(CliError::failed(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(CliError::failed(format!(
            "{}: owned by uid {}, not by you",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(CliError::failed(format!(
            "{}: has mode {:04o}; it holds secrets: chmod 600 it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    if meta.len() > MAX_FILE {
        return Err(CliError::failed(format!("{}: too large", path.display())));
    }
    Ok((file, meta))
}

fn read_key(path: &Path, file: &File) -> CliResult<SoftKey> {
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| io(path, &e))?;
    SoftKey::parse(&text).map_err(|e| CliError::failed(format!("{}: {e}", path.display())))
}

fn otp(path: &Path, power_up: bool) -> CliResult {
    for _ in 0..50 {
        let (file, meta) = open_key_file(path, true)?;
        file.lock().map_err(|e| io(path, &e))?;
        // A concurrent writer may have renamed a new file over the path
        // while we waited: then lock that one instead.
        let now = std::fs::symlink_metadata(path).map_err(|e| io(path, &e))?;
        if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
            continue;
        }
        let mut key = read_key(path, &file)?;
        let counter = key.next_counter(power_up).ok_or_else(|| {
            CliError::failed(format!(
                "{}: the key's counters are exhausted",
                path.display()
            ))
        })?;
        key.last = counter;
        // The lock is the one on the key file itself (above), so only the
        // write goes through the shared primitive.
        atomic::replace_durably(
            atomic::parent_dir(path),
            path,
            &locked_edit::temp_prefix(path)?,
            key.render().as_bytes(),
            Perms {
                mode: meta.mode() & 0o7777,
                owner: Some((meta.uid(), meta.gid())),
            },
            &locked_edit::hook,
        )?;
        let random = random_bytes(2)?;
        let random = u16::from_le_bytes([
            random.first().copied().unwrap_or(0),
            random.get(1).copied().unwrap_or(0),
        ]);
        let token = Zeroizing::new(mint_token(
            &key.public_id,
            &key.key,
            counter,
            false,
            timestamp(),
            random,
        ));
        println!("{}", token.as_str());
        drop(file);
        return Ok(());
    }
    Err(CliError::failed(format!(
        "{}: keeps being replaced; try again",
        path.display()
    )))
}

/// The 24-bit 8 Hz timer a key puts in each OTP, from the wall clock.
fn timestamp() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = now
        .as_secs()
        .wrapping_mul(8)
        .wrapping_add(u64::from(now.subsec_millis() / 125));
    u32::try_from(ticks & 0x00ff_ffff).unwrap_or(0)
}

fn show(path: &Path) -> CliResult {
    let (file, _) = open_key_file(path, false)?;
    let key = read_key(path, &file)?;
    println!("public id:   {}", key.public_id);
    if let Some(serial) = yubiotp_core::public_id_to_serial(&key.public_id) {
        println!("serial:      {serial}");
    }
    if key.last == Counter::default() {
        println!("last OTP:    none yet");
    } else {
        println!("last OTP:    {}", key.last);
    }
    match key.next_counter(false) {
        Some(next) => println!("next OTP:    {next}"),
        None => println!("next OTP:    none (counters exhausted)"),
    }
    Ok(())
}
