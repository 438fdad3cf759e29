//! A small transcript runner: every `tests/cmd/*.txt` is a shell-like
//! session run in a fresh directory from `yubiotp_testsupport::tempdir()` (not /tmp:
//! the module refuses files below world-writable directories). A
//! `NAME.in/` directory beside `NAME.txt` is copied in first.
//!
//! Syntax, one item per line:
//!
//! ```text
//! # comment                      (ignored; so are blank lines between steps)
//! =NAME value                    define ${NAME} (value may use earlier ${…})
//! $ ykmap ARGS…                  run the built ykmap (also: cat, chmod, mkdir, write, stat, rm)
//! $ let NAME = ykmap ARGS…       run it and keep its trimmed stdout in ${NAME}
//! < text                         a line of the step's standard input
//! text                           an expected stdout line
//! | text                         an expected stdout line, taken literally (may start with #)
//! ! text                         an expected stderr line
//! ? N                            the expected exit status (default 0)
//! ```
//!
//! In expected lines `[..]` matches any text within the line, a line
//! `...` any number of lines, and `[CWD]` is the session's directory.
//! Output is compared whole: stdout and stderr must match exactly.
#![cfg(test)] // clippy.toml: allow-*-in-tests then covers the helpers too

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Default)]
struct Step {
    line: usize,
    cmd: String,
    stdin: Vec<String>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    status: i32,
}

fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let mut rest = line;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    true
}

fn lines_match(pattern: &[String], actual: &[&str]) -> bool {
    match pattern.split_first() {
        None => actual.is_empty(),
        Some((p, rest)) if p == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((p, rest)) => {
            !actual.is_empty() && line_matches(p, actual[0]) && lines_match(rest, &actual[1..])
        }
    }
}

fn split_words(cmd: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, ' ') => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Runs one step; returns (stdout, stderr, status).
fn exec(words: &[String], stdin: &str, cwd: &Path) -> (String, String, i32) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let arg = |i: usize| cwd.join(&words[i]);
    match words[0].as_str() {
        "ykmap" => {
            let out = yubiotp_testsupport::run_with_stdin(
                Command::new(env!("CARGO_BIN_EXE_ykmap"))
                    .args(&words[1..])
                    .current_dir(cwd)
                    .env_remove("YKMAP_TEST_PAUSE_BEFORE_RENAME"),
                stdin.as_bytes(),
            );
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                out.status.code().unwrap_or(-1),
            )
        }
        "cat" => (std::fs::read_to_string(arg(1)).unwrap(), String::new(), 0),
        "write" => {
            std::fs::write(arg(1), stdin).unwrap();
            (String::new(), String::new(), 0)
        }
        "chmod" => {
            let mode = u32::from_str_radix(&words[1], 8).unwrap();
            std::fs::set_permissions(arg(2), std::fs::Permissions::from_mode(mode)).unwrap();
            (String::new(), String::new(), 0)
        }
        "mkdir" => {
            std::fs::create_dir_all(arg(1)).unwrap();
            (String::new(), String::new(), 0)
        }
        "rm" => {
            std::fs::remove_file(arg(1)).unwrap();
            (String::new(), String::new(), 0)
        }
        "stat" => {
            let m = std::fs::symlink_metadata(arg(1)).unwrap();
            (
                format!("{:04o} {}:{}\n", m.mode() & 0o7777, m.uid(), m.gid()),
                String::new(),
                0,
            )
        }
        other => panic!("unknown command {other:?}"),
    }
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap();
    let dir = yubiotp_testsupport::tempdir();
    let cwd = dir.path().to_path_buf();
    let input = path.with_extension("in");
    if input.is_dir() {
        copy_dir(&input, &cwd);
    }
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("CWD".into(), cwd.display().to_string());
    let mut steps: Vec<(Step, Option<String>)> = Vec::new();
    let mut pending_vars: Vec<(usize, String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(cmd) = line.strip_prefix("$ ") {
            let (capture, cmd) = match cmd.strip_prefix("let ") {
                Some(rest) => {
                    let (name, cmd) = rest.split_once(" = ").expect("let NAME = cmd");
                    (Some(name.trim().to_string()), cmd.to_string())
                }
                None => (None, cmd.to_string()),
            };
            steps.push((
                Step {
                    line: n,
                    cmd,
                    ..Step::default()
                },
                capture,
            ));
        } else if let Some(def) = line.strip_prefix('=') {
            let (k, v) = def.split_once(' ').unwrap_or((def, ""));
            pending_vars.push((steps.len(), k.to_string(), v.to_string()));
        } else if line.starts_with('#') || (line.is_empty() && steps.is_empty()) {
            continue;
        } else if let Some(step) = steps.last_mut().map(|(s, _)| s) {
            if let Some(s) = line.strip_prefix("< ") {
                step.stdin.push(s.to_string());
            } else if line == "<" {
                step.stdin.push(String::new());
            } else if line == "!" {
                step.stderr.push(String::new());
            } else if let Some(s) = line.strip_prefix("| ") {
                step.stdout.push(s.to_string());
            } else if line == "|" {
                step.stdout.push(String::new());
            } else if let Some(s) = line.strip_prefix("! ") {
                step.stderr.push(s.to_string());
            } else if let Some(s) = line.strip_prefix("? ") {
                step.status = s.trim().parse().unwrap();
            } else if !line.is_empty() {
                step.stdout.push(line.to_string());
            }
        }
    }
    for (idx, (step, capture)) in steps.iter().enumerate() {
        for (at, k, v) in &pending_vars {
            if *at == idx {
                let v = substitute(v, &vars);
                vars.insert(k.clone(), v);
            }
        }
        let cmd = substitute(&step.cmd, &vars);
        let words = split_words(&cmd);
        let stdin: String = step
            .stdin
            .iter()
            .map(|l| format!("{}\n", substitute(l, &vars)))
            .collect();
        let (out, err, status) = exec(&words, &stdin, &cwd);
        if let Some(name) = capture {
            vars.insert(name.clone(), out.trim().to_string());
        }
        let expect = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .map(|l| substitute(l, &vars).replace("[CWD]", &cwd.display().to_string()))
                .collect()
        };
        let out_lines: Vec<&str> = out.lines().collect();
        let err_lines: Vec<&str> = err.lines().collect();
        let ok_out = capture.is_some() && step.stdout.is_empty()
            || lines_match(&expect(&step.stdout), &out_lines);
        let ok_err = lines_match(&expect(&step.stderr), &err_lines);
        if !ok_out || !ok_err || status != step.status {
            return Err(format!(
                "{}:{}: $ {cmd}\n--- expected status {}, stdout:\n{}\n--- stderr:\n{}\n\
                 +++ got status {status}, stdout:\n{out}+++ stderr:\n{err}",
                path.display(),
                step.line,
                step.status,
                expect(&step.stdout).join("\n"),
                expect(&step.stderr).join("\n"),
            ));
        }
    }
    Ok(())
}

#[test]
fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let only = std::env::var("YKMAP_CASE").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &cases {
        if only
            .as_deref()
            .is_some_and(|o| !case.to_string_lossy().contains(o))
        {
            continue;
        }
        ran += 1;
        if let Err(e) = run_case(case) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} transcripts failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
