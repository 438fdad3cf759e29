//! The documentation and the examples agree with the code:
//! - every module argument (`pam_yubiotp::config::known_args()`, from the
//!   option table) has an entry
//!   in pam_yubiotp(8) OPTIONS, and every entry there is a known argument;
//! - every TOML key (`known_keys()`) has an entry in yubiotp.toml(5) KEYS, in
//!   the same order, and nothing else;
//! - the committed roff pages are the build of their Markdown sources;
//! - every example in `etc/` parses with the library (the TOML file, the
//!   module arguments on every `pam_yubiotp.so` line, the mapping example),
//!   and the SSH recipes pass `ykmap ssh check`'s checker (`ykmap::ssh`);
//! - every recipe block in `docs/recipes.md` is identical to its `etc/` file.
//!
//! None of this needs root or libpam.

use std::fs;

use std::process::Command;

use pam_yubiotp::config::{Layer, known_args, known_keys, parse_args, parse_file, resolve};
use pam_yubiotp::mapping::parse_mapping;
use ykmap::ssh;
use yubiotp_tests::{repo, repo_file};

fn files_in(rel: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo().join(rel))
        .unwrap()
        .map(|e| format!("{rel}/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

/// The lines of the Markdown section whose `# ` heading is `name`.
fn section<'a>(md: &'a str, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            inside = h.trim() == name;
            continue;
        }
        if inside {
            out.push(line);
        }
    }
    assert!(!out.is_empty(), "no section {name}");
    out
}

/// Every `code` span of a definition-list term (a line starting with a
/// backtick).
fn terms<'a>(lines: &[&'a str]) -> Vec<(usize, Vec<&'a str>)> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with('`'))
        .map(|(i, l)| (i, l.split('`').skip(1).step_by(2).collect()))
        .collect()
}

#[test]
fn man_page_documents_exactly_the_module_arguments() {
    let md = repo_file("man/pam_yubiotp.8.md");
    let documented: Vec<&str> = terms(&section(&md, "OPTIONS"))
        .into_iter()
        .flat_map(|(_, names)| names)
        .collect();
    let known = known_args();
    for arg in &known {
        assert!(
            documented.contains(&arg.as_str()),
            "module argument {arg} is not documented in man/pam_yubiotp.8.md OPTIONS"
        );
    }
    for doc in &documented {
        assert!(
            known.iter().any(|k| k == doc),
            "man/pam_yubiotp.8.md documents {doc}, which the module does not know"
        );
    }
    assert_eq!(documented, known, "same order as the option table");
    // Each entry says what its default is.
    let options = section(&md, "OPTIONS").join("\n");
    for entry in options.split("\n`").skip(1) {
        assert!(
            entry.contains("Default") || entry.contains("default"),
            "no default given for `{}",
            entry.lines().next().unwrap_or("")
        );
    }
}

#[test]
fn man_page_documents_exactly_the_toml_keys() {
    let md = repo_file("man/yubiotp.toml.5.md");
    let mut prefix = String::new();
    let mut documented = Vec::new();
    for line in section(&md, "KEYS") {
        if let Some(h) = line.strip_prefix("## ") {
            // "## The [cloud] table" -> "cloud."; a top-level heading -> "".
            prefix = h
                .split_once('[')
                .and_then(|(_, rest)| rest.split_once(']'))
                .map_or_else(String::new, |(table, _)| format!("{table}."));
            continue;
        }
        if line.starts_with('`') {
            let name = line.split('`').nth(1).unwrap();
            documented.push(format!("{prefix}{name}"));
        }
    }
    let known = known_keys();
    for key in &known {
        assert!(
            documented.iter().any(|d| d == key),
            "TOML key {key} is not documented in man/yubiotp.toml.5.md KEYS"
        );
    }
    for doc in &documented {
        assert!(
            known.contains(&doc.as_str()),
            "man/yubiotp.toml.5.md documents {doc}, which the file parser does not know"
        );
    }
    assert_eq!(documented, known, "same order as the option table");
}

#[test]
fn roff_pages_are_built_from_their_sources() {
    let pages = [
        ("man/pam_yubiotp.8", known_args()),
        (
            "man/yubiotp.toml.5",
            known_keys()
                .iter()
                .map(|k| k.rsplit('.').next().unwrap().to_string())
                .collect(),
        ),
    ];
    for (page, names) in &pages {
        let roff = repo_file(page);
        assert!(roff.contains(".TH "), "{page} is not a man page");
        for n in names {
            assert!(roff.contains(n), "{page} lacks {n}: run man/build.sh");
        }
    }
    if Command::new("pandoc").arg("--version").output().is_err() {
        eprintln!(
            "SKIP (partly): pandoc not installed; checked only that every option is in the roff"
        );
        return;
    }
    let out = Command::new(repo().join("man/build.sh"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `etc/yubiotp.toml` with every `#key = value` and `#[table]` line
/// uncommented (prose comments start with "# ").
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
            {
                rest.to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn dotted_keys(toml_text: &str) -> Vec<String> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in toml_text.lines() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            table = format!("{t}.");
        } else if let Some((k, _)) = line.split_once(" = ")
            && !line.starts_with('#')
        {
            keys.push(format!("{table}{}", k.trim()));
        }
    }
    keys
}

#[test]
fn example_config_parses_and_shows_every_key() {
    let text = repo_file("etc/yubiotp.toml");
    // As shipped: all commented out, so the defaults apply, and mode=cloud
    // asks for an id (the file says so).
    let raw = parse_file(&text).unwrap();
    let err = resolve(Some(&raw), &Layer::default()).unwrap_err();
    assert!(err.to_string().contains("cloud.id"), "{err}");
    assert!(
        text.contains("cloud.id"),
        "the file explains the error it gives"
    );
    // Every setting uncommented: still valid, and complete.
    let all = uncommented(&text);
    let raw = parse_file(&all).unwrap_or_else(|e| panic!("{e}\n{all}"));
    resolve(Some(&raw), &Layer::default()).unwrap();
    assert_eq!(
        dotted_keys(&all),
        known_keys(),
        "every key, in the option table's order"
    );
}

#[test]
fn man_page_toml_examples_parse() {
    let md = repo_file("man/yubiotp.toml.5.md");
    let example = section(&md, "EXAMPLE");
    let mut blocks: Vec<String> = Vec::new();
    let mut cur: Option<String> = None;
    for line in example {
        match (line.strip_prefix("    "), &mut cur) {
            (Some(code), Some(b)) => {
                b.push_str(code);
                b.push('\n');
            }
            (Some(code), None) => cur = Some(format!("{code}\n")),
            (None, _) if line.trim().is_empty() => {
                if let Some(b) = cur.as_mut() {
                    b.push('\n');
                }
            }
            (None, _) => {
                if let Some(b) = cur.take() {
                    blocks.push(b);
                }
            }
        }
    }
    blocks.extend(cur);
    assert_eq!(blocks.len(), 3, "{blocks:#?}");
    for b in &blocks {
        let raw = parse_file(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
        resolve(Some(&raw), &Layer::default()).unwrap_or_else(|e| panic!("{e}\n{b}"));
    }
}

/// Splits a PAM line as libpam does: whitespace-separated, `[...]` one
/// field (with `\]` for `]`), brackets removed from arguments.
fn pam_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut bracket = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if bracket && chars.peek() == Some(&']') => {
                cur.push(']');
                chars.next();
            }
            '[' if cur.is_empty() && !bracket => bracket = true,
            ']' if bracket => bracket = false,
            c if c.is_whitespace() && !bracket => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
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

/// The module arguments of every `pam_yubiotp.so` line in `text`.
fn module_lines(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains("pam_yubiotp.so"))
        .filter_map(|l| {
            let f = pam_fields(l.split(" #").next().unwrap_or(l));
            let i = f.iter().position(|t| t.ends_with("pam_yubiotp.so"))?;
            Some((l.to_string(), f[i + 1..].to_vec()))
        })
        .collect()
}

/// The code of a Markdown file: fenced blocks, and indented blocks that
/// start after a blank line (indented lines right after a `:   ` line are a
/// definition's continuation, not code).
fn code_of(md: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    let mut indented = false;
    let mut prev_blank = true;
    for line in md.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            out.push_str(line);
            out.push('\n');
        } else if let Some(code) = line.strip_prefix("    ") {
            indented = indented || prev_blank;
            if indented {
                out.push_str(code);
                out.push('\n');
            }
        } else if !line.trim().is_empty() {
            indented = false;
        }
        prev_blank = line.trim().is_empty();
    }
    out
}

#[test]
fn every_module_line_in_the_examples_and_docs_parses() {
    let mut sources: Vec<String> = files_in("etc/pam.d");
    sources.push("etc/pam-configs/yubiotp".into());
    sources.push("man/pam_yubiotp.8.md".into());
    sources.push("docs/recipes.md".into());
    let mut seen = 0;
    for src in &sources {
        let text = repo_file(src);
        let text = if src.ends_with(".md") {
            code_of(&text)
        } else {
            text
        };
        let lines = module_lines(&text);
        if src.starts_with("etc/") {
            assert!(!lines.is_empty(), "{src} has no pam_yubiotp.so line");
        }
        for (line, args) in lines {
            parse_args(&args).unwrap_or_else(|e| panic!("{src}: {line}: {e}"));
            seen += 1;
            if src.starts_with("etc/pam.d") {
                assert!(
                    line.starts_with("auth"),
                    "{src}: the module provides auth only: {line}"
                );
            }
        }
    }
    assert!(seen >= 20, "only {seen} module lines found");
    // The bracketed prompt really is one argument.
    let (_, args) = &module_lines(&repo_file("etc/pam.d/sshd.password-otp"))[0];
    assert_eq!(
        args,
        &["try_first_pass", "prompt=Password and YubiKey OTP: "]
    );
}

#[test]
fn pam_stack_files_are_well_formed() {
    for src in files_in("etc/pam.d") {
        for (n, line) in repo_file(&src).lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f = pam_fields(line);
            let ty = f[0].trim_start_matches('-');
            if ty == "@include" {
                assert_eq!(f.len(), 2, "{src}:{}: {line}", n + 1);
                continue;
            }
            assert!(
                ["auth", "account", "session", "password"].contains(&ty),
                "{src}:{}: unknown type in {line}",
                n + 1
            );
            assert!(f.len() >= 3, "{src}:{}: {line}", n + 1);
            assert!(
                f[2].ends_with(".so"),
                "{src}:{}: no module in {line}",
                n + 1
            );
        }
    }
    // The pam-auth-update profile: the fields it needs, not enabled by default.
    let profile = repo_file("etc/pam-configs/yubiotp");
    for field in [
        "Name: ",
        "Default: no",
        "Priority: ",
        "Auth-Type: Additional",
        "Auth:",
    ] {
        assert!(profile.contains(field), "profile lacks {field}");
    }
}

#[test]
fn mapping_example_parses_without_problems() {
    let m = parse_mapping(repo_file("etc/authorized_yubikeys.example").as_bytes());
    assert!(m.problems.is_empty(), "{:?}", m.problems);
    assert!(
        m.keys_for("alice").len() == 2 && m.keys_for("bob").len() == 1,
        "{m:?}"
    );
}

#[test]
fn recipe_blocks_are_identical_to_their_files() {
    let md = repo_file("docs/recipes.md");
    let mut covered = Vec::new();
    let mut rest = md.as_str();
    while let Some(i) = rest.find("<!-- recipe: ") {
        rest = &rest[i + "<!-- recipe: ".len()..];
        let (path, after) = rest
            .split_once(" -->\n```\n")
            .expect("marker, then a ``` block");
        let (block, after) = after.split_once("```\n").expect("closed block");
        assert_eq!(
            block,
            repo_file(path),
            "docs/recipes.md block for {path} differs from the file"
        );
        covered.push(path.to_string());
        rest = after;
    }
    let mut expected = files_in("etc/pam.d");
    expected.extend(files_in("etc/sshd_config.d"));
    expected.push("etc/pam-configs/yubiotp".into());
    expected.push("etc/authorized_yubikeys.example".into());
    for e in &expected {
        assert!(
            covered.contains(e),
            "docs/recipes.md has no recipe block for {e}"
        );
    }
}

/// `sshd -T` of Debian 12's stock configuration (the lines that matter).
const DEBIAN_SSHD_T: &str = "\
port 22
usepam yes
permitrootlogin without-password
hostbasedauthentication no
pubkeyauthentication yes
gssapiauthentication no
passwordauthentication yes
kbdinteractiveauthentication no
authenticationmethods any
";

/// What `sshd -T` prints once the drop-in is included first (sshd keeps the
/// first value of each keyword, and Debian includes sshd_config.d at the top).
fn with_drop_in(drop_in: &str) -> String {
    let mut t: Vec<String> = DEBIAN_SSHD_T.lines().map(str::to_string).collect();
    for line in drop_in
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (k, v) = line.split_once(char::is_whitespace).unwrap();
        let k = k.to_ascii_lowercase();
        t.retain(|l| l.split_whitespace().next() != Some(k.as_str()));
        t.push(format!("{k} {}", v.trim()));
    }
    t.join("\n") + "\n"
}

#[test]
fn ssh_recipes_pass_the_checker() {
    for (conf, stack) in [
        (
            "etc/sshd_config.d/yubiotp-key-then-otp.conf",
            "etc/pam.d/sshd.key-then-otp",
        ),
        (
            "etc/sshd_config.d/yubiotp-password-otp.conf",
            "etc/pam.d/sshd.password-otp",
        ),
    ] {
        let sshd_t = with_drop_in(&repo_file(conf));
        let problems = ssh::check(&sshd_t, &repo_file(stack));
        assert!(problems.is_empty(), "{conf} + {stack}: {problems:#?}");
        // Without the drop-in, the stock sshd settings are wrong for it.
        assert!(!ssh::check(DEBIAN_SSHD_T, &repo_file(stack)).is_empty());
    }
    assert_eq!(
        ssh::recipe(&ssh::parse_sshd_t(&with_drop_in(&repo_file(
            "etc/sshd_config.d/yubiotp-key-then-otp.conf"
        )))),
        ssh::Recipe::KeyThenOtp
    );
    // Key-then-OTP settings with the password+OTP stack: the key, then
    // password and OTP at one prompt (three factors) is allowed; the same
    // with common-auth before the module asks the password twice: caught.
    let crossed = ssh::check(
        &with_drop_in(&repo_file("etc/sshd_config.d/yubiotp-key-then-otp.conf")),
        &repo_file("etc/pam.d/sshd.password-otp"),
    );
    assert!(crossed.is_empty(), "{crossed:#?}");
    let stock = ssh::check(
        &with_drop_in(&repo_file("etc/sshd_config.d/yubiotp-key-then-otp.conf")),
        &repo_file("etc/pam.d/sshd.password-otp").replace(
            "auth       requisite    pam_yubiotp.so",
            "@include common-auth\nauth       requisite    pam_yubiotp.so",
        ),
    );
    assert_eq!(stock.len(), 1, "{stock:#?}");
    assert_eq!(stock[0].kind, ssh::ProblemKind::PasswordAsked);
}

#[test]
fn ssh_helper_snippet_passes_the_checker() {
    let conf = repo_file("etc/sshd_config.d/yubiotp-ssh-helper.conf");
    // `sshd -T -C user=<member>`: the Match block's lines apply; sshd's
    // default `permituserenvironment no` (absent from the trimmed stock text).
    let sshd_t = with_drop_in(&conf) + "permituserenvironment no\n";
    assert_eq!(
        ssh::recipe(&ssh::parse_sshd_t(&sshd_t)),
        ssh::Recipe::Helper
    );
    // The helper does not need the PAM stack: Debian's stock one is fine.
    let problems = ssh::check(&sshd_t, "@include common-auth\n");
    assert!(problems.is_empty(), "{problems:#?}");
    // Without its forwarding lines, or with a broad AcceptEnv: caught.
    let open = with_drop_in(&conf.replace("    DisableForwarding yes\n", ""))
        + "permituserenvironment no\n";
    assert!(
        ssh::check(&open, "")
            .iter()
            .any(|p| p.kind == ssh::ProblemKind::HelperForwarding)
    );
    let broad = with_drop_in(&conf.replace("AcceptEnv YUBIOTP", "AcceptEnv *"))
        + "permituserenvironment no\n";
    assert!(
        ssh::check(&broad, "")
            .iter()
            .any(|p| p.kind == ssh::ProblemKind::HelperAcceptEnv)
    );
}

#[test]
fn readme_recipe_blocks_are_identical_to_their_files() {
    let md = repo_file("README.md");
    let mut rest = md.as_str();
    let mut seen = 0;
    while let Some(i) = rest.find("<!-- recipe: ") {
        rest = &rest[i + "<!-- recipe: ".len()..];
        let (path, after) = rest
            .split_once(" -->\n```\n")
            .expect("marker, then a ``` block");
        let (block, after) = after.split_once("```\n").expect("closed block");
        assert_eq!(
            block,
            repo_file(path),
            "README.md block for {path} differs from the file"
        );
        seen += 1;
        rest = after;
    }
    assert!(
        seen >= 3,
        "the README shows the tested SSH and sudo recipes"
    );
}
