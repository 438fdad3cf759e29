//! Builds a throw-away world for benchmarks and demos: passwd/group files
//! for nss_wrapper, a PAM service directory for pam_wrapper, a config, a
//! key store with one software key mapped to user `alice`, its counter
//! state, and `--otps N` fresh OTPs in `otps.txt`.
//!
//! yubiotp-fixture DIR [--mode local|cloud|hybrid] [--otps N]
//!                     [--url URL --id N --key BASE64] [--module PATH]
//!
//! Prints shell `export` lines for running pamtester against it.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pam_yubiotp::store::{CounterStore, KeyStore};
use yubiotp_core::Counter;
use yubiotp_tests::{NSS_WRAPPER, PAM_WRAPPER, TestKey, write_mode};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: yubiotp-fixture DIR [options]"));
    let (mut mode, mut otps, mut url, mut id, mut key, mut module) =
        ("local".to_string(), 0usize, None, None, None, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("option needs a value");
        match a.as_str() {
            "--mode" => mode = val(),
            "--otps" => otps = val().parse().expect("--otps N"),
            "--url" => url = Some(val()),
            "--id" => id = Some(val()),
            "--key" => key = Some(val()),
            "--module" => module = Some(PathBuf::from(val())),
            other => panic!("unknown option {other}"),
        }
    }
    fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let (etc, state, svc) = (dir.join("etc"), dir.join("state"), dir.join("services"));
    for (d, m) in [(&etc, 0o700), (&state, 0o700), (&svc, 0o755)] {
        fs::create_dir_all(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(m)).unwrap();
    }
    let home = dir.join("home/alice");
    fs::create_dir_all(&home).unwrap();
    fs::write(
        dir.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nalice:x:2001:2001:alice:{}:/bin/sh\n",
            home.display()
        ),
    )
    .unwrap();
    fs::write(dir.join("group"), "root:x:0:\nalice:x:2001:\n").unwrap();

    let mut k = TestKey::new(1);
    let keystore = etc.join("keys");
    KeyStore::update(&keystore, |ks| {
        ks.insert(k.id, k.key.clone());
        Ok(())
    })
    .unwrap();
    let counters = CounterStore::open(&state).unwrap();
    let _ = counters.remove(&k.id);
    counters.init(&k.id, Counter::new(1, 0)).unwrap();
    write_mode(
        &etc.join("authorized_yubikeys"),
        format!("alice:{}\n", k.id).as_bytes(),
        0o644,
    );

    let mut conf = format!(
        "mode = \"{mode}\"\nauthfile = \"{e}/authorized_yubikeys\"\n[local]\nkeystore = \"{e}/keys\"\nstatedir = \"{s}\"\n",
        e = etc.display(),
        s = state.display()
    );
    if mode != "local" {
        conf.push_str(&format!(
            "[cloud]\nid = {}\nkey = \"{}\"\nurls = [{}]\ntimeout = 5\n",
            id.unwrap_or_else(|| "1".into()),
            key.unwrap_or_else(|| "mG5be6ZJU1qBGz24yPh/ESM3UdU=".into()),
            url.unwrap_or_default()
                .split(';')
                .map(|u| format!("\"{u}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    write_mode(&etc.join("yubiotp.toml"), conf.as_bytes(), 0o600);

    let module = module.unwrap_or_else(yubiotp_tests::module_path);
    fs::write(
        svc.join("yubiotp"),
        format!(
            "auth required {} config={}/yubiotp.toml\n",
            module.display(),
            etc.display()
        ),
    )
    .unwrap();
    fs::write(svc.join("permit"), "auth required pam_permit.so\n").unwrap();
    fs::write(svc.join("other"), "auth required pam_deny.so\n").unwrap();

    let mut f = fs::File::create(dir.join("otps.txt")).unwrap();
    for _ in 0..otps {
        writeln!(f, "{}", k.next()).unwrap();
    }
    println!("export LD_PRELOAD={PAM_WRAPPER}:{NSS_WRAPPER}");
    println!(
        "export PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR={}",
        svc.display()
    );
    println!(
        "export NSS_WRAPPER_PASSWD={} NSS_WRAPPER_GROUP={}",
        dir.join("passwd").display(),
        dir.join("group").display()
    );
}
