//! Checks an sshd setup for the two supported SSH recipes (SPEC §10):
//!
//! - **key, then OTP**: `AuthenticationMethods publickey,keyboard-interactive:pam`,
//!   `KbdInteractiveAuthentication yes`, `UsePAM yes`, and an sshd PAM auth
//!   stack that asks only for the OTP (no system password);
//! - **password+OTP**: sshd's `password` or `keyboard-interactive` method
//!   with `pam_yubiotp.so` (which hands the password part to
//!   `pam_unix.so use_first_pass`).
//!
//! [`check`] is pure: it takes the text of `sshd -T` and the text of the
//! sshd PAM stack and returns every problem found, in plain words.
//! [`read_and_check`] is the thin reader around it: it runs `sshd -T` and
//! reads `/etc/pam.d/sshd`, following `@include`, `include` and `substack`.
//!
//! The reader marks what it inlined with comment lines
//! (`# >>> include FILE` … `# <<< include FILE`, same for `substack`), so
//! [`check`] knows where each rule came from and which rules a substack
//! holds. An `@include` line that was not expanded (the pure function was
//! given the raw file) is judged by its name: `common-auth`,
//! `password-auth` and `system-auth` are the distribution's password stack.

use core::fmt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The module's file name as it appears on a PAM line.
pub const MODULE: &str = "pam_yubiotp.so";

/// The name cargo gives the built module (`target/release/libpam_yubiotp.so`),
/// also recognised when a PAM line points at a build directly.
pub const MODULE_BUILD_NAME: &str = "libpam_yubiotp.so";

/// Modules that ask for (or check) the system password.
pub const PASSWORD_MODULES: &[&str] = &[
    "pam_unix.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_userdb.so",
    "pam_radius_auth.so",
    "pam_systemd_home.so",
];

/// Included files that stand for the distribution's password stack.
pub const PASSWORD_STACKS: &[&str] = &["common-auth", "password-auth", "system-auth"];

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

/// The settings of `sshd -T` that matter here (keys are lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshdSettings {
    values: BTreeMap<String, String>,
}

impl SshdSettings {
    /// The value of `key` (lower case), as printed by `sshd -T`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn yes(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v.eq_ignore_ascii_case("yes"))
    }

    /// Whether keyboard-interactive authentication is on (older sshd also
    /// print `challengeresponseauthentication`).
    #[must_use]
    pub fn kbd_interactive(&self) -> Option<bool> {
        self.yes("kbdinteractiveauthentication")
            .or_else(|| self.yes("challengeresponseauthentication"))
    }

    /// `AuthenticationMethods` as lists of methods; `None` for `any` (or
    /// when absent).
    #[must_use]
    pub fn method_lists(&self) -> Option<Vec<Vec<Method>>> {
        let v = self.get("authenticationmethods")?;
        if v.trim().eq_ignore_ascii_case("any") || v.trim().is_empty() {
            return None;
        }
        Some(
            v.split_whitespace()
                .map(|list| list.split(',').map(Method::parse).collect())
                .collect(),
        )
    }
}

/// One method of an `AuthenticationMethods` list, e.g. `keyboard-interactive:pam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `publickey`, `password`, `keyboard-interactive`, …
    pub name: String,
    /// The part after `:`, if any (`pam` for keyboard-interactive).
    pub sub: Option<String>,
}

impl Method {
    fn parse(s: &str) -> Self {
        match s.split_once(':') {
            Some((n, sub)) => Self {
                name: n.to_ascii_lowercase(),
                sub: Some(sub.to_ascii_lowercase()),
            },
            None => Self {
                name: s.to_ascii_lowercase(),
                sub: None,
            },
        }
    }

    fn is_kbd(&self) -> bool {
        self.name == "keyboard-interactive"
    }

    /// Whether sshd runs the PAM auth stack for this method.
    fn uses_pam(&self) -> bool {
        self.name == "password" || (self.is_kbd() && self.sub.as_deref().is_none_or(|s| s == "pam"))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sub {
            Some(s) => write!(f, "{}:{s}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn list_text(list: &[Method]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the text printed by `sshd -T`: one `keyword value…` per line.
#[must_use]
pub fn parse_sshd_t(text: &str) -> SshdSettings {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        values
            .entry(k.to_ascii_lowercase())
            .or_insert_with(|| v.trim().to_string());
    }
    SshdSettings { values }
}

/// How a PAM rule's result is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `required`
    Required,
    /// `requisite`
    Requisite,
    /// `sufficient`
    Sufficient,
    /// `optional`
    Optional,
    /// `[value=action …]`, the pairs in lower case.
    Bracket(Vec<(String, String)>),
}

impl Control {
    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "required" => Self::Required,
            "requisite" => Self::Requisite,
            "sufficient" => Self::Sufficient,
            "optional" => Self::Optional,
            other => Self::Bracket(
                other
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    /// What happens when the module succeeds: `Some(None)` = the stack
    /// ends (`done`), `Some(Some(n))` = the next `n` rules are skipped,
    /// `None` = evaluation goes on to the next rule.
    fn on_success(&self) -> Option<Option<usize>> {
        match self {
            Self::Sufficient => Some(None),
            Self::Bracket(pairs) => {
                let action = pairs
                    .iter()
                    .find(|(k, _)| k == "success")
                    .or_else(|| pairs.iter().find(|(k, _)| k == "default"))
                    .map(|(_, a)| a.as_str())?;
                if action == "done" {
                    Some(None)
                } else {
                    action.parse::<usize>().ok().filter(|n| *n > 0).map(Some)
                }
            }
            _ => None,
        }
    }
}

/// One `auth` rule of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// How the result is handled.
    pub control: Control,
    /// The module as written (path or file name).
    pub module: String,
    /// Module arguments.
    pub args: Vec<String>,
    /// Where the rule is: `FILE line N`.
    pub origin: String,
}

impl Rule {
    fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    fn is_ours(&self) -> bool {
        let name = self.module_name();
        name == MODULE || name == MODULE_BUILD_NAME
    }

    fn asks_password(&self) -> bool {
        PASSWORD_MODULES.contains(&self.module_name())
    }
}

/// An item of the auth stack: a rule, an include that was not expanded,
/// or a substack (which counts as one item for jumps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A module line.
    Rule(Rule),
    /// `@include FILE` / `auth include FILE` / `auth substack FILE` that
    /// was not expanded (its content is unknown).
    Unexpanded {
        /// The included file.
        file: String,
        /// Where the line is.
        origin: String,
    },
    /// An expanded substack.
    Substack {
        /// The file.
        file: String,
        /// Its auth items.
        items: Vec<Item>,
    },
}

impl Item {
    fn contains_ours(&self) -> bool {
        match self {
            Self::Rule(r) => r.is_ours(),
            Self::Unexpanded { .. } => false,
            Self::Substack { items, .. } => items.iter().any(Self::contains_ours),
        }
    }

    fn asks_password(&self) -> bool {
        match self {
            Self::Rule(r) => r.asks_password(),
            Self::Unexpanded { file, .. } => PASSWORD_STACKS.contains(&base_name(file)),
            Self::Substack { items, .. } => items.iter().any(Self::asks_password),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Rule(r) => format!("{} ({})", r.module_name(), r.origin),
            Self::Unexpanded { file, origin } => format!("the included {file} ({origin})"),
            Self::Substack { file, .. } => format!("the substack {file}"),
        }
    }
}

fn base_name(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// Splits a PAM line into fields; `[…]` groups (control or argument) stay
/// one field, with `\]` inside kept as `]`.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if depth && chars.peek() == Some(&']') => {
                cur.push(']');
                chars.next();
            }
            '[' if cur.is_empty() && !depth => {
                depth = true;
                cur.push(c);
            }
            ']' if depth => {
                depth = false;
                cur.push(c);
            }
            c if c.is_whitespace() && !depth => {
                if !cur.is_empty() {
                    out.push(core::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const BEGIN: &str = "# >>> ";
const END: &str = "# <<< ";

/// Parses the auth part of a PAM service file (after optional expansion by
/// [`expand_stack`]). Lines of other types are ignored.
#[must_use]
pub fn parse_auth_stack(text: &str) -> Vec<Item> {
    // Stack of open scopes: (kind, file, items, line counter, include-only-auth).
    struct Scope {
        kind: &'static str,
        file: String,
        items: Vec<Item>,
        line: usize,
    }
    let mut scopes = vec![Scope {
        kind: "top",
        file: "the sshd PAM file".to_string(),
        items: Vec::new(),
        line: 0,
    }];
    let joined = text.replace("\\\n", " ");
    for raw in joined.lines() {
        if let Some(s) = scopes.last_mut() {
            s.line += 1;
        }
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix(BEGIN) {
            let (kind, file) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind = if kind == "substack" {
                "substack"
            } else {
                "include"
            };
            scopes.push(Scope {
                kind,
                file: file.trim().to_string(),
                items: Vec::new(),
                line: 0,
            });
            continue;
        }
        if line.starts_with(END) {
            if scopes.len() > 1
                && let Some(done) = scopes.pop()
                && let Some(parent) = scopes.last_mut()
            {
                if done.kind == "substack" {
                    parent.items.push(Item::Substack {
                        file: done.file,
                        items: done.items,
                    });
                } else {
                    parent.items.extend(done.items);
                }
            }
            continue;
        }
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some(scope) = scopes.last_mut() else {
            continue;
        };
        let origin = format!("{} line {}", scope.file, scope.line);
        let f = fields(line);
        let mut it = f.iter();
        let Some(first) = it.next() else { continue };
        if first == "@include" {
            if let Some(file) = it.next() {
                scope.items.push(Item::Unexpanded {
                    file: file.clone(),
                    origin,
                });
            }
            continue;
        }
        if !first.trim_start_matches('-').eq_ignore_ascii_case("auth") {
            continue;
        }
        let (Some(control), Some(module)) = (it.next(), it.next()) else {
            continue;
        };
        let lc = control.to_ascii_lowercase();
        if lc == "include" || lc == "substack" {
            scope.items.push(Item::Unexpanded {
                file: module.clone(),
                origin,
            });
            continue;
        }
        scope.items.push(Item::Rule(Rule {
            control: Control::parse(control),
            module: module.clone(),
            args: it.cloned().collect(),
            origin,
        }));
    }
    // Close anything left open (a truncated expansion).
    while scopes.len() > 1 {
        if let Some(done) = scopes.pop()
            && let Some(parent) = scopes.last_mut()
        {
            parent.items.extend(done.items);
        }
    }
    scopes.pop().map(|s| s.items).unwrap_or_default()
}

/// The recipe the sshd settings ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// Some `AuthenticationMethods` list is public key, then keyboard-interactive.
    KeyThenOtp,
    /// Anything else (password+OTP, or not decided).
    Other,
}

/// Which recipe `s` configures.
#[must_use]
pub fn recipe(s: &SshdSettings) -> Recipe {
    let key_then_kbd = |list: &Vec<Method>| {
        let key = list.iter().position(|m| m.name == "publickey");
        let kbd = list.iter().rposition(Method::is_kbd);
        matches!((key, kbd), (Some(k), Some(i)) if k < i)
    };
    match s.method_lists() {
        Some(lists) if lists.iter().any(key_then_kbd) => Recipe::KeyThenOtp,
        _ => Recipe::Other,
    }
}

/// Checks the sshd settings (`sshd -T` text) and the sshd PAM stack (text,
/// expanded by [`expand_stack`] or raw) and names every problem found.
/// An empty list means the setup is one of the two supported recipes.
#[must_use]
pub fn check(sshd_t_output: &str, pam_stack: &str) -> Vec<Problem> {
    let s = parse_sshd_t(sshd_t_output);
    let stack = parse_auth_stack(pam_stack);
    let mut out = check_sshd(&s);
    out.extend(check_stack(&stack, recipe(&s), &s));
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

/// Most nested includes followed.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// Expands `@include`, `auth include` and `auth substack` in `text` (the
/// service file `name`) using `load` to read included files by name, and
/// marks each expansion with `# >>> include|substack FILE` … `# <<< …`
/// comment lines. Lines of other types from `auth include` files are
/// dropped; `@include` keeps every line. A file that cannot be loaded, or
/// nesting deeper than [`MAX_INCLUDE_DEPTH`], is left as the original line.
pub fn expand_stack(text: &str, load: &dyn Fn(&str) -> Option<String>) -> String {
    expand_inner(text, load, 0, None)
}

fn expand_inner(
    text: &str,
    load: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    only: Option<&str>,
) -> String {
    let mut out = String::new();
    let joined = text.replace("\\\n", " ");
    for raw in joined.lines() {
        let f = fields(raw.split('#').next().unwrap_or(""));
        let mut it = f.iter();
        let first = it.next().map(|s| s.to_ascii_lowercase());
        let ty = first
            .as_deref()
            .map(|t| t.trim_start_matches('-').to_string());
        if let (Some(only), Some(t)) = (only, ty.as_deref())
            && t != "@include"
            && t != only
        {
            continue;
        }
        let (kind, file, sub_only) = match (ty.as_deref(), it.next(), it.next()) {
            (Some("@include"), Some(file), _) => ("include", Some(file.clone()), only),
            (Some(t), Some(c), Some(file))
                if c.eq_ignore_ascii_case("include") || c.eq_ignore_ascii_case("substack") =>
            {
                let kind = if c.eq_ignore_ascii_case("substack") {
                    "substack"
                } else {
                    "include"
                };
                (kind, Some(file.clone()), Some(t))
            }
            _ => ("", None, only),
        };
        let loaded = match &file {
            Some(file) if depth < MAX_INCLUDE_DEPTH => load(file),
            _ => None,
        };
        match (file, loaded) {
            (Some(file), Some(inner)) => {
                out.push_str(&format!("{BEGIN}{kind} {file}\n"));
                out.push_str(&expand_inner(&inner, load, depth + 1, sub_only));
                out.push_str(&format!("{END}{kind} {file}\n"));
            }
            _ => {
                out.push_str(raw);
                out.push('\n');
            }
        }
    }
    out
}

/// Where and how [`read_and_check_with`] reads the live setup.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The sshd binary.
    pub sshd: PathBuf,
    /// `-f FILE` for sshd (its default when `None`).
    pub sshd_config: Option<PathBuf>,
    /// Evaluate `Match` blocks for this user (`-C user=…,host=…,addr=…`).
    pub user: Option<String>,
    /// The PAM configuration directory.
    pub pam_dir: PathBuf,
    /// The PAM service sshd uses (always `sshd` for OpenSSH).
    pub service: String,
    /// How long `sshd -T` may take.
    pub timeout: Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            sshd: PathBuf::from("/usr/sbin/sshd"),
            sshd_config: None,
            user: None,
            pam_dir: PathBuf::from("/etc/pam.d"),
            service: "sshd".to_string(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why the live setup could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `sshd -T` could not be run or failed.
    #[error("sshd -T: {0}")]
    Sshd(String),
    /// The PAM file could not be read.
    #[error("{path}: {source}")]
    Pam {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Runs `sshd -T` (with `-C user=USER,host=localhost,addr=127.0.0.1` when
/// `user` is given) and reads `/etc/pam.d/sshd` with its includes, then
/// [`check`]s them.
///
/// # Errors
/// [`CheckError`] when sshd cannot be run or the PAM file cannot be read.
pub fn read_and_check(user: Option<&str>) -> Result<Vec<Problem>, CheckError> {
    read_and_check_with(&ReadOptions {
        user: user.map(str::to_string),
        ..ReadOptions::default()
    })
}

/// [`read_and_check`] with every path and the time limit chosen.
///
/// # Errors
/// [`CheckError`].
pub fn read_and_check_with(opts: &ReadOptions) -> Result<Vec<Problem>, CheckError> {
    let sshd_t = run_sshd_t(opts)?;
    let stack = read_stack(&opts.pam_dir, &opts.service)?;
    Ok(check(&sshd_t, &stack))
}

/// Reads `<pam_dir>/<service>` and expands its includes from `pam_dir`.
///
/// # Errors
/// [`CheckError::Pam`] when the service file itself cannot be read.
pub fn read_stack(pam_dir: &Path, service: &str) -> Result<String, CheckError> {
    let path = pam_dir.join(service);
    let text = read_small(&path).map_err(|source| CheckError::Pam {
        path: path.clone(),
        source,
    })?;
    let load = |name: &str| {
        let p = if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            pam_dir.join(name)
        };
        read_small(&p).ok()
    };
    Ok(expand_stack(&text, &load))
}

fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = String::new();
    std::fs::File::open(path)?
        .take(1 << 20)
        .read_to_string(&mut buf)?;
    Ok(buf)
}

fn run_sshd_t(opts: &ReadOptions) -> Result<String, CheckError> {
    use std::io::Read;
    let mut cmd = Command::new(&opts.sshd);
    cmd.arg("-T");
    if let Some(f) = &opts.sshd_config {
        cmd.arg("-f").arg(f);
    }
    if let Some(u) = &opts.user {
        if u.is_empty() || u.contains([',', '=', ' ', '\n']) {
            return Err(CheckError::Sshd(format!("user name {u:?} cannot be used")));
        }
        cmd.arg("-C")
            .arg(format!("user={u},host=localhost,addr=127.0.0.1"));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CheckError::Sshd(format!("{}: {e}", opts.sshd.display())))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.take(4 << 20).read_to_string(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.take(64 << 10).read_to_string(&mut s);
        }
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if started.elapsed() < opts.timeout => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CheckError::Sshd(format!(
                    "did not finish within {} s",
                    opts.timeout.as_secs()
                )));
            }
            Err(e) => return Err(CheckError::Sshd(e.to_string())),
        }
    };
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let first = err
            .lines()
            .next()
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(CheckError::Sshd(format!("failed ({status}): {first}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sshd -T` of Debian 12's stock sshd_config (trimmed to the lines
    /// that matter plus a few neighbours), as printed by OpenSSH 9.2p1.
    const DEBIAN_STOCK: &str = "\
port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
logingracetime 120
x11displayoffset 10
maxauthtries 6
maxsessions 10
clientaliveinterval 0
clientalivecountmax 3
permitrootlogin without-password
ignorerhosts yes
ignoreuserknownhosts no
hostbasedauthentication no
hostbasedusesnamefrompacketonly no
pubkeyauthentication yes
kerberosauthentication no
gssapiauthentication no
passwordauthentication yes
kbdinteractiveauthentication no
printmotd no
printlastlog yes
x11forwarding yes
strictmodes yes
permitemptypasswords no
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
authenticationmethods any
subsystem sftp /usr/lib/openssh/sftp-server
";

    fn key_then_otp_sshd() -> String {
        DEBIAN_STOCK
            .replace(
                "kbdinteractiveauthentication no",
                "kbdinteractiveauthentication yes",
            )
            .replace(
                "authenticationmethods any",
                "authenticationmethods publickey,keyboard-interactive:pam",
            )
    }

    /// Debian 12's /etc/pam.d/sshd, auth part first.
    const DEBIAN_SSHD_PAM: &str = "\
# PAM configuration for the Secure Shell service

# Standard Un*x authentication.
@include common-auth

# Disallow non-root logins when /etc/nologin exists.
account    required     pam_nologin.so
@include common-account
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close
session    required     pam_loginuid.so
@include common-session
@include common-password
";

    const DEBIAN_COMMON_AUTH: &str = "\
auth\t[success=1 default=ignore]\tpam_unix.so nullok
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
auth\toptional\t\t\tpam_cap.so
";

    fn key_then_otp_stack() -> String {
        DEBIAN_SSHD_PAM.replace("@include common-auth", "auth required pam_yubiotp.so")
    }

    fn kinds(p: &[Problem]) -> Vec<ProblemKind> {
        let mut k: Vec<_> = p.iter().map(|p| p.kind).collect();
        k.sort();
        k.dedup();
        k
    }

    fn loader(name: &str) -> Option<String> {
        match name {
            "common-auth" => Some(DEBIAN_COMMON_AUTH.to_string()),
            "common-account" => Some("account required pam_unix.so\n".into()),
            "common-session" => Some("session required pam_unix.so\n".into()),
            "common-password" => Some("password required pam_unix.so\n".into()),
            _ => None,
        }
    }

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

    #[test]
    fn pam_line_syntax() {
        let stack = "\
# comment
-auth   [success=ok   default=bad]   /lib/security/pam_yubiotp.so  [prompt=Touch\\] it: ] debug # trailing
auth \\
   required pam_permit.so
";
        let items = parse_auth_stack(stack);
        assert_eq!(items.len(), 2, "{items:#?}");
        let Item::Rule(r) = &items[0] else { panic!() };
        assert_eq!(r.module_name(), "pam_yubiotp.so");
        assert_eq!(
            r.args,
            vec!["[prompt=Touch] it: ]".to_string(), "debug".to_string()]
        );
        assert_eq!(
            r.control,
            Control::Bracket(vec![
                ("success".into(), "ok".into()),
                ("default".into(), "bad".into())
            ])
        );
        let Item::Rule(r) = &items[1] else { panic!() };
        assert_eq!(r.control, Control::Required);
    }

    #[test]
    fn expansion_follows_includes_and_substacks() {
        let load = |name: &str| match name {
            "a" => {
                Some("auth required pam_a.so\naccount required pam_a.so\n@include b\n".to_string())
            }
            "b" => Some("auth required pam_b.so\n".to_string()),
            "loop" => Some("@include loop\n".to_string()),
            _ => None,
        };
        let out = expand_stack(
            "auth include a\n@include missing\nauth substack b\n@include loop\n",
            &load,
        );
        assert!(
            out.contains("# >>> include a\nauth required pam_a.so\n"),
            "{out}"
        );
        assert!(
            !out.contains("account required pam_a.so"),
            "only auth lines: {out}"
        );
        assert!(out.contains("# >>> include b\nauth required pam_b.so\n# <<< include b\n"));
        assert!(out.contains("@include missing\n"), "left as is: {out}");
        assert!(out.contains("# >>> substack b\n"));
        // The loop stops at the depth limit.
        assert_eq!(out.matches("# >>> include loop").count(), MAX_INCLUDE_DEPTH);
        let items = parse_auth_stack(&out);
        assert!(matches!(
            items.last(),
            Some(Item::Unexpanded { .. }) | Some(Item::Substack { .. })
        ));
    }

    #[test]
    fn sshd_t_parsing() {
        let s = parse_sshd_t(&key_then_otp_sshd());
        assert_eq!(s.get("usepam"), Some("yes"));
        assert_eq!(s.kbd_interactive(), Some(true));
        assert_eq!(recipe(&s), Recipe::KeyThenOtp);
        let lists = s.method_lists().unwrap();
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0][1].to_string(), "keyboard-interactive:pam");
        assert_eq!(parse_sshd_t(DEBIAN_STOCK).method_lists(), None);
        // Nothing at all.
        assert_eq!(
            kinds(&check("", "")),
            vec![
                ProblemKind::SshdOutputIncomplete,
                ProblemKind::NoPamMethod,
                ProblemKind::MethodsAny,
                ProblemKind::ModuleMissing
            ]
        );
    }

    #[test]
    fn reader_reports_failures_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_and_check_with(&ReadOptions {
            sshd: dir.path().join("no-such-sshd"),
            pam_dir: dir.path().to_path_buf(),
            ..ReadOptions::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("sshd -T: "), "{err}");
        assert!(matches!(
            read_stack(dir.path(), "sshd"),
            Err(CheckError::Pam { .. })
        ));
        std::fs::write(
            dir.path().join("sshd"),
            key_then_otp_stack().replace("@include common-account", "@include common-auth"),
        )
        .unwrap();
        std::fs::write(dir.path().join("common-auth"), DEBIAN_COMMON_AUTH).unwrap();
        let text = read_stack(dir.path(), "sshd").unwrap();
        assert!(
            text.contains("# >>> include common-auth\nauth\t[success=1"),
            "{text}"
        );
        // A fake sshd that prints the settings.
        let fake = dir.path().join("fake-sshd");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\ncat <<'EOF'\n{}EOF\n", key_then_otp_sshd()),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let p = read_and_check_with(&ReadOptions {
            sshd: fake.clone(),
            pam_dir: dir.path().to_path_buf(),
            user: Some("alice".into()),
            ..ReadOptions::default()
        })
        .unwrap();
        // common-auth (pulled in by the edited account include) asks for a password,
        // but after our module: only the lines before it count.
        assert!(p.is_empty(), "{p:#?}");
        // A user name that would inject connection keywords.
        assert!(
            read_and_check_with(&ReadOptions {
                sshd: fake,
                pam_dir: dir.path().to_path_buf(),
                user: Some("alice,addr=1.2.3.4".into()),
                ..ReadOptions::default()
            })
            .is_err()
        );
    }
}
