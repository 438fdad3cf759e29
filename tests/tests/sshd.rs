//! The two SSH recipes (SPEC §10) end to end with the real OpenSSH server
//! and client: `etc/sshd_config.d/*` and `etc/pam.d/sshd.*`, a test-only
//! sshd on 127.0.0.1, a user only that sshd knows, and the real `ssh`
//! answering keyboard-interactive and password prompts through
//! `SSH_ASKPASS` (`SSH_ASKPASS_REQUIRE=force`, `DISPLAY` set, no tty).
//!
//! How sshd gets a private PAM stack: its PAM service name is fixed to
//! "sshd", so the test runs it with pam_wrapper preloaded
//! (`LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
//! PAM_WRAPPER_SERVICE_DIR=<dir holding a file named sshd>`). sshd re-execs
//! itself per connection and forks its privilege-separated children; the
//! environment is kept across the re-exec and PAM runs in the privileged
//! monitor, so every PAM call of the test sshd reads the private stack.
//! /etc/pam.d is never written. libpam resolves a relative `@include` in
//! /etc/pam.d even then, so the stack's includes are pointed at Debian's
//! stock common-* files copied next to it.
//!
//! Needs root (sshd, mount namespaces). No real user is made: the test
//! user exists only in copies of /etc/passwd, /etc/shadow and /etc/group
//! that are bind-mounted over the real ones inside a private mount
//! namespace holding just the test sshd (`unshare --mount`), so pam_unix,
//! initgroups and sshd's own lookups see it and nothing else does. It
//! creates /run/sshd only if missing (and removes it again), and asserts
//! that /etc/passwd, /etc/shadow, /etc/group, /etc/gshadow, their `-`
//! backups, /etc/pam.d and /etc/ssh are byte-for-byte as before. The sshd it starts is killed on
//! every path (a Drop guard on its process group); every wait is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pam_yubiotp::store::CounterStore;
use ykmap::ssh;
use yubiotp_core::Counter;
use yubiotp_tests::{PAM_WRAPPER, TestKey, World, WrapperLock, is_root, repo_file};

const SSHD: &str = "/usr/sbin/sshd";
const SSH: &str = "/usr/bin/ssh";
const UNSHARE: &str = "/usr/bin/unshare";

/// Debian 12's stock common-* files (see stacks.rs).
const COMMON: &[(&str, &str)] = &[
    (
        "common-auth",
        "auth\t[success=1 default=ignore]\tpam_unix.so nullok\nauth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\nauth\toptional\t\t\tpam_cap.so\n",
    ),
    (
        "common-account",
        "account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so\naccount\trequisite\t\t\tpam_deny.so\naccount\trequired\t\t\tpam_permit.so\n",
    ),
    (
        "common-session",
        "session\t[default=1]\t\t\tpam_permit.so\nsession\trequisite\t\t\tpam_deny.so\nsession\trequired\t\t\tpam_permit.so\nsession\trequired\tpam_unix.so\n",
    ),
    (
        "common-password",
        "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\npassword\trequisite\t\t\tpam_deny.so\npassword\trequired\t\t\tpam_permit.so\n",
    ),
];

/// The test user's password and its SHA-512 crypt hash (`openssl passwd -6`).
const PASSWORD: &str = "s3cret-Pw";
const PASSWORD_HASH: &str = "$6$ykotpsshd$9MvOBLXIatO6.TGl900huvkAZ/CKod4zWp9T/TqBm7ZKcVGDvfulMP10S4oEySwVHT98y6NE2a.b4N14UkWqT1";

// ------------------------------------------------------------ machine state

/// The bytes of every file the test must leave as it found them.
fn fingerprint() -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(&p, out);
            } else if m.is_file() {
                out.insert(p.clone(), fs::read(&p).unwrap());
            } else {
                out.insert(
                    p.clone(),
                    format!("{:?}", fs::read_link(&p).ok()).into_bytes(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    for f in [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/gshadow",
        "/etc/subuid",
        "/etc/subgid",
        "/etc/passwd-",
        "/etc/shadow-",
        "/etc/group-",
        "/etc/gshadow-",
        "/etc/subuid-",
        "/etc/subgid-",
    ] {
        if let Ok(b) = fs::read(f) {
            out.insert(PathBuf::from(f), b);
        }
    }
    walk(Path::new("/etc/pam.d"), &mut out);
    walk(Path::new("/etc/ssh"), &mut out);
    out
}

fn pam_wrapper_dirs() -> BTreeSet<PathBuf> {
    fs::read_dir("/tmp")
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.len() == 5 && n.starts_with("pam."))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// pam_wrapper leaves its copy of the service directory in /tmp/pam.X
/// behind when a process ends with _exit (sshd's per-connection children
/// do). On drop, removes the copies of this test's stacks (their text names
/// the test's private directory, the marker) whose process is gone. Slot
/// names are reused, so the content, not the name, says whose a copy is.
struct WrapperCopies(String);

impl Drop for WrapperCopies {
    fn drop(&mut self) {
        for d in pam_wrapper_dirs() {
            let mine = fs::read_to_string(d.join("sshd")).is_ok_and(|t| t.contains(&self.0));
            let alive = fs::read_to_string(d.join("pid"))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if mine && !alive {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
}

/// sshd's privilege separation directory: created if missing, removed
/// again (only if this guard created it and it is empty).
struct RunDir(bool);

impl RunDir {
    fn ensure() -> Self {
        let p = Path::new("/run/sshd");
        if p.exists() {
            return Self(false);
        }
        fs::create_dir(p).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        Self(true)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.0 {
            let _ = fs::remove_dir("/run/sshd");
        }
    }
}

/// The user made for the test. It never enters the real /etc/passwd: the
/// test writes copies of /etc/passwd, /etc/shadow and /etc/group with one
/// more line each into its scratch directory, and only the test sshd sees
/// them, bind-mounted over the real files in a private mount namespace
/// (`unshare --mount`, see [`Site::start`]). The mounts end with the
/// namespace's last process; nothing to undo.
struct TestUser {
    name: String,
    home: PathBuf,
    /// (private copy, the real file it stands in for).
    files: Vec<(PathBuf, &'static str)>,
}

/// True when `/etc/<db>` has an entry named `name` or (field 3) `id`.
fn taken(db: &str, name: &str, id: u32) -> bool {
    fs::read_to_string(db).unwrap().lines().any(|l| {
        let f: Vec<&str> = l.split(':').collect();
        f.first() == Some(&name) || f.get(2) == Some(&id.to_string().as_str())
    })
}

impl TestUser {
    fn create(dir: &Path) -> Self {
        let pid = std::process::id() % 100_000;
        let name = format!("ykotp{pid}");
        let uid = (0..100)
            .map(|i| 40_000 + (pid + i * 7919) % 20_000)
            .find(|&id| !taken("/etc/passwd", &name, id) && !taken("/etc/group", &name, id))
            .expect("no free uid in 40000..60000");
        let home = dir.join("home").join(&name);
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        let lines = [
            (
                "/etc/passwd",
                format!("{name}:x:{uid}:{uid}::{}:/bin/sh\n", home.display()),
                0o644,
            ),
            (
                "/etc/shadow",
                format!("{name}:{PASSWORD_HASH}:{days}:0:99999:7:::\n"),
                0o600,
            ),
            ("/etc/group", format!("{name}:x:{uid}:\n"), 0o644),
        ];
        let etc = dir.join("user-db");
        fs::create_dir(&etc).unwrap();
        let mut files = Vec::new();
        for (real, line, mode) in lines {
            let mut text = fs::read_to_string(real).unwrap();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            let copy = etc.join(Path::new(real).file_name().unwrap());
            fs::write(&copy, text).unwrap();
            fs::set_permissions(&copy, fs::Permissions::from_mode(mode)).unwrap();
            files.push((copy, real));
        }
        let ssh_dir = home.join(".ssh");
        fs::create_dir_all(&ssh_dir).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        std::os::unix::fs::chown(&ssh_dir, Some(uid), Some(uid)).unwrap();
        Self { name, home, files }
    }

    fn authorize(&self, pubkey: &str) {
        let f = self.home.join(".ssh/authorized_keys");
        fs::write(&f, pubkey).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let meta = fs::metadata(self.home.join(".ssh")).unwrap();
        use std::os::unix::fs::MetadataExt;
        std::os::unix::fs::chown(&f, Some(meta.uid()), Some(meta.gid())).unwrap();
    }
}

/// A running test sshd; its whole process group is killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sshd {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The pids whose process group is `pgid` (from /proc/<pid>/stat).
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|st| {
                    // "pid (comm) state ppid pgrp ...": comm may hold spaces.
                    let after = st.rsplit_once(')')?.1.to_string();
                    after.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// Sends `signal` to these pids. Only positive, explicit pids are ever
/// passed to kill(1): "-PGID" is not used (procps-ng 4.0.2's kill has
/// killed far more than the group with it here).
fn signal(pids: &[u32], signal: &str) {
    let pids: Vec<String> = pids
        .iter()
        .filter(|p| **p > 1)
        .map(u32::to_string)
        .collect();
    if !pids.is_empty() {
        let _ = Command::new("/bin/kill")
            .args(["-s", signal])
            .args(&pids)
            .output();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // sshd and its per-connection children share its process group.
        let pgid = self.child.id();
        signal(&group_members(pgid), "TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        signal(&group_members(pgid), "KILL");
    }
}

// The harness's lock around pam_wrapper start-ups (its constructor races
// on /tmp/pam.X) is the kit's `WrapperLock`, the one `World::run` takes:
// every connection makes sshd re-exec, so each ssh run and each sshd start
// holds it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ------------------------------------------------------------ one sshd setup

struct Site {
    w: World,
    dir: PathBuf,
    user: TestUser,
    key: TestKey,
    client_key: PathBuf,
    other_client_key: PathBuf,
    known_hosts: PathBuf,
    pam_dir: PathBuf,
}

fn keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "yubiotp-test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    fs::read_to_string(path.with_extension("pub")).unwrap()
}

fn site() -> Site {
    let w = World::new();
    let dir = w.dir.path().to_path_buf();
    let user = TestUser::create(&dir);
    let key = TestKey::new(21);
    w.add_key(&key, Counter::new(1, 0));
    w.write_authfile(&format!("# test mapping\n{}:{}\n", user.name, key.id));
    w.local_config();
    let client_key = dir.join("client_key");
    user.authorize(&keygen(&client_key));
    let other_client_key = dir.join("other_client_key");
    keygen(&other_client_key);
    keygen(&dir.join("ssh_host_ed25519_key"));
    let pam_dir = dir.join("pam");
    fs::create_dir(&pam_dir).unwrap();
    fs::set_permissions(&pam_dir, fs::Permissions::from_mode(0o755)).unwrap();
    for (name, text) in COMMON {
        fs::write(pam_dir.join(name), text).unwrap();
    }
    fs::write(
        pam_dir.join("other"),
        "auth required pam_deny.so\naccount required pam_deny.so\npassword required pam_deny.so\nsession required pam_deny.so\n",
    )
    .unwrap();
    fs::create_dir(dir.join("sshd_config.d")).unwrap();
    let known_hosts = dir.join("known_hosts");
    // The askpass helper logs each prompt and prints the prepared answer;
    // with no answer file it fails, as a user pressing Cancel.
    let askpass = dir.join("askpass");
    fs::write(
        &askpass,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {0}/askpass.log\n[ -f {0}/answer ] || exit 1\ncat {0}/answer\n",
            dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&askpass, fs::Permissions::from_mode(0o755)).unwrap();
    Site {
        w,
        dir,
        user,
        key,
        client_key,
        other_client_key,
        known_hosts,
        pam_dir,
    }
}

impl Site {
    /// Installs the recipe (drop-in + PAM stack) and starts sshd with it.
    fn start(&self, drop_in: &str, stack: &str) -> Sshd {
        self.start_with(drop_in, &repo_file(drop_in), &repo_file(stack))
    }

    /// [`Site::start`] with the drop-in's and the stack's text given.
    fn start_with(&self, drop_in: &str, drop_in_text: &str, stack_text: &str) -> Sshd {
        for e in fs::read_dir(self.dir.join("sshd_config.d")).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
        let name = Path::new(drop_in).file_name().unwrap();
        fs::write(self.dir.join("sshd_config.d").join(name), drop_in_text).unwrap();
        // The stack verbatim, but for the module path + config and the includes.
        let text = stack_text
            .lines()
            .map(|l| match l.strip_prefix("@include ") {
                Some(n) => format!("@include {}", self.pam_dir.join(n.trim()).display()),
                None => l.replace(
                    "pam_yubiotp.so",
                    &format!(
                        "{} config={}",
                        yubiotp_tests::module_path().display(),
                        self.w.config().display()
                    ),
                ),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        fs::write(self.pam_dir.join("sshd"), &text).unwrap();
        // Debian's sftp subsystem, unless the drop-in names one (a second
        // `Subsystem sftp` is fatal for sshd).
        let subsystem = if drop_in_text.lines().any(|l| {
            l.trim_start()
                .to_ascii_lowercase()
                .starts_with("subsystem ")
        }) {
            ""
        } else {
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        };
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let config = self.dir.join("sshd_config");
            // Debian's own sshd_config puts the drop-ins first, then
            // "KbdInteractiveAuthentication no" and "UsePAM yes": the same here.
            fs::write(
                &config,
                format!(
                    "Include {dir}/sshd_config.d/*.conf\n\
                     Port {port}\nListenAddress 127.0.0.1\nAddressFamily inet\n\
                     HostKey {dir}/ssh_host_ed25519_key\nPidFile {dir}/sshd.pid\n\
                     KbdInteractiveAuthentication no\nUsePAM yes\n\
                     PermitRootLogin no\nAllowUsers {user}\nStrictModes yes\n\
                     AuthorizedKeysFile .ssh/authorized_keys\n\
                     PrintMotd no\nPrintLastLog no\nX11Forwarding no\nUseDNS no\n\
                     MaxAuthTries 6\nLoginGraceTime 30\nLogLevel VERBOSE\n{subsystem}",
                    dir = self.dir.display(),
                    user = self.user.name,
                    subsystem = subsystem,
                ),
            )
            .unwrap();
            let check = Command::new(SSHD)
                .arg("-t")
                .arg("-f")
                .arg(&config)
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "sshd -t: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            let log = self.dir.join("sshd.log");
            let _ = fs::remove_file(&log);
            let _lock = WrapperLock::take();
            // sshd in a private mount namespace, where the test user's
            // passwd/shadow/group copies stand over the real files; the
            // preload is set for sshd only (not for unshare, sh, mount).
            let mut cmd = Command::new(UNSHARE);
            cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg(
                    "set -e\n\
                     while [ \"$1\" != -- ]; do mount --bind \"$1\" \"$2\"; shift 2; done\n\
                     shift\n\
                     exec env LD_PRELOAD=\"$YKOTP_PRELOAD\" \"$@\"",
                )
                .arg("sh");
            for (copy, real) in &self.user.files {
                cmd.arg(copy).arg(real);
            }
            let child = cmd
                .arg("--")
                .arg(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("YKOTP_PRELOAD", PAM_WRAPPER)
                .env("PAM_WRAPPER", "1")
                .env("PAM_WRAPPER_SERVICE_DIR", &self.pam_dir)
                .env("PAM_WRAPPER_DEBUGLEVEL", "2")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .process_group(0)
                .spawn()
                .unwrap();
            let mut sshd = Sshd { child, port, log };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if matches!(sshd.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    fs::write(
                        &self.known_hosts,
                        format!(
                            "[127.0.0.1]:{port} {}",
                            fs::read_to_string(self.dir.join("ssh_host_ed25519_key.pub")).unwrap()
                        ),
                    )
                    .unwrap();
                    return sshd;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = sshd.log();
            drop(sshd);
        }
        panic!("the test sshd did not start:\n{last_log}");
    }

    /// Runs `ssh` with `answer` (None: the askpass helper fails) for every
    /// prompt; returns its output.
    fn ssh(&self, sshd: &Sshd, identity: &Path, methods: &str, answer: Option<&str>) -> Output {
        let answer_file = self.dir.join("answer");
        let _ = fs::remove_file(&answer_file);
        if let Some(a) = answer {
            fs::write(&answer_file, format!("{a}\n")).unwrap();
            fs::set_permissions(&answer_file, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let _ = fs::remove_file(self.dir.join("askpass.log"));
        let _lock = WrapperLock::take();
        let mut child = Command::new(SSH)
            .arg("-F")
            .arg("/dev/null")
            .arg("-T")
            .args(["-p", &sshd.port.to_string()])
            .arg("-i")
            .arg(identity)
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .args(["-o", "BatchMode=no", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .arg("-o")
            .arg(format!("PreferredAuthentications={methods}"))
            .args(["-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10"])
            .arg(format!("{}@127.0.0.1", self.user.name))
            .arg("echo logged-in-as-$(id -un)")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.dir)
            .env("SSH_ASKPASS", self.dir.join("askpass"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ssh did not finish within 60 s\n{}", sshd.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut stderr)
            .unwrap();
        Output {
            status: child.wait().unwrap(),
            stdout,
            stderr,
        }
    }

    /// The key's last accepted counter, from the module's state directory.
    fn stored(&self) -> Counter {
        CounterStore::open(&self.w.state)
            .unwrap()
            .read(&self.key.id)
            .unwrap()
    }

    fn prompts(&self) -> String {
        fs::read_to_string(self.dir.join("askpass.log")).unwrap_or_default()
    }

    #[track_caller]
    fn assert_in(&self, sshd: &Sshd, out: &Output) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim() == format!("logged-in-as-{}", self.user.name),
            "expected a login: status {:?}\nstdout: {stdout}\nstderr: {}\nprompts: {}\nsshd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.prompts(),
            sshd.log()
        );
    }

    #[track_caller]
    fn assert_refused(&self, sshd: &Sshd, out: &Output) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && !stdout.contains("logged-in-as-"),
            "expected a refusal: status {:?}\nstdout: {stdout}\nstderr: {}\nsshd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "refused by authentication, not by an error: {}\nsshd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
    }
}

// ------------------------------------------------------------ the test

/// Runs `body` on a fresh site when root and `tools` are there (else
/// skips), then asserts the machine's files are as before.
fn on_site(extra_tools: &[&str], body: impl FnOnce(&mut Site)) {
    if !is_root() {
        eprintln!(
            "SKIP: the OpenSSH end-to-end test needs root (sshd, unshare --mount, /run/sshd)"
        );
        return;
    }
    let base = [SSHD, SSH, UNSHARE, "/usr/bin/ssh-keygen", PAM_WRAPPER];
    for tool in base.iter().chain(extra_tools) {
        if !Path::new(tool).exists() {
            eprintln!("SKIP: {tool} is not installed");
            return;
        }
    }
    // One site at a time across test processes: /run/sshd (made and
    // removed by RunDir) and the /etc fingerprint are machine-wide.
    let site_lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(yubiotp_testsupport::scratch_root().join("sshd-site.lock"))
        .unwrap();
    site_lock.lock().unwrap();
    let before = fingerprint();
    {
        let _run_dir = RunDir::ensure();
        let mut s = site();
        let _copies = WrapperCopies(s.dir.display().to_string());
        body(&mut s);
        // Guards drop here, also on a panic: each sshd (at the end of its
        // function), pam_wrapper's copies, the user and its files, /run/sshd.
    }
    let after = fingerprint();
    for (path, bytes) in &before {
        assert!(
            after.get(path) == Some(bytes),
            "{} changed or vanished",
            path.display()
        );
    }
    for path in after.keys() {
        assert!(before.contains_key(path), "{} appeared", path.display());
    }
}

#[test]
fn real_openssh_key_then_otp_and_password_otp() {
    on_site(&[], |s| {
        key_then_otp(s);
        password_otp(s);
        ldap_key_then_otp(s);
    });
}

fn key_then_otp(s: &mut Site) {
    let drop_in = "etc/sshd_config.d/yubiotp-key-then-otp.conf";
    let stack = "etc/pam.d/sshd.key-then-otp";
    let sshd = s.start(drop_in, stack);
    let methods = "publickey,keyboard-interactive";

    // The live setup passes the checker (real sshd -T, the private stack).
    let problems = ssh::read_and_check_with(&ssh::ReadOptions {
        sshd_config: Some(s.dir.join("sshd_config")),
        user: Some(s.user.name.clone()),
        pam_dir: s.pam_dir.clone(),
        ..ssh::ReadOptions::default()
    })
    .unwrap();
    assert!(problems.is_empty(), "{problems:#?}");

    // Key + fresh OTP: in, and the OTP was the only prompt.
    let otp = s.key.next();
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&otp));
    s.assert_in(&sshd, &out);
    let prompts = s.prompts();
    assert_eq!(prompts.lines().count(), 1, "{prompts}");
    assert!(prompts.contains("YubiKey OTP: "), "{prompts}");
    assert!(
        !prompts.to_lowercase().contains("password"),
        "no system password: {prompts}"
    );
    // The module decided: the key's counter state moved to this OTP's.
    assert_eq!(s.stored(), s.key.counter);

    // Key + the same OTP again: replay.
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&otp));
    s.assert_refused(&sshd, &out);
    assert_eq!(s.stored(), s.key.counter, "a replay changes nothing");

    // Key + wrong OTPs: an unmapped key's, and garbage.
    let mut stranger = TestKey::new(22);
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&stranger.next()));
    s.assert_refused(&sshd, &out);
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&"c".repeat(44)));
    s.assert_refused(&sshd, &out);
    // The password is not an OTP either.
    let out = s.ssh(&sshd, &s.client_key, methods, Some(PASSWORD));
    s.assert_refused(&sshd, &out);

    // Key alone: the askpass helper gives no answer.
    let out = s.ssh(&sshd, &s.client_key, methods, None);
    s.assert_refused(&sshd, &out);
    assert!(s.prompts().contains("YubiKey OTP: "), "asked, not answered");

    // An OTP without the key: an unauthorized client key never reaches PAM,
    // so the fresh OTP is not used up, and works with the right key after.
    let fresh = s.key.next();
    let out = s.ssh(&sshd, &s.other_client_key, methods, Some(&fresh));
    s.assert_refused(&sshd, &out);
    assert!(
        s.prompts().is_empty(),
        "no OTP prompt without the key: {}",
        s.prompts()
    );
    let out = s.ssh(&sshd, &s.client_key, "keyboard-interactive", Some(&fresh));
    s.assert_refused(&sshd, &out);
    let out = s.ssh(&sshd, &s.client_key, "password", Some(&fresh));
    s.assert_refused(&sshd, &out);
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&fresh));
    s.assert_in(&sshd, &out);
}

/// Key, then OTP, with the user's key in a real slapd (issue 18): the
/// authfile is emptied, so only the directory can grant the key.
fn ldap_key_then_otp(s: &mut Site) {
    use yubiotp_testsupport::slapd::{self, PEOPLE};
    if !slapd::available() {
        eprintln!("SKIP: slapd is not installed (scripts/setup.sh)");
        return;
    }
    let dir = yubiotp_testsupport::Slapd::start(&format!(
        "dn: uid={u},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: yubiKeyUser\nuid: {u}\ncn: x\nsn: x\nyubiKeyId: {id}\n\n",
        u = s.user.name,
        id = s.key.id
    ))
    .unwrap();
    s.w.write_authfile("");
    s.w.write_config(&format!(
        "mode = \"local\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n[ldap]\nuri = \"{}\"\nbasedn = \"{PEOPLE}\"\nuser_attr = \"uid\"\nyubi_attr = \"yubiKeyId\"\n",
        dir.uri()
    ));
    let sshd = s.start(
        "etc/sshd_config.d/yubiotp-key-then-otp.conf",
        "etc/pam.d/sshd.key-then-otp",
    );
    let methods = "publickey,keyboard-interactive";
    let otp = s.key.next();
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&otp));
    s.assert_in(&sshd, &out);
    assert_eq!(s.stored(), s.key.counter);
    // The directory down: no way in, not even with a fresh OTP.
    drop(dir);
    let fresh = s.key.next();
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&fresh));
    s.assert_refused(&sshd, &out);
}

fn password_otp(s: &mut Site) {
    let drop_in = "etc/sshd_config.d/yubiotp-password-otp.conf";
    let stack = "etc/pam.d/sshd.password-otp";
    let sshd = s.start(drop_in, stack);
    let methods = "password";

    let problems = ssh::read_and_check_with(&ssh::ReadOptions {
        sshd_config: Some(s.dir.join("sshd_config")),
        user: Some(s.user.name.clone()),
        pam_dir: s.pam_dir.clone(),
        ..ssh::ReadOptions::default()
    })
    .unwrap();
    assert!(problems.is_empty(), "{problems:#?}");

    // Password and OTP typed together at the one password prompt.
    let otp = s.key.next();
    let out = s.ssh(
        &sshd,
        &s.client_key,
        methods,
        Some(&format!("{PASSWORD}{otp}")),
    );
    s.assert_in(&sshd, &out);
    assert_eq!(
        s.prompts().lines().count(),
        1,
        "one prompt: {}",
        s.prompts()
    );

    // Wrong password, fresh OTP.
    let next = s.key.next();
    let out = s.ssh(
        &sshd,
        &s.client_key,
        methods,
        Some(&format!("wrong-pw{next}")),
    );
    s.assert_refused(&sshd, &out);
    // Right password, replayed OTP.
    let out = s.ssh(
        &sshd,
        &s.client_key,
        methods,
        Some(&format!("{PASSWORD}{otp}")),
    );
    s.assert_refused(&sshd, &out);
    // Right password, an unmapped key's OTP.
    let mut stranger = TestKey::new(23);
    let out = s.ssh(
        &sshd,
        &s.client_key,
        methods,
        Some(&format!("{PASSWORD}{}", stranger.next())),
    );
    s.assert_refused(&sshd, &out);
    // The password alone, and the OTP alone.
    let out = s.ssh(&sshd, &s.client_key, methods, Some(PASSWORD));
    s.assert_refused(&sshd, &out);
    let next = s.key.next();
    let out = s.ssh(&sshd, &s.client_key, methods, Some(&next));
    s.assert_refused(&sshd, &out);
    // A public key is not a way in with this recipe.
    let out = s.ssh(&sshd, &s.client_key, "publickey", None);
    s.assert_refused(&sshd, &out);
    // And the recipe still works after all those failures.
    let otp = s.key.next();
    let out = s.ssh(
        &sshd,
        &s.client_key,
        methods,
        Some(&format!("{PASSWORD}{otp}")),
    );
    s.assert_in(&sshd, &out);
}

// ------------------------------------------------------------ the helper

const TEST_VERIFY: &str = env!("CARGO_BIN_EXE_yubiotp-test-verify");
const TEST_SSH_HELPER: &str = env!("CARGO_BIN_EXE_yubiotp-test-ssh");

/// The helper recipe's site: the setuid test verifier and the test helper
/// (which finds the verifier beside itself) in a root-owned directory with
/// the verifier's config.
struct HelperSite {
    libexec: PathBuf,
    helper: PathBuf,
}

impl HelperSite {
    fn install(s: &Site) -> Self {
        let libexec = s.dir.join("libexec");
        yubiotp_tests::setuid_copy(TEST_VERIFY, &libexec, "yubiotp-verify");
        let helper = libexec.join("yubiotp-ssh");
        fs::copy(TEST_SSH_HELPER, &helper).unwrap();
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
        let toml = format!(
            "mode = \"local\"\nauthfile = \"{etc}/authorized_yubikeys\"\n[local]\nkeystore = \"{etc}/keys\"\nstatedir = \"{state}\"\n[verifier]\nfailure_delay = 0\nmax_failures = 1000\nratelimit_dir = \"{rate}\"\n",
            etc = s.w.etc.display(),
            state = s.w.state.display(),
            rate = s.dir.join("ratelimit").display(),
        );
        let conf = libexec.join("yubiotp.toml");
        fs::write(&conf, toml).unwrap();
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).unwrap();
        Self { libexec, helper }
    }

    /// The shipped snippet, for the test user and the test helper.
    fn drop_in(&self, s: &Site) -> String {
        repo_file("etc/sshd_config.d/yubiotp-ssh-helper.conf")
            .replace(
                "Match Group yubiotp-ssh",
                &format!("Match User {}", s.user.name),
            )
            .replace("/usr/bin/yubiotp-ssh", &self.helper.display().to_string())
    }
}

/// ssh/scp/sftp options: the test key only, the test host key only.
fn client_opts(s: &Site, sshd: &Sshd) -> Vec<String> {
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-i".into(),
        s.client_key.display().to_string(),
        "-o".into(),
        format!("Port={}", sshd.port),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "IdentityAgent=none".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", s.known_hosts.display()),
        "-o".into(),
        "GlobalKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "PreferredAuthentications=publickey".into(),
        "-o".into(),
        "ConnectTimeout=10".into(),
    ]
}

/// Runs `program args` with `env` and `stdin`, bounded to 60 s.
fn run_client(program: &str, args: &[String], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let r1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let r2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: r1.join().unwrap(),
        stderr: r2.join().unwrap(),
    }
}

fn helper_ssh(
    s: &Site,
    sshd: &Sshd,
    extra: &[&str],
    command: Option<&str>,
    otp: Option<&str>,
) -> Output {
    let mut args = client_opts(s, sshd);
    args.extend(extra.iter().map(|a| a.to_string()));
    if otp.is_some() {
        args.extend(["-o".to_string(), "SendEnv=YUBIOTP".to_string()]);
    }
    args.push(format!("{}@127.0.0.1", s.user.name));
    if let Some(c) = command {
        args.push(c.to_string());
    }
    let env: Vec<(&str, &str)> = otp.map(|o| ("YUBIOTP", o)).into_iter().collect();
    let _lock = WrapperLock::take();
    run_client(SSH, &args, &env, b"")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {:?}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An interactive `ssh -tt`: waits for the helper's prompt on the remote
/// terminal, then types `typed`; returns (status, everything ssh printed).
fn interactive(s: &Site, sshd: &Sshd, typed: &str) -> (Option<i32>, String) {
    interactive_or_hang_up(s, sshd, Some(typed), None)
}

/// [`interactive`]; with `None` the client is killed at the prompt (the
/// connection drops: sshd hangs up the session's terminal). `then`: once
/// the output after `typed` shows `.0`, type `.1`.
fn interactive_or_hang_up(
    s: &Site,
    sshd: &Sshd,
    typed: Option<&str>,
    then: Option<(&str, &str)>,
) -> (Option<i32>, String) {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    let mut args = client_opts(s, sshd);
    args.push("-tt".into());
    args.push(format!("{}@127.0.0.1", s.user.name));
    let _lock = WrapperLock::take();
    let mut child = Command::new(SSH)
        .args(&args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut out = child.stdout.take().unwrap();
    let seen2 = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen2.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    });
    let mut input = child.stdin.take().unwrap();
    let start = Instant::now();
    while !String::from_utf8_lossy(&seen.lock().unwrap()).contains("YubiKey OTP: ") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no prompt: {:?}",
            String::from_utf8_lossy(&seen.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let Some(typed) = typed else {
        let _ = child.kill();
        let _ = child.wait();
        drop(input);
        let _ = reader.join();
        let text = String::from_utf8_lossy(&seen.lock().unwrap()).to_string();
        return (None, text);
    };
    let mark = seen.lock().unwrap().len();
    input.write_all(typed.as_bytes()).unwrap();
    input.flush().unwrap();
    if let Some((wait_for, text)) = then {
        while !String::from_utf8_lossy(&seen.lock().unwrap()[mark..]).contains(wait_for) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {wait_for:?}: {:?}",
                String::from_utf8_lossy(&seen.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        input.write_all(text.as_bytes()).unwrap();
        input.flush().unwrap();
    }
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ssh -tt did not end: {:?}",
                String::from_utf8_lossy(&seen.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(input);
    let _ = reader.join();
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).to_string();
    (status.code(), text)
}

#[test]
fn real_openssh_force_command_helper() {
    on_site(
        &["/usr/bin/scp", "/usr/bin/sftp", "/usr/bin/rsync"],
        helper_sessions,
    );
}

/// The live helper setup passes `ykmap ssh check` (real `sshd -T` with
/// the Match evaluated for the test user).
#[track_caller]
fn helper_check_is_clean(s: &Site) {
    let problems = ssh::read_and_check_with(&ssh::ReadOptions {
        sshd_config: Some(s.dir.join("sshd_config")),
        user: Some(s.user.name.clone()),
        pam_dir: s.pam_dir.clone(),
        ..ssh::ReadOptions::default()
    })
    .unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// `sftp -b -` with a fresh OTP in YUBIOTP: gets `remote` (in the home)
/// into `local`.
#[track_caller]
fn sftp_get(s: &mut Site, sshd: &Sshd, remote: &str, local: &Path) {
    let otp = s.key.next();
    let mut args = client_opts(s, sshd);
    args.extend([
        "-o".into(),
        "SendEnv=YUBIOTP".into(),
        "-b".into(),
        "-".into(),
    ]);
    args.push(format!("{}@127.0.0.1", s.user.name));
    let batch = format!("get {remote} {}\n", local.display());
    let _lock = WrapperLock::take();
    let o = run_client(
        "/usr/bin/sftp",
        &args,
        &[("YUBIOTP", &otp)],
        batch.as_bytes(),
    );
    drop(_lock);
    assert!(o.status.success(), "sftp: {}\n{}", show(&o), sshd.log());
}

fn helper_sessions(s: &mut Site) {
    let h = HelperSite::install(s);
    // Only account and session run through PAM (publickey does auth).
    let stack = "@include common-account\n@include common-session\n";
    let sshd = s.start_with("yubiotp-ssh-helper.conf", &h.drop_in(s), stack);
    let user = s.user.name.clone();

    // The live setup passes the checker as the helper recipe (real sshd -T
    // with the Match evaluated for the user).
    helper_check_is_clean(s);

    // A command with a fresh OTP: stdout exactly the command's, its status,
    // YUBIOTP absent from its environment (also /proc/<pid>/environ).
    let otp = s.key.next();
    let o = helper_ssh(
        s,
        &sshd,
        &[],
        Some(
            "printf x; tr '\\0' '\\n' </proc/$$/environ | grep -c ^YUBIOTP= >&2; env | grep ^YUBIOTP= >&2; exit 7",
        ),
        Some(&otp),
    );
    assert_eq!(o.status.code(), Some(7), "{}\n{}", show(&o), sshd.log());
    assert_eq!(o.stdout, b"x", "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with('0') && !err.contains(&otp), "{}", show(&o));
    assert_eq!(s.stored(), s.key.counter, "consumed");

    // The same OTP again: refused, nothing ran.
    let o = helper_ssh(s, &sshd, &[], Some("printf ran"), Some(&otp));
    assert_eq!(o.status.code(), Some(77), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));

    // No OTP, no tty: refused at once, nothing on stdout.
    let o = helper_ssh(s, &sshd, &[], Some("printf ran"), None);
    assert_eq!(o.status.code(), Some(77), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));

    // Another key's OTP (not mapped to the user): refused, not consumed.
    let other = TestKey::new(22);
    s.w.add_key(&other, Counter::new(1, 0));
    let mut other = other;
    let o = helper_ssh(s, &sshd, &[], Some("printf ran"), Some(&other.next()));
    assert_eq!(o.status.code(), Some(77), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));

    // SIGPIPE is default in the command: `yes | head -1` ends.
    let fresh = s.key.next();
    let o = helper_ssh(s, &sshd, &[], Some("printf x; yes | head -1"), Some(&fresh));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(o.stdout, b"xy\n", "{}", show(&o));

    // Files byte-exact through scp (SFTP and -O), sftp and rsync.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let src = s.dir.join("payload.bin");
    fs::write(&src, &data).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
    let home = s.user.home.clone();
    let remote = |name: &str| format!("{user}@127.0.0.1:{}/{name}", home.display());
    for (i, proto) in [&[][..], &["-O"][..]].iter().enumerate() {
        let otp = s.key.next();
        let mut args = client_opts(s, &sshd);
        args.extend(proto.iter().map(|a| a.to_string()));
        args.extend(["-o".into(), "SendEnv=YUBIOTP".into()]);
        args.push(src.display().to_string());
        args.push(remote(&format!("scp{i}.bin")));
        let _lock = WrapperLock::take();
        let o = run_client("/usr/bin/scp", &args, &[("YUBIOTP", &otp)], b"");
        drop(_lock);
        assert!(
            o.status.success(),
            "scp {proto:?}: {}\n{}",
            show(&o),
            sshd.log()
        );
        assert_eq!(
            fs::read(s.user.home.join(format!("scp{i}.bin"))).unwrap(),
            data
        );
    }
    let back = s.dir.join("sftp-back.bin");
    sftp_get(s, &sshd, "scp0.bin", &back);
    assert_eq!(fs::read(&back).unwrap(), data);
    {
        let otp = s.key.next();
        let mut e = vec!["ssh".to_string()];
        e.extend(client_opts(s, &sshd));
        e.extend(["-o".into(), "SendEnv=YUBIOTP".into()]);
        let args = vec![
            "-a".to_string(),
            "-e".to_string(),
            e.join(" "),
            src.display().to_string(),
            remote("rsync.bin"),
        ];
        let _lock = WrapperLock::take();
        let o = run_client("/usr/bin/rsync", &args, &[("YUBIOTP", &otp)], b"");
        drop(_lock);
        assert!(o.status.success(), "rsync: {}\n{}", show(&o), sshd.log());
        assert_eq!(fs::read(s.user.home.join("rsync.bin")).unwrap(), data);
    }

    // Run by hand inside a session with forged variables: the verifier
    // still checks the real user, the shell is passwd's, not $SHELL.
    // (The outer OTP is used first, so it is the older one.)
    let outer = s.key.next();
    let inner = s.key.next();
    let cmd = format!(
        "USER=root LOGNAME=root SHELL=/bin/false HOME=/ SSH_CONNECTION='203.0.113.9 1 2 3' \
         YUBIOTP={inner} SSH_ORIGINAL_COMMAND='printf \"%s:%s\" \"$(id -un)\" \"$0\"' {}",
        h.helper.display()
    );
    let o = helper_ssh(s, &sshd, &[], Some(&cmd), Some(&outer));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{user}:/bin/sh"),
        "{}",
        show(&o)
    );

    // One OTP in 10 parallel sessions: exactly one runs.
    let otp = s.key.next();
    let outs: Vec<Output> = {
        let _lock = WrapperLock::take();
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let mut args = client_opts(s, &sshd);
                args.extend(["-o".into(), "SendEnv=YUBIOTP".into()]);
                args.push(format!("{user}@127.0.0.1"));
                args.push("printf ran".into());
                let otp = otp.clone();
                std::thread::spawn(move || run_client(SSH, &args, &[("YUBIOTP", &otp)], b""))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    };
    let ran = outs.iter().filter(|o| o.stdout == b"ran").count();
    assert_eq!(ran, 1, "{:#?}", outs.iter().map(show).collect::<Vec<_>>());
    for o in outs.iter().filter(|o| o.stdout != b"ran") {
        assert_eq!(o.status.code(), Some(77), "{}", show(o));
        assert!(o.stdout.is_empty());
    }

    // Interactive: the prompt on the remote terminal, echo off, the login
    // shell runs and its status comes back.
    // The shell's own prompt, then a command typed: echoed again (echo
    // restored), run by a login shell (argv[0] `-sh`).
    let otp = s.key.next();
    let (code, text) = interactive_or_hang_up(
        s,
        &sshd,
        Some(&format!("{otp}\n")),
        Some(("$ ", "echo in-as-$(id -un) $0; exit 5\n")),
    );
    assert_eq!(code, Some(5), "{text}\n{}", sshd.log());
    assert!(text.contains(&format!("in-as-{user} -sh")), "{text}");
    assert!(
        text.contains("echo in-as-$(id -un) $0"),
        "the typed command was echoed: {text}"
    );
    assert!(!text.contains(&otp), "the OTP was echoed: {text}");

    // Three wrong OTPs at the prompt: no shell, 77.
    let (code, text) = interactive(
        s,
        &sshd,
        "wrong-one\nwrong-two\nwrong-three\necho in-as-$(id -un)\n",
    );
    assert_eq!(code, Some(77), "{text}");
    assert!(!text.contains("in-as-"), "{text}");
    assert_eq!(text.matches("YubiKey OTP: ").count(), 3, "{text}");

    // No answer within the prompt's limit (3 s in the test build, 60 s
    // installed): no shell, 77, and one prompt only.
    let (code, text) = interactive(s, &sshd, "");
    assert_eq!(code, Some(77), "{text}");
    assert!(!text.contains("in-as-"), "{text}");
    assert_eq!(text.matches("YubiKey OTP: ").count(), 1, "{text}");

    // Ctrl-C at the prompt: no shell, 77 (the echo comes back with the
    // guard's drop on this path as on every other).
    // sshd starts the helper through `sh -c`, which gets the same SIGINT:
    // the session may end by that signal (255) instead of the helper's 77.
    let (code, text) = interactive(s, &sshd, "\u{3}echo in-as-$(id -un)\n");
    assert!(matches!(code, Some(77 | 255)), "{code:?} {text}");
    assert!(text.contains("not accepted"), "the helper answered: {text}");
    assert!(!text.contains("in-as-"), "{text}");

    // Hang-up at the prompt: the helper ends (no process of the user is
    // left), no shell ran.
    let uid = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&s.user.home).unwrap().uid()
    };
    let (_, text) = interactive_or_hang_up(s, &sshd, None, None);
    assert!(!text.contains("in-as-"), "{text}");
    let start = Instant::now();
    let users_procs = || {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                e.file_name().to_str()?.parse::<u32>().ok()?;
                use std::os::unix::fs::MetadataExt;
                (e.metadata().ok()?.uid() == uid).then(|| e.path())
            })
            .collect::<Vec<_>>()
    };
    while !users_procs().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the helper is still there after the hang-up: {:?}",
            users_procs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A control-character and 100 KiB command without an OTP: refused at
    // once, the command never ran (its log line is escaped and cut: the
    // unit tests of the line).
    let long = format!("printf ran; : \u{1b}[2J\r{}", "A".repeat(100 * 1024));
    let o = helper_ssh(s, &sshd, &[], Some(&long), None);
    assert_eq!(o.status.code(), Some(77), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));

    // Verifier down (not there): 69, never an exec.
    fs::rename(h.libexec.join("yubiotp-verify"), h.libexec.join("gone")).unwrap();
    let fresh = s.key.next();
    let o = helper_ssh(s, &sshd, &[], Some("printf ran"), Some(&fresh));
    assert_eq!(o.status.code(), Some(69), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    fs::rename(h.libexec.join("gone"), h.libexec.join("yubiotp-verify")).unwrap();
    drop(sshd);

    // `Subsystem sftp internal-sftp`: the helper runs the system
    // sftp-server in its place; the setup still passes the checker.
    let drop_in = format!("Subsystem sftp internal-sftp\n{}", h.drop_in(s));
    let sshd = s.start_with("yubiotp-ssh-helper.conf", &drop_in, stack);
    helper_check_is_clean(s);
    let back = s.dir.join("internal-sftp-back.bin");
    sftp_get(s, &sshd, "rsync.bin", &back);
    assert_eq!(fs::read(&back).unwrap(), fs::read(&src).unwrap());
}
