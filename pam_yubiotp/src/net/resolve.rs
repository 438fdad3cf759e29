//! Host name resolution that ends at the cloud deadline (SPEC: the timeout
//! covers name resolution, connection, TLS and the answer).
//!
//! In order:
//! 1. an IP literal is used as it is;
//! 2. `/etc/hosts`, read by us (root-owned, not writable by group/other,
//!    at most 1 MiB, no symlink), parsed strictly: every line whose first
//!    field is an IP address and whose name or alias matches (ASCII
//!    case-insensitive) contributes its address, in file order;
//! 3. otherwise the resolver helper, `/usr/libexec/yubiotp/yubiotp-resolve`
//!    (`cloud.resolver` in the root-owned config file can point elsewhere):
//!    a tiny program that calls `getaddrinfo` (so nsswitch, DNS, mDNS, LDAP
//!    hosts... all apply) for the one name in its argv and prints the
//!    addresses. The module starts it with an empty environment and reads
//!    its stdout without blocking from the transport's poll loop; at the
//!    deadline (or when the first server has answered) the helper is
//!    killed and reaped ([`crate::child`]). A missing helper makes names
//!    not in `/etc/hosts` fail ("no definitive answer", so
//!    PAM_AUTHINFO_UNAVAIL), naming the helper in the log.
//!
//! Helper output, one item a line, nothing else: `addr <ip>` (at most 64),
//! then `end`; or a single `error <message>` (printable ASCII, ≤ 120
//! characters). Anything else is refused as malformed.
//!
//! # Why a helper process
//!
//! `getaddrinfo` cannot be interrupted, and a thread running it cannot be
//! cancelled; before this, resolution ran in scoped threads joined before
//! returning, so a DNS server that never answers delayed the login by the
//! resolver's own timeout (5 s × attempts by default), whatever `timeout`
//! said. The options compared:
//!
//! | option | honours nsswitch | stops at the deadline | cost |
//! |---|---|---|---|
//! | `getaddrinfo_a` (glibc) | yes | the caller stops waiting, but glibc's worker thread runs on and outlives the call (and the module, which libpam may unload) | glibc only |
//! | hickory-resolver | no (DNS only, own resolv.conf parsing) | yes | a large dependency and an async runtime in the host process |
//! | systemd-resolved varlink | its own nsswitch equivalent | yes | only where resolved runs |
//! | our own UDP DNS on the poll loop | no (no mDNS, LDAP or NIS hosts) | yes | a DNS client to maintain |
//! | fork+exec helper (this) | yes | yes: kill + reap, nothing left | one exec (≈ 1 ms), only for names not in `/etc/hosts` |
//!
//! The helper wins: same answers as every other program on the host, and a
//! process can be killed where a thread cannot.

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::Child;
use crate::fs_policy::{self, FilePolicy, Owner};

/// Where the helper is installed (scripts/install.sh, the .deb).
pub const DEFAULT_HELPER: &str = "/usr/libexec/yubiotp/yubiotp-resolve";
/// The hosts file read directly.
pub const HOSTS_FILE: &str = "/etc/hosts";
/// Most addresses taken from one answer.
pub const MAX_ADDRS: usize = 64;
/// Largest helper output accepted.
const MAX_OUTPUT: usize = 8 << 10;
/// Longest error message passed on from the helper.
const MAX_MESSAGE: usize = 120;
/// The policy for /etc/hosts: world-readable system configuration.
const HOSTS_POLICY: FilePolicy = FilePolicy {
    owner: Owner::Root,
    forbidden_mode: 0o022,
    max_size: 1 << 20,
};

/// A result: addresses (port 0; the caller sets it) or why not.
pub type Answer = Result<Vec<SocketAddr>, String>;

/// A DNS name the helper will look up: 1 to 253 bytes of ASCII letters,
/// digits, `-`, `_` and `.` (no option-like leading `-`).
#[must_use]
pub fn valid_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The addresses `/etc/hosts` text gives `name`: every line (comments
/// after `#` removed) whose first field parses as an IP address and whose
/// other fields include `name`, ASCII case-insensitively; duplicates
/// dropped, file order kept, at most [`MAX_ADDRS`]. Lines with an
/// unparsable address (e.g. `fe80::1%eth0`) are skipped, as glibc does.
#[must_use]
pub fn parse_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    let mut out: Vec<IpAddr> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_ascii_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if fields.any(|f| f.eq_ignore_ascii_case(name)) && !out.contains(&ip) {
            out.push(ip);
            if out.len() >= MAX_ADDRS {
                break;
            }
        }
    }
    out
}

/// `name` from the hosts file at `path`; `None` when it is not there, or
/// the file is missing, untrusted or not UTF-8 (then the helper asks
/// `getaddrinfo`, which reads it anyway).
#[must_use]
pub fn hosts_lookup(path: &Path, name: &str) -> Option<Vec<IpAddr>> {
    let bytes = fs_policy::read_checked(path, &HOSTS_POLICY).ok()?;
    let text = core::str::from_utf8(&bytes).ok()?;
    Some(parse_hosts(text, name)).filter(|a| !a.is_empty())
}

/// The helper's output for a `getaddrinfo` result.
#[must_use]
pub fn format_output(res: &Result<Vec<IpAddr>, String>) -> String {
    match res {
        Ok(addrs) => {
            let mut s = String::new();
            for a in addrs.iter().take(MAX_ADDRS) {
                s.push_str(&format!("addr {a}\n"));
            }
            s.push_str("end\n");
            s
        }
        Err(e) => format!("error {}\n", clean_message(e)),
    }
}

fn clean_message(e: &str) -> String {
    e.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(MAX_MESSAGE)
        .collect()
}

/// Parses the helper's output strictly (see the module docs).
///
/// # Errors
/// The helper's own error message, or "malformed" for anything else.
pub fn parse_output(out: &[u8]) -> Result<Vec<IpAddr>, String> {
    let malformed = || "resolver helper: malformed output".to_string();
    let text = core::str::from_utf8(out).map_err(|_| malformed())?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(malformed());
    };
    let mut addrs = Vec::new();
    let mut ended = false;
    for line in body.split('\n') {
        if ended {
            return Err(malformed());
        }
        if line == "end" {
            ended = true;
        } else if let Some(a) = line.strip_prefix("addr ") {
            let ip = a.parse::<IpAddr>().map_err(|_| malformed())?;
            if addrs.len() >= MAX_ADDRS {
                return Err(malformed());
            }
            addrs.push(ip);
        } else if let Some(msg) = line.strip_prefix("error ") {
            let clean =
                msg.len() <= MAX_MESSAGE && msg.chars().all(|c| c == ' ' || c.is_ascii_graphic());
            if addrs.is_empty() && !body.contains('\n') && clean {
                return Err(msg.to_string());
            }
            return Err(malformed());
        } else {
            return Err(malformed());
        }
    }
    if ended { Ok(addrs) } else { Err(malformed()) }
}

/// The resolver helper's `main`: one name in argv, the answer on stdout.
/// Exits 0 with addresses, 1 with an error line, 2 on bad usage.
#[must_use]
pub fn helper_main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.as_slice() {
        [name] if valid_name(name) => match (name.as_str(), 0u16).to_socket_addrs() {
            Ok(it) => {
                let mut v: Vec<IpAddr> = Vec::new();
                for a in it {
                    if !v.contains(&a.ip()) {
                        v.push(a.ip());
                    }
                }
                if v.is_empty() {
                    Err("no address".to_string())
                } else {
                    Ok(v)
                }
            }
            Err(e) => Err(e.to_string()),
        },
        [_] => Err("invalid host name".to_string()),
        _ => Err("usage: yubiotp-resolve NAME".to_string()),
    };
    let code = match (&res, args.len()) {
        (_, n) if n != 1 => 2,
        (Ok(_), _) => 0,
        (Err(_), _) => 1,
    };
    let text = format_output(&res);
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
        return std::process::ExitCode::from(3);
    }
    std::process::ExitCode::from(code)
}

/// The lookups of one call, each keyed by host name. Answers come out of
/// [`Lookups::try_next`]; dropping the set kills and reaps every helper
/// still running (this is how the deadline stops them).
#[derive(Debug)]
pub struct Lookups {
    helper: PathBuf,
    hosts: PathBuf,
    running: Vec<(String, Child)>,
    ready: VecDeque<(String, Answer)>,
}

impl Lookups {
    /// No lookup yet; names not in `/etc/hosts` will be asked of `helper`.
    #[must_use]
    pub fn new(helper: &Path) -> Self {
        Self::with_hosts(helper, Path::new(HOSTS_FILE))
    }

    /// The same with another hosts file (tests).
    #[must_use]
    pub fn with_hosts(helper: &Path, hosts: &Path) -> Self {
        Self {
            helper: helper.to_path_buf(),
            hosts: hosts.to_path_buf(),
            running: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    /// Starts resolving `host`: answered at once from an IP literal or
    /// the hosts file, else by starting the helper.
    pub fn start(&mut self, host: &str) {
        let answer = |ips: Vec<IpAddr>| ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.ready
                .push_back((host.to_string(), Ok(answer(vec![ip]))));
            return;
        }
        if let Some(ips) = hosts_lookup(&self.hosts, host) {
            self.ready.push_back((host.to_string(), Ok(answer(ips))));
            return;
        }
        if !valid_name(host) {
            self.ready
                .push_back((host.to_string(), Err("invalid host name".into())));
            return;
        }
        match Child::spawn(&self.helper, &[host], None, MAX_OUTPUT) {
            Ok(c) => self.running.push((host.to_string(), c)),
            Err(e) => {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "not found".to_string()
                } else {
                    e.to_string()
                };
                self.ready.push_back((
                    host.to_string(),
                    Err(format!(
                        "not in {}, and the resolver helper {} cannot be started ({why})",
                        self.hosts.display(),
                        self.helper.display()
                    )),
                ));
            }
        }
    }

    /// True while a helper is running.
    #[must_use]
    pub fn pending(&self) -> bool {
        !self.running.is_empty()
    }

    /// The next answer, if one is in; never blocks.
    pub fn try_next(&mut self) -> Option<(String, Answer)> {
        if let Some(r) = self.ready.pop_front() {
            return Some(r);
        }
        let done = self.running.iter_mut().position(|(_, c)| c.pump())?;
        let (host, child) = self.running.swap_remove(done);
        // Output complete: the helper is exiting; reap it.
        let f = child.finish(Duration::from_millis(200));
        let res = if f.overflow {
            Err("resolver helper: malformed output".to_string())
        } else {
            parse_output(&f.stdout)
        };
        let res = res.and_then(|ips| {
            if ips.is_empty() {
                Err("no address".to_string())
            } else {
                Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
            }
        });
        Some((host, res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "\
# comment line
127.0.0.1\tlocalhost
::1 localhost ip6-localhost
10.0.0.5 api.example.org api # trailing comment
10.0.0.6 API.Example.org
10.0.0.5 api.example.org
bogus api.example.org
fe80::1%eth0 api.example.org
#10.0.0.9 api.example.org
10.0.0.7 notapi.example.org xapi.example.org
";

    #[test]
    fn hosts_lines_are_parsed_strictly() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_hosts(HOSTS, "api.example.org"),
            vec![ip("10.0.0.5"), ip("10.0.0.6")]
        );
        assert_eq!(parse_hosts(HOSTS, "api"), vec![ip("10.0.0.5")]);
        assert_eq!(
            parse_hosts(HOSTS, "api.example.org."),
            vec![ip("10.0.0.5"), ip("10.0.0.6")]
        );
        assert_eq!(
            parse_hosts(HOSTS, "localhost"),
            vec![ip("127.0.0.1"), ip("::1")]
        );
        assert!(parse_hosts(HOSTS, "example.org").is_empty());
        assert!(parse_hosts(HOSTS, "10.0.0.5").is_empty());
        assert!(parse_hosts(HOSTS, "bogus").is_empty());
        assert!(parse_hosts("", "x").is_empty());
        let many: String = (0..100).map(|i| format!("10.1.0.{i} m\n")).collect();
        assert_eq!(parse_hosts(&many, "m").len(), MAX_ADDRS);
    }

    #[test]
    fn the_hosts_file_must_be_trusted() {
        let dir = yubiotp_testsupport::tempdir();
        let p = dir.path().join("hosts");
        std::fs::write(&p, "192.0.2.1 h.example\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_eq!(
                hosts_lookup(&p, "h.example"),
                Some(vec!["192.0.2.1".parse().unwrap()])
            );
        }
        assert_eq!(hosts_lookup(&p, "other.example"), None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            hosts_lookup(&p, "h.example"),
            None,
            "world-writable: ignored"
        );
        assert_eq!(hosts_lookup(&dir.path().join("none"), "h.example"), None);
    }

    #[test]
    fn helper_output_round_trips_and_anything_else_is_refused() {
        let ips: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let text = format_output(&Ok(ips.clone()));
        assert_eq!(text, "addr 192.0.2.1\naddr 2001:db8::1\nend\n");
        assert_eq!(parse_output(text.as_bytes()), Ok(ips));
        assert_eq!(parse_output(b"end\n"), Ok(vec![]));
        let err = format_output(&Err("Name or\tservice not known\n".into()));
        assert_eq!(err, "error Name or service not known \n");
        assert_eq!(
            parse_output(err.as_bytes()),
            Err("Name or service not known ".into())
        );
        let malformed = Err("resolver helper: malformed output".to_string());
        for bad in [
            &b""[..],
            b"addr 192.0.2.1\n",
            b"addr 192.0.2.1\nend",
            b"end\naddr 192.0.2.1\n",
            b"end\nend\n",
            b"addr 192.0.2.1:80\nend\n",
            b"addr  192.0.2.1\nend\n",
            b"Addr 192.0.2.1\nend\n",
            b"addr 192.0.2.1\r\nend\n",
            b"\nend\n",
            b"addr 192.0.2.1\nerror x\n",
            b"error x\nend\n",
            b"error \x1b[31m\n",
            b"\xff\n",
        ] {
            assert_eq!(
                parse_output(bad),
                malformed,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let many: String = (0..=MAX_ADDRS)
            .map(|i| format!("addr 10.0.0.{i}\n"))
            .collect();
        assert_eq!(parse_output(format!("{many}end\n").as_bytes()), malformed);
    }

    #[test]
    fn names_are_checked_before_they_reach_the_helper() {
        assert!(valid_name("api.yubico.com"));
        assert!(valid_name("a_b-c.example."));
        for bad in ["", "-oProxy", "a b", "a\nb", "é.example", &"a".repeat(254)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn literals_and_hosts_need_no_helper_and_a_missing_helper_is_named() {
        let dir = yubiotp_testsupport::tempdir();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "192.0.2.7 listed.example\n").unwrap();
        let mut l = Lookups::with_hosts(Path::new("/nonexistent/yubiotp-resolve"), &hosts);
        l.start("192.0.2.1");
        l.start("unlisted.example");
        l.start("bad name");
        assert!(!l.pending());
        assert_eq!(
            l.try_next(),
            Some(("192.0.2.1".into(), Ok(vec!["192.0.2.1:0".parse().unwrap()])))
        );
        let (h, r) = l.try_next().unwrap();
        assert_eq!(h, "unlisted.example");
        let e = r.unwrap_err();
        assert!(
            e.contains("/nonexistent/yubiotp-resolve") && e.contains("not found"),
            "{e}"
        );
        assert_eq!(
            l.try_next(),
            Some(("bad name".into(), Err("invalid host name".into())))
        );
        assert_eq!(l.try_next(), None);
        if nix::unistd::geteuid().is_root() {
            l.start("listed.example");
            assert_eq!(
                l.try_next(),
                Some((
                    "listed.example".into(),
                    Ok(vec!["192.0.2.7:0".parse().unwrap()])
                ))
            );
        }
    }

    /// An executable shell script `name` in `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn a_helper_that_hangs_is_killed_when_the_lookups_are_dropped() {
        let dir = yubiotp_testsupport::tempdir();
        let script = script(dir.path(), "hang", "exec sleep 30");
        let mut l = Lookups::with_hosts(&script, &dir.path().join("no-hosts"));
        l.start("hang.example");
        assert!(l.pending());
        let pid = l.running.first().map(|(_, c)| c.id()).unwrap();
        assert_eq!(l.try_next(), None);
        drop(l);
        assert!(crate::child::reaped(pid), "killed and reaped");
    }

    #[test]
    fn a_helper_answer_is_read_from_its_stdout() {
        let dir = yubiotp_testsupport::tempdir();
        let script = script(dir.path(), "answer", "printf 'addr 192.0.2.9\\nend\\n'");
        let mut l = Lookups::with_hosts(&script, &dir.path().join("no-hosts"));
        l.start("dns.example");
        // Bounded: the script answers at once.
        let mut got = None;
        for _ in 0..2000 {
            got = l.try_next();
            if got.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            got,
            Some((
                "dns.example".into(),
                Ok(vec!["192.0.2.9:0".parse().unwrap()])
            ))
        );
        assert!(!l.pending());
    }
}
