//! Secrets and files given on standard input. A value of `-` on the
//! command line means "read it from stdin" (one value per line, in the
//! order of the options), or an echo-off prompt when stdin is a terminal;
//! so secrets never need to appear in `/proc/PID/cmdline`.

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{CliError, CliResult};

/// Longest line read for one secret value.
const MAX_SECRET_LINE: u64 = 1024;

/// Reads `-` values from standard input, one line each.
#[derive(Debug, Default)]
pub struct SecretInput {
    used: usize,
}

impl SecretInput {
    /// A reader of standard input.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `value` itself, or for `-` the next line of stdin (or an echo-off
    /// prompt naming `what` when stdin is a terminal).
    ///
    /// # Errors
    /// Stdin ended, could not be read, or the line is too long (exit 2).
    pub fn get(&mut self, value: &str, what: &str) -> CliResult<Zeroizing<String>> {
        if value != "-" {
            return Ok(Zeroizing::new(value.to_string()));
        }
        self.used += 1;
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            let v = rpassword::prompt_password(format!("{what}: "))
                .map_err(|e| CliError::input(format!("{what}: could not read it: {e}")))?;
            return Ok(Zeroizing::new(v));
        }
        let mut line = Zeroizing::new(Vec::new());
        let n = stdin
            .lock()
            .take(MAX_SECRET_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::input(format!("{what}: reading standard input: {e}")))?;
        if n == 0 {
            return Err(CliError::input(format!(
                "{what}: standard input ended before the value (line {})",
                self.used
            )));
        }
        if u64::try_from(n).unwrap_or(u64::MAX) > MAX_SECRET_LINE {
            return Err(CliError::input(format!(
                "{what}: line {} of standard input is too long",
                self.used
            )));
        }
        while line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
            line.pop();
        }
        let text = core::str::from_utf8(&line)
            .map_err(|_| CliError::input(format!("{what}: not UTF-8")))?;
        Ok(Zeroizing::new(text.trim().to_string()))
    }
}

/// Reads a whole input file (or stdin for `-`), at most `max` bytes; the
/// buffer is wiped on drop (it holds secrets).
///
/// # Errors
/// Unreadable or larger than `max` (exit 2).
pub fn read_input(file: &str, max: usize) -> CliResult<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let res = if file == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        let path = Path::new(file);
        std::fs::File::open(path)
            .and_then(|f| {
                let meta = f.metadata()?;
                if !meta.is_file() {
                    return Err(std::io::Error::other("not a regular file"));
                }
                Ok(f)
            })
            .and_then(|f| f.take(limit).read_to_end(&mut buf))
    };
    res.map_err(|e| CliError::input(format!("{file}: {e}")))?;
    if buf.len() > max {
        return Err(CliError::input(format!(
            "{file}: larger than {max} bytes; refusing it"
        )));
    }
    Ok(buf)
}
