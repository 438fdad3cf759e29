//! The session flow against a scripted fake host (no libpam): every SPEC
//! §5 path and the §6 rows that libpam cannot easily provoke (a failing
//! pam_set_item, an unreadable PAM_AUTHTOK, pam_get_user failures). The
//! fake asserts on drop that every scripted step was consumed.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pam_yubiotp::host::{ConvError, Host, HostError, Level, Log};
use pam_yubiotp::outcome::{Outcome, code};
use pam_yubiotp::secret::SecretBytes;
use pam_yubiotp::session::authenticate;
use pam_yubiotp::store::{CounterStore, KeyStore};
use yubiotp_core::{AesKey, Counter, KeyMaterial, PrivateId, PublicId, mint_token};
use yubiotp_testsupport::CapturedLog;

#[derive(Debug)]
enum Step {
    User(Result<String, HostError>),
    AuthTok(Result<Option<Vec<u8>>, HostError>),
    SetAuthTok(Vec<u8>, Result<(), HostError>),
    Prompt(String, Result<Vec<u8>, ConvError>),
}

struct FakeHost {
    steps: RefCell<VecDeque<Step>>,
    logs: CapturedLog<Level>,
}

impl FakeHost {
    fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: RefCell::new(steps.into()),
            logs: CapturedLog::default(),
        }
    }
    fn next(&self, what: &str) -> Step {
        self.steps
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| panic!("unscripted call: {what}"))
    }
    fn log_text(&self) -> String {
        self.logs.text()
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.steps.borrow().is_empty(),
                "unconsumed steps: {:?}",
                self.steps
            );
        }
    }
}

impl Log for FakeHost {
    fn log(&self, level: Level, line: &str) {
        self.logs.push(level, line);
    }
}

impl Host for FakeHost {
    fn user(&mut self) -> Result<String, HostError> {
        match self.next("user") {
            Step::User(r) => r,
            other => panic!("expected user, script has {other:?}"),
        }
    }
    fn service(&self) -> Option<String> {
        Some("fake".into())
    }
    fn rhost(&self) -> Option<String> {
        None
    }
    fn authtok(&self) -> Result<Option<SecretBytes>, HostError> {
        match self.next("authtok") {
            Step::AuthTok(r) => r.map(|o| o.map(SecretBytes::new)),
            other => panic!("expected authtok, script has {other:?}"),
        }
    }
    fn set_authtok(&mut self, value: &SecretBytes) -> Result<(), HostError> {
        match self.next("set_authtok") {
            Step::SetAuthTok(expected, r) => {
                assert_eq!(value.expose(), expected.as_slice());
                r
            }
            other => panic!("expected set_authtok, script has {other:?}"),
        }
    }
    fn prompt_secret(&mut self, prompt: &str) -> Result<SecretBytes, ConvError> {
        match self.next("prompt") {
            Step::Prompt(expected, r) => {
                assert_eq!(prompt, expected);
                r.map(SecretBytes::new)
            }
            other => panic!("expected prompt, script has {other:?}"),
        }
    }
    fn error_message(&mut self, _text: &str) {}
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    id: PublicId,
    key: KeyMaterial,
    counter: Counter,
}

impl Fixture {
    /// Local mode, central authfile mapping `root` (a user every system has).
    fn new() -> Self {
        let dir = yubiotp_testsupport::tempdir();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let id = PublicId::from_array([0, 0, 1, 2, 3, 4]);
        let key = KeyMaterial {
            aes_key: AesKey::from_bytes([7; 16]),
            private_id: PrivateId::from_bytes([1, 2, 3, 4, 5, 6]),
        };
        KeyStore::update(&dir.path().join("keys"), |ks| {
            ks.insert(id, key.clone());
            Ok(())
        })
        .unwrap();
        let state = dir.path().join("state");
        CounterStore::create_dir(&state)
            .unwrap()
            .init(&id, Counter::new(1, 0))
            .unwrap();
        let map = dir.path().join("map");
        std::fs::write(&map, format!("root:{id}\n")).unwrap();
        std::fs::set_permissions(&map, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            format!(
                "mode = \"local\"\nauthfile = \"{m}\"\n[local]\nkeystore = \"{k}\"\nstatedir = \"{s}\"\n",
                m = map.display(),
                k = dir.path().join("keys").display(),
                s = state.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self {
            _dir: dir,
            config,
            id,
            key,
            counter: Counter::new(1, 0),
        }
    }
    fn otp(&mut self) -> String {
        self.counter = self.counter.next_otp().unwrap();
        mint_token(&self.id, &self.key, self.counter, false, 1, 2)
    }
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut a = vec![format!("config={}", self.config.display())];
        a.extend(extra.iter().map(|s| (*s).to_string()));
        a
    }
}

const PROMPT: &str = "YubiKey OTP: ";

fn run(host: &mut FakeHost, args: &[String]) -> Outcome {
    authenticate(host, args)
}

#[test]
fn prompt_success_and_one_summary_line() {
    let mut f = Fixture::new();
    let otp = f.otp();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::Prompt(PROMPT.into(), Ok(otp.into_bytes())),
    ]);
    let o = run(&mut h, &f.args(&[]));
    assert_eq!(o.pam_code(), code::SUCCESS, "{o:?}\n{}", h.log_text());
    let summaries: Vec<_> = h
        .logs
        .lines()
        .into_iter()
        .filter(|(_, l)| l.contains("outcome="))
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].0, Level::Notice);
}

#[test]
fn user_name_failures() {
    let f = Fixture::new();
    let mut h = FakeHost::new(vec![Step::User(Err(HostError::Conversation))]);
    assert_eq!(run(&mut h, &f.args(&[])).pam_code(), code::CONV_ERR);
    let mut h = FakeHost::new(vec![Step::User(Err(HostError::Failed))]);
    assert_eq!(run(&mut h, &f.args(&[])).pam_code(), code::SERVICE_ERR);
}

#[test]
fn configuration_error_asks_nothing() {
    let f = Fixture::new();
    let mut h = FakeHost::new(vec![]);
    assert_eq!(
        run(&mut h, &f.args(&["mode=clowd"])).pam_code(),
        code::SERVICE_ERR
    );
    assert!(h.log_text().contains("mode"));
}

#[test]
fn password_plus_otp_sets_authtok_or_fails_closed() {
    let mut f = Fixture::new();
    let otp = f.otp();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::Prompt(PROMPT.into(), Ok(format!("pw{otp}").into_bytes())),
        Step::SetAuthTok(b"pw".to_vec(), Err(HostError::Failed)),
    ]);
    let o = run(&mut h, &f.args(&[]));
    assert_eq!(o.pam_code(), code::SERVICE_ERR, "{o:?}");
    // The OTP was not consumed: it still works.
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::Prompt(PROMPT.into(), Ok(format!("pw{otp}").into_bytes())),
        Step::SetAuthTok(b"pw".to_vec(), Ok(())),
    ]);
    assert_eq!(run(&mut h, &f.args(&[])).pam_code(), code::SUCCESS);
    assert!(!h.log_text().contains(&otp[12..]), "OTP ciphertext logged");
}

#[test]
fn first_pass_variants() {
    let mut f = Fixture::new();
    // try_first_pass, password+OTP in PAM_AUTHTOK: no prompt.
    let otp = f.otp();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::AuthTok(Ok(Some(format!("secret{otp}").into_bytes()))),
        Step::SetAuthTok(b"secret".to_vec(), Ok(())),
    ]);
    assert_eq!(
        run(&mut h, &f.args(&["try_first_pass"])).pam_code(),
        code::SUCCESS
    );
    // try_first_pass, no PAM_AUTHTOK: prompt.
    let otp = f.otp();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::AuthTok(Ok(None)),
        Step::Prompt(PROMPT.into(), Ok(otp.into_bytes())),
    ]);
    assert_eq!(
        run(&mut h, &f.args(&["try_first_pass"])).pam_code(),
        code::SUCCESS
    );
    // try_first_pass, a 44-character password that is not modhex: prompt.
    let otp = f.otp();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::AuthTok(Ok(Some(
            b"Correct-Horse-Battery-Staple-0123456789-abcd".to_vec(),
        ))),
        Step::Prompt(PROMPT.into(), Ok(otp.into_bytes())),
    ]);
    assert_eq!(
        run(&mut h, &f.args(&["try_first_pass"])).pam_code(),
        code::SUCCESS
    );
    // sshd's placeholder repeated to the typed length is never an OTP.
    let long: Vec<u8> = b"\x08\n\r\x7fINCORRECT"
        .iter()
        .cycle()
        .take(44)
        .copied()
        .collect();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::AuthTok(Ok(Some(long.clone()))),
    ]);
    assert_eq!(
        run(&mut h, &f.args(&["try_first_pass"])).pam_code(),
        code::AUTH_ERR
    );
    assert!(h.log_text().contains("placeholder"));
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::Prompt(PROMPT.into(), Ok(long)),
    ]);
    assert_eq!(run(&mut h, &f.args(&[])).pam_code(), code::AUTH_ERR);
    assert!(h.log_text().contains("placeholder"));
    // use_first_pass, no PAM_AUTHTOK: AUTH_ERR, never a prompt.
    let mut h = FakeHost::new(vec![Step::User(Ok("root".into())), Step::AuthTok(Ok(None))]);
    assert_eq!(
        run(&mut h, &f.args(&["use_first_pass"])).pam_code(),
        code::AUTH_ERR
    );
    // PAM_AUTHTOK unreadable: a fault, not a wrong OTP.
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::AuthTok(Err(HostError::Failed)),
    ]);
    assert_eq!(
        run(&mut h, &f.args(&["use_first_pass"])).pam_code(),
        code::SERVICE_ERR
    );
    // use_first_pass with only the OTP in PAM_AUTHTOK: PAM_AUTHTOK untouched.
    let otp = f.otp();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::AuthTok(Ok(Some(otp.into_bytes()))),
    ]);
    assert_eq!(
        run(&mut h, &f.args(&["use_first_pass"])).pam_code(),
        code::SUCCESS
    );
}

#[test]
fn conversation_errors() {
    let f = Fixture::new();
    for e in [
        ConvError::Failed,
        ConvError::NullResponse,
        ConvError::NoConversation,
    ] {
        let mut h = FakeHost::new(vec![
            Step::User(Ok("root".into())),
            Step::Prompt(PROMPT.into(), Err(e)),
        ]);
        assert_eq!(run(&mut h, &f.args(&[])).pam_code(), code::CONV_ERR);
    }
}

#[test]
fn debug_adds_lines_but_no_secrets() {
    let mut f = Fixture::new();
    let otp = f.otp();
    let mut h = FakeHost::new(vec![
        Step::User(Ok("root".into())),
        Step::Prompt(PROMPT.into(), Ok(format!("hunter2{otp}").into_bytes())),
        Step::SetAuthTok(b"hunter2".to_vec(), Ok(())),
    ]);
    assert_eq!(run(&mut h, &f.args(&["debug"])).pam_code(), code::SUCCESS);
    let logs = h.log_text();
    assert!(
        h.logs.lines().iter().any(|(l, _)| *l == Level::Debug),
        "{logs}"
    );
    assert!(!logs.contains("hunter2"));
    assert!(!logs.contains(&otp[12..]));
    assert!(!logs.contains(&f.key.aes_key.expose_hex()));
    assert!(!logs.contains(&f.key.private_id.expose_hex()));
}
