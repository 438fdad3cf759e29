//! `yubiotp-soak`: many logins of mixed modes and outcomes against the
//! loopback validation servers, in long-running hosts (issue 10, item 8).
//! Run it through `scripts/soak.sh`; it is not part of CI.
//!
//! ```text
//! yubiotp-soak --ok-url URL --replayed-url URL [--minutes M] [--workers N]
//! ```
//!
//! Each worker is one C driver in `--serve` mode (one process doing
//! pam_start/pam_authenticate/pam_end cycles) fed a stream of logins:
//! local, cloud and hybrid (cloud up, and cloud down: the local fallback);
//! fresh, replayed and wrong OTPs, an unknown user, a keyless user under
//! `nullok`. Every result is compared with the one expected. Each host's
//! RSS, open fds and threads are read from /proc after a warm-up and at
//! the end: fds and threads must not grow, RSS by at most a small
//! tolerance. Exits 1 on any unexpected result or growth.
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
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use yubiotp_core::Counter;
use yubiotp_tests::{NSS_WRAPPER, TestKey, World, code, driver_path};
use yubiotp_testsupport::TEST_KEY_B64;

/// RSS growth allowed between the warm-up and the end, in KiB.
const RSS_TOLERANCE_KIB: u64 = 2048;
/// Logins each host does before its baseline is taken.
const WARMUP: u64 = 50;

/// One kind of login: service, which user, which OTP, the expected code.
#[derive(Clone, Copy, Debug)]
enum Case {
    LocalFresh,
    LocalReplay,
    LocalWrong,
    UnknownUser,
    NullokKeyless,
    CloudFresh,
    CloudReplayed,
    HybridFresh,
    HybridReplay,
    HybridDownFresh,
    HybridDownReplay,
}

const CASES: [Case; 11] = [
    Case::LocalFresh,
    Case::LocalReplay,
    Case::LocalWrong,
    Case::UnknownUser,
    Case::NullokKeyless,
    Case::CloudFresh,
    Case::CloudReplayed,
    Case::HybridFresh,
    Case::HybridReplay,
    Case::HybridDownFresh,
    Case::HybridDownReplay,
];

#[derive(Debug, Clone, Copy)]
struct Stats {
    rss_kib: u64,
    threads: u64,
    fds: u64,
}

fn stats(pid: u32) -> Stats {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Stats {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds: fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

struct WorkerResult {
    pid: u32,
    start: Stats,
    end: Stats,
    logins: u64,
    per_case: BTreeMap<String, u64>,
    unexpected: Vec<String>,
}

fn worker(w: &World, i: usize, mut key: TestKey, deadline: Instant) -> WorkerResult {
    let user = format!("soak{i}");
    let mut child = Command::new(driver_path())
        .args(["--serve", "--confdir"])
        .arg(&w.services)
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env("LD_PRELOAD", NSS_WRAPPER)
        .env("NSS_WRAPPER_PASSWD", w.dir.path().join("passwd"))
        .env("NSS_WRAPPER_GROUP", w.dir.path().join("group"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn pam_driver --serve");
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready "), "driver said {line:?}");
    let mut wrong = TestKey::new(200);
    wrong.id = key.id;
    let mut last_local = None::<String>;
    let mut last_hybrid = None::<String>;
    let mut last_down = None::<String>;
    let mut res = WorkerResult {
        pid,
        start: stats(pid),
        end: stats(pid),
        logins: 0,
        per_case: BTreeMap::new(),
        unexpected: Vec::new(),
    };
    let mut n = i; // workers start at different cases
    while Instant::now() < deadline {
        let case = CASES[n % CASES.len()];
        n += 1;
        let fresh = |k: &mut TestKey| {
            if k.counter.session() == 255 {
                k.counter = Counter::new(k.counter.use_counter() + 1, 0);
                k.otp_at(k.counter)
            } else {
                k.next()
            }
        };
        let (service, who, otp, expect) = match case {
            Case::LocalFresh => {
                let o = fresh(&mut key);
                last_local = Some(o.clone());
                ("soak-local", user.as_str(), Some(o), code::SUCCESS)
            }
            Case::LocalReplay => match &last_local {
                Some(o) => ("soak-local", user.as_str(), Some(o.clone()), code::AUTH_ERR),
                None => continue,
            },
            Case::LocalWrong => (
                "soak-local",
                user.as_str(),
                Some(wrong.next()),
                code::AUTH_ERR,
            ),
            Case::UnknownUser => (
                "soak-local",
                "nosuchuser",
                Some(fresh(&mut wrong)),
                code::USER_UNKNOWN,
            ),
            Case::NullokKeyless => ("soak-nullok", "keyless", None, code::SUCCESS),
            Case::CloudFresh => (
                "soak-cloud",
                user.as_str(),
                Some(fresh(&mut key)),
                code::SUCCESS,
            ),
            Case::CloudReplayed => (
                "soak-cloud-replayed",
                user.as_str(),
                Some(fresh(&mut key)),
                code::AUTH_ERR,
            ),
            Case::HybridFresh => {
                let o = fresh(&mut key);
                last_hybrid = Some(o.clone());
                ("soak-hybrid", user.as_str(), Some(o), code::SUCCESS)
            }
            Case::HybridReplay => match &last_hybrid {
                Some(o) => (
                    "soak-hybrid",
                    user.as_str(),
                    Some(o.clone()),
                    code::AUTH_ERR,
                ),
                None => continue,
            },
            Case::HybridDownFresh => {
                let o = fresh(&mut key);
                last_down = Some(o.clone());
                ("soak-hybrid-down", user.as_str(), Some(o), code::SUCCESS)
            }
            Case::HybridDownReplay => match &last_down {
                Some(o) => (
                    "soak-hybrid-down",
                    user.as_str(),
                    Some(o.clone()),
                    code::AUTH_ERR,
                ),
                None => continue,
            },
        };
        let answer = otp.as_deref().map_or("-".to_string(), hex);
        writeln!(input, "{service} {who} {answer}").unwrap();
        input.flush().unwrap();
        // Prompts and messages come first; the result line ends the login.
        let mut died = false;
        for _ in 0..16 {
            line.clear();
            if output.read_line(&mut line).unwrap_or(0) == 0 {
                died = true;
                break;
            }
            if line.starts_with("result ") || line.starts_with("error ") {
                break;
            }
        }
        if died {
            let status = child.wait();
            res.unexpected.push(format!(
                "{case:?}: the host died after {} logins: {status:?}",
                res.logins
            ));
            break;
        }
        let got = line
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|c| c.parse::<i32>().ok());
        if got != Some(expect) || line.contains(" start ") {
            res.unexpected
                .push(format!("{case:?}: expected {expect}, got {line:?}"));
        }
        *res.per_case.entry(format!("{case:?}")).or_default() += 1;
        res.logins += 1;
        if res.logins == WARMUP {
            res.start = stats(pid);
        }
    }
    res.end = stats(pid);
    drop(input);
    let _ = child.wait();
    res
}

fn main() -> ExitCode {
    let mut minutes: f64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    let mut workers = 20usize;
    let (mut ok_url, mut replayed_url) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minutes" => {
                minutes = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--minutes M")
            }
            "--workers" => {
                workers = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--workers N")
            }
            "--ok-url" => ok_url = args.next(),
            "--replayed-url" => replayed_url = args.next(),
            other => panic!("unknown argument {other}"),
        }
    }
    let ok_url = ok_url.expect("--ok-url URL (a ykval-mock)");
    let replayed_url =
        replayed_url.expect("--replayed-url URL (a ykval-mock --status REPLAYED_OTP)");
    let down_url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/wsapi/2.0/verify",
            l.local_addr().unwrap().port()
        )
    };

    let mut w = World::new();
    let mut keys = Vec::new();
    let mut mapping = String::new();
    for i in 0..workers {
        let name = format!("soak{i}");
        w.add_user(&name, 3000 + i as u32);
        let key = TestKey::new(u8::try_from(10 + i).expect("at most 245 workers"));
        w.add_key(&key, Counter::new(1, 0));
        mapping.push_str(&format!("{name}:{}\n", key.id));
        keys.push(key);
    }
    w.add_user("keyless", 2999);
    w.write_authfile(&mapping);
    let configs = [
        ("local", "local", None),
        ("cloud", "cloud", Some(&ok_url)),
        ("cloud-replayed", "cloud", Some(&replayed_url)),
        ("hybrid", "hybrid", Some(&ok_url)),
        ("hybrid-down", "hybrid", Some(&down_url)),
    ];
    for (name, mode, url) in configs {
        let cloud = url.map_or(String::new(), |u| {
            format!("[cloud]\nid = 42\nkey = \"{TEST_KEY_B64}\"\nurls = [\"{u}\"]\ntimeout = 3\n")
        });
        let path = w.etc.join(format!("{name}.toml"));
        let text = format!(
            "mode = \"{mode}\"\nauthfile = \"{}\"\n{cloud}[local]\nkeystore = \"{}\"\nstatedir = \"{}\"\n",
            w.authfile().display(),
            w.keystore().display(),
            w.state.display()
        );
        yubiotp_tests::write_mode(&path, text.as_bytes(), 0o600);
        w.service(
            &format!("soak-{name}"),
            &format!("auth required @MODULE@ config={}\n", path.display()),
        );
    }
    w.service(
        "soak-nullok",
        &format!(
            "auth required @MODULE@ config={} nullok\nauth required pam_permit.so\n",
            w.etc.join("local.toml").display()
        ),
    );

    println!(
        "== soak: {workers} long-running hosts for {minutes} min (local, cloud, hybrid; fresh, replayed, wrong, unknown user, nullok)"
    );
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let started = Instant::now();
    let results: Vec<WorkerResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let w = &w;
                scope.spawn(move || worker(w, i, key, deadline))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = 0;
    let mut unexpected = 0;
    let mut per_case: BTreeMap<String, u64> = BTreeMap::new();
    let mut growth = Vec::new();
    println!("-- host: logins, RSS KiB, fds, threads (after {WARMUP} logins -> end)");
    for r in &results {
        total += r.logins;
        unexpected += r.unexpected.len();
        for (k, v) in &r.per_case {
            *per_case.entry(k.clone()).or_default() += v;
        }
        println!(
            "   pid {}: {} logins, rss {} -> {}, fds {} -> {}, threads {} -> {}",
            r.pid,
            r.logins,
            r.start.rss_kib,
            r.end.rss_kib,
            r.start.fds,
            r.end.fds,
            r.start.threads,
            r.end.threads
        );
        if r.end.fds > r.start.fds
            || r.end.threads > r.start.threads
            || r.end.rss_kib > r.start.rss_kib + RSS_TOLERANCE_KIB
        {
            growth.push(r.pid);
        }
        for u in r.unexpected.iter().take(5) {
            println!("   UNEXPECTED pid {}: {u}", r.pid);
        }
    }
    println!("-- per case");
    for (k, v) in &per_case {
        println!("   {k}: {v}");
    }
    println!(
        "-- {total} logins in {:?}, {unexpected} unexpected results, {} hosts grew (tolerance: fds and threads 0, RSS {RSS_TOLERANCE_KIB} KiB)",
        started.elapsed(),
        growth.len()
    );
    if unexpected == 0 && growth.is_empty() && total > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
