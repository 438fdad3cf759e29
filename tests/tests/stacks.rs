//! Every example PAM stack in `etc/pam.d/` (and the pam-auth-update
//! profile), run verbatim through the real libpam under its own service
//! name, with success and failure cases.
//!
//! What is substituted, and why:
//! - `pam_yubiotp.so` → the built module's absolute path plus
//!   `config=<test config>` (local mode, central mapping, a private key
//!   store and counter state);
//! - `pam_faillock.so` → the same with `dir=` and `conf=` in the test's
//!   directory, so no tally is written to /run/faillock.
//!
//! The `@include common-*` files are Debian 12's stock ones, written into
//! the private service directory. The password half is the real
//! `pam_unix.so`: the test users live in an nss_wrapper passwd file whose
//! password field holds the crypt hash itself (not shadowed), which
//! pam_unix checks in process. For su the caller must not be root (or
//! `pam_rootok` lets everything through), so the su stacks run the test
//! application as a setuid-root copy started by uid 2001, exactly like
//! su(1); in that mode the dynamic loader ignores LD_PRELOAD, so there is
//! no pam_wrapper (libpam's `pam_start_confdir` reads the private service
//! directory instead) and no nss_wrapper: the target users are the real
//! `root` and `nobody`, and the su stacks' common-auth uses pam_wrapper's
//! `pam_matrix` test module (a password file of its own) in place of
//! pam_unix, because root's real password is not ours to know.
//!
//! Negative cases assert that the stack's result is neither PAM_SUCCESS nor
//! PAM_IGNORE (and, where it matters, which prompts were shown).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use yubiotp_core::Counter;
use yubiotp_tests::{Answer, Run, RunOpts, TestKey, World, code, driver_path, is_root, repo};

fn example(name: &str) -> String {
    fs::read_to_string(repo().join("etc/pam.d").join(name)).unwrap()
}

/// Debian 12's stock common-* files (libpam-runtime 1.5.2, pam-auth-update
/// with the unix and capability profiles).
const COMMON_AUTH: &str = "\
auth\t[success=1 default=ignore]\tpam_unix.so nullok
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
auth\toptional\t\t\tpam_cap.so
";
const COMMON_ACCOUNT: &str = "\
account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so
account\trequisite\t\t\tpam_deny.so
account\trequired\t\t\tpam_permit.so
";
const COMMON_SESSION: &str = "\
session\t[default=1]\t\t\tpam_permit.so
session\trequisite\t\t\tpam_deny.so
session\trequired\t\t\tpam_permit.so
session\trequired\tpam_unix.so
";
const COMMON_PASSWORD: &str = "\
password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt
password\trequisite\t\t\tpam_deny.so
password\trequired\t\t\tpam_permit.so
";

/// SHA-512 crypt hashes (`openssl passwd -6 -salt …`) of the test passwords.
const ALICE_PW: &str = "alice-pw";
const ALICE_HASH: &str = "$6$ykotpalice$vK9hh0aJ6oKk0uOCsuCR1EWcYJckCvu4ddSfkpL1VZitdF9/UW0iEKwGoJR1RQ/lFJBT7V9CR.ozDPBsSyYdp.";
const BOB_HASH: &str = "$6$ykotpbob$.gGddvrlWSUrT6b31TqsCgZV7IBIX7pQLJx.iX3DEBJ74v7oUp.EeNXpfuYOFOFCrMi8I6G1/lGmtKkYyTnYq.";
const CAROL_PW: &str = "carol-pw";
const CAROL_HASH: &str = "$6$ykotpcarol$gSzZ.EKKkJZoTvbVytDQVo4wd3SqANvqo59qMYKdHHiKHhX45KLKvvG44sWCL29BXdNz5Eg2IWJK9tLPgNd1s.";

const OTP_PROMPT: &str = "YubiKey OTP: ";
const PW_PROMPT: &str = "Password: ";

/// alice (key 1) and bob (key 2) are mapped, carol has no key; all three
/// have passwords. root's key (3) is mapped for the su stacks.
struct Fixture {
    w: World,
    alice: TestKey,
    bob: TestKey,
    root: TestKey,
    passwd: PathBuf,
}

fn fixture() -> Fixture {
    let mut w = World::new();
    w.add_user("alice", 2001);
    w.add_user("bob", 2002);
    w.add_user("carol", 2003);
    let alice = TestKey::new(1);
    let bob = TestKey::new(2);
    let root = TestKey::new(3);
    for k in [&alice, &bob, &root] {
        w.add_key(k, Counter::new(1, 0));
    }
    w.write_authfile(&format!(
        "alice:{}\nbob:{}\nroot:{}\n",
        alice.id, bob.id, root.id
    ));
    w.local_config();
    for (name, text) in [
        ("common-auth", COMMON_AUTH),
        ("common-account", COMMON_ACCOUNT),
        ("common-session", COMMON_SESSION),
        ("common-session-noninteractive", COMMON_SESSION),
        ("common-password", COMMON_PASSWORD),
    ] {
        w.service(name, text);
    }
    // Same users and homes as World::add_user, with the hash in place of "x".
    let home = |n: &str| w.dir.path().join("home").join(n).display().to_string();
    let passwd = w.dir.path().join("passwd-hashed");
    fs::write(
        &passwd,
        format!(
            "root:x:0:0:root:/root:/bin/sh\nalice:{ALICE_HASH}:2001:2001:alice:{}:/bin/sh\nbob:{BOB_HASH}:2002:2002:bob:{}:/bin/sh\ncarol:{CAROL_HASH}:2003:2003:carol:{}:/bin/sh\n",
            home("alice"),
            home("bob"),
            home("carol")
        ),
    )
    .unwrap();
    Fixture {
        w,
        alice,
        bob,
        root,
        passwd,
    }
}

/// Points `@include NAME` at the test's own copy in the service directory.
/// libpam (1.5.2, under pam_wrapper or `pam_start_confdir`) resolves a
/// relative include in /etc/pam.d, not in the private directory, so without
/// this the system's own common-* files would be used.
fn localize_includes(w: &World, text: &str) -> String {
    text.lines()
        .map(|line| match line.trim_start().strip_prefix("@include") {
            Some(name) if !name.trim().contains('/') => {
                format!("@include {}", w.services.join(name.trim()).display())
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The example with the module (and pam_faillock) pointed at the test's files.
fn install_example(f: &Fixture, service: &str, example_name: &str) {
    let faillock = f.w.dir.path().join("faillock");
    fs::create_dir_all(&faillock).unwrap();
    let conf = f.w.dir.path().join("faillock.conf");
    fs::write(&conf, "deny = 3\nunlock_time = 600\nfail_interval = 900\n").unwrap();
    let text = localize_includes(&f.w, &example(example_name))
        .replace("pam_yubiotp.so", "@MODULE@ @CONFIG@")
        .replace(
            "pam_faillock.so",
            &format!(
                "pam_faillock.so dir={} conf={}",
                faillock.display(),
                conf.display()
            ),
        );
    f.w.service(service, &text);
}

fn run(f: &Fixture, service: &str, user: &str, answers: &[&str]) -> Run {
    f.w.run(
        service,
        user,
        &RunOpts {
            answers: answers.iter().map(|a| Answer::from(*a)).collect(),
            env: vec![(
                "NSS_WRAPPER_PASSWD".to_string(),
                f.passwd.display().to_string(),
            )],
            ..RunOpts::default()
        },
    )
}

fn prompts(r: &Run) -> Vec<&str> {
    r.prompts.iter().map(|(_, p)| p.as_str()).collect()
}

#[track_caller]
fn ok(r: &Run, expected_prompts: &[&str]) {
    assert_eq!(r.auth(), code::SUCCESS, "{}", r.everything());
    assert_eq!(prompts(r), expected_prompts, "{}", r.everything());
    assert!(
        r.prompts.iter().all(|(style, _)| *style == 1),
        "every prompt is echo-off: {:?}",
        r.prompts
    );
}

#[track_caller]
fn refused(r: &Run, expected_prompts: &[&str]) {
    assert_eq!(
        r.rc.first().map(|(_, c)| *c),
        Some(code::SUCCESS),
        "pam_start: {}",
        r.everything()
    );
    let rc = r.auth();
    assert_ne!(rc, code::SUCCESS, "must be refused\n{}", r.everything());
    assert_ne!(
        rc,
        code::IGNORE,
        "must not be PAM_IGNORE\n{}",
        r.everything()
    );
    assert_eq!(prompts(r), expected_prompts, "{}", r.everything());
}

// ---------------------------------------------------------------- the example stacks

/// Whose key an OTP answer is minted with.
#[derive(Debug, Clone, Copy)]
enum Who {
    Alice,
    Bob,
    Root,
}

/// One conversation answer of a step.
#[derive(Debug, Clone, Copy)]
enum A {
    /// This text.
    Text(&'static str),
    /// A fresh OTP of the key (its counter advances).
    Fresh(Who),
    /// The key's last fresh OTP again.
    Last(Who),
    /// The key's last fresh OTP cut to 43 characters (malformed).
    LastCut(Who),
    /// The key's OTP at counter 1/0, older than its stored state.
    Stale(Who),
    /// The text followed by a fresh OTP (one answer, as sshd's one prompt).
    TextFresh(&'static str, Who),
    /// The text followed by the key's last fresh OTP.
    TextLast(&'static str, Who),
}

/// One step of a case: a run with its expected result and prompts, or a
/// change to the world between runs.
#[derive(Debug)]
enum Step {
    /// `user` authenticates with these answers and succeeds, having been
    /// shown exactly these (echo-off) prompts.
    Ok(&'static str, &'static [A], &'static [&'static str]),
    /// `user` is refused (neither PAM_SUCCESS nor PAM_IGNORE) after exactly
    /// these prompts.
    Refused(&'static str, &'static [A], &'static [&'static str]),
    /// su only: root itself asks for `user`; pam_rootok lets it through
    /// without a prompt.
    OkAsRoot(&'static str),
    /// The central mapping gets this mode.
    MappingMode(u32),
    /// The central mapping is moved away (missing).
    MoveMapping,
    /// The step, this many times.
    Repeat(usize, &'static Step),
}

/// One example stack of etc/pam.d run under its service name.
#[derive(Debug)]
struct Case {
    /// The file in etc/pam.d.
    example: &'static str,
    /// The PAM service it is installed as ("su": run setuid, see su_fixture).
    service: &'static str,
    steps: &'static [Step],
}

use A::{Fresh, Last, LastCut, Stale, Text, TextFresh, TextLast};
use Step::{MappingMode, MoveMapping, OkAsRoot, Refused, Repeat};
use Who::{Alice, Bob, Root};

const OTP_ONLY: &[&str] = &[OTP_PROMPT];
const PW_ONLY: &[&str] = &[PW_PROMPT];
const PW_OTP: &[&str] = &[PW_PROMPT, OTP_PROMPT];
const NONE: &[&str] = &[];
const PW_AND_OTP_PROMPT: &str = "Password and YubiKey OTP: ";
const ONE_PROMPT: &[&str] = &[PW_AND_OTP_PROMPT];

/// Every example stack with its success and failure cases.
const CASES: &[Case] = &[
    // ------------------------------------------------------------ sudo
    Case {
        example: "sudo.otp-only",
        service: "sudo",
        steps: &[
            Step::Ok("alice", &[Fresh(Alice)], OTP_ONLY),
            Refused("alice", &[Last(Alice)], OTP_ONLY), // replay
            Refused("alice", &[Fresh(Bob)], OTP_ONLY),  // someone else's key
            Refused("alice", &[Text("")], OTP_ONLY),
            Refused("alice", &[Text(ALICE_PW)], OTP_ONLY), // the password is not an OTP
            Refused("carol", &[Text("x")], NONE),          // no key: not even asked
            Refused("mallory", &[Text("x")], NONE),
            // Bob's OTP was never consumed by alice's attempt.
            Step::Ok("bob", &[Last(Bob)], OTP_ONLY),
        ],
    },
    Case {
        example: "sudo.password-then-otp",
        service: "sudo",
        steps: &[
            // A wrong password stops at common-auth: the OTP is not asked, not used.
            Refused("alice", &[Text("wrong"), Fresh(Alice)], PW_ONLY),
            Step::Ok("alice", &[Text(ALICE_PW), Last(Alice)], PW_OTP),
            Refused("alice", &[Text(ALICE_PW), Last(Alice)], PW_OTP), // replay
            Refused("alice", &[Text(ALICE_PW), LastCut(Alice)], PW_OTP),
            // carol has a password but no key: refused without an OTP prompt.
            Refused("carol", &[Text(CAROL_PW)], PW_ONLY),
        ],
    },
    Case {
        example: "sudo.password-then-otp-nullok",
        service: "sudo",
        steps: &[
            Step::Ok("alice", &[Text(ALICE_PW), Fresh(Alice)], PW_OTP),
            Refused("alice", &[Text(ALICE_PW), Last(Alice)], PW_OTP),
            Refused("alice", &[Text("wrong"), Fresh(Alice)], PW_ONLY),
            // A user with a key cannot skip the OTP by answering nothing.
            Refused("alice", &[Text(ALICE_PW), Text("")], PW_OTP),
            // carol (no key): the password alone, and only the right one.
            Step::Ok("carol", &[Text(CAROL_PW)], PW_ONLY),
            Refused("carol", &[Text("wrong")], PW_ONLY),
            // An insecure mapping is never "no key": carol is refused then.
            MappingMode(0o666),
            Refused("carol", &[Text(CAROL_PW)], PW_ONLY),
            MappingMode(0o644),
            // A missing mapping neither.
            MoveMapping,
            Refused("carol", &[Text(CAROL_PW)], PW_ONLY),
        ],
    },
    Case {
        example: "sudo.otp-only-faillock",
        service: "sudo",
        steps: &[
            Step::Ok("alice", &[Fresh(Alice)], OTP_ONLY),
            // Server or file failures are not counted: bob's mapping turns
            // insecure three times, then a fresh OTP still works.
            MappingMode(0o666),
            Repeat(3, &Refused("bob", &[Text("x")], NONE)),
            MappingMode(0o644),
            Step::Ok("bob", &[Fresh(Bob)], OTP_ONLY),
            // Three wrong OTPs lock alice out: even a fresh OTP is then
            // refused, without a prompt and without being used up.
            Repeat(3, &Refused("alice", &[Stale(Alice)], OTP_ONLY)),
            Refused("alice", &[Fresh(Alice)], NONE),
            // bob is not affected.
            Step::Ok("bob", &[Fresh(Bob)], OTP_ONLY),
        ],
    },
    // ------------------------------------------------------------ login
    Case {
        example: "login.otp-only",
        service: "login",
        steps: &[
            Step::Ok("alice", &[Fresh(Alice)], OTP_ONLY),
            Refused("alice", &[Last(Alice)], OTP_ONLY),
            Refused("alice", &[Text(ALICE_PW)], OTP_ONLY),
            Refused("carol", &[Text(CAROL_PW)], NONE),
        ],
    },
    Case {
        example: "login.password-then-otp",
        service: "login",
        steps: &[
            Refused("alice", &[Text("wrong"), Fresh(Alice)], PW_ONLY),
            Step::Ok("alice", &[Text(ALICE_PW), Last(Alice)], PW_OTP),
            Refused("alice", &[Text(ALICE_PW), Last(Alice)], PW_OTP),
            Refused("carol", &[Text(CAROL_PW)], PW_ONLY),
        ],
    },
    Case {
        example: "login.password-then-otp-nullok",
        service: "login",
        steps: &[
            Step::Ok("alice", &[Text(ALICE_PW), Fresh(Alice)], PW_OTP),
            Refused("alice", &[Text(ALICE_PW), Last(Alice)], PW_OTP),
            Step::Ok("carol", &[Text(CAROL_PW)], PW_ONLY),
            Refused("carol", &[Text("wrong")], PW_ONLY),
        ],
    },
    // ------------------------------------------------------------ sshd (through libpam; real sshd in sshd.rs)
    Case {
        // The key-then-OTP stack asks only the OTP.
        example: "sshd.key-then-otp",
        service: "sshd",
        steps: &[
            Step::Ok("alice", &[Fresh(Alice)], OTP_ONLY),
            Refused("alice", &[Last(Alice)], OTP_ONLY),
            Refused("alice", &[Text(ALICE_PW)], OTP_ONLY),
            Refused("carol", &[Text(CAROL_PW)], NONE),
        ],
    },
    Case {
        // The password+OTP stack: one prompt.
        example: "sshd.password-otp",
        service: "sshd",
        steps: &[
            Step::Ok("alice", &[TextFresh(ALICE_PW, Alice)], ONE_PROMPT),
            // Replayed OTP with the right password: refused before pam_unix.
            Refused("alice", &[TextLast(ALICE_PW, Alice)], ONE_PROMPT),
            // Wrong password with a fresh OTP: pam_unix refuses.
            Refused("alice", &[TextFresh("wrong", Alice)], ONE_PROMPT),
            // The OTP alone is not enough: pam_unix use_first_pass has no password.
            Refused("alice", &[Fresh(Alice)], ONE_PROMPT),
            // The password alone neither.
            Refused("alice", &[Text(ALICE_PW)], ONE_PROMPT),
            // sshd's placeholder password for invalid users.
            Refused("alice", &[Text("\u{8}\n\r\u{7f}INCORRECT")], ONE_PROMPT),
            Refused("carol", &[Text(CAROL_PW)], NONE),
        ],
    },
    // ------------------------------------------------------------ su (setuid, like su(1); needs root)
    Case {
        example: "su.otp-only",
        service: "su",
        steps: &[
            Step::Ok("root", &[Fresh(Root)], OTP_ONLY),
            Refused("root", &[Last(Root)], OTP_ONLY),
            // alice's key is not root's key: su checks the target user's keys.
            Refused("root", &[Fresh(Alice)], OTP_ONLY),
            Refused("root", &[Text("root-pw")], OTP_ONLY),
            // nobody has no key.
            Refused("nobody", &[Text("x")], NONE),
            OkAsRoot("nobody"),
        ],
    },
    Case {
        example: "su.password-then-otp",
        service: "su",
        steps: &[
            Refused("root", &[Text("wrong"), Fresh(Root)], PW_ONLY),
            Step::Ok("root", &[Text("root-pw"), Last(Root)], PW_OTP),
            Refused("root", &[Text("root-pw"), Last(Root)], PW_OTP),
            Refused("nobody", &[Text("nobody-pw")], PW_ONLY),
        ],
    },
    Case {
        example: "su.password-then-otp-nullok",
        service: "su",
        steps: &[
            Step::Ok("root", &[Text("root-pw"), Fresh(Root)], PW_OTP),
            Refused("root", &[Text("root-pw"), Last(Root)], PW_OTP),
            Refused("root", &[Text("root-pw"), Text("")], PW_OTP),
            // nobody has no key: the password alone, and only the right one.
            Step::Ok("nobody", &[Text("nobody-pw")], PW_ONLY),
            Refused("nobody", &[Text("wrong")], PW_ONLY),
        ],
    },
];

const SU_COMMON_AUTH: &str = "\
auth\t[success=1 default=ignore]\t@WRAPPER@/pam_matrix.so passdb=@PASSDB@
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
";

struct SuFixture {
    f: Fixture,
    driver: PathBuf,
}

fn su_fixture(example_name: &str) -> Option<SuFixture> {
    if !is_root() {
        eprintln!("SKIP: the su stacks need root (a setuid-root copy of the test application)");
        return None;
    }
    let f = fixture();
    let passdb = f.w.dir.path().join("matrix-passdb");
    fs::write(&passdb, "root:root-pw:su\nnobody:nobody-pw:su\n").unwrap();
    f.w.service(
        "common-auth",
        &SU_COMMON_AUTH.replace("@PASSDB@", &passdb.display().to_string()),
    );
    install_example(&f, "su", example_name);
    let driver = f.w.dir.path().join("pam_driver_setuid");
    fs::copy(driver_path(), &driver).unwrap();
    std::os::unix::fs::chown(&driver, Some(0), Some(0)).unwrap();
    fs::set_permissions(&driver, fs::Permissions::from_mode(0o4755)).unwrap();
    Some(SuFixture { f, driver })
}

/// Runs the setuid copy `driver` as uid 2001 (su's caller), asking for `target`.
fn su(f: &Fixture, driver: &Path, target: &str, answers: &[&str]) -> Run {
    let script = format!("shift; exec {} \"$@\"", driver.display());
    f.w.run(
        "su",
        target,
        &RunOpts {
            answers: answers.iter().map(|a| Answer::from(*a)).collect(),
            confdir: true,
            wrap: [
                "setpriv",
                "--reuid=2001",
                "--regid=2001",
                "--clear-groups",
                "/bin/sh",
                "-c",
                &script,
                "sh",
            ]
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
            ..RunOpts::default()
        },
    )
}

/// Root itself: pam_rootok lets it through without any prompt.
fn su_as_root(f: &Fixture, target: &str) -> Run {
    f.w.run(
        "su",
        target,
        &RunOpts {
            confdir: true,
            ..RunOpts::default()
        },
    )
}

/// A case's installed stack and the last OTP minted per key.
struct Stack {
    f: Fixture,
    /// The setuid copy of the test application (su cases only).
    su_driver: Option<PathBuf>,
    last: [Option<String>; 3],
}

impl Stack {
    /// None when the case cannot run here (su without root; reported).
    fn new(case: &Case) -> Option<Self> {
        let (f, su_driver) = if case.service == "su" {
            let SuFixture { f, driver } = su_fixture(case.example)?;
            (f, Some(driver))
        } else {
            let f = fixture();
            install_example(&f, case.service, case.example);
            (f, None)
        };
        Some(Self {
            f,
            su_driver,
            last: [None, None, None],
        })
    }

    fn key(&mut self, who: Who) -> &mut TestKey {
        match who {
            Who::Alice => &mut self.f.alice,
            Who::Bob => &mut self.f.bob,
            Who::Root => &mut self.f.root,
        }
    }

    fn fresh(&mut self, who: Who) -> String {
        let otp = self.key(who).next();
        self.last[who as usize] = Some(otp.clone());
        otp
    }

    fn last(&self, who: Who) -> String {
        self.last[who as usize]
            .clone()
            .unwrap_or_else(|| panic!("the table uses {who:?}'s last OTP before minting one"))
    }

    fn answer(&mut self, a: A) -> String {
        match a {
            A::Text(t) => t.to_string(),
            A::Fresh(w) => self.fresh(w),
            A::Last(w) => self.last(w),
            A::LastCut(w) => self.last(w)[..43].to_string(),
            A::Stale(w) => self.key(w).otp_at(Counter::new(1, 0)),
            A::TextFresh(t, w) => format!("{t}{}", self.fresh(w)),
            A::TextLast(t, w) => format!("{t}{}", self.last(w)),
        }
    }

    fn exec(&mut self, service: &str, user: &str, answers: &[A]) -> Run {
        let answers: Vec<String> = answers.iter().map(|a| self.answer(*a)).collect();
        let answers: Vec<&str> = answers.iter().map(String::as_str).collect();
        match &self.su_driver {
            Some(driver) => su(&self.f, driver, user, &answers),
            None => run(&self.f, service, user, &answers),
        }
    }

    fn step(&mut self, case: &Case, step: &Step) {
        eprintln!("{} as {}: {step:?}", case.example, case.service);
        match step {
            Step::Ok(user, answers, prompts) => {
                ok(&self.exec(case.service, user, answers), prompts)
            }
            Step::Refused(user, answers, prompts) => {
                refused(&self.exec(case.service, user, answers), prompts);
            }
            Step::OkAsRoot(user) => {
                assert!(self.su_driver.is_some(), "OkAsRoot is for su cases");
                ok(&su_as_root(&self.f, user), &[]);
            }
            Step::MappingMode(mode) => {
                fs::set_permissions(self.f.w.authfile(), fs::Permissions::from_mode(*mode))
                    .unwrap();
            }
            Step::MoveMapping => {
                fs::rename(self.f.w.authfile(), self.f.w.dir.path().join("moved")).unwrap();
            }
            Step::Repeat(n, inner) => {
                for _ in 0..*n {
                    self.step(case, inner);
                }
            }
        }
    }
}

/// The one runner: the case of [`CASES`] for `example` on a fresh fixture,
/// step by step (each step is printed first, so a failure names its step).
fn run_case(example: &str) {
    let case = CASES
        .iter()
        .find(|c| c.example == example)
        .unwrap_or_else(|| panic!("no case for {example}"));
    let Some(mut stack) = Stack::new(case) else {
        return; // su without root: su_fixture printed SKIP
    };
    for step in case.steps {
        stack.step(case, step);
    }
}

/// One test per case, so the cases run in parallel and fail by name.
macro_rules! stack_tests {
    ($($name:ident => $example:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_case($example);
            }
        )*
        /// The examples that have a test function above.
        const WITH_TEST: &[&str] = &[$($example),*];
    };
}

stack_tests! {
    sudo_otp_only => "sudo.otp-only",
    sudo_password_then_otp => "sudo.password-then-otp",
    sudo_password_then_otp_nullok => "sudo.password-then-otp-nullok",
    sudo_otp_only_faillock => "sudo.otp-only-faillock",
    login_otp_only => "login.otp-only",
    login_password_then_otp => "login.password-then-otp",
    login_password_then_otp_nullok => "login.password-then-otp-nullok",
    sshd_key_then_otp => "sshd.key-then-otp",
    sshd_password_otp => "sshd.password-otp",
    su_otp_only => "su.otp-only",
    su_password_then_otp => "su.password-then-otp",
    su_password_then_otp_nullok => "su.password-then-otp-nullok",
}

// ---------------------------------------------------------------- pam-auth-update

/// Debian 12's /etc/pam.d/sudo, untouched: it includes common-auth.
const STOCK_SUDO: &str = "\
#%PAM-1.0

# Set up user limits from /etc/security/limits.conf.
session    required   pam_limits.so

@include common-auth
@include common-account
@include common-session-noninteractive
";

/// Runs the real pam-auth-update on a private root (and a private debconf
/// database) with Debian's unix profile and ours; returns the common-auth it
/// writes with `args`, or None when pam-auth-update is not installed.
fn pam_auth_update(args: &[&str], root: &Path) -> Option<String> {
    let tool = Path::new("/usr/sbin/pam-auth-update");
    if !tool.exists() || !Path::new("/usr/share/pam-configs/unix").exists() {
        return None;
    }
    let configs = root.join("usr/share/pam-configs");
    let pamd = root.join("etc/pam.d");
    let saved = root.join("var/lib/pam");
    let debconf = root.join("debconf");
    if !configs.exists() {
        for d in [&configs, &pamd, &saved, &debconf] {
            fs::create_dir_all(d).unwrap();
        }
        fs::copy("/usr/share/pam-configs/unix", configs.join("unix")).unwrap();
        // Where the packages put it: out of pam-auth-update's sight until
        // `ykmap enable` installs it.
        let source = root.join("usr/share/pam_yubiotp/pam-configs");
        fs::create_dir_all(&source).unwrap();
        fs::copy(
            repo().join("etc/pam-configs/yubiotp"),
            source.join("yubiotp"),
        )
        .unwrap();
        fs::write(
            root.join("debconf.conf"),
            format!(
                "Config: configdb\nTemplates: templatedb\n\nName: configdb\nDriver: File\nFilename: {0}/config.dat\n\nName: templatedb\nDriver: File\nMode: 644\nFilename: {0}/templates.dat\n",
                debconf.display()
            ),
        )
        .unwrap();
    }
    let out = private_debconf(Command::new(tool).arg("--root").arg(root).args(args), root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pam-auth-update {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(fs::read_to_string(pamd.join("common-auth")).unwrap())
}

/// pam-auth-update (or ykmap running it) with the private debconf database.
fn private_debconf<'a>(cmd: &'a mut Command, root: &Path) -> &'a mut Command {
    cmd.env("DEBCONF_SYSTEMRC", root.join("debconf.conf"))
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
}

/// `ykmap enable --root ROOT --config CONFIG`.
fn ykmap_enable(root: &Path, config: &Path) -> std::process::Output {
    private_debconf(
        Command::new(env!("CARGO_BIN_EXE_yubiotp-test-ykmap"))
            .arg("enable")
            .arg("--root")
            .arg(root)
            .arg("--config")
            .arg(config),
        root,
    )
    .output()
    .unwrap()
}

#[test]
fn pam_auth_update_profile() {
    let root = yubiotp_testsupport::tempdir();
    let debconf_before = fs::read("/var/cache/debconf/config.dat").ok();
    let pamd = root.path().join("etc/pam.d");
    // A fresh root: --force writes every common-* from the profiles.
    let Some(_) = pam_auth_update(&["--force"], root.path()) else {
        eprintln!("SKIP: pam-auth-update is not installed");
        return;
    };
    let stock = fs::read_to_string(pamd.join("common-auth")).unwrap();
    assert!(
        !stock.contains("pam_yubiotp"),
        "not enabled by default:\n{stock}"
    );
    let mut f = fixture();

    // An unconfigured install (the example config: cloud mode, no id) would
    // refuse every login once enabled, so `ykmap enable` refuses to enable
    // it and changes nothing: the profile stays out of pam-auth-update's
    // sight, and password logins go on as before, with and without a key.
    let unconfigured = f.w.dir.path().join("unconfigured.toml");
    fs::copy(repo().join("etc/yubiotp.toml"), &unconfigured).unwrap();
    fs::set_permissions(&unconfigured, fs::Permissions::from_mode(0o600)).unwrap();
    let out = ykmap_enable(root.path(), &unconfigured);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("profile was not installed"), "{stderr}");
    assert!(stdout.contains("id"), "names what is missing: {stdout}");
    assert!(!root.path().join("usr/share/pam-configs/yubiotp").exists());
    let after_refusal = pam_auth_update(&["--enable", "yubiotp"], root.path()).unwrap();
    assert_eq!(
        after_refusal, stock,
        "pam-auth-update cannot see the profile"
    );
    f.w.service("common-auth", &after_refusal);
    f.w.service("sudo", &localize_includes(&f.w, STOCK_SUDO));
    ok(&run(&f, "sudo", "alice", &[ALICE_PW]), &[PW_PROMPT]);
    ok(&run(&f, "sudo", "carol", &[CAROL_PW]), &[PW_PROMPT]);

    // Configured (the fixture's local mode, keys and mapping): enabled,
    // with the checked config as the module's argument.
    let out = ykmap_enable(root.path(), &f.w.config());
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let enabled = fs::read_to_string(pamd.join("common-auth")).unwrap();
    let line = enabled
        .lines()
        .find(|l| l.contains("pam_yubiotp.so"))
        .unwrap_or_else(|| panic!("enabled:\n{enabled}"));
    let config_arg = format!("config={}", f.w.config().display());
    assert!(
        line.split_whitespace().eq([
            "auth",
            "required",
            "pam_yubiotp.so",
            "nullok",
            config_arg.as_str()
        ]),
        "{line}"
    );
    let unix = enabled.find("pam_unix.so").unwrap();
    let permit = enabled.find("pam_permit.so").unwrap();
    assert!(
        unix < permit && permit < enabled.find("pam_yubiotp.so").unwrap(),
        "{enabled}"
    );

    // The generated common-auth under Debian's stock sudo stack.
    f.w.service(
        "common-auth",
        &enabled.replace("pam_yubiotp.so", "@MODULE@"),
    );
    let otp = f.alice.next();
    ok(
        &run(&f, "sudo", "alice", &[ALICE_PW, &otp]),
        &[PW_PROMPT, OTP_PROMPT],
    );
    refused(
        &run(&f, "sudo", "alice", &[ALICE_PW, &otp]),
        &[PW_PROMPT, OTP_PROMPT],
    );
    let alice_otp = f.alice.next();
    refused(
        &run(&f, "sudo", "alice", &["wrong", &alice_otp]),
        &[PW_PROMPT],
    );
    ok(&run(&f, "sudo", "carol", &[CAROL_PW]), &[PW_PROMPT]);
    refused(&run(&f, "sudo", "carol", &["wrong"]), &[PW_PROMPT]);

    // --disable and --remove (what uninstall and prerm run) take it out.
    let disabled = pam_auth_update(&["--disable", "yubiotp"], root.path()).unwrap();
    assert!(!disabled.contains("pam_yubiotp"), "{disabled}");
    pam_auth_update(&["--enable", "yubiotp"], root.path()).unwrap();
    let removed = pam_auth_update(&["--remove", "yubiotp"], root.path()).unwrap();
    assert!(!removed.contains("pam_yubiotp"), "{removed}");
    // `ykmap disable` takes it out and deletes the profile.
    pam_auth_update(&["--enable", "yubiotp"], root.path()).unwrap();
    let out = private_debconf(
        Command::new(env!("CARGO_BIN_EXE_yubiotp-test-ykmap"))
            .arg("disable")
            .arg("--root")
            .arg(root.path()),
        root.path(),
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let disabled = fs::read_to_string(pamd.join("common-auth")).unwrap();
    assert!(!disabled.contains("pam_yubiotp"), "{disabled}");
    assert!(!root.path().join("usr/share/pam-configs/yubiotp").exists());
    // The system's own debconf database was not touched.
    assert_eq!(
        fs::read("/var/cache/debconf/config.dat").ok(),
        debconf_before
    );
}

/// Examples whose case lives in another test file, because they need more
/// than this fixture: the screen locker runs as an unprivileged user with
/// the setuid verifier (tests/tests/verifier.rs,
/// `screenlocker_recipe_as_the_unprivileged_user`).
const ELSEWHERE: &[&str] = &["screenlocker.otp"];

#[test]
fn every_example_stack_is_exercised() {
    // The stacks of CASES by name: a new example without a case fails here.
    let tested: Vec<&str> = CASES.iter().map(|c| c.example).collect();
    // ... and every case has its test function.
    let mut with_test = WITH_TEST.to_vec();
    with_test.sort_unstable();
    let mut cases = tested.clone();
    cases.sort_unstable();
    assert_eq!(with_test, cases, "stack_tests! lists every case once");
    let mut found: Vec<String> = fs::read_dir(repo().join("etc/pam.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut tested: Vec<String> = tested
        .iter()
        .chain(ELSEWHERE.iter())
        .map(|s| (*s).to_string())
        .collect();
    tested.sort();
    assert_eq!(found, tested);
}
