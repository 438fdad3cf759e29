//! The tool's view of the configuration: the library's own resolver, with
//! the command-line overrides added as module-argument overrides.

use std::path::{Path, PathBuf};

use pam_yubiotp::config::{self, ConfigError, Layer, Mode, Settings};

use crate::cli::GlobalArgs;
use crate::error::{CliError, CliResult};

/// Makes `p` absolute against the current directory (the library wants
/// absolute paths).
///
/// # Errors
/// When the current directory is unknown.
pub fn absolute(p: &Path) -> CliResult<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd =
        std::env::current_dir().map_err(|e| CliError::failed(format!("current directory: {e}")))?;
    Ok(cwd.join(p))
}

/// The configuration as loaded: the file (if any) and the overrides.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The TOML file's path.
    pub path: PathBuf,
    /// True when `--config` named it (then it must exist).
    pub explicit: bool,
    /// The parsed file, `None` when the default file is absent.
    pub file: Option<Layer>,
    /// The overrides from the command line (the module-argument layer).
    pub overrides: Layer,
}

impl Loaded {
    /// The module arguments equivalent to the command line, for
    /// `session::authenticate`.
    #[must_use]
    pub fn module_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.explicit {
            args.push(format!("config={}", self.path.display()));
        }
        if let Some(p) = &self.overrides.authfile {
            args.push(format!("authfile={}", p.display()));
        }
        if let Some(p) = &self.overrides.keystore {
            args.push(format!("keystore={}", p.display()));
        }
        if let Some(p) = &self.overrides.statedir {
            args.push(format!("statedir={}", p.display()));
        }
        args
    }

    /// The mode the configuration asks for (cloud when it says nothing),
    /// even when the rest of it does not resolve.
    #[must_use]
    pub fn mode(&self) -> Option<Mode> {
        Some(
            self.file
                .as_ref()
                .and_then(|f| f.mode)
                .unwrap_or(Mode::Cloud),
        )
    }

    /// The full resolution, exactly as the module does it.
    ///
    /// # Errors
    /// The library's [`ConfigError`].
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        config::resolve(self.file.as_ref(), &self.overrides)
    }

    /// The resolution for commands that only need paths (mapping, key
    /// store, state): the mode is taken as `local` so that a cloud section
    /// that is incomplete does not stop an admin from managing files.
    ///
    /// # Errors
    /// Any other configuration error, as exit 2.
    pub fn paths(&self) -> CliResult<Settings> {
        let mut o = self.overrides.clone();
        o.mode = Some(Mode::Local);
        config::resolve(self.file.as_ref(), &o).map_err(|e| CliError::input(e.to_string()))
    }
}

/// Loads the configuration file named by `--config` (or the default one if
/// present) and records the path overrides.
///
/// # Errors
/// A missing explicit file, an untrusted or malformed file (exit 2).
pub fn load(g: &GlobalArgs) -> CliResult<Loaded> {
    let loaded = load_raw(g)?;
    let file = config::load_file(&loaded.path, loaded.explicit)
        .map_err(|e| CliError::input(e.to_string()))?;
    Ok(Loaded { file, ..loaded })
}

/// Like [`load`], but a file that does not load is returned as the error
/// value beside the rest, for `ykmap check`.
///
/// # Errors
/// Only when the paths themselves are unusable.
pub fn load_for_check(g: &GlobalArgs) -> CliResult<(Loaded, Option<ConfigError>)> {
    let loaded = load_raw(g)?;
    match config::load_file(&loaded.path, loaded.explicit) {
        Ok(file) => Ok((Loaded { file, ..loaded }, None)),
        Err(e) => Ok((loaded, Some(e))),
    }
}

/// The path overrides and config path only, without reading the file
/// (for `verify`, where the module reads it itself).
///
/// # Errors
/// When a relative path cannot be made absolute.
pub fn load_raw(g: &GlobalArgs) -> CliResult<Loaded> {
    let (path, explicit) = match &g.config {
        Some(p) => (absolute(p)?, true),
        None => (PathBuf::from(config::DEFAULT_CONFIG), false),
    };
    let overrides = Layer {
        authfile: g.authfile.as_deref().map(absolute).transpose()?,
        keystore: g.keystore.as_deref().map(absolute).transpose()?,
        statedir: g.statedir.as_deref().map(absolute).transpose()?,
        ..Layer::default()
    };
    Ok(Loaded {
        path,
        explicit,
        file: None,
        overrides,
    })
}
