//! `ykmap check --online` against loopback validation servers.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use yubiotp_testsupport::{Behavior, Config, MockServer, TEST_KEY_B64, test_key};

fn server(b: Behavior) -> MockServer {
    MockServer::start(Config::new(b).key(&test_key())).unwrap()
}

#[test]
fn online_check_reports_each_server() {
    let good = server(Behavior::status("BAD_OTP"));
    let wrong_id = server(Behavior::status("NO_SUCH_CLIENT"));
    let gullible = server(Behavior::Ok);
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/v", l.local_addr().unwrap().port())
    };
    let dir = yubiotp_testsupport::tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("yubiotp.toml");
    let write = |urls: &[String]| {
        let list = urls
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            &config,
            format!(
                "mode = \"cloud\"\nauthfile = \"{d}/map\"\n[cloud]\nid = 7\nkey = \"{TEST_KEY_B64}\"\nurls = [{list}]\ntimeout = 2\n[local]\nkeystore = \"{d}/keys\"\nstatedir = \"{d}\"\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    std::fs::write(dir.path().join("map"), "").unwrap();
    std::fs::set_permissions(
        dir.path().join("map"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_ykmap"))
            .arg("--config")
            .arg(&config)
            .args(["check", "--online"])
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    write(&[good.url()]);
    let (rc, text) = check();
    assert_eq!(rc, Some(0), "{text}");
    assert!(
        text.contains(&good.url()) && text.contains("accepted"),
        "{text}"
    );
    assert_eq!(good.request_count(), 1);

    write(&[good.url(), wrong_id.url(), gullible.url(), down.clone()]);
    let (rc, text) = check();
    assert_eq!(rc, Some(1), "{text}");
    assert!(
        text.contains("NO_SUCH_CLIENT") && text.contains("cloud.id"),
        "{text}"
    );
    assert!(text.contains("ACCEPTED a dummy OTP"), "{text}");
    assert!(text.contains(&down), "{text}");
    assert!(!text.contains(TEST_KEY_B64), "the API key is never printed");
}
