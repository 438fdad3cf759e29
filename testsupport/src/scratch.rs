//! Scratch directories for tests: the one place that knows where test
//! files may live.
//!
//! The module trusts a file only when every ancestor directory is owned by
//! root (or the user) and not group/other-writable, so a test world under
//! `/tmp` (mode 1777) would be refused. Every test therefore creates its
//! files under [`scratch_root`], a directory inside the build's target
//! directory (`<target>/<profile>/test-tmp`, next to the test binaries),
//! whose ancestors are those of the checkout. Tests that need an
//! untrusted location on purpose use `/tmp` explicitly.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `<target>/<profile>/test-tmp`, created with mode 0755 (other test users
/// must be able to traverse it). Panics when it cannot be created or when
/// an ancestor is group- or other-writable (the module's directory checks
/// would then refuse every test file).
#[must_use]
pub fn scratch_root() -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("scratch_root: the test binary's path: {e}"));
    // <target>/<profile>/deps/<test binary> (unit and integration tests).
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("scratch_root: {} has no grandparent", exe.display()));
    let root = profile_dir.join("test-tmp");
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    for dir in profile_dir.ancestors() {
        let mode = fs::metadata(dir).map_or(0, |m| m.permissions().mode());
        assert!(
            mode & 0o022 == 0,
            "scratch_root: {} is group- or other-writable (mode {mode:o}): \
             the module's directory checks would refuse every test file; \
             build in a target directory whose ancestors are not writable by others",
            dir.display()
        );
    }
    root
}

/// A fresh, empty directory (mode 0700) under [`scratch_root`], removed on
/// drop.
#[must_use]
pub fn tempdir() -> tempfile::TempDir {
    let root = scratch_root();
    tempfile::tempdir_in(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()))
}
