//! Drop-in migration from pam_yubico (issue 17): the option table of
//! `pam_yubiotp::config::compat` is complete against the installed
//! libpam-yubico's pam_yubico(8) (scripts/setup.sh installs it), our man
//! page has a row for each, and every row behaves as the table says through
//! the real libpam: supported (the OTP is accepted), warned (accepted, the
//! warning logged), refused (PAM_SERVICE_ERR naming the replacement), LDAP
//! (never accepted without a directory).

use std::fs;
use std::process::Command;

use pam_yubiotp::config::compat::{How, PAM_YUBICO};
use pam_yubiotp::config::options::known_args;
use yubiotp_tests::{Run, RunOpts, TestKey, World, code, repo_file, write_mode};
use yubiotp_testsupport::{Behavior, Config, ConnectProxy, MockServer, TEST_KEY_B64, test_key};

const MAN: &str = "/usr/share/man/man8/pam_yubico.8.gz";

/// The option names of pam_yubico(8)'s OPTIONS section: each `.PP` is
/// followed by `\fBname\fR=...` or `\fBname=\fR[...]`.
fn man_page_options() -> Vec<String> {
    let out = Command::new("zcat").arg(MAN).output().unwrap();
    assert!(
        out.status.success(),
        "{MAN} is missing: scripts/setup.sh installs libpam-yubico"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut names = Vec::new();
    let mut in_options = false;
    let mut after_pp = false;
    for line in text.lines() {
        if line.starts_with(".SH") {
            in_options = line.contains("OPTIONS");
        } else if in_options
            && after_pp
            && let Some(rest) = line.strip_prefix("\\fB")
        {
            let name = rest.split(['\\', '=']).next().unwrap();
            names.push(name.to_string());
        }
        after_pp = line == ".PP";
    }
    names
}

#[test]
fn every_documented_pam_yubico_option_has_a_row() {
    let names = man_page_options();
    assert!(names.len() >= 25, "parsed too few options: {names:?}");
    for n in [
        "debug",
        "debug_file",
        "alwaysok",
        "mode",
        "ldapdn",
        "chalresp_path",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not parsed from {MAN}");
    }
    for n in &names {
        assert!(
            PAM_YUBICO.iter().any(|o| o.name == n),
            "pam_yubico option {n} has no row in config::compat::PAM_YUBICO"
        );
    }
    // Our man page's migration list names every option.
    let md = repo_file("man/pam_yubiotp.8.md");
    let table: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("# MIGRATING FROM PAM_YUBICO"))
        .take_while(|l| !l.starts_with("# FILES"))
        .filter(|l| l.starts_with('`'))
        .collect();
    for o in PAM_YUBICO {
        let cell = format!("`{}", o.name);
        assert!(
            table.iter().any(|l| l.starts_with(&cell)),
            "man/pam_yubiotp.8.md MIGRATING FROM PAM_YUBICO has no row for {}",
            o.name
        );
    }
}

struct Setup {
    w: World,
    alice: TestKey,
}

fn setup(url: &str) -> Setup {
    let mut w = World::new();
    w.add_user("alice", 2001);
    let alice = TestKey::new(1);
    w.write_authfile(&format!("alice:{}\n", alice.id));
    w.write_config(&format!(
        "mode = \"cloud\"\nauthfile = \"@ETC@/authorized_yubikeys\"\n[cloud]\nid = 42\nkey = \"{TEST_KEY_B64}\"\nurls = [\"{url}\"]\ntimeout = 3\n"
    ));
    Setup { w, alice }
}

fn server() -> MockServer {
    MockServer::start(Config::new(Behavior::Ok).key(&test_key())).unwrap()
}

fn run(s: &mut Setup, args: &str) -> Run {
    s.w.simple_service(args);
    let otp = s.alice.next();
    s.w.run(
        "yubiotp-test",
        "alice",
        &RunOpts {
            answers: vec![otp.into()],
            ..RunOpts::default()
        },
    )
}

fn accepted(r: &Run, what: &str) {
    assert_eq!(r.auth(), code::SUCCESS, "{what}\n{}", r.everything());
}

fn warned(r: &Run, what: &str, warning: &str) {
    accepted(r, what);
    assert!(
        r.log_lines().iter().any(|l| l.contains(warning)),
        "{what}: no warning {warning:?}\n{:?}",
        r.log_lines()
    );
}

fn refused(r: &Run, what: &str, names: &[&str]) {
    r.assert_refused(code::SERVICE_ERR);
    let log = r.log_lines().join("\n");
    for n in names {
        assert!(
            log.contains(n),
            "{what}: the error does not say {n:?}\n{log}"
        );
    }
}

/// Runs every row of the table: one sample line per option.
#[test]
fn every_row_behaves_as_the_table_says() {
    let m = server();
    let other = server();
    let proxy = ConnectProxy::start(None).unwrap();
    let mut s = setup(&m.url());
    let authfile = s.w.authfile().display().to_string();
    let log = s.w.etc.join("debug.log");
    write_mode(&log, b"", 0o600);
    for o in PAM_YUBICO {
        let name = o.name;
        match (name, o.how) {
            ("id", _) => accepted(&run(&mut s, "id=42"), name),
            ("key", How::Secret(_)) => warned(
                &run(&mut s, &format!("key={TEST_KEY_B64}")),
                name,
                "key= on the PAM line",
            ),
            ("debug", _) => {
                let r = run(&mut s, "debug");
                accepted(&r, name);
                assert!(r.log_lines().iter().any(|l| l.contains("key(s) mapped")));
            }
            ("try_first_pass" | "nullok", _) => accepted(&run(&mut s, name), name),
            ("use_first_pass", _) => {
                // Nothing in PAM_AUTHTOK and never a prompt: refused.
                let r = run(&mut s, name);
                assert_ne!(r.auth(), code::SUCCESS);
                assert_ne!(r.auth(), code::IGNORE);
                assert!(r.prompts.is_empty(), "use_first_pass never prompts");
            }
            ("authfile", _) => accepted(&run(&mut s, &format!("authfile={authfile}")), name),
            ("capath", _) => accepted(&run(&mut s, "capath=/etc/ssl/certs"), name),
            ("cainfo", How::Renamed("cafile")) => accepted(
                &run(&mut s, "cainfo=/etc/ssl/certs/ca-certificates.crt"),
                name,
            ),
            ("proxy", _) => {
                let before = proxy.connections();
                accepted(&run(&mut s, &format!("proxy={}", proxy.url())), name);
                assert!(proxy.connections() > before, "the proxy was not used");
            }
            ("url", How::Renamed("urllist")) => {
                let before = other.requests().len();
                let url = format!("url={}?id=%d&otp=%s", other.url());
                accepted(&run(&mut s, &url), name);
                assert_eq!(other.requests().len(), before + 1, "url= not used");
                // Both spellings at once: which wins can't be guessed.
                let both = format!("{url} urllist={}", other.url());
                refused(&run(&mut s, &both), name, &["url=", "urllist="]);
                // A template without %s is not pam_yubico's url=.
                let r = run(&mut s, &format!("url={}", other.url()));
                refused(&r, name, &["url", "%s"]);
            }
            ("urllist", _) => {
                let before = other.requests().len();
                accepted(&run(&mut s, &format!("urllist={}", other.url())), name);
                assert_eq!(other.requests().len(), before + 1);
            }
            ("token_id_length", _) => accepted(&run(&mut s, "token_id_length=12"), name),
            ("mode", _) => {
                accepted(&run(&mut s, "mode=client"), name);
                let r = run(&mut s, "mode=challenge-response");
                refused(
                    &r,
                    name,
                    &["mode", "challenge-response", "pam_u2f", "local mode"],
                );
            }
            ("debug_file", _) => {
                let r = run(&mut s, &format!("debug_file={}", log.display()));
                accepted(&r, name);
                let text = fs::read_to_string(&log).unwrap();
                assert!(text.contains("outcome=success"), "{text:?}");
                assert!(!text.contains(&s.alice.otp_at(s.alice.counter)[12..]));
                // Never created; a missing file is a warning only.
                let missing = s.w.etc.join("missing.log");
                let r = run(&mut s, &format!("debug_file={}", missing.display()));
                warned(&r, name, "never created");
                assert!(!missing.exists());
                // Not root-owned-and-private, or not a regular file: not used.
                let loose = s.w.etc.join("loose.log");
                write_mode(&loose, b"", 0o666);
                let r = run(&mut s, &format!("debug_file={}", loose.display()));
                warned(&r, name, "not writable by group or other");
                assert_eq!(fs::read(&loose).unwrap(), b"");
                let r = run(&mut s, "debug_file=/dev/null");
                warned(&r, name, "not a regular file");
                let r = run(&mut s, "debug_file=stderr");
                warned(&r, name, "debug_file=stderr");
            }
            (_, How::Warned(_)) => warned(&run(&mut s, name), name, name),
            (_, How::Refused(why)) => {
                let arg = if o.value {
                    format!("{name}=/x")
                } else {
                    name.to_string()
                };
                // The message names the option and its replacement.
                let fix = if why.contains("pam_u2f") {
                    "pam_u2f"
                } else if why.contains("[default=ignore]") {
                    "[default=ignore]"
                } else {
                    "authfile"
                };
                refused(&run(&mut s, &arg), name, &[name, fix]);
                // A refused option's value (maybe mysql_password) is never shown.
                assert!(!run(&mut s, &arg).everything().contains("=/x"));
            }
            (_, How::Ldap(_)) => {
                let arg = if o.value {
                    format!("{name}=ldap://127.0.0.1:1")
                } else {
                    name.to_string()
                };
                let r = run(&mut s, &arg);
                assert_ne!(r.auth(), code::SUCCESS, "{name}\n{}", r.everything());
                assert_ne!(r.auth(), code::IGNORE, "{name}");
                // Until the module has LDAP mapping, an LDAP option is a
                // configuration error naming it (never silently ignored);
                // with it, the LDAP tests own these rows' behaviour.
                let spelled = if o.value {
                    format!("{name}=")
                } else {
                    name.to_string()
                };
                if !known_args().contains(&spelled) {
                    refused(&r, name, &["unknown argument"]);
                }
            }
            other => panic!("no sample for pam_yubico option {other:?}"),
        }
    }
}
