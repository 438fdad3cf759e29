//! The command line, as clap derive types. The doc comments are the
//! `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// ykmap: the admin tool of pam_yubiotp.
///
/// Maps users to YubiKeys, manages the local key store and counter state,
/// decodes OTPs, tests the module's own validation path, audits the setup
/// and runs software YubiKeys. It reads the same configuration as the PAM
/// module, so the tool and the module never disagree about a file.
///
/// Exit status: 0 ok, 1 a check or an operation failed, 2 a usage or input
/// error (nothing was changed).
#[derive(Debug, Parser)]
#[command(name = "ykmap", version, max_term_width = 100)]
pub struct Cli {
    /// Settings that override the configuration file.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts; they override the configuration file.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: /etc/yubiotp/yubiotp.toml, skipped if absent]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Central user→key mapping file (overrides `authfile`)
    #[arg(long, global = true, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Key store (overrides `local.keystore`)
    #[arg(long, global = true, value_name = "PATH")]
    pub keystore: Option<PathBuf>,
    /// Counter state directory (overrides `local.statedir`)
    #[arg(long, global = true, value_name = "DIR")]
    pub statedir: Option<PathBuf>,
    /// Machine-readable output on stdout (map list, key list, counter show,
    /// check); field names are documented in ykmap(8) and stable
    #[arg(long, global = true)]
    pub json: bool,
    /// Quiet: no remarks on stderr (warnings and errors are still shown)
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Edit or show the user→key mapping (the central authfile, or a user's
    /// ~/.yubico/authorized_yubikeys when no authfile is configured)
    #[command(subcommand)]
    Map(MapCmd),
    /// Manage the local key store (AES keys and private ids)
    #[command(subcommand)]
    Key(KeyCmd),
    /// Show or reset a key's counter state
    #[command(subcommand)]
    Counter(CounterCmd),
    /// Inspect an OTP
    #[command(subcommand)]
    Otp(OtpCmd),
    /// Convert to and from modhex
    #[command(subcommand)]
    Modhex(ModhexCmd),
    /// Convert a serial number to its factory public id, or back
    Serial(SerialArgs),
    /// Authenticate USER through the module's own validation path
    ///
    /// Runs exactly what the PAM module runs (configuration, mapping, OTP,
    /// cloud or local validation, counter update) with this terminal as the
    /// conversation, then prints the outcome, its reason and the PAM code.
    /// A successful local verification consumes the OTP.
    Verify(VerifyArgs),
    /// Audit the setup: permissions, mapping lines, key store, counter state
    ///
    /// Prints one line per problem found and exits 1 if there is any.
    Check(CheckArgs),
    /// Install and enable the pam-auth-update profile, once the setup works
    ///
    /// Runs every check of `ykmap check` first and changes nothing while
    /// any problem is left (an enabled but broken configuration refuses
    /// every login). Then writes the profile to /usr/share/pam-configs
    /// (with --config, --authfile, --keystore, --statedir as module
    /// arguments) and runs `pam-auth-update --enable yubiotp`.
    Enable(EnableArgs),
    /// Disable and remove the pam-auth-update profile
    ///
    /// Runs `pam-auth-update --remove yubiotp`, then deletes
    /// /usr/share/pam-configs/yubiotp.
    Disable(EnableArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish)
    ///
    /// The packages install them; by hand: `ykmap completions bash >
    /// /usr/share/bash-completion/completions/ykmap`.
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// A software YubiKey, for demos and tests
    #[command(subcommand)]
    Softkey(SoftkeyCmd),
    /// Check the sshd setup for the supported SSH recipes
    #[command(subcommand)]
    Ssh(SshCmd),
    /// Translate a PAM service file's pam_yubico.so lines to pam_yubiotp.so
    ///
    /// Prints each pam_yubiotp.so line and a yubiotp.toml fragment: id= and
    /// key= (and the LDAP options) move from the world-readable PAM line to
    /// the 0600 configuration file. The preview never shows the API key or
    /// the LDAP bind password; they are written only with --write. Whatever
    /// can't be translated is named with the reason; then nothing is
    /// written and the exit status is 1.
    Migrate(MigrateArgs),
}

/// `ykmap migrate`
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The PAM service file (e.g. /etc/pam.d/sshd), or - for standard input
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Write the fragment to the configuration file (--config; it must not
    /// exist yet or be empty) and the translated service file to
    /// FILE.pam_yubiotp, never to FILE itself
    #[arg(long)]
    pub write: bool,
    /// With --write: replace FILE itself (atomically) instead of writing a copy
    #[arg(long, requires = "write")]
    pub in_place: bool,
}

/// `ykmap ssh …`
#[derive(Debug, Subcommand)]
pub enum SshCmd {
    /// Read `sshd -T` and sshd's PAM stack and name every misconfiguration
    ///
    /// Checks the two supported recipes: public key then OTP
    /// (`AuthenticationMethods publickey,keyboard-interactive:pam`, with a
    /// PAM stack that asks only for the OTP) and password+OTP in one prompt.
    /// Names in plain words: UsePAM no, keyboard-interactive disabled,
    /// AuthenticationMethods missing, the system password still asked after
    /// the key, pam_yubiotp absent or behind a module that skips it. Exit 1
    /// when anything is found or sshd cannot be asked.
    Check(SshCheckArgs),
}

/// `ykmap ssh check`
#[derive(Debug, Args)]
pub struct SshCheckArgs {
    /// Evaluate sshd's Match blocks for this user (sshd -T -C user=…)
    #[arg(long)]
    pub user: Option<String>,
    /// The sshd binary
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/sshd")]
    pub sshd: std::path::PathBuf,
    /// sshd's configuration file (sshd -f; sshd's default when omitted)
    #[arg(long, value_name = "FILE")]
    pub sshd_config: Option<std::path::PathBuf>,
    /// The PAM configuration directory holding sshd's stack
    #[arg(long, value_name = "DIR", default_value = "/etc/pam.d")]
    pub pam_dir: std::path::PathBuf,
}

/// `ykmap map …`
#[derive(Debug, Subcommand)]
pub enum MapCmd {
    /// Map one or more public ids to USER
    ///
    /// An id the user already has is left alone; an id mapped to another
    /// user is added with a warning.
    Add {
        /// The login name
        user: String,
        /// Public ids (modhex)
        #[arg(required = true, value_name = "PUBID")]
        pubids: Vec<String>,
    },
    /// Remove public ids from USER, or all of USER's lines
    #[command(visible_alias = "rm")]
    Remove {
        /// The login name
        user: String,
        /// Public ids to remove (all of the user's when none given)
        #[arg(value_name = "PUBID")]
        pubids: Vec<String>,
    },
    /// Show the mapping (one line per user), or one user's keys
    #[command(visible_alias = "ls")]
    List {
        /// Only this user
        user: Option<String>,
    },
}

/// `ykmap key …`
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Add a key to the key store and create its counter state
    ///
    /// Give the secrets as "-" to read them from standard input (one per
    /// line, AES key first, or echo-off prompts on a terminal): a value on
    /// the command line is visible to every user in /proc/PID/cmdline.
    Add(KeyAddArgs),
    /// Remove a key from the key store, and its counter state
    #[command(visible_alias = "rm")]
    Remove {
        /// Public id (modhex)
        pubid: String,
    },
    /// List the keys in the key store (never their secrets)
    #[command(visible_alias = "ls")]
    List,
    /// Import keys from a ykman / Yubico Authenticator CSV, a YubiKey
    /// Personalization Tool log or ykpersonalize output
    ///
    /// All or nothing: a bad line is named by its number and nothing is
    /// imported. Each new key gets counter state at (0, 0); existing state
    /// is never lowered.
    Import {
        /// The file, or "-" for standard input
        file: String,
        /// Replace keys already in the key store, and let the last of
        /// duplicate lines win
        #[arg(long)]
        force: bool,
    },
    /// Move a single-file key store to the per-key layout (KEYSTORE.d)
    ///
    /// Reads the file whole, writes one file per key into a new directory,
    /// renames it to KEYSTORE.d and removes the file. Until then the
    /// module reads the single file (every key on every login).
    Migrate,
}

/// `ykmap key add`
#[derive(Debug, Args)]
pub struct KeyAddArgs {
    /// Public id (modhex)
    pub pubid: String,
    /// AES key, 32 hex digits, or "-" to read it from standard input
    #[arg(long, value_name = "HEX|-")]
    pub aes_key: String,
    /// Private id, 12 hex digits, or "-" to read it from standard input
    #[arg(long, value_name = "HEX|-")]
    pub private_id: String,
    /// Start the counter state at this OTP's counters (it is decrypted and
    /// checked first) instead of (0, 0); existing state is never lowered.
    /// "-" reads it from standard input (after the secrets)
    #[arg(long, value_name = "OTP|-")]
    pub otp: Option<String>,
    /// Replace the key if the key store already has it
    #[arg(long)]
    pub force: bool,
}

/// `ykmap counter …`
#[derive(Debug, Subcommand)]
pub enum CounterCmd {
    /// Show the last accepted counters of a key
    Show {
        /// Public id (modhex)
        pubid: String,
    },
    /// Set a key's state to the counters of a fresh OTP from that key
    ///
    /// The OTP is decrypted with the stored key and its CRC and private id
    /// are checked. Afterwards that OTP and every older one are refused.
    Reset {
        /// Public id (modhex)
        pubid: String,
        /// A fresh OTP from the key, or "-" to read it from standard input
        /// (an unused OTP stays valid elsewhere: keep it out of shell history)
        #[arg(long, value_name = "OTP|-")]
        otp: String,
        /// Allow lowering the counters (re-opens the OTPs in between) or
        /// replacing corrupt state
        #[arg(long)]
        force: bool,
    },
}

/// `ykmap otp …`
#[derive(Debug, Subcommand)]
pub enum OtpCmd {
    /// Show what an OTP holds: public id, serial, and with a key its
    /// counters, timestamp and checks (never the private id)
    Decode {
        /// The OTP as the key typed it, or "-" to read it from standard
        /// input (before an AES key given as "-")
        otp: String,
        /// AES key (32 hex digits, or "-" for standard input); default: the
        /// key store's, when it holds the key
        #[arg(long, value_name = "HEX|-")]
        aes_key: Option<String>,
    },
}

/// `ykmap modhex …`
#[derive(Debug, Subcommand)]
pub enum ModhexCmd {
    /// Encode text (or hex with --hex) as modhex
    Encode {
        /// The text
        text: String,
        /// TEXT is hex
        #[arg(long)]
        hex: bool,
    },
    /// Decode modhex to hex (a public id's bytes, as admins convert them),
    /// or to text with --text
    Decode {
        /// The modhex
        text: String,
        /// Print hex (the default; kept for scripts)
        #[arg(long, conflicts_with = "text_out")]
        hex: bool,
        /// Print the bytes as text instead of hex
        #[arg(long = "text", id = "text_out")]
        text_out: bool,
    },
}

/// `ykmap serial`
#[derive(Debug, Args)]
pub struct SerialArgs {
    /// A serial number (decimal) or a factory public id (modhex)
    #[arg(value_name = "SERIAL|PUBID")]
    pub value: String,
}

/// `ykmap verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The login name
    pub user: String,
    /// The OTP ("-": read from standard input; prompted for, echo off,
    /// when omitted)
    pub otp: Option<String>,
    /// Pass `debug` to the module (more log lines on stderr)
    #[arg(long)]
    pub debug: bool,
    /// The setuid verifier to ask when not run as root (the module's
    /// `verifier=`; default /usr/libexec/yubiotp/yubiotp-verify). It only
    /// chooses whom this user asks: the helper decides what it trusts.
    #[arg(long, value_name = "PATH")]
    pub verifier: Option<std::path::PathBuf>,
}

/// `ykmap check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also ask each validation server (cloud and hybrid modes)
    #[arg(long)]
    pub online: bool,
    /// The PAM configuration directory whose pam_yubiotp.so lines are
    /// checked against libpam's line length limit
    #[arg(long, value_name = "DIR", default_value = "/etc/pam.d")]
    pub pamdir: std::path::PathBuf,
}

/// `ykmap enable`, `ykmap disable`
#[derive(Debug, Args)]
pub struct EnableArgs {
    /// The system root (pam-auth-update --root; for images and tests)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The profile to install [default: <root>/usr/share/pam_yubiotp/pam-configs/yubiotp]
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

/// `ykmap softkey …`
#[derive(Debug, Subcommand)]
pub enum SoftkeyCmd {
    /// Create a software key file (mode 0600) with a random AES key and
    /// private id
    New {
        /// The key file to create (must not exist)
        path: PathBuf,
        /// Public id (modhex) [default: "vv" and 10 random modhex characters]
        #[arg(long, value_name = "MODHEX")]
        public_id: Option<String>,
        /// Also add the key to the key store with counter state, so the
        /// module accepts its OTPs
        #[arg(long)]
        register: bool,
    },
    /// Print the next OTP, exactly as a key types it
    Otp {
        /// The key file
        path: PathBuf,
        /// Simulate unplugging and plugging in: bump the use counter and
        /// restart the session counter at 0
        #[arg(long)]
        power_up: bool,
    },
    /// Show the key's public id and counters (never its secrets)
    Show {
        /// The key file
        path: PathBuf,
    },
}
