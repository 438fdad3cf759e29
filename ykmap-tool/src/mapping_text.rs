//! Pure edits of mapping text (`user:pubid1:pubid2:…`). The meaning of the
//! text always comes from the library's `parse_mapping`, so the tool edits
//! exactly what the module reads. Lines that are not touched keep every
//! byte (comments, blank lines, other users, malformed lines, CRLF ends, a
//! leading BOM).

use yubiotp_core::PublicId;

use pam_yubiotp::mapping::{Mapping, parse_mapping};

use crate::error::{CliError, CliResult};

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Refuses user names that the mapping format cannot hold or that would
/// change a file's meaning: empty, with `:`, whitespace, control
/// characters, a leading `#`, or longer than 256 bytes.
///
/// # Errors
/// An input error naming the problem (the name is shown escaped).
pub fn validate_user(user: &str) -> CliResult<()> {
    let bad = if user.is_empty() {
        Some("is empty")
    } else if user.contains(':') {
        Some("contains ':'")
    } else if user.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if user.chars().any(char::is_control) {
        Some("contains a control character")
    } else if user.starts_with('#') {
        Some("starts with '#'")
    } else if user.len() > 256 {
        Some("is longer than 256 bytes")
    } else {
        None
    };
    match bad {
        Some(why) => Err(CliError::input(format!(
            "user name {:?} {why}",
            pam_yubiotp::audit::escape(user, 64)
        ))),
        None => Ok(()),
    }
}

/// Parses one public id given on the command line; it must have the
/// configured length (`token_id_length`), or the module could never match
/// it.
///
/// # Errors
/// An input error naming the id (public ids are not secret).
pub fn parse_pubid(text: &str, token_id_length: usize) -> CliResult<PublicId> {
    // A whole OTP (or more than an id) pasted where the id belongs: name
    // the id, never echo the encrypted part after it.
    let modhex = !text.is_empty()
        && text
            .bytes()
            .all(|b| b"cbdefghijklnrtuv".contains(&b.to_ascii_lowercase()));
    if modhex && text.len() > token_id_length {
        let id = text.get(..token_id_length).unwrap_or_default();
        return Err(CliError::input(if text.len() == token_id_length + 32 {
            format!(
                "that is a whole OTP ({} characters); the public id is the first \
                 {token_id_length} characters: {id}",
                text.len()
            )
        } else {
            format!(
                "a public id has {token_id_length} characters (token_id_length), this has {}; \
                 if it starts with the id, that is {id}",
                text.len()
            )
        }));
    }
    let shown = pam_yubiotp::audit::escape(text, 40);
    let id = PublicId::from_modhex(text).map_err(|e| {
        let why = match e {
            yubiotp_core::PublicIdError::Modhex(m) => m.to_string(),
            other => other.to_string(),
        };
        CliError::input(format!("invalid public id {shown:?}: {why}"))
    })?;
    if id.is_empty() {
        return Err(CliError::input("invalid public id \"\": empty"));
    }
    if id.len_chars() != token_id_length {
        return Err(CliError::input(format!(
            "public id {shown:?} has {} characters, but token_id_length is {token_id_length}",
            id.len_chars()
        )));
    }
    Ok(id)
}

/// Parses and deduplicates public ids, keeping their order.
///
/// # Errors
/// The first invalid id.
pub fn parse_pubids(texts: &[String], token_id_length: usize) -> CliResult<Vec<PublicId>> {
    let mut out: Vec<PublicId> = Vec::new();
    for t in texts {
        let id = parse_pubid(t, token_id_length)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

fn split_lines(bytes: &[u8]) -> (bool, Vec<Vec<u8>>) {
    let (bom, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let lines = if body.is_empty() {
        Vec::new()
    } else {
        body.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
    };
    (bom, lines)
}

fn join_lines(bom: bool, lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(BOM);
    }
    out.extend_from_slice(&lines.join(&b'\n'));
    out
}

/// Users of each key in `m`, other than `except`.
#[must_use]
pub fn other_users(m: &Mapping, id: &PublicId, except: &str) -> Vec<String> {
    let mut users: Vec<String> = Vec::new();
    for e in &m.entries {
        if e.user != except && e.keys.contains(id) && !users.contains(&e.user) {
            users.push(e.user.clone());
        }
    }
    users
}

/// What `map add` would do.
#[derive(Debug, Default)]
pub struct AddPlan {
    /// The new file content; `None` when nothing changes.
    pub content: Option<Vec<u8>>,
    /// Ids added.
    pub added: Vec<PublicId>,
    /// Ids the user already had.
    pub already: Vec<PublicId>,
    /// Ids that are also mapped to other users, with those users.
    pub shared: Vec<(PublicId, Vec<String>)>,
}

/// Adds `ids` to `user` in `bytes` (the current file, empty if none): to
/// the end of the user's last well-formed line, or as a new line.
#[must_use]
pub fn add(bytes: &[u8], user: &str, ids: &[PublicId]) -> AddPlan {
    let m = parse_mapping(bytes);
    let have = m.keys_for(user);
    let mut plan = AddPlan::default();
    for id in ids {
        if have.contains(id) {
            plan.already.push(*id);
            continue;
        }
        let others = other_users(&m, id, user);
        if !others.is_empty() {
            plan.shared.push((*id, others));
        }
        plan.added.push(*id);
    }
    if plan.added.is_empty() {
        return plan;
    }
    let joined = plan
        .added
        .iter()
        .map(PublicId::to_modhex)
        .collect::<Vec<_>>()
        .join(":");
    let (bom, mut lines) = split_lines(bytes);
    let target = m
        .entries
        .iter()
        .rev()
        .find(|e| e.user == user && m.problems.iter().all(|p| p.line != e.line))
        .map(|e| e.line);
    let crlf = lines.first().is_some_and(|l| l.ends_with(b"\r"));
    match target.and_then(|n| lines.get_mut(n.saturating_sub(1))) {
        Some(line) => {
            let end = line
                .iter()
                .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r'))
                .map_or(0, |p| p + 1);
            let tail = line.split_off(end);
            if !line.ends_with(b":") {
                line.push(b':');
            }
            line.extend_from_slice(joined.as_bytes());
            line.extend_from_slice(&tail);
        }
        None => {
            let mut new_line = format!("{user}:{joined}").into_bytes();
            if crlf {
                new_line.push(b'\r');
            }
            match lines.last() {
                // The file ends with a newline: the last element is empty.
                Some(last) if last.is_empty() => {
                    let at = lines.len().saturating_sub(1);
                    lines.insert(at, new_line);
                }
                Some(_) => {
                    lines.push(new_line);
                    lines.push(Vec::new());
                }
                None => {
                    lines.push(new_line);
                    lines.push(Vec::new());
                }
            }
        }
    }
    plan.content = Some(join_lines(bom, &lines));
    plan
}

/// What `map remove` would do.
#[derive(Debug, Default)]
pub struct RemovePlan {
    /// The new content; `None` when nothing changes.
    pub content: Option<Vec<u8>>,
    /// Ids removed from the user.
    pub removed: Vec<PublicId>,
    /// Lines removed entirely.
    pub lines_removed: usize,
    /// Requested ids the user did not have.
    pub missing: Vec<PublicId>,
}

/// Removes `ids` from `user` (every line of the user when `ids` is empty).
/// A line left without any key field is removed.
#[must_use]
pub fn remove(bytes: &[u8], user: &str, ids: &[PublicId]) -> RemovePlan {
    let m = parse_mapping(bytes);
    let (bom, lines) = split_lines(bytes);
    let user_lines: Vec<usize> = m
        .entries
        .iter()
        .filter(|e| e.user == user)
        .map(|e| e.line)
        .collect();
    let mut plan = RemovePlan::default();
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        if !user_lines.contains(&(i + 1)) {
            out.push(line);
            continue;
        }
        if ids.is_empty() {
            for k in m
                .entries
                .iter()
                .filter(|e| e.line == i + 1)
                .flat_map(|e| &e.keys)
            {
                if !plan.removed.contains(k) {
                    plan.removed.push(*k);
                }
            }
            plan.lines_removed += 1;
            continue;
        }
        let (body, cr) = match line.strip_suffix(b"\r") {
            Some(b) => (b.to_vec(), true),
            None => (line.clone(), false),
        };
        let fields: Vec<&[u8]> = body.split(|b| *b == b':').collect();
        let mut kept: Vec<&[u8]> = Vec::with_capacity(fields.len());
        let mut changed = false;
        for (n, f) in fields.iter().enumerate() {
            let id = core::str::from_utf8(f)
                .ok()
                .map(|s| s.trim_matches([' ', '\t']))
                .and_then(|s| PublicId::from_modhex(s).ok());
            match id {
                Some(id) if n > 0 && ids.contains(&id) => {
                    changed = true;
                    if !plan.removed.contains(&id) {
                        plan.removed.push(id);
                    }
                }
                _ => kept.push(f),
            }
        }
        if !changed {
            out.push(line);
            continue;
        }
        let any_left = kept
            .iter()
            .skip(1)
            .any(|f| f.iter().any(|b| !matches!(b, b' ' | b'\t')));
        if any_left {
            let mut new_line = kept.join(&b':');
            if cr {
                new_line.push(b'\r');
            }
            out.push(new_line);
        } else {
            plan.lines_removed += 1;
        }
    }
    plan.missing = ids
        .iter()
        .filter(|id| !plan.removed.contains(id))
        .copied()
        .collect();
    if !plan.removed.is_empty() || plan.lines_removed > 0 {
        plan.content = Some(join_lines(bom, &out));
    }
    plan
}

/// Every user and their keys, in order of first appearance.
#[must_use]
pub fn users(m: &Mapping) -> Vec<(String, Vec<PublicId>)> {
    let mut out: Vec<(String, Vec<PublicId>)> = Vec::new();
    for e in &m.entries {
        if !out.iter().any(|(u, _)| *u == e.user) {
            out.push((e.user.clone(), m.keys_for(&e.user)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PublicId {
        PublicId::from_modhex(s).unwrap()
    }

    #[test]
    fn add_appends_to_the_users_line_and_keeps_the_rest() {
        let before = b"# keys\r\nalice:cccccccccccb  \r\n\r\nbob:cccccccccccd\r\n";
        let plan = add(before, "alice", &[id("cccccccccccd"), id("cccccccccccb")]);
        assert_eq!(plan.already, vec![id("cccccccccccb")]);
        assert_eq!(
            plan.shared,
            vec![(id("cccccccccccd"), vec!["bob".to_string()])]
        );
        assert_eq!(
            plan.content.unwrap(),
            b"# keys\r\nalice:cccccccccccb:cccccccccccd  \r\n\r\nbob:cccccccccccd\r\n".to_vec()
        );
    }

    #[test]
    fn add_new_user_line_with_and_without_final_newline() {
        let plan = add(b"bob:cccccccccccd", "carol", &[id("ccccccccccce")]);
        assert_eq!(
            plan.content.unwrap(),
            b"bob:cccccccccccd\ncarol:ccccccccccce\n".to_vec()
        );
        let plan = add(b"", "carol", &[id("ccccccccccce")]);
        assert_eq!(plan.content.unwrap(), b"carol:ccccccccccce\n".to_vec());
        let plan = add(b"\xef\xbb\xbfcarol:\n", "carol", &[id("ccccccccccce")]);
        assert_eq!(
            plan.content.unwrap(),
            b"\xef\xbb\xbfcarol:ccccccccccce\n".to_vec()
        );
    }

    #[test]
    fn add_never_extends_a_malformed_line() {
        let plan = add(b"dave:xx:cccccccccccb\n", "dave", &[id("cccccccccccd")]);
        assert_eq!(
            plan.content.unwrap(),
            b"dave:xx:cccccccccccb\ndave:cccccccccccd\n".to_vec()
        );
    }

    #[test]
    fn remove_ids_and_lines() {
        let before = b"a:cccccccccccb:cccccccccccd\n#c\nb:cccccccccccb\na:ccccccccccce\n";
        let plan = remove(
            before,
            "a",
            &[id("cccccccccccd"), id("ccccccccccce"), id("cccccccccccf")],
        );
        assert_eq!(
            plan.content.unwrap(),
            b"a:cccccccccccb\n#c\nb:cccccccccccb\n".to_vec()
        );
        assert_eq!(plan.missing, vec![id("cccccccccccf")]);
        assert_eq!(plan.lines_removed, 1);
        let plan = remove(before, "a", &[]);
        assert_eq!(plan.content.unwrap(), b"#c\nb:cccccccccccb\n".to_vec());
        assert_eq!(plan.lines_removed, 2);
        let plan = remove(before, "zed", &[]);
        assert!(plan.content.is_none());
    }

    #[test]
    fn user_names() {
        assert!(validate_user("alice").is_ok());
        for bad in ["", "a:b", "a b", "a\nb", "#a", "a\tb", "a\u{0}"] {
            assert!(validate_user(bad).is_err(), "{bad:?}");
        }
    }
}
