//! Safe opening of the files the module trusts: a pure metadata check plus an
//! `O_NOFOLLOW | O_NONBLOCK` open whose checks run on the opened descriptor,
//! and a bounded read. Nothing here ever follows a symlink in the last path
//! component, blocks on a FIFO, or reads more than the policy allows.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Who may own a trusted file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Only root (uid 0).
    Root,
    /// Root or this uid (a user's own file).
    RootOr(u32),
}

impl Owner {
    fn allows(self, uid: u32) -> bool {
        match self {
            Self::Root => uid == 0,
            Self::RootOr(other) => uid == 0 || uid == other,
        }
    }
}

/// What a trusted file must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePolicy {
    /// Allowed owners.
    pub owner: Owner,
    /// Mode bits that must all be clear, e.g. `0o022` (no group/other
    /// write) or `0o077` (nothing for group/other).
    pub forbidden_mode: u32,
    /// Largest accepted size in bytes.
    pub max_size: u64,
}

impl FilePolicy {
    /// Root-owned, no access for group/other (key store, counter state).
    pub const ROOT_PRIVATE: Self = Self {
        owner: Owner::Root,
        forbidden_mode: 0o077,
        max_size: 4 << 20,
    };
    /// Root-owned, not writable by group/other (central mapping file).
    pub const ROOT_SHARED: Self = Self {
        owner: Owner::Root,
        forbidden_mode: 0o022,
        max_size: 4 << 20,
    };
}

/// Why a file or directory is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A symlink where a file was expected.
    #[error("is a symlink")]
    Symlink,
    /// A FIFO, socket, device or directory where a regular file was expected.
    #[error("is not a regular file ({0})")]
    NotRegular(&'static str),
    /// Not a directory where one was expected.
    #[error("is not a directory")]
    NotDirectory,
    /// Owned by a uid the policy does not allow.
    #[error("is owned by uid {0}, not by {1}")]
    Owner(u32, &'static str),
    /// Mode has forbidden bits set.
    #[error("has mode {0:04o}, which grants too much to group/other")]
    Mode(u32),
    /// Larger than allowed.
    #[error("is {size} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Actual size.
        size: u64,
        /// Limit.
        max: u64,
    },
    /// More than one hard link (could be a link to somebody else's file).
    #[error("has {0} hard links")]
    HardLinked(u64),
    /// Changed between the check and the open.
    #[error("changed while being opened")]
    Raced,
}

/// Why a trusted file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// It does not exist (ENOENT), which callers may treat as "absent".
    #[error("{0}: does not exist")]
    NotFound(PathBuf),
    /// EACCES/EPERM: usually a caller without root.
    #[error("{0}: permission denied")]
    PermissionDenied(PathBuf),
    /// It exists but is not trustworthy.
    #[error("{0}: {1}")]
    Untrusted(PathBuf, Violation),
    /// Any other I/O error.
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
}

impl OpenError {
    fn from_io(path: &Path, e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => Self::NotFound(path.to_path_buf()),
            io::ErrorKind::PermissionDenied => Self::PermissionDenied(path.to_path_buf()),
            _ if e.raw_os_error() == Some(libc::ELOOP) => {
                Self::Untrusted(path.to_path_buf(), Violation::Symlink)
            }
            _ => Self::Io(path.to_path_buf(), e),
        }
    }
}

fn kind_name(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else if t.is_symlink() {
        "symlink"
    } else {
        "special file"
    }
}

fn owner_name(owner: Owner) -> &'static str {
    match owner {
        Owner::Root => "root",
        Owner::RootOr(_) => "root or the user",
    }
}

/// The pure check of a regular file's metadata against `policy`.
///
/// # Errors
/// The first [`Violation`] found.
pub fn check_file(meta: &Metadata, policy: &FilePolicy) -> Result<(), Violation> {
    if meta.file_type().is_symlink() {
        return Err(Violation::Symlink);
    }
    if !meta.file_type().is_file() {
        return Err(Violation::NotRegular(kind_name(meta)));
    }
    if !policy.owner.allows(meta.uid()) {
        return Err(Violation::Owner(meta.uid(), owner_name(policy.owner)));
    }
    if meta.mode() & policy.forbidden_mode != 0 {
        return Err(Violation::Mode(meta.mode() & 0o7777));
    }
    if meta.nlink() > 1 {
        return Err(Violation::HardLinked(meta.nlink()));
    }
    if meta.len() > policy.max_size {
        return Err(Violation::TooLarge {
            size: meta.len(),
            max: policy.max_size,
        });
    }
    Ok(())
}

/// The pure check of a directory's metadata: a real directory, owned as
/// allowed, without the forbidden mode bits.
///
/// # Errors
/// The first [`Violation`] found.
pub fn check_dir(meta: &Metadata, owner: Owner, forbidden_mode: u32) -> Result<(), Violation> {
    if meta.file_type().is_symlink() {
        return Err(Violation::Symlink);
    }
    if !meta.is_dir() {
        return Err(Violation::NotDirectory);
    }
    if !owner.allows(meta.uid()) {
        return Err(Violation::Owner(meta.uid(), owner_name(owner)));
    }
    if meta.mode() & forbidden_mode != 0 {
        return Err(Violation::Mode(meta.mode() & 0o7777));
    }
    Ok(())
}

/// Checks `dir` and every ancestor up to `/`: each must be a directory
/// owned by root and not writable by group or other (sticky or not), like
/// OpenSSH's StrictModes. Symlinked ancestors are resolved first.
///
/// # Errors
/// The first untrusted directory, by path.
pub fn check_dir_chain(dir: &Path) -> Result<(), OpenError> {
    let real = dir.canonicalize().map_err(|e| OpenError::from_io(dir, e))?;
    let mut cur: Option<&Path> = Some(&real);
    while let Some(d) = cur {
        let meta = std::fs::symlink_metadata(d).map_err(|e| OpenError::from_io(d, e))?;
        check_dir(&meta, Owner::Root, 0o022)
            .map_err(|v| OpenError::Untrusted(d.to_path_buf(), v))?;
        cur = d.parent();
    }
    Ok(())
}

/// Checks a program before the module runs it (the resolver helper, the
/// verifier): a regular file owned by root, not writable by group or
/// other, in a directory chain that [`check_dir_chain`] trusts. A symlink
/// is followed only when the directory holding it is trusted too (`/bin/sh`
/// → `dash`). Hard links are allowed (cargo links its binaries).
///
/// # Errors
/// `NotFound` for a missing program; the first untrusted item otherwise.
pub fn check_program(path: &Path) -> Result<PathBuf, OpenError> {
    let link_meta = std::fs::symlink_metadata(path).map_err(|e| OpenError::from_io(path, e))?;
    let untrusted = |v| OpenError::Untrusted(path.to_path_buf(), v);
    let Some(link_dir) = path.parent() else {
        return Err(untrusted(Violation::NotRegular("directory")));
    };
    check_dir_chain(link_dir)?;
    let real = if link_meta.file_type().is_symlink() {
        path.canonicalize()
            .map_err(|e| OpenError::from_io(path, e))?
    } else {
        path.to_path_buf()
    };
    let meta = std::fs::symlink_metadata(&real).map_err(|e| OpenError::from_io(&real, e))?;
    if !meta.file_type().is_file() {
        return Err(untrusted(Violation::NotRegular(kind_name(&meta))));
    }
    if !Owner::Root.allows(meta.uid()) {
        return Err(untrusted(Violation::Owner(meta.uid(), "root")));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(Violation::Mode(meta.mode() & 0o7777)));
    }
    match real.parent() {
        Some(dir) => check_dir_chain(dir).map(|()| real.clone()),
        None => Err(untrusted(Violation::NotRegular("directory"))),
    }
}

/// Opens `path` for reading without following a symlink in its last
/// component and without blocking on a FIFO, then checks the opened
/// descriptor against `policy` (and that it is the same inode the path
/// named a moment before).
///
/// # Errors
/// [`OpenError`]; `NotFound` only for a plain ENOENT.
pub fn open_checked(path: &Path, policy: &FilePolicy) -> Result<(File, Metadata), OpenError> {
    // Look before opening, so devices and FIFOs are never opened at all.
    let before = std::fs::symlink_metadata(path).map_err(|e| OpenError::from_io(path, e))?;
    check_file(&before, policy).map_err(|v| OpenError::Untrusted(path.to_path_buf(), v))?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| OpenError::from_io(path, e))?;
    let meta = file.metadata().map_err(|e| OpenError::from_io(path, e))?;
    check_file(&meta, policy).map_err(|v| OpenError::Untrusted(path.to_path_buf(), v))?;
    if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
        return Err(OpenError::Untrusted(path.to_path_buf(), Violation::Raced));
    }
    Ok((file, meta))
}

/// [`open_checked`], then reads the whole file, never more than
/// `policy.max_size` bytes even if it grows meanwhile. The buffer is wiped
/// on drop (key stores hold secrets).
///
/// # Errors
/// [`OpenError`]; a file that grew past the limit is `TooLarge`.
pub fn read_checked(path: &Path, policy: &FilePolicy) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let (file, meta) = open_checked(path, policy)?;
    let cap = usize::try_from(meta.len().min(policy.max_size)).unwrap_or(0);
    let mut buf = Zeroizing::new(Vec::with_capacity(cap.saturating_add(1)));
    file.take(policy.max_size.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| OpenError::from_io(path, e))?;
    let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
    if len > policy.max_size {
        return Err(OpenError::Untrusted(
            path.to_path_buf(),
            Violation::TooLarge {
                size: len,
                max: policy.max_size,
            },
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> tempfile::TempDir {
        yubiotp_testsupport::tempdir()
    }

    fn policy() -> FilePolicy {
        // Whoever runs the tests owns the files.
        FilePolicy {
            owner: Owner::RootOr(nix::unistd::geteuid().as_raw()),
            forbidden_mode: 0o022,
            max_size: 64,
        }
    }

    #[test]
    fn reads_a_good_file() {
        let d = dir();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(&*read_checked(&p, &policy()).unwrap(), b"hello");
    }

    #[test]
    fn refuses_symlink_fifo_big_writable_and_hardlinked() {
        let d = dir();
        let target = d.path().join("t");
        std::fs::write(&target, b"x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = d.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            read_checked(&link, &policy()),
            Err(OpenError::Untrusted(_, Violation::Symlink))
        ));
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_checked(&fifo, &policy()),
            Err(OpenError::Untrusted(_, Violation::NotRegular("FIFO")))
        ));
        let big = d.path().join("big");
        std::fs::write(&big, [b'a'; 65]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_checked(&big, &policy()),
            Err(OpenError::Untrusted(
                _,
                Violation::TooLarge { size: 65, max: 64 }
            ))
        ));
        let ww = d.path().join("ww");
        std::fs::write(&ww, b"x").unwrap();
        std::fs::set_permissions(&ww, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            read_checked(&ww, &policy()),
            Err(OpenError::Untrusted(_, Violation::Mode(0o666)))
        ));
        let hard = d.path().join("hard");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(matches!(
            read_checked(&hard, &policy()),
            Err(OpenError::Untrusted(_, Violation::HardLinked(2)))
        ));
        assert!(matches!(
            read_checked(&d.path().join("missing"), &policy()),
            Err(OpenError::NotFound(_))
        ));
        assert!(matches!(
            read_checked(d.path(), &policy()),
            Err(OpenError::Untrusted(_, Violation::NotRegular("directory")))
        ));
    }

    #[test]
    fn dir_chain_refuses_world_writable_parent() {
        let d = dir();
        let sub = d.path().join("open");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).unwrap();
        let inner = sub.join("inner");
        std::fs::create_dir(&inner).unwrap();
        let err = check_dir_chain(&inner).unwrap_err();
        assert!(matches!(err, OpenError::Untrusted(p, Violation::Mode(0o777)) if p == sub));
    }
}
