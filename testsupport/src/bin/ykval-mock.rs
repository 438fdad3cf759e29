//! `ykval-mock`: a loopback Yubico validation server with scripted faults,
//! for benchmarks and end-to-end tests.
//!
//! ```text
//! ykval-mock [--port N] [--key BASE64] [--status S] [--delay-ms N]
//!            [--dribble-ms N] [--hang | --never-accept | --reset |
//!             --bad-signature | --no-signature | --wrong-nonce |
//!             --wrong-otp | --no-nonce | --duplicate-status |
//!             --extra-field | --garbage | --huge-body N | --http-status N |
//!             --http-500 | --redirect URL | --empty-key-status S]
//!            [--counter USE:SESSION] [--chunked | --close-delimited]
//!            [--require-signature]
//!            [--tls-dir DIR [--cert good|expired|wrong-host|unknown-ca|not-ca-issuer]]
//!            [--port-file PATH] [--log-file PATH] [--max-secs N]
//! ```
//!
//! It prints `listening http(s)://127.0.0.1:PORT/wsapi/2.0/verify` on
//! stdout, serves until `--max-secs` (default 600) pass or it is killed,
//! and with `--log-file` appends one line per request:
//! `n=1 method=GET path=… sig=valid|invalid|missing|unchecked params=id,otp,…`.
//! With `--tls-dir` it makes a fresh test PKI and writes `ca.pem` (and
//! `unknown-ca.pem`) there for the client's `cafile`.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use yubiotp_testsupport::{Behavior, CertKind, Config, MockServer, RequestSignature, TestPki};

fn usage(msg: &str) -> ExitCode {
    eprintln!("ykval-mock: {msg} (see the source header for the flags)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut cfg = Config::new(Behavior::Ok);
    let mut port = 0u16;
    let mut tls_dir: Option<std::path::PathBuf> = None;
    let mut cert = CertKind::Good;
    let mut port_file = None;
    let mut log_file = None;
    let mut max_secs = 600u64;
    // Bounded by the number of arguments.
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "--port" => port = value("--port")?.parse().map_err(|_| "bad --port")?,
                "--key" => {
                    let k = base64::engine::general_purpose::STANDARD
                        .decode(value("--key")?)
                        .map_err(|_| "--key is not base64")?;
                    cfg.key = Some(k);
                }
                "--status" => cfg.behavior = Behavior::status(&value("--status")?),
                "--empty-key-status" => {
                    cfg.behavior = Behavior::StatusEmptyKey(value("--empty-key-status")?);
                }
                "--delay-ms" => {
                    cfg.delay = Duration::from_millis(
                        value("--delay-ms")?.parse().map_err(|_| "bad --delay-ms")?,
                    );
                }
                "--dribble-ms" => {
                    cfg.dribble = Some(Duration::from_millis(
                        value("--dribble-ms")?
                            .parse()
                            .map_err(|_| "bad --dribble-ms")?,
                    ));
                }
                "--hang" => cfg.behavior = Behavior::Hang,
                "--never-accept" => cfg.behavior = Behavior::NeverAccept,
                "--reset" => cfg.behavior = Behavior::Reset,
                "--bad-signature" => cfg.behavior = Behavior::BadSignature,
                "--no-signature" => cfg.behavior = Behavior::NoSignature,
                "--wrong-nonce" => cfg.behavior = Behavior::WrongNonce,
                "--wrong-otp" => cfg.behavior = Behavior::WrongOtp,
                "--no-nonce" => cfg.behavior = Behavior::NoNonce,
                "--duplicate-status" => cfg.behavior = Behavior::DuplicateStatus,
                "--extra-field" => cfg.behavior = Behavior::ExtraField,
                "--garbage" => cfg.behavior = Behavior::Garbage,
                "--huge-body" => {
                    cfg.behavior = Behavior::HugeBody(
                        value("--huge-body")?
                            .parse()
                            .map_err(|_| "bad --huge-body")?,
                    );
                }
                "--http-500" => cfg.behavior = Behavior::Http(500),
                "--http-status" => {
                    cfg.behavior = Behavior::Http(
                        value("--http-status")?
                            .parse()
                            .map_err(|_| "bad --http-status")?,
                    );
                }
                "--redirect" => cfg.behavior = Behavior::Redirect(value("--redirect")?),
                "--counter" => {
                    let v = value("--counter")?;
                    let (u, s) = v.split_once(':').ok_or("--counter is USE:SESSION")?;
                    cfg.counter = (
                        u.parse().map_err(|_| "bad --counter")?,
                        s.parse().map_err(|_| "bad --counter")?,
                    );
                }
                "--chunked" => cfg.chunked = true,
                "--close-delimited" => cfg.close_delimited = true,
                "--require-signature" => cfg.require_signature = true,
                "--tls-dir" => tls_dir = Some(value("--tls-dir")?.into()),
                "--cert" => {
                    cert = CertKind::parse(&value("--cert")?).ok_or("bad --cert")?;
                }
                "--port-file" => port_file = Some(value("--port-file")?),
                "--log-file" => log_file = Some(value("--log-file")?),
                "--max-secs" => {
                    max_secs = value("--max-secs")?.parse().map_err(|_| "bad --max-secs")?;
                }
                other => return Err(format!("unknown argument {other}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            return usage(&e);
        }
    }
    cfg.max_lifetime = Duration::from_secs(max_secs);
    if let Some(dir) = &tls_dir {
        let made = TestPki::generate().and_then(|pki| {
            pki.write_ca(dir)?;
            pki.identity(cert).server_config()
        });
        match made {
            Ok(t) => cfg.tls = Some(t),
            Err(e) => {
                eprintln!("ykval-mock: TLS setup: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let server = match MockServer::start_on(cfg, port) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ykval-mock: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(p) = &port_file
        && let Err(e) = std::fs::write(p, format!("{}\n", server.port()))
    {
        eprintln!("ykval-mock: {p}: {e}");
        return ExitCode::FAILURE;
    }
    println!("listening {}", server.url());
    let _ = std::io::stdout().flush();
    let start = Instant::now();
    let mut logged = 0;
    while start.elapsed() < Duration::from_secs(max_secs) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(path) = &log_file {
            let records = server.requests();
            if records.len() > logged {
                let mut text = String::new();
                for (n, r) in records.iter().enumerate().skip(logged) {
                    let sig = match r.signature {
                        RequestSignature::Valid => "valid",
                        RequestSignature::Invalid => "invalid",
                        RequestSignature::Missing => "missing",
                        RequestSignature::NotChecked => "unchecked",
                    };
                    text.push_str(&format!(
                        "n={} method={} path={} tls={} sig={sig} params={}\n",
                        n + 1,
                        r.method,
                        r.path,
                        r.tls,
                        r.param_order.join(",")
                    ));
                }
                logged = records.len();
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(text.as_bytes()));
                if let Err(e) = appended {
                    eprintln!("ykval-mock: {path}: {e}");
                }
            }
        }
    }
    ExitCode::SUCCESS
}
