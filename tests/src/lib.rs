//! Harness for the end-to-end tests: a private world (passwd through
//! nss_wrapper, PAM service files through pam_wrapper, config, key store,
//! counter state and mapping files in a temp dir), and a runner that
//! executes the C test application `pam_driver` against the built
//! `libpam_yubiotp.so` through the real libpam. No root-owned system file
//! is read or changed; the tests need no root except where they chown.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pam_yubiotp::store::{CounterStore, KeyStore};
use yubiotp_core::{AesKey, Counter, KeyMaterial, PrivateId, PublicId, mint_token};

/// pam_wrapper's preload library.
pub const PAM_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so";
/// nss_wrapper's preload library.
pub const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";
/// pam_wrapper's test modules (pam_set_items, pam_get_items, pam_matrix).
pub const WRAPPER_MODULES: &str = "/usr/lib/x86_64-linux-gnu/pam_wrapper";

/// Linux-PAM result codes the tests compare against.
pub mod code {
    /// PAM_SUCCESS
    pub const SUCCESS: i32 = 0;
    /// PAM_SERVICE_ERR
    pub const SERVICE_ERR: i32 = 3;
    /// PAM_PERM_DENIED
    pub const PERM_DENIED: i32 = 6;
    /// PAM_AUTH_ERR
    pub const AUTH_ERR: i32 = 7;
    /// PAM_AUTHINFO_UNAVAIL
    pub const AUTHINFO_UNAVAIL: i32 = 9;
    /// PAM_USER_UNKNOWN
    pub const USER_UNKNOWN: i32 = 10;
    /// PAM_CONV_ERR
    pub const CONV_ERR: i32 = 19;
    /// PAM_IGNORE
    pub const IGNORE: i32 = 25;
}

/// The built module, next to the test binary (target/<profile>/deps), or
/// in deps/ next to a bin of this crate (target/<profile>).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for cand in [
        deps.join("libpam_yubiotp.so"),
        deps.join("../libpam_yubiotp.so"),
        deps.join("deps/libpam_yubiotp.so"),
    ] {
        if cand.exists() {
            return cand.canonicalize().unwrap();
        }
    }
    panic!("libpam_yubiotp.so not found next to {}", exe.display());
}

/// The repository's top directory.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A file of the repository (path relative to its top), as text.
pub fn repo_file(rel: &str) -> String {
    fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The compiled C test application.
pub fn driver_path() -> PathBuf {
    PathBuf::from(env!("PAM_DRIVER"))
}

/// True when running as root (chown, per-user identity switching).
pub fn is_root() -> bool {
    // /proc/self/status "Uid:" real effective saved fs
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// A test user in the private passwd file.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// uid (gid is the same).
    pub uid: u32,
    /// Home directory.
    pub home: PathBuf,
}

/// A software YubiKey for tests.
#[derive(Debug, Clone)]
pub struct TestKey {
    /// Public id.
    pub id: PublicId,
    /// AES key and private id.
    pub key: KeyMaterial,
    /// Counter of the last OTP minted.
    pub counter: Counter,
}

impl TestKey {
    /// A deterministic key from `seed` with a 6-byte public id `cccc…`.
    pub fn new(seed: u8) -> Self {
        let id = PublicId::from_array([0, 0, 0, 0x10, 0x20, seed]);
        let aes: [u8; 16] =
            core::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7));
        let pid: [u8; 6] = core::array::from_fn(|i| seed.wrapping_add(0x40 + i as u8));
        Self {
            id,
            key: KeyMaterial {
                aes_key: AesKey::from_bytes(aes),
                private_id: PrivateId::from_bytes(pid),
            },
            counter: Counter::new(1, 0),
        }
    }

    /// The OTP a key would type at counter `c`.
    pub fn otp_at(&self, c: Counter) -> String {
        mint_token(&self.id, &self.key, c, false, 0x12_3456, 0xbeef)
    }

    /// The next OTP (session counter + 1). Not an iterator: it never ends.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> String {
        self.counter = self.counter.next_otp().unwrap();
        self.otp_at(self.counter)
    }
}

/// One scripted conversation answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The conversation succeeds with no response array.
    NullResp,
    /// A response whose `resp` is NULL.
    NullStr,
    /// The conversation fails.
    ConvErr,
}

impl From<&str> for Answer {
    fn from(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }
}
impl From<String> for Answer {
    fn from(s: String) -> Self {
        Self::Bytes(s.into_bytes())
    }
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// Answers, in prompt order.
    pub answers: Vec<Answer>,
    /// PAM_SILENT.
    pub silent: bool,
    /// PAM_DISALLOW_NULL_AUTHTOK.
    pub disallow_null: bool,
    /// Repeat the operations this many times on one handle (default 1).
    pub repeat: u32,
    /// Operations, comma-separated (default `authenticate`).
    pub ops: Option<String>,
    /// PAM_RHOST.
    pub rhost: Option<String>,
    /// Start PAM without a conversation function.
    pub no_conv: bool,
    /// Extra environment for the application (e.g. `PAM_AUTHTOK` for
    /// pam_set_items, or proxies the module must ignore).
    pub env: Vec<(String, String)>,
    /// Use `pam_start_confdir` on the service directory instead of
    /// pam_wrapper (no log capture, but any number can run at once).
    pub confdir: bool,
    /// Block after pam_start until this file exists.
    pub wait_for: Option<PathBuf>,
    /// Run the application under this command prefix (e.g. strace or
    /// setpriv), given as argv words.
    pub wrap: Vec<String>,
    /// Set SIGCHLD to SIG_IGN in the application before pam_start.
    pub sigchld_ignore: bool,
}

/// What one run of the application showed.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// `(operation, code)` in order, `start` first.
    pub rc: Vec<(String, i32)>,
    /// Prompts `(style, text)`.
    pub prompts: Vec<(i32, String)>,
    /// Info/error messages `(style, text)`.
    pub messages: Vec<(i32, String)>,
    /// The PAM environment after the last operation.
    pub env: HashMap<String, Vec<u8>>,
    /// Thread count before pam_start and after pam_end.
    pub threads: (i32, i32),
    /// Open fd count before pam_start and after pam_end.
    pub fds: (i32, i32),
    /// Children of the application after pam_end: `none`, `zombie` or
    /// `running` (`waitpid(-1, WNOHANG)`).
    pub children: String,
    /// Everything on stderr: pam_wrapper prints syslog lines there.
    pub stderr: String,
    /// Raw stdout.
    pub stdout: String,
    /// How the application ended (`None` only for a default `Run`).
    pub status: Option<std::process::ExitStatus>,
}

impl Run {
    /// The code of the last `authenticate`.
    pub fn auth(&self) -> i32 {
        self.rc
            .iter()
            .rev()
            .find(|(op, _)| op == "authenticate")
            .map(|(_, c)| *c)
            .unwrap_or_else(|| {
                panic!(
                    "no authenticate result; stdout:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    /// Every `authenticate` code in order.
    pub fn auths(&self) -> Vec<i32> {
        self.rc
            .iter()
            .filter(|(op, _)| op == "authenticate")
            .map(|(_, c)| *c)
            .collect()
    }

    /// The syslog lines (pam_wrapper echoes `pam_syslog` as `SYSLOG(prio)`).
    pub fn log_lines(&self) -> Vec<&str> {
        yubiotp_testsupport::pam_wrapper_syslog(&self.stderr)
    }

    /// Everything the run showed anyone: stdout, stderr, prompts, messages.
    pub fn everything(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts a failure that is neither PAM_SUCCESS nor PAM_IGNORE, and
    /// exactly `expected`.
    pub fn assert_refused(&self, expected: i32) {
        let rc = self.auth();
        assert_ne!(rc, code::SUCCESS, "must not succeed\n{}", self.everything());
        assert_ne!(
            rc,
            code::IGNORE,
            "must not be ignored\n{}",
            self.everything()
        );
        assert_eq!(rc, expected, "unexpected code\n{}", self.everything());
    }
}

fn hex(b: &[u8]) -> String {
    yubiotp_core::hex::encode(b)
}

fn unhex(s: &str) -> Vec<u8> {
    yubiotp_core::hex::decode(s).unwrap()
}

/// A private world for one test.
pub struct World {
    /// Root of everything (removed on drop).
    pub dir: tempfile::TempDir,
    /// Config and key store directory (root-only).
    pub etc: PathBuf,
    /// Counter state directory (root-only).
    pub state: PathBuf,
    /// PAM service directory.
    pub services: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
    users: Vec<User>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// A new empty world.
    pub fn new() -> Self {
        let dir = yubiotp_testsupport::tempdir();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mk = |name: &str, mode: u32| {
            let p = dir.path().join(name);
            fs::create_dir(&p).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let etc = mk("etc", 0o700);
        let state = mk("state", 0o700);
        let services = mk("services", 0o755);
        mk("home", 0o755);
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(&group, "root:x:0:\n").unwrap();
        fs::write(services.join("other"), "auth required pam_deny.so\naccount required pam_deny.so\npassword required pam_deny.so\nsession required pam_deny.so\n").unwrap();
        Self {
            dir,
            etc,
            state,
            services,
            passwd,
            group,
            users: Vec::new(),
        }
    }

    /// The key store path.
    pub fn keystore(&self) -> PathBuf {
        self.etc.join("keys")
    }

    /// The central mapping file path.
    pub fn authfile(&self) -> PathBuf {
        self.etc.join("authorized_yubikeys")
    }

    /// The config file path.
    pub fn config(&self) -> PathBuf {
        self.etc.join("yubiotp.toml")
    }

    /// Adds a user with a home directory (owned by the user when root).
    pub fn add_user(&mut self, name: &str, uid: u32) -> User {
        let home = self.dir.path().join("home").join(name);
        fs::create_dir_all(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        }
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&self.passwd)
            .unwrap();
        writeln!(f, "{name}:x:{uid}:{uid}:{name}:{}:/bin/sh", home.display()).unwrap();
        let mut g = fs::OpenOptions::new()
            .append(true)
            .open(&self.group)
            .unwrap();
        writeln!(g, "{name}:x:{uid}:").unwrap();
        let u = User {
            name: name.to_string(),
            uid,
            home,
        };
        self.users.push(u.clone());
        u
    }

    /// Writes the config file (mode 0600). `@ETC@`, `@STATE@` are replaced.
    pub fn write_config(&self, toml: &str) {
        let text = toml
            .replace("@ETC@", &self.etc.display().to_string())
            .replace("@STATE@", &self.state.display().to_string());
        write_mode(&self.config(), text.as_bytes(), 0o600);
    }

    /// A local-mode config with the central authfile.
    pub fn local_config(&self) {
        self.write_config(
            "mode = \"local\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n",
        );
    }

    /// Writes a service file; `@MODULE@`, `@CONFIG@`, `@WRAPPER@` are
    /// replaced by the module path, `config=<config file>` and the
    /// pam_wrapper test module directory.
    pub fn service(&self, name: &str, text: &str) {
        let text = text
            .replace("@MODULE@", &module_path().display().to_string())
            .replace("@CONFIG@", &format!("config={}", self.config().display()))
            .replace("@WRAPPER@", WRAPPER_MODULES);
        fs::write(self.services.join(name), text).unwrap();
    }

    /// The usual one-line stack: `auth required <module> config=… <extra>`.
    pub fn simple_service(&self, extra: &str) {
        self.service(
            "yubiotp-test",
            &format!("auth required @MODULE@ @CONFIG@ {extra}\naccount required @MODULE@\n"),
        );
    }

    /// Registers `key` in the key store with its counter state at `init`.
    pub fn add_key(&self, key: &TestKey, init: Counter) {
        let store = self.keystore();
        KeyStore::update(&store, |ks| {
            ks.insert(key.id, key.key.clone());
            Ok(())
        })
        .unwrap();
        CounterStore::open(&self.state)
            .unwrap()
            .init(&key.id, init)
            .unwrap();
    }

    /// Writes the central mapping file (root-owned 0644).
    pub fn write_authfile(&self, text: &str) {
        write_mode(&self.authfile(), text.as_bytes(), 0o644);
    }

    /// Runs the application as `user` on `service`, one at a time.
    pub fn run(&self, service: &str, user: &str, opts: &RunOpts) -> Run {
        let mut cmd = self.command(service, user, opts);
        let out = {
            let _guard = (!opts.confdir).then(WrapperLock::take);
            let child = cmd.spawn().expect("spawn pam_driver");
            wait_bounded(child, Duration::from_secs(120))
        };
        parse_run(&out.0, &out.1, out.2)
    }

    /// Starts the application without waiting (needs `opts.confdir`, since
    /// pam_wrapper cannot run many processes at once).
    pub fn spawn(&self, service: &str, user: &str, opts: &RunOpts) -> Spawned {
        assert!(opts.confdir, "concurrent runs need confdir");
        Spawned(
            self.command(service, user, opts)
                .spawn()
                .expect("spawn pam_driver"),
        )
    }

    /// The command that runs the application as `user` on `service` (for
    /// harnesses that wait and judge the exit status themselves).
    pub fn command(&self, service: &str, user: &str, opts: &RunOpts) -> Command {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answers = self
            .dir
            .path()
            .join(format!("answers-{}-{n}", std::process::id()));
        let mut text = String::new();
        for a in &opts.answers {
            match a {
                Answer::Bytes(b) => text.push_str(&hex(b)),
                Answer::NullResp => text.push_str("NULLRESP"),
                Answer::NullStr => text.push_str("NULLSTR"),
                Answer::ConvErr => text.push_str("CONVERR"),
            }
            text.push('\n');
        }
        write_mode(&answers, text.as_bytes(), 0o644);
        let mut cmd = match opts.wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(driver_path());
                c
            }
            None => Command::new(driver_path()),
        };
        cmd.arg(service).arg(user).arg("--answers").arg(&answers);
        if opts.silent {
            cmd.arg("--silent");
        }
        if opts.disallow_null {
            cmd.arg("--disallow-null");
        }
        if opts.repeat > 1 {
            cmd.arg("--repeat").arg(opts.repeat.to_string());
        }
        if let Some(ops) = &opts.ops {
            cmd.arg("--ops").arg(ops);
        }
        if let Some(r) = &opts.rhost {
            cmd.arg("--rhost").arg(r);
        }
        if opts.no_conv {
            cmd.arg("--no-conv");
        }
        if opts.sigchld_ignore {
            cmd.arg("--sigchld-ignore");
        }
        if let Some(w) = &opts.wait_for {
            cmd.arg("--wait-for").arg(w);
        }
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("NSS_WRAPPER_PASSWD", &self.passwd)
            .env("NSS_WRAPPER_GROUP", &self.group);
        if opts.confdir {
            cmd.arg("--confdir")
                .arg(&self.services)
                .env("LD_PRELOAD", NSS_WRAPPER);
        } else {
            cmd.env("LD_PRELOAD", format!("{PAM_WRAPPER}:{NSS_WRAPPER}"))
                .env("PAM_WRAPPER", "1")
                .env("PAM_WRAPPER_SERVICE_DIR", &self.services)
                .env("PAM_WRAPPER_DEBUGLEVEL", "2");
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

/// A running application.
pub struct Spawned(std::process::Child);

impl Spawned {
    /// Waits (bounded) and parses the output.
    pub fn finish(self) -> Run {
        let out = wait_bounded(self.0, Duration::from_secs(120));
        parse_run(&out.0, &out.1, out.2)
    }
}

/// Makes `dir` a root-owned 0755 directory holding `src` as `name`,
/// root:root 4755 (the setuid test verifier); returns the copy's path.
/// Needs root.
pub fn setuid_copy(src: &str, dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        fs::create_dir(dir).unwrap();
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join(name);
    fs::copy(src, &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(0), Some(0)).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).unwrap();
    copy
}

/// Writes `bytes` to `path` with `mode`.
pub fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
) -> (String, String, std::process::ExitStatus) {
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pam_driver did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (t_out.join().unwrap(), t_err.join().unwrap(), status)
}

/// Parses the application's stdout (and keeps its stderr and exit status)
/// into a [`Run`].
pub fn parse_run(stdout: &str, stderr: &str, status: std::process::ExitStatus) -> Run {
    let mut run = Run {
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
        status: Some(status),
        ..Run::default()
    };
    for line in stdout.lines() {
        let parts: Vec<&str> = line.splitn(3, ' ').collect();
        match parts.as_slice() {
            ["rc", op, c] => run.rc.push(((*op).to_string(), c.parse().unwrap())),
            ["prompt", style, msg] => run.prompts.push((
                style.parse().unwrap(),
                String::from_utf8_lossy(&unhex(msg)).into_owned(),
            )),
            ["prompt", style] => run.prompts.push((style.parse().unwrap(), String::new())),
            ["msg", style, msg] => run.messages.push((
                style.parse().unwrap(),
                String::from_utf8_lossy(&unhex(msg)).into_owned(),
            )),
            ["env", kv] | ["env", kv, ..] => {
                let (k, v) = kv.split_once('=').unwrap();
                run.env.insert(k.to_string(), unhex(v));
            }
            ["threads", a, b] => run.threads = (a.parse().unwrap(), b.parse().unwrap()),
            ["fds", a, b] => run.fds = (a.parse().unwrap(), b.parse().unwrap()),
            ["children", c] => run.children = (*c).to_string(),
            _ => {}
        }
    }
    run
}

/// Serializes pam_wrapper runs: its constructor races on /tmp/pam.<c>.
/// [`World::run`] takes it; a harness that starts pam_wrapper processes
/// itself (the sshd tests) takes it around each start.
#[derive(Debug)]
pub struct WrapperLock(fs::File);

impl WrapperLock {
    /// Machine-wide (not per target dir): every pam_wrapper user on the
    /// machine races for the same 62 `/tmp/pam.<c>` names.
    const PATH: &'static str = "/tmp/pam_wrapper-yubiotp-tests.lock";

    /// Waits for the lock.
    ///
    /// # Panics
    /// The lock file cannot be opened or locked.
    #[must_use]
    pub fn take() -> Self {
        let f = fs::File::open(Self::PATH).or_else(|_| {
            let f = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(Self::PATH)?;
            let _ = f.set_permissions(fs::Permissions::from_mode(0o666));
            Ok::<_, std::io::Error>(f)
        });
        let f = f.unwrap();
        f.lock().unwrap();
        Self(f)
    }
}

impl Drop for WrapperLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
