//! Reading sshd's PAM service file: parsing its `auth` rules and expanding
//! `@include`, `include` and `substack` from the PAM directory.
//!
//! [`expand_stack`] marks what it inlined with comment lines
//! (`# >>> include FILE` … `# <<< include FILE`, same for `substack`), so
//! [`parse_auth_stack`] knows where each rule came from and which rules a
//! substack holds.

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
    pub(super) fn on_success(&self) -> Option<Option<usize>> {
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
    pub(super) fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    pub(super) fn is_ours(&self) -> bool {
        let name = self.module_name();
        name == MODULE || name == MODULE_BUILD_NAME
    }

    pub(super) fn asks_password(&self) -> bool {
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
    pub(super) fn contains_ours(&self) -> bool {
        match self {
            Self::Rule(r) => r.is_ours(),
            Self::Unexpanded { .. } => false,
            Self::Substack { items, .. } => items.iter().any(Self::contains_ours),
        }
    }

    pub(super) fn asks_password(&self) -> bool {
        match self {
            Self::Rule(r) => r.asks_password(),
            Self::Unexpanded { file, .. } => PASSWORD_STACKS.contains(&base_name(file)),
            Self::Substack { items, .. } => items.iter().any(Self::asks_password),
        }
    }

    pub(super) fn describe(&self) -> String {
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
pub(crate) fn fields(line: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
