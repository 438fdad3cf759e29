//! The checks: the sshd settings and the auth stack against the recipe
//! they configure, each misconfiguration named in plain words.

use core::fmt;

use super::pam_stack::{Control, Item, Rule, parse_auth_stack};
use super::recipe::{Recipe, recipe};
use super::sshd_t::{Method, SshdSettings, list_text, parse_sshd_t};

/// What kind of misconfiguration a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The `sshd -T` text lacks settings every sshd prints.
    SshdOutputIncomplete,
    /// `UsePAM no`.
    UsePamOff,
    /// `KbdInteractiveAuthentication no` while keyboard-interactive is needed.
    KbdInteractiveOff,
    /// Neither keyboard-interactive nor password authentication is enabled.
    NoPamMethod,
    /// `AuthenticationMethods any` with a method that skips PAM enabled.
    MethodsAny,
    /// A list in `AuthenticationMethods` logs in without any PAM method.
    ListWithoutPam,
    /// A list in `AuthenticationMethods` uses `keyboard-interactive` with a
    /// device other than PAM.
    KbdInteractiveNotPam,
    /// A list logs in with PAM alone while the stack asks only for the OTP.
    OtpAlone,
    /// `pam_yubiotp.so` is not in the auth stack.
    ModuleMissing,
    /// `pam_yubiotp.so` is `optional`: its failure does not count.
    ModuleOptional,
    /// A `sufficient` rule or a success jump before the module skips it.
    ModuleSkipped,
    /// Key-then-OTP recipe, but the stack asks for the system password too.
    PasswordAsked,
    /// Helper recipe: forwarding (TCP, agent, X11, stream-local or tunnel)
    /// is possible without a session, so without the OTP.
    HelperForwarding,
    /// Helper recipe: `PermitUserEnvironment` lets a user set
    /// `SSH_ORIGINAL_COMMAND` or `LD_PRELOAD` for the helper.
    HelperUserEnvironment,
    /// Helper recipe: `AcceptEnv` takes more than `YUBIOTP` (and the
    /// harmless locale variables).
    HelperAcceptEnv,
    /// Helper recipe: `internal-sftp` with a chroot, which the mapped
    /// system sftp-server cannot give.
    HelperInternalSftp,
}

/// One misconfiguration, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The explanation, naming the setting or the PAM line and the fix.
    pub message: String,
}

impl Problem {
    fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks the sshd settings (`sshd -T` text) and the sshd PAM stack (text,
/// expanded by [`expand_stack`](super::expand_stack) or raw) and names every problem found.
/// An empty list means the setup is one of the two supported recipes.
#[must_use]
pub fn check(sshd_t_output: &str, pam_stack: &str) -> Vec<Problem> {
    let s = parse_sshd_t(sshd_t_output);
    if recipe(&s) == Recipe::Helper {
        return check_helper(&s);
    }
    let stack = parse_auth_stack(pam_stack);
    let mut out = check_sshd(&s);
    out.extend(check_stack(&stack, recipe(&s), &s));
    out
}

/// Environment variables a client may send to a helper session: the OTP
/// and Debian's default locale set.
const ACCEPTABLE_ENV: &[&str] = &["YUBIOTP", "LANG", "LC_*"];

/// The helper recipe (`ForceCommand yubiotp-ssh`): the PAM stack is not
/// involved; what matters is that nothing gets through without a session.
fn check_helper(s: &SshdSettings) -> Vec<Problem> {
    use ProblemKind as K;
    let mut out = Vec::new();
    let disabled = s.yes("disableforwarding") == Some(true);
    let mut open: Vec<&str> = Vec::new();
    if !disabled {
        for (key, name) in [
            ("allowtcpforwarding", "AllowTcpForwarding"),
            ("allowagentforwarding", "AllowAgentForwarding"),
            ("allowstreamlocalforwarding", "AllowStreamLocalForwarding"),
            ("x11forwarding", "X11Forwarding"),
        ] {
            if s.get(key).is_none_or(|v| !v.eq_ignore_ascii_case("no")) {
                open.push(name);
            }
        }
    }
    if s.get("permittunnel")
        .is_none_or(|v| !v.eq_ignore_ascii_case("no"))
    {
        open.push("PermitTunnel");
    }
    if !open.is_empty() {
        out.push(Problem::new(
            K::HelperForwarding,
            format!(
                "ForceCommand yubiotp-ssh gates sessions, not connections, and {} allows forwarding without a session, so without an OTP: set `DisableForwarding yes` and `PermitTunnel no` in the same Match block",
                open.join(", ")
            ),
        ));
    }
    if s.get("permituserenvironment")
        .is_none_or(|v| !v.eq_ignore_ascii_case("no"))
    {
        out.push(Problem::new(
            K::HelperUserEnvironment,
            "PermitUserEnvironment is not no: a user's ~/.ssh/environment could set SSH_ORIGINAL_COMMAND or LD_PRELOAD for yubiotp-ssh. Set `PermitUserEnvironment no`",
        ));
    }
    let broad: Vec<&str> = s
        .get("acceptenv")
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty() && !ACCEPTABLE_ENV.contains(p))
        .collect();
    if !broad.is_empty() {
        out.push(Problem::new(
            K::HelperAcceptEnv,
            format!(
                "AcceptEnv takes {} from the client: the helper needs only YUBIOTP (a client variable must never reach SSH_ORIGINAL_COMMAND, LD_* or the shell's start-up). Set `AcceptEnv YUBIOTP`",
                broad.join(" ")
            ),
        ));
    }
    let internal = s
        .get("subsystem")
        .is_some_and(|v| v.split_whitespace().nth(1) == Some("internal-sftp"));
    let chroot = s
        .get("chrootdirectory")
        .is_some_and(|v| !v.eq_ignore_ascii_case("none"));
    if internal && chroot {
        out.push(Problem::new(
            K::HelperInternalSftp,
            "Subsystem sftp is internal-sftp with a ChrootDirectory: yubiotp-ssh runs /usr/lib/openssh/sftp-server in its place, which the chroot does not hold. Use `Subsystem sftp /usr/lib/openssh/sftp-server` and a chroot that contains it, or the keyboard-interactive recipe",
        ));
    }
    out
}

fn check_sshd(s: &SshdSettings) -> Vec<Problem> {
    use ProblemKind as K;
    let mut out = Vec::new();
    if s.get("usepam").is_none() || s.get("authenticationmethods").is_none() {
        out.push(Problem::new(
            K::SshdOutputIncomplete,
            "the sshd -T output lacks usepam or authenticationmethods: run `sshd -T` as root \
             (it needs the host keys and /run/sshd) and pass its whole output",
        ));
    }
    if s.yes("usepam") == Some(false) {
        out.push(Problem::new(
            K::UsePamOff,
            "UsePAM is no: sshd never runs the PAM stack, so the OTP is never asked. \
             Set `UsePAM yes`",
        ));
    }
    let kbd = s.kbd_interactive().unwrap_or(false);
    let password = s.yes("passwordauthentication").unwrap_or(false);
    let pubkey = s.yes("pubkeyauthentication").unwrap_or(true);
    match s.method_lists() {
        None => {
            if !kbd && !password {
                out.push(Problem::new(
                    K::NoPamMethod,
                    "both KbdInteractiveAuthentication and PasswordAuthentication are no: \
                     no login method runs the PAM stack, so the OTP is never asked. \
                     Set `KbdInteractiveAuthentication yes`",
                ));
            }
            let mut skipping = Vec::new();
            if pubkey {
                skipping.push("publickey");
            }
            if s.yes("hostbasedauthentication") == Some(true) {
                skipping.push("hostbased");
            }
            if s.yes("gssapiauthentication") == Some(true) {
                skipping.push("gssapi-with-mic");
            }
            if !skipping.is_empty() {
                out.push(Problem::new(
                    K::MethodsAny,
                    format!(
                        "AuthenticationMethods is not set (any): {} alone logs a user in and \
                         never runs PAM, so no OTP is asked. Set \
                         `AuthenticationMethods publickey,keyboard-interactive:pam`",
                        skipping.join(", ")
                    ),
                ));
            }
        }
        Some(lists) => {
            let names_kbd = lists.iter().flatten().any(Method::is_kbd);
            if names_kbd && !kbd {
                out.push(Problem::new(
                    K::KbdInteractiveOff,
                    "KbdInteractiveAuthentication is no, but AuthenticationMethods needs \
                     keyboard-interactive: sshd refuses to start or nobody can log in. \
                     Set `KbdInteractiveAuthentication yes`",
                ));
            }
            if !names_kbd && !kbd && !password {
                out.push(Problem::new(
                    K::NoPamMethod,
                    "both KbdInteractiveAuthentication and PasswordAuthentication are no: \
                     no login method runs the PAM stack. Set `KbdInteractiveAuthentication yes`",
                ));
            }
            for list in &lists {
                for m in list.iter().filter(|m| m.is_kbd() && !m.uses_pam()) {
                    out.push(Problem::new(
                        K::KbdInteractiveNotPam,
                        format!(
                            "AuthenticationMethods list `{}` uses {m}, which is not PAM: write \
                             keyboard-interactive:pam",
                            list_text(list)
                        ),
                    ));
                }
                if !list.iter().any(Method::uses_pam) {
                    out.push(Problem::new(
                        K::ListWithoutPam,
                        format!(
                            "AuthenticationMethods list `{}` logs a user in without PAM, so \
                             without an OTP: every list needs keyboard-interactive:pam \
                             (e.g. `publickey,keyboard-interactive:pam`)",
                            list_text(list)
                        ),
                    ));
                }
            }
        }
    }
    out
}

fn check_stack(stack: &[Item], recipe: Recipe, s: &SshdSettings) -> Vec<Problem> {
    use ProblemKind as K;
    let mut out = Vec::new();
    let Some(path) = find_ours(stack) else {
        let unexpanded: Vec<String> = stack
            .iter()
            .filter_map(|i| match i {
                Item::Unexpanded { file, .. } => Some(file.clone()),
                _ => None,
            })
            .collect();
        let hint = if unexpanded.is_empty() {
            String::new()
        } else {
            format!(
                " (not checked inside the included {}; pass the expanded stack)",
                unexpanded.join(", ")
            )
        };
        out.push(Problem::new(
            K::ModuleMissing,
            format!(
                "pam_yubiotp.so is not in the auth part of the sshd PAM stack: sshd never asks \
                 for the OTP{hint}. Add `auth required pam_yubiotp.so`"
            ),
        ));
        return out;
    };
    // The rule itself and the items that come before it, scope by scope.
    let mut scope = stack;
    let mut before: Vec<&Item> = Vec::new();
    let mut ours: Option<&Rule> = None;
    for idx in &path {
        let Some(item) = scope.get(*idx) else { break };
        // Skips within this scope.
        for (i, prior) in scope.iter().enumerate().take(*idx) {
            if let Item::Rule(r) = prior {
                match r.control.on_success() {
                    Some(None) => out.push(Problem::new(
                        K::ModuleSkipped,
                        format!(
                            "{} comes before pam_yubiotp.so and ends the stack when it succeeds \
                             ({}): the OTP is then never asked. Move pam_yubiotp.so above it or \
                             make it `required`",
                            prior.describe(),
                            control_text(&r.control)
                        ),
                    )),
                    Some(Some(n)) if i + n >= *idx => out.push(Problem::new(
                        K::ModuleSkipped,
                        format!(
                            "{} jumps over pam_yubiotp.so when it succeeds (success={n}): the \
                             OTP is then never asked. Fix the jump count",
                            prior.describe()
                        ),
                    )),
                    _ => {}
                }
            }
        }
        before.extend(scope.iter().take(*idx));
        match item {
            Item::Substack { items, .. } => scope = items,
            Item::Rule(r) => ours = Some(r),
            Item::Unexpanded { .. } => break,
        }
    }
    if let Some(r) = ours
        && r.control == Control::Optional
    {
        out.push(Problem::new(
            K::ModuleOptional,
            format!(
                "pam_yubiotp.so is `optional` ({}): a wrong OTP does not fail the login. \
                 Make it `required`",
                r.origin
            ),
        ));
    }
    if recipe == Recipe::KeyThenOtp {
        for item in before.iter().filter(|i| i.asks_password()) {
            out.push(Problem::new(
                K::PasswordAsked,
                format!(
                    "{} comes before pam_yubiotp.so: after the public key sshd asks for the \
                     system password, not only the OTP. For key-then-OTP replace \
                     `@include common-auth` with `auth required pam_yubiotp.so`",
                    item.describe()
                ),
            ));
        }
        let stack_has_password = stack.iter().any(Item::asks_password);
        if !stack_has_password && let Some(lists) = s.method_lists() {
            for list in lists
                .iter()
                .filter(|l| !l.iter().any(|m| m.name == "publickey"))
                .filter(|l| l.iter().any(Method::uses_pam))
            {
                out.push(Problem::new(
                    K::OtpAlone,
                    format!(
                        "AuthenticationMethods list `{}` has no public key, and the PAM stack \
                         asks only for the OTP: an OTP alone logs a user in. Remove that list",
                        list_text(list)
                    ),
                ));
            }
        }
    }
    out
}

fn control_text(c: &Control) -> String {
    match c {
        Control::Required => "required".into(),
        Control::Requisite => "requisite".into(),
        Control::Sufficient => "sufficient".into(),
        Control::Optional => "optional".into(),
        Control::Bracket(pairs) => format!(
            "[{}]",
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Index path to the first rule for our module (through substacks).
fn find_ours(items: &[Item]) -> Option<Vec<usize>> {
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Rule(r) if r.is_ours() => return Some(vec![i]),
            Item::Substack { items: inner, .. } if item.contains_ours() => {
                let mut p = vec![i];
                p.extend(find_ours(inner)?);
                return Some(p);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::fixtures::*;
    use crate::ssh::{expand_stack, parse_sshd_t};

    #[test]
    fn key_then_otp_recipe_is_clean() {
        let p = check(&key_then_otp_sshd(), &key_then_otp_stack());
        assert!(p.is_empty(), "{p:#?}");
        let expanded = expand_stack(&key_then_otp_stack(), &loader);
        let p = check(&key_then_otp_sshd(), &expanded);
        assert!(p.is_empty(), "{p:#?}");
    }

    #[test]
    fn password_plus_otp_recipe_is_clean() {
        let sshd = DEBIAN_STOCK
            .replace("pubkeyauthentication yes", "pubkeyauthentication no")
            .replace(
                "authenticationmethods any",
                "authenticationmethods password",
            );
        let stack = DEBIAN_SSHD_PAM.replace(
            "@include common-auth",
            "auth requisite pam_yubiotp.so try_first_pass\nauth required pam_unix.so use_first_pass",
        );
        let p = check(&sshd, &stack);
        assert!(p.is_empty(), "{p:#?}");
        // The same with AuthenticationMethods left at any but no public keys.
        let sshd_any = sshd.replace(
            "authenticationmethods password",
            "authenticationmethods any",
        );
        assert!(check(&sshd_any, &stack).is_empty());
    }

    #[test]
    fn debian_stock_is_wrong_in_every_way_that_matters() {
        let p = check(DEBIAN_STOCK, DEBIAN_SSHD_PAM);
        assert_eq!(
            kinds(&p),
            vec![ProblemKind::MethodsAny, ProblemKind::ModuleMissing],
            "{p:#?}"
        );
        let missing = p
            .iter()
            .find(|p| p.kind == ProblemKind::ModuleMissing)
            .unwrap();
        assert!(missing.message.contains("common-auth"), "{missing}");
        let any = p
            .iter()
            .find(|p| p.kind == ProblemKind::MethodsAny)
            .unwrap();
        assert!(any.message.contains("publickey alone"), "{any}");
    }

    /// `sshd -T -C user=…` for a user matched by the helper snippet
    /// (sshd keeps the first value: the Match lines come first here).
    fn helper_sshd(extra: &str) -> String {
        format!(
            "{extra}forcecommand /usr/bin/yubiotp-ssh\ndisableforwarding yes\npermittunnel no\n\
             permituserenvironment no\nacceptenv LANG LC_* YUBIOTP\nusepam no\n{DEBIAN_STOCK}"
        )
    }

    #[test]
    fn helper_recipe_is_clean_and_needs_no_pam() {
        let s = parse_sshd_t(&helper_sshd(""));
        assert_eq!(recipe(&s), Recipe::Helper);
        // UsePAM no and the stock stack: fine for the helper.
        let p = check(&helper_sshd(""), DEBIAN_SSHD_PAM);
        assert!(p.is_empty(), "{p:#?}");
        // By another path, with the forwarding keywords one by one.
        let p = check(
            &helper_sshd(
                "forcecommand /opt/bin/yubiotp-ssh\ndisableforwarding no\nallowtcpforwarding no\n\
                 allowagentforwarding no\nallowstreamlocalforwarding no\nx11forwarding no\n",
            ),
            "",
        );
        assert!(p.is_empty(), "{p:#?}");
        // Another ForceCommand is not the helper recipe.
        assert_ne!(
            recipe(&parse_sshd_t(&helper_sshd(
                "forcecommand /usr/bin/yubiotp-sshx\n"
            ))),
            Recipe::Helper
        );
    }

    #[test]
    fn helper_recipe_problems() {
        let one = |extra: &str| kinds(&check(&helper_sshd(extra), ""));
        assert_eq!(
            one("disableforwarding no\n"),
            vec![ProblemKind::HelperForwarding]
        );
        assert_eq!(
            one("permittunnel yes\n"),
            vec![ProblemKind::HelperForwarding]
        );
        assert_eq!(
            one("permituserenvironment yes\n"),
            vec![ProblemKind::HelperUserEnvironment]
        );
        assert_eq!(
            one("permituserenvironment SSH_*\n"),
            vec![ProblemKind::HelperUserEnvironment]
        );
        assert_eq!(one("acceptenv *\n"), vec![ProblemKind::HelperAcceptEnv]);
        assert_eq!(
            one("acceptenv YUBIOTP SSH_ORIGINAL_COMMAND\n"),
            vec![ProblemKind::HelperAcceptEnv]
        );
        assert_eq!(
            one("subsystem sftp internal-sftp\nchrootdirectory /srv/%u\n"),
            vec![ProblemKind::HelperInternalSftp]
        );
        // internal-sftp alone is mapped by the helper.
        assert!(one("subsystem sftp internal-sftp\n").is_empty());
    }

    #[test]
    fn use_pam_no() {
        let sshd = key_then_otp_sshd().replace("usepam yes", "usepam no");
        let p = check(&sshd, &key_then_otp_stack());
        assert_eq!(kinds(&p), vec![ProblemKind::UsePamOff]);
        assert!(p[0].message.contains("UsePAM is no"));
    }

    #[test]
    fn kbd_interactive_disabled() {
        let sshd = key_then_otp_sshd().replace(
            "kbdinteractiveauthentication yes",
            "kbdinteractiveauthentication no",
        );
        let p = check(&sshd, &key_then_otp_stack());
        assert_eq!(kinds(&p), vec![ProblemKind::KbdInteractiveOff], "{p:#?}");
        // Older sshd print challengeresponseauthentication only.
        let old = key_then_otp_sshd()
            .replace("kbdinteractiveauthentication yes\n", "")
            .replace(
                "usepam yes",
                "usepam yes\nchallengeresponseauthentication no",
            );
        assert_eq!(
            kinds(&check(&old, &key_then_otp_stack())),
            vec![ProblemKind::KbdInteractiveOff]
        );
        // Neither PAM method at all, methods any, public keys off.
        let none = DEBIAN_STOCK
            .replace("passwordauthentication yes", "passwordauthentication no")
            .replace("pubkeyauthentication yes", "pubkeyauthentication no");
        assert_eq!(
            kinds(&check(&none, &key_then_otp_stack())),
            vec![ProblemKind::NoPamMethod]
        );
    }

    #[test]
    fn authentication_methods_missing_or_without_otp() {
        let any = key_then_otp_sshd().replace(
            "authenticationmethods publickey,keyboard-interactive:pam",
            "authenticationmethods any",
        );
        let p = check(&any, &key_then_otp_stack());
        assert_eq!(kinds(&p), vec![ProblemKind::MethodsAny]);
        assert!(p[0].message.contains("AuthenticationMethods"));
        // Absent entirely counts as incomplete output and as any.
        let absent = key_then_otp_sshd().replace(
            "authenticationmethods publickey,keyboard-interactive:pam\n",
            "",
        );
        assert_eq!(
            kinds(&check(&absent, &key_then_otp_stack())),
            vec![ProblemKind::SshdOutputIncomplete, ProblemKind::MethodsAny]
        );
        // An alternative list with a key only.
        let alt = key_then_otp_sshd().replace(
            "authenticationmethods publickey,keyboard-interactive:pam",
            "authenticationmethods publickey,keyboard-interactive:pam publickey",
        );
        let p = check(&alt, &key_then_otp_stack());
        assert_eq!(kinds(&p), vec![ProblemKind::ListWithoutPam]);
        assert!(p[0].message.contains("`publickey`"), "{}", p[0]);
        // Keyboard-interactive before the key: still both, but not key-then-OTP.
        let rev = key_then_otp_sshd().replace(
            "authenticationmethods publickey,keyboard-interactive:pam",
            "authenticationmethods keyboard-interactive:pam,publickey",
        );
        assert_eq!(recipe(&parse_sshd_t(&rev)), Recipe::Other);
        // A BSD auth device.
        let bsd =
            key_then_otp_sshd().replace("keyboard-interactive:pam", "keyboard-interactive:bsdauth");
        assert!(
            kinds(&check(&bsd, &key_then_otp_stack())).contains(&ProblemKind::KbdInteractiveNotPam)
        );
        // An OTP-only list next to the key list, with an OTP-only stack.
        let otp_alone = key_then_otp_sshd().replace(
            "authenticationmethods publickey,keyboard-interactive:pam",
            "authenticationmethods publickey,keyboard-interactive:pam password",
        );
        let p = check(&otp_alone, &key_then_otp_stack());
        assert_eq!(kinds(&p), vec![ProblemKind::OtpAlone], "{p:#?}");
    }

    #[test]
    fn password_still_asked_after_the_key() {
        // The stock stack plus our module after common-auth, unexpanded.
        let stack = DEBIAN_SSHD_PAM.replace(
            "@include common-auth",
            "@include common-auth\nauth required pam_yubiotp.so",
        );
        let p = check(&key_then_otp_sshd(), &stack);
        assert_eq!(kinds(&p), vec![ProblemKind::PasswordAsked], "{p:#?}");
        assert!(p[0].message.contains("common-auth"));
        // Expanded: pam_unix is named, with its file and line.
        let p = check(&key_then_otp_sshd(), &expand_stack(&stack, &loader));
        assert_eq!(kinds(&p), vec![ProblemKind::PasswordAsked], "{p:#?}");
        assert!(
            p[0].message.contains("pam_unix.so (common-auth line 1)"),
            "{}",
            p[0]
        );
        // The same stack is right for password-then-OTP over keyboard-interactive.
        let kbd_only = key_then_otp_sshd()
            .replace("pubkeyauthentication yes", "pubkeyauthentication no")
            .replace(
                "authenticationmethods publickey,keyboard-interactive:pam",
                "authenticationmethods keyboard-interactive:pam",
            );
        assert!(check(&kbd_only, &stack).is_empty());
        // A password module of another kind (SSSD) on its own line.
        let sss = key_then_otp_stack().replace(
            "auth required pam_yubiotp.so",
            "auth required pam_sss.so\nauth required pam_yubiotp.so",
        );
        assert_eq!(
            kinds(&check(&key_then_otp_sshd(), &sss)),
            vec![ProblemKind::PasswordAsked]
        );
    }

    #[test]
    fn module_absent_or_optional() {
        let p = check(&key_then_otp_sshd(), "auth required pam_permit.so\n");
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleMissing]);
        // Only in the account part does not count.
        let p = check(
            &key_then_otp_sshd(),
            "account required pam_yubiotp.so\nauth required pam_permit.so\n",
        );
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleMissing]);
        // Commented out does not count.
        let p = check(&key_then_otp_sshd(), "#auth required pam_yubiotp.so\n");
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleMissing]);
        let p = check(
            &key_then_otp_sshd(),
            "auth optional /lib/x86_64-linux-gnu/security/pam_yubiotp.so\n",
        );
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleOptional]);
        // A build used in place is recognised; a look-alike is not.
        let p = check(
            &key_then_otp_sshd(),
            "auth required /src/target/release/libpam_yubiotp.so\n",
        );
        assert!(p.is_empty(), "{p:#?}");
        let p = check(&key_then_otp_sshd(), "auth required pam_yubiotp.so.bak\n");
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleMissing]);
    }

    #[test]
    fn module_skipped_by_sufficient_or_jump() {
        let sshd = key_then_otp_sshd();
        let p = check(
            &sshd,
            "auth sufficient pam_permit.so\nauth required pam_yubiotp.so\n",
        );
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleSkipped]);
        assert!(p[0].message.contains("pam_permit.so"), "{}", p[0]);
        let p = check(
            &sshd,
            "auth [success=done default=ignore] pam_succeed_if.so user ingroup admins\nauth required pam_yubiotp.so\n",
        );
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleSkipped]);
        // A jump of 2 over pam_deny and our module.
        let p = check(
            &sshd,
            "auth [success=2 default=ignore] pam_succeed_if.so uid < 1000\nauth requisite pam_deny.so\nauth required pam_yubiotp.so\nauth required pam_permit.so\n",
        );
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleSkipped], "{p:#?}");
        // A jump of 1 lands on our module: fine (Debian's common-auth shape).
        let p = check(
            &sshd,
            "auth [success=1 default=ignore] pam_succeed_if.so uid < 1000\nauth requisite pam_deny.so\nauth required pam_yubiotp.so\n",
        );
        assert!(p.is_empty(), "{p:#?}");
        // After our module, sufficient is harmless.
        let p = check(
            &sshd,
            "auth required pam_yubiotp.so\nauth sufficient pam_permit.so\n",
        );
        assert!(p.is_empty(), "{p:#?}");
        // A sufficient inside a substack only ends the substack.
        let p = check(
            &sshd,
            "# >>> substack extra\nauth sufficient pam_permit.so\n# <<< substack extra\nauth required pam_yubiotp.so\n",
        );
        assert!(p.is_empty(), "{p:#?}");
        // ... but a success=1 jump over the whole substack that holds our module skips it.
        let p = check(
            &sshd,
            "auth [success=1 default=ignore] pam_rootok.so\n# >>> substack otp\nauth required pam_yubiotp.so\n# <<< substack otp\n",
        );
        assert_eq!(kinds(&p), vec![ProblemKind::ModuleSkipped], "{p:#?}");
    }
}
