//! Which keys a user may use: the central `authfile` or the per-user
//! `~/.yubico/authorized_yubikeys`, both in yubico-pam's format
//! `user:pubid1:pubid2:…`.
//!
//! Parsing rules (pure, in [`parse_mapping`]): a UTF-8 BOM at the start is
//! skipped; `\r` before a line end is dropped; a line whose first
//! non-blank character is `#` is a comment; fields are split on `:` and
//! trimmed of spaces and tabs; empty fields are skipped; a user may appear
//! on several lines. A public id field that is not valid modhex, a line
//! with no `:`, a user name holding white space, `;`, `=`, `,` or a control
//! character, or a line holding a NUL or invalid UTF-8, is a [`Problem`]
//! and grants nothing; any problem in a file makes its keyless users
//! unavailable (see [`KeyLookup`]).
//! Lines are never split at any length.

use std::path::{Path, PathBuf};

use yubiotp_core::PublicId;

use crate::fs_policy::{self, FilePolicy, OpenError, Owner};
use crate::privs;

/// One malformed line or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number.
    pub line: usize,
    /// The user the line names, when it can be told (not for a line with a
    /// NUL byte or invalid UTF-8, which could belong to anyone).
    pub user: Option<String>,
    /// What is wrong (never the line's text).
    pub reason: String,
}

/// One user's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// The user name.
    pub user: String,
    /// Valid public ids on the line.
    pub keys: Vec<PublicId>,
}

/// A parsed mapping file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Every user line in file order.
    pub entries: Vec<Entry>,
    /// Malformed lines and fields.
    pub problems: Vec<Problem>,
}

impl Mapping {
    /// All keys mapped to `user`, deduplicated, in file order.
    #[must_use]
    pub fn keys_for(&self, user: &str) -> Vec<PublicId> {
        let mut out: Vec<PublicId> = Vec::new();
        for e in self.entries.iter().filter(|e| e.user == user) {
            for k in &e.keys {
                if !out.contains(k) {
                    out.push(*k);
                }
            }
        }
        out
    }
}

/// The fix named for a line that is not `user:id[:id…]`.
const FIX: &str = "use ':' between the user and each public id";

/// Why `c` cannot stand in a user name of a mapping line: white space and
/// the separators people type for ':' (a line `daemon ccccccdbjrgf` must not
/// become a keyless user "daemon ccccccdbjrgf"). `@`, `\\`, `.`, `-`, `$`
/// stay allowed (virtual, SSSD and winbind names).
fn user_name_flaw(c: char) -> Option<&'static str> {
    match c {
        c if c.is_whitespace() => Some("white space"),
        ';' | '=' | ',' => Some("a ';', '=' or ','"),
        c if c.is_control() => Some("a control character"),
        _ => None,
    }
}

/// What one line of a mapping file says, as [`visit_line`] reports it.
trait Visitor {
    /// A well-formed user line starts (its keys follow).
    fn user_line(&mut self, line: usize, user: &str);
    /// A valid public id on the current user line.
    fn key(&mut self, user: &str, id: PublicId);
    /// A malformed line or field.
    fn problem(&mut self, problem: Problem);
}

/// Applies the parsing rules (module doc) to one line, `\n` excluded, with
/// no allocation unless the line is malformed. The one place the rules
/// live: [`parse_mapping`] and [`scan_user`] both go through it.
fn visit_line(raw: &[u8], line_no: usize, v: &mut impl Visitor) {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.contains(&0) {
        v.problem(Problem {
            line: line_no,
            user: None,
            reason: "contains a NUL byte".into(),
        });
        return;
    }
    let Ok(line) = core::str::from_utf8(raw) else {
        v.problem(Problem {
            line: line_no,
            user: None,
            reason: "is not valid UTF-8".into(),
        });
        return;
    };
    let trimmed = line.trim_matches([' ', '\t']);
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return;
    }
    if !trimmed.contains(':') {
        v.problem(Problem {
            line: line_no,
            user: None,
            reason: format!("has no ':' ({FIX})"),
        });
        return;
    }
    let mut fields = trimmed.split(':').map(|f| f.trim_matches([' ', '\t']));
    let user = fields.next().unwrap_or("");
    if user.is_empty() {
        v.problem(Problem {
            line: line_no,
            user: None,
            reason: "has no user name".into(),
        });
        return;
    }
    if let Some(what) = user.chars().find_map(user_name_flaw) {
        // `bob x:id` or `bob;x:id`: whose line this is can't be told.
        v.problem(Problem {
            line: line_no,
            user: None,
            reason: format!("has a user name with {what} ({FIX})"),
        });
        return;
    }
    v.user_line(line_no, user);
    for (n, field) in fields.enumerate().filter(|(_, f)| !f.is_empty()) {
        match PublicId::from_modhex(field) {
            Ok(id) => v.key(user, id),
            Err(e) => v.problem(Problem {
                line: line_no,
                user: Some(user.to_string()),
                reason: format!("field {} is not a public id ({e})", n + 2),
            }),
        }
    }
}

/// Runs [`visit_line`] over every line of `bytes` (a leading UTF-8 BOM
/// skipped).
fn visit_all(bytes: &[u8], v: &mut impl Visitor) {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        visit_line(raw, i + 1, v);
    }
}

impl Visitor for Mapping {
    fn user_line(&mut self, line: usize, user: &str) {
        self.entries.push(Entry {
            line,
            user: user.to_string(),
            keys: Vec::new(),
        });
    }
    fn key(&mut self, _user: &str, id: PublicId) {
        if let Some(e) = self.entries.last_mut() {
            e.keys.push(id);
        }
    }
    fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }
}

/// Parses mapping text (see the module doc for the rules). For `ykmap`,
/// which needs every line; a login uses [`scan_user`].
#[must_use]
pub fn parse_mapping(bytes: &[u8]) -> Mapping {
    let mut m = Mapping::default();
    visit_all(bytes, &mut m);
    m
}

/// What a login needs from a mapping file: one user's keys and every
/// problem of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserScan {
    /// The user's keys, deduplicated, in file order (as
    /// [`Mapping::keys_for`]).
    pub keys: Vec<PublicId>,
    /// Every malformed line and field of the file (as
    /// [`Mapping::problems`]).
    pub problems: Vec<Problem>,
}

struct ScanFor<'u> {
    user: &'u str,
    out: UserScan,
}

impl Visitor for ScanFor<'_> {
    fn user_line(&mut self, _line: usize, _user: &str) {}
    fn key(&mut self, user: &str, id: PublicId) {
        if user == self.user && !self.out.keys.contains(&id) {
            self.out.keys.push(id);
        }
    }
    fn problem(&mut self, problem: Problem) {
        self.out.problems.push(problem);
    }
}

/// One pass over mapping text for `user`: the same rules as
/// [`parse_mapping`], but nothing is kept of other users' lines and no
/// well-formed line allocates. Equal to `parse_mapping(bytes)`'s
/// `keys_for(user)` and `problems`.
#[must_use]
pub fn scan_user(bytes: &[u8], user: &str) -> UserScan {
    let mut s = ScanFor {
        user,
        out: UserScan::default(),
    };
    visit_all(bytes, &mut s);
    s.out
}

/// The quick path of a login's scan: true when `raw` (one line, `\n`
/// excluded) is certainly a well-formed line of a user other than `user`,
/// so that [`visit_line`] would report no problem and give `user` nothing.
/// Only the common shape qualifies — printable ASCII with no blanks,
/// `name:id:id…` with every id valid — and anything else (the user's own
/// lines, comments, blanks, malformed lines) returns false and goes
/// through [`visit_line`]. Nothing is decoded or allocated.
fn other_users_line(raw: &[u8], user: &[u8]) -> bool {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    // One pass, a table lookup a byte: the name up to the first ':' ...
    let mut bytes = raw.iter();
    let mut name_len = 0usize;
    loop {
        match bytes.next() {
            None => return false,
            Some(b':') => break,
            Some(b) if class(*b) & NAME_BYTE != 0 => name_len += 1,
            Some(_) => return false,
        }
    }
    if name_len == 0 || raw.get(..name_len) == Some(user) {
        return false;
    }
    // ... then ids of modhex, of even length up to 32, between ':'s.
    let mut field = 0usize;
    for b in bytes {
        if *b == b':' {
            if !field.is_multiple_of(2) || field > 2 * PublicId::MAX_BYTES {
                return false;
            }
            field = 0;
        } else if class(*b) & MODHEX_BYTE != 0 {
            field += 1;
        } else {
            return false;
        }
    }
    field.is_multiple_of(2) && field <= 2 * PublicId::MAX_BYTES
}

/// [`class`] bit: a byte a user name may hold on the quick path
/// (printable ASCII but blanks, `;`, `=` and `,`; not `:`).
const NAME_BYTE: u8 = 1;
/// [`class`] bit: a modhex character, either case.
const MODHEX_BYTE: u8 = 2;

/// The byte classes of the quick path, by byte value.
// Indexing in a constant: an index out of range fails the build, it
// cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        if b != b';' as usize && b != b'=' as usize && b != b',' as usize && b != b':' as usize {
            t[b] = NAME_BYTE;
        }
        b += 1;
    }
    let mut b = 0;
    while b < 256 {
        if yubiotp_core::modhex::nibble(b as u8).is_some() {
            t[b] |= MODHEX_BYTE;
        }
        b += 1;
    }
    t
};

fn class(b: u8) -> u8 {
    CLASSES.get(usize::from(b)).copied().unwrap_or(0)
}

/// How much of the central file a scan reads at a time.
const SCAN_CHUNK: usize = 64 << 10;

/// Reads `reader` to its end in chunks (the first buffer `chunk` bytes
/// long; tests use tiny ones), at most `max` bytes, and hands `lines` the
/// text in runs of whole lines: each run ends just after a `\n`, except
/// the last one at the end of the input. A line is never split, whatever
/// its length: the buffer grows to hold it. The flag is true for the run
/// that starts the input.
fn for_each_run(
    mut reader: impl std::io::Read,
    max: u64,
    chunk: usize,
    mut lines: impl FnMut(&[u8], bool),
) -> Result<(), std::io::Error> {
    // Fallible allocation: in a host short of memory (a small RLIMIT_AS)
    // the scan fails, and the login with it, instead of the process
    // aborting.
    let grow = |buf: &mut Vec<u8>, to: usize| -> Result<(), std::io::Error> {
        buf.try_reserve_exact(to.saturating_sub(buf.len()))
            .map_err(|_| std::io::Error::other("out of memory for the read buffer"))?;
        buf.resize(to, 0);
        Ok(())
    };
    let mut buf = Vec::new();
    grow(&mut buf, chunk.max(1))?;
    let (mut filled, mut total, mut first) = (0usize, 0u64, true);
    loop {
        if filled == buf.len() {
            let to = buf.len().saturating_mul(2);
            grow(&mut buf, to)?;
        }
        let n = match reader.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if filled > 0 {
                lines(buf.get(..filled).unwrap_or_default(), first);
            }
            return Ok(());
        }
        total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        if total > max {
            return Err(std::io::Error::other(format!(
                "grew past the {max}-byte limit while being read"
            )));
        }
        let data = buf.get(..filled + n).unwrap_or_default();
        // Bytes before `filled` hold no line end: look only at the new ones.
        let Some(last_nl) = memchr::memrchr(b'\n', data.get(filled..).unwrap_or_default()) else {
            filled += n;
            continue;
        };
        let whole = filled + last_nl + 1;
        lines(data.get(..whole).unwrap_or_default(), first);
        first = false;
        buf.copy_within(whole..filled + n, 0);
        filled = filled + n - whole;
    }
}

/// Drops a UTF-8 BOM from the start of the input.
fn without_bom(run: &[u8], at_start: bool) -> &[u8] {
    if at_start {
        run.strip_prefix(b"\xef\xbb\xbf").unwrap_or(run)
    } else {
        run
    }
}

/// [`scan_user`] over a reader in one streaming pass (see
/// [`for_each_run`]; `chunk` is [`SCAN_CHUNK`] but in tests), reading at
/// most `max` bytes; other users' well-formed lines are only checked
/// ([`other_users_line`]), nothing of theirs is decoded or allocated.
fn scan_user_from(
    reader: impl std::io::Read,
    user: &str,
    max: u64,
    chunk: usize,
) -> Result<UserScan, std::io::Error> {
    let mut s = ScanFor {
        user,
        out: UserScan::default(),
    };
    let mut line_no = 0usize;
    for_each_run(reader, max, chunk, |run, at_start| {
        let run = without_bom(run, at_start);
        let mut start = 0usize;
        let ends = memchr::memchr_iter(b'\n', run).chain(
            // The input's last line, when it has no `\n`.
            (!run.ends_with(b"\n")).then_some(run.len()),
        );
        for end in ends {
            let raw = run.get(start..end).unwrap_or_default();
            start = end + 1;
            line_no += 1;
            if !other_users_line(raw, user.as_bytes()) {
                visit_line(raw, line_no, &mut s);
            }
        }
    })?;
    Ok(s.out)
}

/// The user's keys alone, as [`scan_user`] finds them, but looking only at
/// the lines that hold the user's name somewhere (found with a SIMD
/// substring search): every line whose user is `user` holds those bytes,
/// and each such line goes through [`visit_line`] as in the full pass, in
/// file order. The problems of the file are not gathered: a login needs
/// them only when this finds no usable key (see [`keys_from_authfile`]).
fn user_keys_from(
    reader: impl std::io::Read,
    user: &str,
    max: u64,
    chunk: usize,
) -> Result<Vec<PublicId>, std::io::Error> {
    let mut s = ScanFor {
        user,
        out: UserScan::default(),
    };
    if user.is_empty() {
        // No line belongs to an empty name; read the file all the same so
        // size and read errors are not skipped.
        for_each_run(reader, max, chunk, |_, _| {})?;
        return Ok(Vec::new());
    }
    let finder = memchr::memmem::Finder::new(user.as_bytes());
    for_each_run(reader, max, chunk, |run, at_start| {
        let run = without_bom(run, at_start);
        let mut next = 0usize;
        while let Some(at) = run.get(next..).and_then(|rest| finder.find(rest)) {
            let hit = next + at;
            let head = run.get(..hit).unwrap_or_default();
            let start = memchr::memrchr(b'\n', head).map_or(0, |i| i + 1);
            let tail = run.get(hit..).unwrap_or_default();
            let end = memchr::memchr(b'\n', tail).map_or(run.len(), |i| hit + i);
            // Problems are not kept here, so their line number is moot.
            visit_line(run.get(start..end).unwrap_or_default(), 0, &mut s);
            next = end + 1;
        }
    })?;
    Ok(s.out.keys)
}

/// A user from the passwd database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

/// What we know about a user's keys.
#[derive(Debug)]
pub enum KeyLookup {
    /// The user's mapped keys (never empty).
    Keys(Vec<PublicId>),
    /// It is positively established that the user has no key.
    NoKeys(String),
    /// The user is unknown to the source that should know them (the
    /// passwd database for a per-user file; the directory for LDAP), with
    /// the reason: PAM_USER_UNKNOWN, never "no keys" (so never PAM_IGNORE).
    UnknownUser(String),
    /// The mapping could not be read or trusted: never "no keys".
    Unavailable(String),
    /// The source refused the user's own credentials (LDAP with
    /// `ldap.bind_as_user`: a wrong password): the user's failure,
    /// PAM_AUTH_ERR, never "no keys".
    Refused(String),
}

/// Looks `user` up in the passwd database (NSS).
///
/// # Errors
/// A transient NSS failure (not "no such user").
pub fn lookup_user(user: &str) -> Result<Option<Passwd>, String> {
    match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => Ok(Some(Passwd {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })),
        Ok(None) => Ok(None),
        // getpwnam_r's "not found" is unspecified by POSIX; glibc's files
        // backend says 0, SSSD and nss_wrapper say ENOENT, some say ESRCH.
        // Every other errno is a real failure: never "unknown user".
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ESRCH) => Ok(None),
        Err(e) => Err(format!("passwd lookup failed: {e}")),
    }
}

/// Largest central mapping file read (1 GiB, some 40 million users): it
/// is scanned line by line, never held whole, so the limit only bounds the
/// time a broken or hostile file can take.
pub const AUTHFILE_MAX: u64 = 1 << 30;

/// Largest per-user mapping file (SPEC §4).
pub const USER_FILE_MAX: u64 = 64 << 10;

/// The per-user file's path relative to the home directory.
pub const USER_FILE: &str = ".yubico/authorized_yubikeys";

/// Turns a parsed file into a lookup for `user`. "No keys" must be positive
/// knowledge (SPEC §4): it is only established from a file in which every
/// non-blank, non-comment line is well-formed. When the user has no valid
/// key and the file has any malformed line (a typo in anyone's line, an
/// inline comment, `daemon ccccccdbjrgf` with a space for ':', NUL,
/// invalid UTF-8), the mapping is unavailable, never "no keys" — with
/// `nullok` that would silently drop the second factor. Users with a valid
/// key are unaffected by other lines.
#[cfg(test)]
fn lookup_in(mapping: &Mapping, user: &str, token_id_length: usize, what: &str) -> KeyLookup {
    decide(
        mapping.keys_for(user),
        &mapping.problems,
        token_id_length,
        what,
    )
}

/// [`lookup_in`] on the result of a [`scan_user`].
fn decide(
    user_keys: Vec<PublicId>,
    problems: &[Problem],
    token_id_length: usize,
    what: &str,
) -> KeyLookup {
    let (keys, wrong_length): (Vec<PublicId>, Vec<PublicId>) = user_keys
        .into_iter()
        .partition(|k| k.len_chars() == token_id_length);
    if !keys.is_empty() {
        return KeyLookup::Keys(keys);
    }
    let mut doubtful: Vec<String> = problems
        .iter()
        .map(|p| format!("line {} {}", p.line, p.reason))
        .collect();
    doubtful.extend(wrong_length.iter().map(|k| {
        format!(
            "public id {k} has {} characters, not token_id_length={token_id_length}",
            k.len_chars()
        )
    }));
    if doubtful.is_empty() {
        KeyLookup::NoKeys(format!("no key mapped in {what}"))
    } else {
        KeyLookup::Unavailable(format!(
            "{what}: no valid key for the user, and \"no key\" can't be established from a file with malformed lines: {}",
            doubtful.join("; ")
        ))
    }
}

/// The keys of `user` according to the central file `authfile` (the user
/// need not be in passwd: virtual users); only public ids of
/// `token_id_length` characters can ever match an OTP.
#[must_use]
pub fn keys_from_authfile(user: &str, authfile: &Path, token_id_length: usize) -> KeyLookup {
    let policy = FilePolicy {
        max_size: AUTHFILE_MAX,
        ..FilePolicy::ROOT_SHARED
    };
    let result = authfile
        .parent()
        .map_or(Ok(()), fs_policy::check_dir_chain)
        .and_then(|()| fs_policy::open_checked(authfile, &policy));
    let file = match result {
        Ok((file, _)) => file,
        Err(e) => return KeyLookup::Unavailable(format!("authfile {e}")),
    };
    // First the user's own lines: a usable key settles the login, and
    // problems elsewhere in the file change nothing then (see `decide`).
    let mut file = file;
    match user_keys_from(&file, user, AUTHFILE_MAX, SCAN_CHUNK) {
        Ok(keys) if keys.iter().any(|k| k.len_chars() == token_id_length) => {
            return decide(keys, &[], token_id_length, &authfile.display().to_string());
        }
        Ok(_) => {}
        Err(e) => return KeyLookup::Unavailable(format!("authfile {}: {e}", authfile.display())),
    }
    // No usable key: "no key" needs the whole file to be sound.
    if let Err(e) = std::io::Seek::rewind(&mut file) {
        return KeyLookup::Unavailable(format!("authfile {}: {e}", authfile.display()));
    }
    match scan_user_from(&file, user, AUTHFILE_MAX, SCAN_CHUNK) {
        Ok(scan) => decide(
            scan.keys,
            &scan.problems,
            token_id_length,
            &authfile.display().to_string(),
        ),
        Err(e) => KeyLookup::Unavailable(format!("authfile {}: {e}", authfile.display())),
    }
}

/// The keys of `pw` according to `~/.yubico/authorized_yubikeys`, read with
/// the user's file-system identity. Only lines naming the user count. A
/// missing file or `.yubico` directory (with a sound home) is "no keys";
/// anything else that goes wrong is "unavailable".
#[must_use]
pub fn keys_from_user_file(pw: &Passwd, token_id_length: usize) -> KeyLookup {
    if !pw.home.is_absolute() || pw.home == Path::new("/") {
        return KeyLookup::Unavailable(format!(
            "home directory {:?} of {} is not usable",
            pw.home, pw.name
        ));
    }
    let path = pw.home.join(USER_FILE);
    let read = privs::as_user(pw.uid, pw.gid, || read_user_file(pw, &path));
    match read {
        Err(e) => KeyLookup::Unavailable(e),
        Ok(Ok(Some(bytes))) => {
            let scan = scan_user(&bytes, &pw.name);
            decide(
                scan.keys,
                &scan.problems,
                token_id_length,
                &path.display().to_string(),
            )
        }
        Ok(Ok(None)) => KeyLookup::NoKeys(format!("{} does not exist", path.display())),
        Ok(Err(e)) => KeyLookup::Unavailable(e),
    }
}

fn read_user_file(pw: &Passwd, path: &Path) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, String> {
    let owner = Owner::RootOr(pw.uid);
    // The home directory must exist and be sound even when the file is absent,
    // so an unmounted or broken home is never taken for "no keys".
    for dir in [pw.home.clone(), pw.home.join(".yubico")] {
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) => fs_policy::check_dir(&meta, owner, 0o022)
                .map_err(|v| format!("{}: {v}", dir.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir != pw.home => {
                return Ok(None);
            }
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    let policy = FilePolicy {
        owner,
        forbidden_mode: 0o022,
        max_size: USER_FILE_MAX,
    };
    match fs_policy::read_checked(path, &policy) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(OpenError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// A mapping source (ARCHITECTURE: central file, per-user file, LDAP):
/// each answers the user's keys, "no key" (positively established) or
/// unavailable, so the `nullok` decision is made once, in the session.
pub trait MappingSource {
    /// The keys of `user`; only public ids of `token_id_length` characters
    /// can ever match an OTP.
    fn keys_for(&self, user: &str, token_id_length: usize) -> KeyLookup;
}

/// The central `authfile` (virtual users too: no passwd lookup).
#[derive(Debug)]
pub struct CentralFile<'a>(pub &'a Path);

impl MappingSource for CentralFile<'_> {
    fn keys_for(&self, user: &str, token_id_length: usize) -> KeyLookup {
        keys_from_authfile(user, self.0, token_id_length)
    }
}

/// The per-user `~/.yubico/authorized_yubikeys` (the user must be in the
/// passwd database).
#[derive(Debug)]
pub struct UserFile;

impl MappingSource for UserFile {
    fn keys_for(&self, user: &str, token_id_length: usize) -> KeyLookup {
        match lookup_user(user) {
            Ok(Some(pw)) => keys_from_user_file(&pw, token_id_length),
            Ok(None) => KeyLookup::UnknownUser("not in the passwd database".into()),
            Err(e) => KeyLookup::Unavailable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PublicId {
        PublicId::from_modhex(s).unwrap()
    }

    #[test]
    fn yubico_pam_format() {
        let m = parse_mapping(
            b"\xef\xbb\xbf# comment\r\npaul:indvnvlcbdre:ldvglinuddek\r\n\n  #alice:ccccccbbbbbb\nalice :  cccccccccccb ::\npaul:cccccccccccd\ncarol:\n",
        );
        assert_eq!(
            m.keys_for("paul"),
            vec![id("indvnvlcbdre"), id("ldvglinuddek"), id("cccccccccccd")]
        );
        assert_eq!(m.keys_for("alice"), vec![id("cccccccccccb")]);
        assert!(m.keys_for("carol").is_empty());
        assert!(m.keys_for("ali").is_empty());
        assert!(m.keys_for("").is_empty());
        assert!(m.problems.is_empty(), "{:?}", m.problems);
    }

    #[test]
    fn malformed_lines_never_mean_no_keys() {
        let lookup = |text: &[u8], user: &str| lookup_in(&parse_mapping(text), user, 12, "f");
        for bad in [
            &b"root:ccccccdbjrgf   # root's key\n"[..],
            b"root:ccccccdbjrg\n",
            b"root:ccccccdbjrgf\xe9\n",
            b"r\0oot:ccccccdbjrgf\n",
            b":ccccccdbjrgf\n",
            b"root:cccccccccc\n",
        ] {
            assert!(
                matches!(lookup(bad, "root"), KeyLookup::Unavailable(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Another user's typo makes every keyless user unavailable: the
        // broken line could have been meant for anyone.
        assert!(matches!(
            lookup(b"bob:cccc cccc\n", "root"),
            KeyLookup::Unavailable(_)
        ));
        assert!(matches!(
            lookup(b"bob:ccccccdbjrgf\n", "root"),
            KeyLookup::NoKeys(_)
        ));
        assert!(matches!(lookup(b"root:\n", "root"), KeyLookup::NoKeys(_)));
        // A valid key still works next to a broken line of the same user.
        assert!(matches!(
            lookup(b"root:ccccccdbjrgf\nroot:typo\n", "root"),
            KeyLookup::Keys(k) if k.len() == 1
        ));
    }

    #[test]
    fn separator_typos_are_problems_not_users() {
        for typo in [
            "daemon ccccccdbjrgf",
            "daemon;ccccccdbjrgf",
            "daemon=ccccccdbjrgf",
            "daemon,ccccccdbjrgf",
            "daemon ; ccccccdbjrgf",
            "daemon",
            "daemon x:ccccccdbjrgf",
            "dae\u{7f}mon:ccccccdbjrgf",
            "daemon\u{a0}:ccccccdbjrgf",
        ] {
            let text = format!("# ok\nroot:ccccccdbjrgg\n{typo}\n");
            let m = parse_mapping(text.as_bytes());
            assert!(m.entries.iter().all(|e| e.user == "root"), "{typo:?}");
            assert_eq!(m.problems.len(), 1, "{typo:?}");
            assert_eq!(m.problems[0].line, 3);
            assert!(m.problems[0].reason.contains("use ':' between the user"));
            assert!(!m.problems[0].reason.contains("ccccccdbjrgf"));
            let lookup = |user| lookup_in(&m, user, 12, "f");
            assert!(
                matches!(lookup("daemon"), KeyLookup::Unavailable(ref r) if r.contains("line 3")),
                "{typo:?}"
            );
            assert!(matches!(lookup("nobody"), KeyLookup::Unavailable(_)));
            // Keyed users are unaffected.
            assert!(matches!(lookup("root"), KeyLookup::Keys(_)));
        }
        // Names that services really use stay valid.
        let m = parse_mapping(
            b"DOM\\alice:ccccccdbjrgf\nbob@example.org:ccccccdbjrgf\nm.x-y_$:ccccccdbjrgf\n",
        );
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(m.entries.len(), 3);
    }

    #[test]
    fn scan_user_equals_the_full_parse() {
        let texts: [&[u8]; 6] = [
            b"\xef\xbb\xbfroot:ccccccdbjrgf\r\nbob:cccc cccc\nroot:ccccccdbjrgf:cccccccccccb\n",
            b"bob:ccccccdbjrgf\n\n# c\nroot:\n",
            b"\0alice:cccccccccccb\nalice:cccccccccc\xffb\n:cccccccccccb\nalice:cccccccccccc",
            b"daemon ccccccdbjrgf\nroot:ccccccdbjrgg\n",
            b"",
            b"\xef\xbb\xbf",
        ];
        for text in texts {
            for user in ["root", "bob", "alice", "daemon", "nobody", ""] {
                let m = parse_mapping(text);
                let want = UserScan {
                    keys: m.keys_for(user),
                    problems: m.problems.clone(),
                };
                assert_eq!(scan_user(text, user), want);
                assert_eq!(
                    scan_user_from(text, user, 1 << 20, SCAN_CHUNK).unwrap(),
                    want
                );
                assert_eq!(user_keys_from(text, user, 1 << 20, 3).unwrap(), want.keys);
            }
        }
        assert!(scan_user_from(&b"root:ccccccdbjrgf\n"[..], "root", 4, SCAN_CHUNK).is_err());
    }

    /// A reader that hands out at most `step` bytes a call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            let (head, rest) = self.data.split_at(n);
            out.get_mut(..n).unwrap_or_default().copy_from_slice(head);
            self.data = rest;
            Ok(n)
        }
    }

    #[test]
    fn the_quick_path_takes_only_other_users_sound_lines() {
        let yes: [&[u8]; 5] = [
            b"bob:ccccccdbjrgf",
            b"bob:ccccccdbjrgf:CCCCCCDBJRGF\r",
            b"bob:",
            b"b#o.b@x:::cccccccccccb:",
            b"#bob:ccccccdbjrgf",
        ];
        for line in yes {
            assert!(other_users_line(line, b"root"), "{line:?}");
        }
        let no: [&[u8]; 12] = [
            b"root:ccccccdbjrgf",
            b"bob:cccc cccc",
            b" bob:ccccccdbjrgf",
            b"bob:ccccccdbjrg",
            b"bob:ccccccdbjrgx",
            b"bob;x:ccccccdbjrgf",
            b"b=b:ccccccdbjrgf",
            b":ccccccdbjrgf",
            b"bob ccccccdbjrgf",
            b"b\xc3\xa9b:ccccccdbjrgf",
            b"bob:ccccccdbjrgf\r\r",
            b"bob:cccccccccccccccccccccccccccccccccc",
        ];
        for line in no {
            assert!(!other_users_line(line, b"root"), "{line:?}");
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// The login's scan (quick path, chunks, short reads) says exactly
        /// what the full parse says, for any user, on text made of the
        /// characters the rules care about.
        #[test]
        fn the_streaming_scan_equals_the_full_parse(
            lines in proptest::collection::vec(proptest::prop_oneof![
                // Any bytes the rules care about.
                proptest::collection::vec(proptest::sample::select(
                    b"cbdefghijklnrtuvCaoxz0#:;=, \t\r\0\xef\xbb\xbf\xff".to_vec()), 0..40),
                // Lines of the usual shape, sound or nearly so.
                (
                    proptest::sample::select(vec!["alice", "bob", "c", "#c", " bob", "bob\t", "b;b", ""]),
                    proptest::collection::vec(proptest::sample::select(vec![
                        "", "cccccccccccb", "CCCCCCCCCCCB", "cccccccccccv", "cccc", "ccccc",
                        " cccccccccccb", "cccccccccccx", "cccccccccccb\r",
                        "cccccccccccccccccccccccccccccccc", "ccccccccccccccccccccccccccccccccbb",
                    ]), 0..4),
                ).prop_map(|(name, ids)| format!("{name}:{}", ids.join(":")).into_bytes()),
            ], 0..12),
            chunk in 1usize..64,
            step in 1usize..64,
            user_pick in 0usize..16,
        ) {
            let text = lines.join(&b'\n');
            let m = parse_mapping(&text);
            let names: Vec<String> = m.entries.iter().map(|e| e.user.clone()).collect();
            let user = names.get(user_pick).map_or("c", String::as_str);
            let want = UserScan { keys: m.keys_for(user), problems: m.problems.clone() };
            let got = scan_user_from(Trickle { data: &text, step }, user, 1 << 20, chunk).unwrap();
            proptest::prop_assert_eq!(&got, &want);
            let keys = user_keys_from(Trickle { data: &text, step }, user, 1 << 20, chunk).unwrap();
            proptest::prop_assert_eq!(&keys, &want.keys);
            proptest::prop_assert_eq!(scan_user(&text, user), want);
        }
    }

    #[test]
    fn malformed_lines_grant_nothing_and_long_lines_stay_whole() {
        let long = format!("bob:{}root:cccccccccccb\n", "x".repeat(1020));
        let m = parse_mapping(long.as_bytes());
        assert!(
            m.keys_for("root").is_empty(),
            "never split into a root line"
        );
        // The line stays whole: its valid fields still belong to bob.
        assert_eq!(m.keys_for("bob"), vec![id("cccccccccccb")]);
        assert_eq!(m.problems.len(), 1);
        let m = parse_mapping(b"\0alice:cccccccccccb\nalice:cccccccccc\xffb\n:cccccccccccb\n");
        assert!(m.keys_for("alice").is_empty());
        assert_eq!(m.problems.len(), 3);
        assert!(m.problems.iter().all(|p| !p.reason.contains("cccc")));
    }
}
