//! Name resolution inside the cloud and LDAP deadlines, end to end
//! through the real libpam: the driver runs in a private mount namespace (`unshare --mount`)
//! with its own /etc/hosts, /etc/resolv.conf and /etc/nsswitch.conf
//! (`hosts: files dns`) bind-mounted, so the machine's files are never
//! touched. The name server is a UDP socket on a private loopback address
//! (127.53.x.y:53) held by this test: one that never answers, or one that
//! answers every A query with 127.0.0.1.
//!
//! Needs root (bind mounts, port 53) and util-linux `unshare`; skipped
//! otherwise. No test asserts wall-clock time: the blackhole test checks
//! that the log says the resolver was stopped, and prints the elapsed time.

use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use yubiotp_core::Counter;
use yubiotp_tests::{Run, RunOpts, TestKey, World, code, is_root, write_mode};
use yubiotp_testsupport::slapd::{self, PEOPLE, Slapd, SlapdOptions};
use yubiotp_testsupport::{Behavior, Config, MockServer, TEST_KEY_B64, test_key};

/// The resolver helper built from the module's own code (the installed one
/// is /usr/libexec/yubiotp/yubiotp-resolve, which tests cannot rely on).
const HELPER: &str = env!("CARGO_BIN_EXE_yubiotp-test-resolve");

fn usable() -> bool {
    if !is_root() {
        eprintln!("SKIP: needs root (bind mounts in a private mount namespace, port 53)");
        return false;
    }
    let ok = std::process::Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: unshare --mount does not work here");
    }
    ok
}

/// A UDP socket on port 53 of a free private loopback address.
fn dns_socket() -> (UdpSocket, Ipv4Addr) {
    let base = u8::try_from(std::process::id() % 200).unwrap() + 1;
    for i in 1..=100u8 {
        let ip = Ipv4Addr::new(127, 53, base, i);
        if let Ok(s) = UdpSocket::bind((ip, 53)) {
            return (s, ip);
        }
    }
    panic!("no free 127.53.{base}.x:53");
}

/// A name server that reads nothing and never answers (queries just queue
/// up on the socket; the port is bound, so no ICMP unreachable either).
fn blackhole() -> (UdpSocket, Ipv4Addr) {
    dns_socket()
}

/// A name server answering every A query with 127.0.0.1 and every other
/// query with an empty NOERROR. Stops when dropped.
struct AnsweringDns {
    ip: Ipv4Addr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AnsweringDns {
    fn start() -> Self {
        let (sock, ip) = dns_socket();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            // Bounded: at most 10 minutes of 50 ms waits.
            for _ in 0..12_000 {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(answer) = dns_answer(&buf[..n]) {
                    let _ = sock.send_to(&answer, peer);
                }
            }
        });
        Self {
            ip,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for AnsweringDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The answer to one query: its header and question, plus an A record
/// 127.0.0.1 when it asks for A (additional records are dropped).
fn dns_answer(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut end = 12;
    while *q.get(end)? != 0 {
        end += 1 + usize::from(q[end]);
    }
    let qtype = u16::from_be_bytes([*q.get(end + 1)?, *q.get(end + 2)?]);
    let question_end = end + 5;
    q.get(..question_end)?;
    let is_a = qtype == 1;
    let mut r = Vec::new();
    r.extend_from_slice(&q[..2]);
    r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    r.extend_from_slice(&q[12..question_end]);
    if is_a {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(r)
}

struct Setup {
    w: World,
    alice: TestKey,
}

fn setup(url: &str, timeout: u32, resolver: &str) -> Setup {
    let mut w = World::new();
    w.add_user("alice", 2001);
    let alice = TestKey::new(1);
    w.write_authfile(&format!("alice:{}\n", alice.id));
    w.write_config(&format!(
        "mode = \"cloud\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n[cloud]\nid = 42\nkey = \"{TEST_KEY_B64}\"\nurls = [\"{url}\"]\ntimeout = {timeout}\nresolver = \"{resolver}\"\n"
    ));
    w.simple_service("");
    Setup { w, alice }
}

fn server() -> MockServer {
    MockServer::start(Config::new(Behavior::Ok).key(&test_key())).unwrap()
}

fn url(host: &str, m: &MockServer) -> String {
    format!("http://{host}:{}/wsapi/2.0/verify", m.port())
}

/// The system's nsswitch.conf with `hosts: files dns`.
fn nsswitch() -> String {
    let sys = fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let mut out: String = sys
        .lines()
        .filter(|l| !l.trim_start().starts_with("hosts:"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str("hosts: files dns\n");
    out
}

/// Runs alice's login with private /etc/hosts, resolv.conf (`nameserver`,
/// `options timeout:4 attempts:1`) and nsswitch.conf; prints the time taken.
fn auth_in_namespace(
    s: &mut Setup,
    hosts: &str,
    nameserver: Ipv4Addr,
    sigchld_ignore: bool,
) -> Run {
    let dir = s.w.dir.path();
    let files = [
        ("hosts", hosts.to_string(), "/etc/hosts"),
        (
            "resolv.conf",
            format!("nameserver {nameserver}\noptions timeout:4 attempts:1\n"),
            "/etc/resolv.conf",
        ),
        ("nsswitch.conf", nsswitch(), "/etc/nsswitch.conf"),
    ];
    let mut script = String::new();
    for (name, text, target) in &files {
        let p = dir.join(format!("net-{name}"));
        write_mode(&p, text.as_bytes(), 0o644);
        assert!(!p.display().to_string().contains(['\'', ' ']));
        script.push_str(&format!("mount --bind '{}' {target} && ", p.display()));
    }
    script.push_str("exec \"$@\"");
    let otp = s.alice.next();
    let started = Instant::now();
    let r = s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![otp.into()],
            wrap: ["unshare", "--mount", "sh", "-c", &script, "sh"]
                .iter()
                .map(ToString::to_string)
                .collect(),
            sigchld_ignore,
            ..RunOpts::default()
        },
    );
    eprintln!("login took {:?} (rc {:?})", started.elapsed(), r.rc.last());
    r
}

#[track_caller]
fn nothing_left(r: &Run) {
    assert_eq!(
        r.threads.0,
        r.threads.1,
        "no thread left in the host\n{}",
        r.everything()
    );
    assert_eq!(
        r.fds.0,
        r.fds.1,
        "no fd left in the host\n{}",
        r.everything()
    );
    assert_eq!(
        r.children,
        "none",
        "no child (zombie or running) left\n{}",
        r.everything()
    );
}

#[test]
fn a_name_server_that_never_answers_is_cut_off_at_the_deadline() {
    if !usable() {
        return;
    }
    let m = server();
    let (_dns, ip) = blackhole();
    let mut s = setup(&url("unanswered.example", &m), 1, HELPER);
    let r = auth_in_namespace(&mut s, "127.0.0.1 localhost\n", ip, false);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.log_lines()
            .iter()
            .any(|l| l.contains("unanswered.example")
                && l.contains("no answer within")
                && l.contains("resolving, lookup stopped")),
        "the log says the lookup was stopped at the deadline\n{}",
        r.everything()
    );
    assert!(m.requests().is_empty());
    nothing_left(&r);
}

#[test]
fn a_name_in_etc_hosts_needs_neither_dns_nor_the_helper() {
    if !usable() {
        return;
    }
    let m = server();
    let (_dns, ip) = blackhole();
    // A helper that does not exist: /etc/hosts alone must answer.
    let mut s = setup(
        &url("hosts-only.example", &m),
        3,
        "/nonexistent/yubiotp-resolve",
    );
    let r = auth_in_namespace(
        &mut s,
        "# private hosts\n127.0.0.1\tlocalhost\n127.0.0.1 other.example hosts-only.example # alias\n",
        ip,
        false,
    );
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(m.requests().len(), 1);
    nothing_left(&r);
}

#[test]
fn a_name_from_dns_resolves_through_the_helper_even_with_sigchld_ignored() {
    if !usable() {
        return;
    }
    let m = server();
    let dns = AnsweringDns::start();
    for sigchld_ignore in [false, true] {
        let mut s = setup(&url("dns-answered.example", &m), 5, HELPER);
        let r = auth_in_namespace(&mut s, "127.0.0.1 localhost\n", dns.ip, sigchld_ignore);
        assert_eq!(
            r.auth(),
            code::SUCCESS,
            "sigchld_ignore={sigchld_ignore}\n{}",
            r.everything()
        );
        nothing_left(&r);
    }
    assert_eq!(m.requests().len(), 2);
}

#[test]
fn a_missing_helper_is_unavailable_and_named_in_the_log() {
    if !usable() {
        return;
    }
    let m = server();
    let (_dns, ip) = blackhole();
    let missing = "/nonexistent/yubiotp-resolve";
    let mut s = setup(&url("not-in-hosts.example", &m), 3, missing);
    let r = auth_in_namespace(&mut s, "127.0.0.1 localhost\n", ip, false);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.log_lines()
            .iter()
            .any(|l| l.contains("not-in-hosts.example") && l.contains(missing)),
        "the log names the missing helper\n{}",
        r.everything()
    );
    assert!(m.requests().is_empty());
    nothing_left(&r);
}

#[test]
fn the_helper_prints_addresses_in_its_line_format() {
    // Runs the helper directly (no namespace): an IP literal needs no lookup.
    let out = std::process::Command::new(HELPER)
        .arg("127.0.0.1")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "addr 127.0.0.1\nend\n"
    );
    let out = std::process::Command::new(HELPER)
        .arg("bad name!")
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("error "));
    let _ = Path::new(HELPER);
}

/// Local mode with the key from a real slapd named `host` in `ldap.uri`
/// (the resolver helper set with `cloud.resolver`, which LDAP uses too).
fn ldap_setup(host: &str, dir: &Slapd, args: &str) -> Setup {
    let mut w = World::new();
    w.add_user("alice", 2001);
    let alice = TestKey::new(1);
    w.add_key(&alice, Counter::new(1, 0));
    let port = dir.uri().rsplit(':').next().unwrap().to_string();
    w.write_config(&format!(
        "mode = \"local\"\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n\
         [cloud]\nresolver = \"{HELPER}\"\n\
         [ldap]\nuri = \"ldap://{host}:{port}\"\nbasedn = \"{PEOPLE}\"\nuser_attr = \"uid\"\n\
         yubi_attr = \"yubiKeyId\"\nconnection_timeout = 2\n"
    ));
    w.simple_service(args);
    Setup { w, alice }
}

fn alice_in_ldap() -> Option<Slapd> {
    if !slapd::available() {
        eprintln!("SKIP: slapd not installed (scripts/setup.sh)");
        return None;
    }
    let id = TestKey::new(1).id;
    let ldif = format!(
        "dn: uid=alice,{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: yubiKeyUser\n\
         uid: alice\ncn: alice\nsn: alice\nyubiKeyId: {id}\n\n"
    );
    Some(Slapd::start_with(&ldif, SlapdOptions::default()).unwrap())
}

#[test]
fn an_ldap_server_name_from_dns_resolves_through_the_helper() {
    if !usable() {
        return;
    }
    let Some(dir) = alice_in_ldap() else { return };
    let dns = AnsweringDns::start();
    let mut s = ldap_setup("ldap-answered.example", &dir, "");
    let r = auth_in_namespace(&mut s, "127.0.0.1 localhost\n", dns.ip, false);
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    nothing_left(&r);
}

#[test]
fn an_ldap_server_name_nobody_answers_is_cut_off_and_unavailable_even_with_nullok() {
    if !usable() {
        return;
    }
    let Some(dir) = alice_in_ldap() else { return };
    let (_dns, ip) = blackhole();
    let mut s = ldap_setup("ldap-unanswered.example", &dir, "nullok");
    let r = auth_in_namespace(&mut s, "127.0.0.1 localhost\n", ip, false);
    r.assert_refused(code::AUTHINFO_UNAVAIL);
    assert!(
        r.log_lines()
            .iter()
            .any(|l| l.contains("ldap-unanswered.example") && l.contains("lookup stopped")),
        "the log says the lookup was stopped at the LDAP deadline\n{}",
        r.everything()
    );
    nothing_left(&r);
}
