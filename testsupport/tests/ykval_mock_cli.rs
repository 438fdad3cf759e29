//! The `ykval-mock` binary: starts, prints its URL, answers, logs, and
//! writes the CA for `--tls-dir`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Mock(Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Mock, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ykval-mock"))
        .args(args)
        .args(["--max-secs", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("listening ").unwrap().to_string();
    (Mock(child), url)
}

fn get(port: u16, query: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /wsapi/2.0/verify?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_scripted_status_and_logs_requests() {
    let dir = std::env::temp_dir().join(format!("ykval-mock-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.log");
    let port_file = dir.join("port");
    let (_m, url) = start(&[
        "--key",
        yubiotp_testsupport::TEST_KEY_B64,
        "--status",
        "REPLAYED_OTP",
        "--log-file",
        log.to_str().unwrap(),
        "--port-file",
        port_file.to_str().unwrap(),
    ]);
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}/wsapi/2.0/verify"));
    let resp = get(port, "id=1&otp=cccccc&nonce=abcdefghijklmnop");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains("status=REPLAYED_OTP\r\n"), "{resp}");
    assert!(resp.contains("otp=cccccc\r\n"), "{resp}");
    // The log is written within a poll interval.
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        text.starts_with(
            "n=1 method=GET path=/wsapi/2.0/verify tls=false sig=missing params=id,otp,nonce"
        ),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_dir_gets_the_ca() {
    let dir = std::env::temp_dir().join(format!("ykval-mock-tls-{}", std::process::id()));
    let (_m, url) = start(&["--tls-dir", dir.to_str().unwrap(), "--hang"]);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(dir.join("unknown-ca.pem").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_ykval-mock"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument --bogus"));
}
