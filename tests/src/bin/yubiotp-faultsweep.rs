//! `yubiotp-faultsweep`: a fault at every step of a login (issue 10, item 7).
//! Run it through `scripts/faultsweep.sh`; it is not part of CI.
//!
//! ```text
//! yubiotp-faultsweep [--mode local|hybrid|all] [--max-per-syscall N] [--only SYSCALL] [--verbose]
//! ```
//!
//! For each mode it builds a private world (as the e2e tests do), traces
//! one unfaulted login of the C driver with `strace -f -y`, and lists the
//! system calls made between `pam_start` and `pam_end` (the driver's
//! `--mark` calls delimit them). Then, for every occurrence N of every
//! syscall S in that window, and every errno S can really return (plus
//! SIGKILL for calls on the counter-state directory), it runs one login
//! with `strace -e inject=S:error=E:when=N` and checks:
//!
//! - the host never crashes: the driver exits 0 (or dies of our SIGKILL);
//! - never PAM_IGNORE; PAM_SUCCESS only when the login is exactly the
//!   unfaulted one (the counter advanced once, a replay is refused) and the
//!   faulted call is not one the decision rests on (a read, write, sync,
//!   rename or open of the module's config, keys, mapping or state; EINTR
//!   aside, which the standard library retries);
//! - afterwards the state parses and is the old or the new counter; a
//!   replay of the OTP is refused when it advanced (accepted once, then
//!   refused, when it did not); a fresh OTP is accepted.
//!
//! strace counts `when=N` per syscall and per thread, so the N-th call of a
//! module thread is faulted only when the main thread's N-th call of the
//! same syscall is inside the window too; the summary counts the calls
//! that could not be reached this way.
//!
//! Prints a summary and exits 1 on any violation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pam_yubiotp::store::CounterStore;
use yubiotp_core::Counter;
use yubiotp_tests::{RunOpts, TestKey, World, code, parse_run};
use yubiotp_testsupport::{Behavior, Config, MockServer, TEST_KEY_B64, test_key};

/// Syscalls that cannot fail or whose failure is not a fault a disk, a
/// network or the kernel produces (faulting `exit_group` just makes glibc
/// spin).
const CANNOT_FAIL: &[&str] = &[
    "exit",
    "exit_group",
    "rt_sigreturn",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getpgrp",
    "umask",
    "sched_yield",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "arch_prctl",
    "clock_gettime",
    "gettimeofday",
    "time",
    "uname",
];

/// Calls whose failure on the module's files (config, keys, mapping,
/// state) must never end in PAM_SUCCESS (EINTR aside: std retries it).
const DECISIVE: &[&str] = &[
    "read",
    "pread64",
    "readv",
    "write",
    "pwrite64",
    "writev",
    "fsync",
    "fdatasync",
    "rename",
    "renameat",
    "renameat2",
    "open",
    "openat",
    "openat2",
];

/// The errnos each syscall can really return (the first is the default).
fn errnos(name: &str) -> &'static [&'static str] {
    match name {
        "read" | "pread64" | "readv" | "preadv" | "preadv2" => &["EIO", "EINTR"],
        "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => &["EIO", "ENOSPC", "EINTR"],
        "open" | "openat" | "openat2" => &["EACCES", "ENOENT", "EMFILE"],
        "fsync" | "fdatasync" | "syncfs" => &["EIO"],
        "rename" | "renameat" | "renameat2" => &["EIO", "ENOSPC"],
        "connect" => &["ECONNREFUSED", "ETIMEDOUT", "EINTR"],
        "socket" => &["EMFILE"],
        "sendto" | "sendmsg" | "recvfrom" | "recvmsg" => &["ECONNRESET", "EINTR"],
        "poll" | "ppoll" | "epoll_wait" | "epoll_pwait" | "select" | "pselect6" | "nanosleep"
        | "clock_nanosleep" => &["EINTR"],
        "flock" => &["EINTR", "ENOLCK"],
        "mmap" | "mprotect" | "munmap" | "brk" | "mremap" | "madvise" => &["ENOMEM"],
        "clone" | "clone3" | "fork" | "vfork" => &["EAGAIN"],
        "getrandom" => &["EINTR"],
        "close" => &["EIO", "EINTR"],
        "fstat" | "getdents64" => &["EIO"],
        "newfstatat" | "statx" | "stat" | "lstat" | "access" | "faccessat" | "faccessat2"
        | "readlink" | "readlinkat" => &["ENOENT", "EACCES"],
        "unlink" | "unlinkat" => &["EIO", "EACCES"],
        "futex" => &["EINTR"],
        "setresuid" | "setresgid" | "setuid" | "setgid" | "setreuid" | "setregid" | "setfsuid"
        | "setfsgid" | "setgroups" => &["EPERM", "EAGAIN"],
        "getsockopt" | "setsockopt" | "getsockname" | "getpeername" => &["ENOBUFS"],
        _ => &["EINVAL"],
    }
}

#[derive(Debug, Clone)]
struct Call {
    pid: u32,
    name: String,
    /// 1-based ordinal of this syscall in its thread.
    nth: u32,
    args: String,
    in_window: bool,
}

/// Parses an `strace -f -o` trace into calls, marking those between the
/// driver's start and end marks (and every call of the other threads and
/// processes, which the login starts).
fn parse_trace(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut counts: BTreeMap<(u32, String), u32> = BTreeMap::new();
    let mut main: Option<u32> = None;
    let mut window = false;
    let mut ended = false;
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("<...") || rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let main_pid = *main.get_or_insert(pid);
        let n = counts.entry((pid, name.to_string())).or_insert(0);
        *n += 1;
        let is_mark_start = name == "access" && args.contains("/pam_driver-mark/start");
        let is_mark_end = name == "access" && args.contains("/pam_driver-mark/end");
        if pid == main_pid && is_mark_start {
            window = true;
        }
        let in_window = if pid == main_pid {
            window && !ended && !is_mark_start && !is_mark_end
        } else {
            true
        };
        if pid == main_pid && is_mark_end {
            ended = true;
        }
        calls.push(Call {
            pid,
            name: name.to_string(),
            nth: *n,
            args: args.chars().take(300).collect(),
            in_window,
        });
    }
    calls
}

/// One login's setup: a world with alice's key, in `mode`.
struct Scenario {
    w: World,
    key: TestKey,
    _server: Option<MockServer>,
}

impl Scenario {
    fn new(mode: &'static str) -> Self {
        let mut w = World::new();
        w.add_user("alice", 2001);
        let key = TestKey::new(1);
        w.add_key(&key, Counter::new(1, 0));
        w.write_authfile(&format!("alice:{}\n", key.id));
        let server = if mode == "hybrid" {
            let m = MockServer::start(Config::new(Behavior::Ok).key(&test_key())).unwrap();
            w.write_config(&format!(
                "mode = \"hybrid\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n[cloud]\nid = 42\nkey = \"{TEST_KEY_B64}\"\nurls = [\"{}\"]\ntimeout = 3\n[local]\nkeystore = \"@ETC@/keys\"\nstatedir = \"@STATE@\"\n",
                m.url()
            ));
            Some(m)
        } else {
            w.local_config();
            None
        };
        w.simple_service("");
        Self {
            w,
            key,
            _server: server,
        }
    }

    fn stored(&self) -> Result<Counter, String> {
        CounterStore::open(&self.w.state)
            .and_then(|s| s.read(&self.key.id))
            .map_err(|e| e.to_string())
    }

    fn opts(otp: &str, wrap: Vec<String>) -> RunOpts {
        RunOpts {
            answers: vec![otp.into()],
            confdir: true,
            wrap,
            ..RunOpts::default()
        }
    }

    /// Runs one login; `(exit status, parsed run)`, or `None` on a hang.
    fn run(
        &self,
        otp: &str,
        wrap: Vec<String>,
    ) -> Option<(std::process::ExitStatus, yubiotp_tests::Run)> {
        let mut cmd = self
            .w
            .command("yubiotp-test", "alice", &Self::opts(otp, wrap));
        cmd.arg("--mark");
        let mut child = cmd.spawn().expect("spawn pam_driver");
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let (o, e) = (t_out.join().unwrap(), t_err.join().unwrap());
        status.map(|s| (s, parse_run(&o, &e, s)))
    }

    fn plain_auth(&self, otp: &str) -> Option<i32> {
        self.run(otp, Vec::new()).and_then(|(_, r)| {
            r.rc.iter()
                .rev()
                .find(|(op, _)| op == "authenticate")
                .map(|(_, c)| *c)
        })
    }
}

#[derive(Default)]
struct Tally {
    tried: usize,
    classes: BTreeMap<String, usize>,
    per_syscall: BTreeMap<String, (usize, usize)>,
    violations: Vec<String>,
    unreachable: usize,
}

fn strace_wrap(args: &[String]) -> Vec<String> {
    let mut v = vec!["strace".to_string(), "-f".into(), "-qq".into()];
    v.extend_from_slice(args);
    v
}

fn sweep(mode: &'static str, max_n: u32, only: Option<&str>, verbose: bool, tally: &mut Tally) {
    let mut s = Scenario::new(mode);
    let etc_dir = s.w.etc.display().to_string();
    let state_dir = s.w.state.display().to_string();
    // The unfaulted login, traced.
    let trace = s.w.dir.path().join("baseline.trace");
    let otp = s.key.next();
    let (st, r) = s
        .run(
            &otp,
            strace_wrap(&[
                "-y".into(),
                "-s".into(),
                "64".into(),
                "-o".into(),
                trace.display().to_string(),
            ]),
        )
        .expect("baseline login hung");
    assert!(st.success(), "baseline: {st:?}\n{}", r.everything());
    assert_eq!(
        r.auth(),
        code::SUCCESS,
        "baseline login: {}",
        r.everything()
    );
    assert_eq!(s.stored().unwrap(), s.key.counter, "baseline committed");
    let calls = parse_trace(&fs::read_to_string(&trace).unwrap());
    let main_pid = calls.first().map(|c| c.pid).unwrap_or_default();
    let in_window = calls.iter().filter(|c| c.in_window).count();
    eprintln!(
        "{mode}: baseline trace: {} calls, {in_window} between pam_start and pam_end, {} threads/processes",
        calls.len(),
        calls
            .iter()
            .map(|c| c.pid)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    // Group the calls that `when=N` hits together: the N-th of S in every thread.
    let mut groups: BTreeMap<(String, u32), Vec<&Call>> = BTreeMap::new();
    for c in &calls {
        groups.entry((c.name.clone(), c.nth)).or_default().push(c);
    }
    let mut targets: Vec<(String, u32, Vec<&Call>)> = Vec::new();
    for ((name, nth), group) in groups {
        if CANNOT_FAIL.contains(&name.as_str()) || only.is_some_and(|o| o != name) {
            continue;
        }
        if !group.iter().any(|c| c.in_window) {
            continue;
        }
        let main_call = group.iter().find(|c| c.pid == main_pid);
        let harness = |c: &Call| {
            (c.name == "write" || c.name == "writev")
                && (c.args.starts_with("1<") || c.args.starts_with("2<"))
        };
        if main_call.is_some_and(|c| !c.in_window || harness(c)) {
            tally.unreachable += group
                .iter()
                .filter(|c| c.in_window && c.pid != main_pid)
                .count();
            continue;
        }
        targets.push((name, nth, group));
    }
    // Bound the occurrences per syscall.
    let mut per_name: BTreeMap<String, Vec<(u32, Vec<&Call>)>> = BTreeMap::new();
    for (name, nth, group) in targets {
        per_name.entry(name).or_default().push((nth, group));
    }
    for (name, list) in per_name {
        let step = list.len().div_ceil(max_n as usize).max(1);
        for (nth, group) in list.into_iter().step_by(step) {
            let on_state = group.iter().any(|c| c.args.contains(&state_dir));
            // The calls the decision rests on: reading, writing, syncing,
            // renaming or opening the module's own files.
            let decisive = DECISIVE.contains(&name.as_str())
                && group
                    .iter()
                    .any(|c| c.args.contains(&etc_dir) || c.args.contains(&state_dir));
            let mut faults: Vec<String> =
                errnos(&name).iter().map(|e| format!("error={e}")).collect();
            if on_state {
                faults.push("signal=SIGKILL".into());
            }
            for fault in faults {
                let what = format!(
                    "{mode} {name}#{nth} {fault} [{}]",
                    group.first().map(|c| c.args.as_str()).unwrap_or_default()
                );
                let class = one_fault(&mut s, &name, nth, &fault, decisive, &what, tally);
                if verbose {
                    eprintln!("{class}: {what}");
                }
                tally.tried += 1;
                let e = tally
                    .per_syscall
                    .entry(format!("{mode} {name}"))
                    .or_default();
                e.0 += 1;
                e.1 = e.1.max(nth as usize);
                *tally.classes.entry(format!("{mode}: {class}")).or_default() += 1;
            }
        }
    }
}

/// Runs one faulted login and its after-checks; returns the outcome class.
fn one_fault(
    s: &mut Scenario,
    name: &str,
    nth: u32,
    fault: &str,
    decisive: bool,
    what: &str,
    tally: &mut Tally,
) -> String {
    let before = match s.stored() {
        Ok(c) => c,
        Err(e) => {
            tally
                .violations
                .push(format!("{what}: state unreadable before the run: {e}"));
            return "broken".into();
        }
    };
    let otp = s.key.next();
    let new = s.key.counter;
    let wrap = strace_wrap(&[
        "-o".into(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={name}"),
        "-e".into(),
        format!("inject={name}:{fault}:when={nth}"),
    ]);
    let mut violation = |msg: String| tally.violations.push(format!("{what}: {msg}"));
    let Some((status, run)) = s.run(&otp, wrap) else {
        violation("the login hung (killed after 60 s)".into());
        return "hang".into();
    };
    let killed_by_us = fault == "signal=SIGKILL" && status.signal() == Some(9);
    let auth = run
        .rc
        .iter()
        .rev()
        .find(|(op, _)| op == "authenticate")
        .map(|(_, c)| *c);
    let start = run.rc.iter().find(|(op, _)| op == "start").map(|(_, c)| *c);
    let class = if killed_by_us {
        "killed".to_string()
    } else if !status.success() {
        violation(format!("host crashed: {status:?}\n{}", run.everything()));
        "crash".to_string()
    } else {
        match (start, auth) {
            (Some(c), None) if c != code::SUCCESS => format!("pam_start failed ({c})"),
            (_, Some(code::SUCCESS)) => "success (unaffected)".to_string(),
            (_, Some(code::IGNORE)) => {
                violation("PAM_IGNORE".into());
                "ignore".to_string()
            }
            (_, Some(c)) => format!("refused ({c})"),
            _ => {
                violation(format!("no result\n{}", run.everything()));
                "no result".to_string()
            }
        }
    };
    let after = match s.stored() {
        Ok(c) if c == before || c == new => c,
        Ok(c) => {
            violation(format!(
                "state is {c}, neither the old {before} nor the new {new}"
            ));
            return class;
        }
        Err(e) => {
            violation(format!("state unreadable after the fault: {e}"));
            return class;
        }
    };
    if auth == Some(code::SUCCESS) {
        if after != new {
            violation(format!("PAM_SUCCESS but the counter is still {after}"));
        }
        let retried = fault == "error=EINTR" || name == "close";
        if decisive && !retried {
            violation("PAM_SUCCESS despite a fault on a read/write/sync/rename/open of the module's files".into());
        }
    }
    // Replay: refused once committed; otherwise the OTP was never used.
    if after == new {
        match s.plain_auth(&otp) {
            Some(c) if c != code::SUCCESS && c != code::IGNORE => {}
            other => violation(format!("replay after the fault: {other:?}")),
        }
    } else {
        if s.plain_auth(&otp) != Some(code::SUCCESS) {
            violation("the unused OTP is not accepted after the fault".into());
        }
        match s.plain_auth(&otp) {
            Some(c) if c != code::SUCCESS && c != code::IGNORE => {}
            other => violation(format!("replay: {other:?}")),
        }
    }
    let fresh = s.key.next();
    match s.plain_auth(&fresh) {
        Some(code::SUCCESS) => {}
        other => violation(format!("a fresh OTP after the fault: {other:?}")),
    }
    class
}

/// Un-escapes the first quoted string of an strace argument list.
fn strace_string(args: &str) -> Option<Vec<u8>> {
    let start = args.find('"')?;
    let mut out = Vec::new();
    let mut it = args[start + 1..].bytes().peekable();
    while let Some(b) = it.next() {
        match b {
            b'"' => return Some(out),
            b'\\' => match it.next()? {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'x' => {
                    let h: String = [it.next()?, it.next()?]
                        .iter()
                        .map(|c| *c as char)
                        .collect();
                    out.push(u8::from_str_radix(&h, 16).ok()?);
                }
                d @ b'0'..=b'7' => {
                    let mut v = u32::from(d - b'0');
                    for _ in 0..2 {
                        match it.peek() {
                            Some(c @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(c - b'0');
                                it.next();
                            }
                            _ => break,
                        }
                    }
                    out.push(u8::try_from(v).ok()?);
                }
                other => out.push(other),
            },
            other => out.push(other),
        }
    }
    None
}

/// The path strace `-y` shows for the first fd argument (`5</path>`).
fn fd_path(args: &str) -> Option<&str> {
    let a = args.split_once('<')?.1;
    Some(a.split_once('>')?.0)
}

/// What the state file holds after a power loss right after the last call
/// of `calls`: file data survives only once `fsync`ed, a rename only once
/// its directory is `fsync`ed. `None`: no state file.
fn durable_state(calls: &[Call], state_dir: &str, state_file: &str, old: &[u8]) -> Option<Vec<u8>> {
    struct Rec {
        data: Vec<u8>,
        durable: Vec<u8>,
    }
    let mut recs = vec![Rec {
        data: old.to_vec(),
        durable: old.to_vec(),
    }];
    let mut volatile: BTreeMap<String, usize> = BTreeMap::new();
    volatile.insert(state_file.to_string(), 0);
    let mut durable = volatile.clone();
    for c in calls {
        let ok = c.args.contains(") = ") && !c.args.contains(") = -1") && !c.args.contains("= ?");
        if !ok {
            continue;
        }
        match c.name.as_str() {
            "write" | "pwrite64" => {
                let Some(path) = fd_path(&c.args).filter(|p| p.starts_with(state_dir)) else {
                    continue;
                };
                let data = strace_string(&c.args).unwrap_or_default();
                let idx = *volatile.entry(path.to_string()).or_insert_with(|| {
                    recs.push(Rec {
                        data: Vec::new(),
                        durable: Vec::new(),
                    });
                    recs.len() - 1
                });
                recs[idx].data.extend_from_slice(&data);
            }
            "fsync" | "fdatasync" => {
                let Some(path) = fd_path(&c.args) else {
                    continue;
                };
                if path == state_dir {
                    durable = volatile.clone();
                } else if let Some(&idx) = volatile.get(path) {
                    recs[idx].durable = recs[idx].data.clone();
                }
            }
            "rename" | "renameat" | "renameat2" => {
                let mut quoted = c.args.split('"').skip(1).step_by(2);
                if let (Some(from), Some(to)) = (quoted.next(), quoted.next())
                    && let Some(idx) = volatile.remove(from)
                {
                    volatile.insert(to.to_string(), idx);
                }
            }
            _ => {}
        }
    }
    durable
        .get(state_file)
        .map(|&idx| recs[idx].durable.clone())
}

/// Power loss, simulated: the login is SIGKILLed at each call on the state
/// directory and right after `pam_end`, then everything not yet `fsync`ed
/// is discarded (the state file is set to what a disk would hold), and the
/// "rebooted" host is checked: an OTP accepted before the power loss is
/// never accepted again, and an unreadable state fails closed.
fn power_loss(mode: &'static str, verbose: bool, tally: &mut Tally) {
    let mut s = Scenario::new(mode);
    let state_dir = s.w.state.display().to_string();
    let store = CounterStore::open(&s.w.state).unwrap();
    let state_file = store.path_of(&s.key.id).display().to_string();
    let trace = s.w.dir.path().join("power.trace");
    let trace_arg = trace.display().to_string();
    let traced = |extra: &[String]| {
        let mut v = vec![
            "-y".to_string(),
            "-s".into(),
            "256".into(),
            "-o".into(),
            trace_arg.clone(),
        ];
        v.extend_from_slice(extra);
        strace_wrap(&v)
    };
    let otp = s.key.next();
    let (_, r) = s.run(&otp, traced(&[])).expect("baseline hung");
    assert_eq!(
        r.auth(),
        code::SUCCESS,
        "power-loss baseline: {}",
        r.everything()
    );
    let calls = parse_trace(&fs::read_to_string(&trace).unwrap());
    let main_pid = calls.first().map(|c| c.pid).unwrap_or_default();
    // The durability order, read off the unfaulted trace: once PAM_SUCCESS
    // is reported, a power loss must not bring the old counter back.
    let reported = calls
        .iter()
        .position(|c| {
            c.name == "write" && c.args.starts_with("1<") && c.args.contains("rc authenticate")
        })
        .expect("the result write");
    let at_success = durable_state(&calls[..=reported], &state_dir, &state_file, b"");
    let expect = pam_yubiotp::store::counters::format_state(s.key.counter).into_bytes();
    if at_success.as_deref() != Some(expect.as_slice()) {
        tally.violations.push(format!(
            "{mode} power loss: when PAM_SUCCESS is reported the durable state is {at_success:?}, not the new counter"
        ));
    }
    let points: Vec<(String, u32)> = calls
        .iter()
        .filter(|c| c.pid == main_pid && c.in_window && c.args.contains(&state_dir))
        .map(|c| (c.name.clone(), c.nth))
        .chain(
            calls
                .iter()
                .filter(|c| c.name == "access" && c.args.contains("/pam_driver-mark/end"))
                .map(|c| (c.name.clone(), c.nth)),
        )
        .collect();
    for (name, nth) in points {
        let old = fs::read(&state_file).unwrap();
        let otp = s.key.next();
        let what = format!("{mode} power loss at {name}#{nth}");
        let Some((status, run)) = s.run(
            &otp,
            traced(&[
                "-e".into(),
                format!("inject={name}:signal=SIGKILL:when={nth}"),
            ]),
        ) else {
            tally.violations.push(format!("{what}: hung"));
            continue;
        };
        tally.tried += 1;
        let accepted = run.auths() == vec![code::SUCCESS];
        let calls = parse_trace(&fs::read_to_string(&trace).unwrap());
        let disk = durable_state(&calls, &state_dir, &state_file, &old);
        // The "reboot": the state file is what the disk kept.
        match &disk {
            Some(bytes) => yubiotp_tests::write_mode(Path::new(&state_file), bytes, 0o600),
            None => {
                let _ = fs::remove_file(&state_file);
            }
        }
        let class = match (status.signal(), accepted) {
            (Some(9), true) => "power loss after PAM_SUCCESS",
            (Some(9), false) => "power loss before a result",
            _ => {
                tally
                    .violations
                    .push(format!("{what}: not killed: {status:?}"));
                "not killed"
            }
        };
        let replay = s.plain_auth(&otp);
        if accepted && replay.is_none_or(|c| c == code::SUCCESS || c == code::IGNORE) {
            tally.violations.push(format!("{what}: the OTP accepted before the power loss is accepted again after it ({replay:?}); disk {disk:?}"));
        }
        let committed = disk.as_deref()
            == Some(pam_yubiotp::store::counters::format_state(s.key.counter).as_bytes());
        if !accepted && committed && replay.is_none_or(|c| c == code::SUCCESS || c == code::IGNORE)
        {
            tally.violations.push(format!(
                "{what}: the committed OTP is accepted again after the reboot"
            ));
        }
        if !accepted
            && !committed
            && replay.is_none_or(|c| c != code::SUCCESS && c != code::AUTHINFO_UNAVAIL)
        {
            tally.violations.push(format!(
                "{what}: after the reboot the unused OTP gave {replay:?}"
            ));
        }
        if verbose {
            eprintln!(
                "{class}: {what}: disk {:?} replay {replay:?}",
                disk.as_deref().map(String::from_utf8_lossy)
            );
        }
        *tally.classes.entry(format!("{mode}: {class}")).or_default() += 1;
        // An admin repairs a state the power loss left unreadable.
        if s.stored().is_err() {
            store.set(&s.key.id, s.key.counter, true).unwrap();
        }
        let fresh = s.key.next();
        if s.plain_auth(&fresh) != Some(code::SUCCESS) {
            tally
                .violations
                .push(format!("{what}: a fresh OTP after the reboot is refused"));
        }
    }
}

fn main() -> ExitCode {
    let mut modes = vec!["local", "hybrid"];
    let mut max_n = 1000u32;
    let mut only: Option<String> = None;
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mode" => match args.next().as_deref() {
                Some("local") => modes = vec!["local"],
                Some("hybrid") => modes = vec!["hybrid"],
                Some("all") => {}
                other => panic!("--mode local|hybrid|all, not {other:?}"),
            },
            "--max-per-syscall" => max_n = args.next().and_then(|v| v.parse().ok()).expect("N"),
            "--only" => only = args.next(),
            "--verbose" => verbose = true,
            other => panic!("unknown argument {other}"),
        }
    }
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("faultsweep: strace is not installed (scripts/setup.sh installs it)");
        return ExitCode::from(2);
    }
    let mut tally = Tally::default();
    let started = Instant::now();
    for mode in modes {
        sweep(mode, max_n, only.as_deref(), verbose, &mut tally);
        if only.is_none() {
            power_loss(mode, verbose, &mut tally);
        }
    }
    println!(
        "== fault sweep: {} faulted logins in {:?}",
        tally.tried,
        started.elapsed()
    );
    println!("-- syscall: faults tried (occurrences up to N)");
    for (k, (n, max)) in &tally.per_syscall {
        println!("   {k}: {n} (N<={max})");
    }
    println!("-- outcomes");
    for (k, n) in &tally.classes {
        println!("   {k}: {n}");
    }
    println!(
        "-- calls of module threads not reachable by when=N: {}",
        tally.unreachable
    );
    println!("-- violations: {}", tally.violations.len());
    for v in &tally.violations {
        println!("   VIOLATION {v}");
    }
    if tally.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
