//! `ykmap otp decode`, `ykmap modhex encode|decode`, `ykmap serial`.

use yubiotp_core::{
    AesKey, CIPHERTEXT_CHARS, PublicId, Token, decrypt, modhex, public_id_to_serial,
    serial_to_public_id,
};

use crate::cli::{ModhexCmd, OtpCmd, SerialArgs};
use crate::cmd::key::load_keystore;
use crate::error::{CliError, CliResult};
use crate::input::SecretInput;
use crate::settings::Loaded;
use pam_yubiotp::store::{CounterStore, StoreError};

fn id_length_for(otp: &str, configured: usize) -> CliResult<usize> {
    let n = otp.chars().count();
    if n == configured + CIPHERTEXT_CHARS {
        return Ok(configured);
    }
    match n.checked_sub(CIPHERTEXT_CHARS) {
        Some(len) if len.is_multiple_of(2) && len <= 2 * PublicId::MAX_BYTES => Ok(len),
        _ => Err(CliError::input(format!(
            "an OTP has 32 to 64 characters (an even number); this one has {n}"
        ))),
    }
}

/// Runs `otp decode`.
///
/// # Errors
/// Not an OTP (exit 2); CRC or private id check failed (exit 1).
pub fn run(cmd: &OtpCmd, loaded: Option<&Loaded>) -> CliResult {
    let OtpCmd::Decode { otp, aes_key } = cmd;
    let settings = loaded.and_then(|l| l.paths().ok());
    let configured = settings.as_ref().map_or(12, |s| s.token_id_length);
    // One reader for both "-" values: the OTP's line comes first.
    let mut input = SecretInput::new();
    let otp = input.get(otp, "OTP")?;
    let otp = otp.trim();
    let token = Token::parse(otp, id_length_for(otp, configured)?)
        .map_err(|e| CliError::input(format!("not an OTP: {e}")))?;
    let id = token.public_id;
    println!("public id:   {id}");
    if let Some(serial) = public_id_to_serial(&id) {
        println!("serial:      {serial}");
    }
    let stored = settings
        .as_ref()
        .and_then(|s| load_keystore(&s.local.keystore).ok())
        .and_then(|ks| ks.get(&id).ok().flatten());
    let given = match aes_key {
        Some(v) => {
            let text = input.get(v, "AES key")?;
            Some(
                AesKey::from_hex(text.trim())
                    .map_err(|e| CliError::input(format!("--aes-key: {e}")))?,
            )
        }
        None => None,
    };
    let Some(aes) = given.or_else(|| stored.as_ref().map(|k| k.aes_key.clone())) else {
        println!("(no --aes-key given and the key store does not hold {id}: nothing more to show)");
        return Ok(());
    };
    let plain = decrypt(&token.ciphertext, &aes);
    println!("crc:         {}", if plain.crc_ok { "ok" } else { "BAD" });
    if !plain.crc_ok {
        return Err(CliError::failed(
            "CRC mismatch: wrong AES key, or not an OTP of this key",
        ));
    }
    let counter = plain.counter();
    println!("use counter: {}", counter.use_counter());
    println!("session:     {}", counter.session());
    println!(
        "timestamp:   {} (0x{:06x}, 8 Hz ticks since power-up)",
        plain.timestamp, plain.timestamp
    );
    println!(
        "caps lock:   {}",
        if plain.caps_lock() { "on" } else { "off" }
    );
    let mut mismatch = false;
    match &stored {
        Some(k) if k.private_id == plain.private_id => {
            println!("private id:  matches the key store");
        }
        Some(_) => {
            println!("private id:  DOES NOT match the key store");
            mismatch = true;
        }
        None => println!("private id:  not compared (the key store does not hold {id})"),
    }
    if stored.is_some()
        && let Some(s) = &settings
        && let Ok(counters) = CounterStore::open(&s.local.statedir)
    {
        match counters.read(&id) {
            Ok(last) if counter > last => println!("state:       {last}; this OTP is fresh"),
            Ok(last) => println!("state:       {last}; this OTP is already used"),
            Err(StoreError::StateMissing { .. }) => println!("state:       missing"),
            Err(_) => println!("state:       unreadable or corrupt"),
        }
    }
    if mismatch {
        return Err(CliError::failed(format!(
            "the OTP's private id does not match the one stored for {id}"
        )));
    }
    Ok(())
}

/// Runs `modhex encode|decode`.
///
/// # Errors
/// Bad input (exit 2).
pub fn run_modhex(cmd: &ModhexCmd) -> CliResult {
    match cmd {
        ModhexCmd::Encode { text, hex } => {
            let bytes = if *hex {
                yubiotp_core::hex::decode(text.trim())
                    .map_err(|e| CliError::input(e.to_string()))?
            } else {
                text.as_bytes().to_vec()
            };
            println!("{}", modhex::encode(&bytes));
        }
        ModhexCmd::Decode {
            text,
            hex: _,
            text_out,
        } => {
            let bytes = modhex::decode(text.trim())
                .map_err(|e| CliError::input(format!("not modhex: {e}")))?;
            if !*text_out {
                println!("{}", yubiotp_core::hex::encode(&bytes));
            } else {
                let s = String::from_utf8(bytes)
                    .ok()
                    .filter(|s| !s.chars().any(char::is_control))
                    .ok_or_else(|| {
                        CliError::input(
                            "the decoded bytes are not printable text; leave out --text for hex",
                        )
                    })?;
                println!("{s}");
            }
        }
    }
    Ok(())
}

/// Runs `serial`.
///
/// # Errors
/// Neither a serial nor a public id (exit 2); a public id that is not a
/// factory one (exit 1).
pub fn run_serial(args: &SerialArgs) -> CliResult {
    let v = args.value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let serial: u32 = v
            .parse()
            .map_err(|_| CliError::input("a serial number is at most 4294967295"))?;
        println!("{}", serial_to_public_id(serial));
        return Ok(());
    }
    let id = PublicId::from_modhex(v).map_err(|e| {
        let why = match e {
            yubiotp_core::PublicIdError::Modhex(m) => m.to_string(),
            other => other.to_string(),
        };
        CliError::input(format!("neither a serial number nor a public id: {why}"))
    })?;
    match public_id_to_serial(&id) {
        Some(serial) => {
            println!("{serial}");
            Ok(())
        }
        None => Err(CliError::failed(format!(
            "{id} is not a factory public id (those are 12 characters starting with cccc)"
        ))),
    }
}
