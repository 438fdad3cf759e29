//! Running a closure with another user's file-system identity, to read a
//! file in that user's home as that user and never as root.
//!
//! Uses `setfsuid`/`setfsgid`, which change only the calling thread's
//! file-access identity (other threads of the host and its real/effective
//! ids are untouched). The previous identity is restored by a guard's
//! `Drop`, so it comes back on every path out of the closure, a panic
//! included: the host (sshd's monitor, sudo) never keeps running with the
//! user's fsuid after the FFI boundary caught a panic. Supplementary groups
//! are left as they are (root's, in practice group 0 only).

use nix::unistd::{Gid, Uid, setfsgid, setfsuid};

/// Runs `f` with fsuid/fsgid set to `uid`/`gid`. When the process is not
/// root it cannot switch; `f` then runs with the caller's own identity,
/// which is never more than the user's own (a user reading their own file)
/// or less (access fails and the caller reports it).
///
/// # Errors
/// When switching or restoring fails; `f` is not run if switching fails.
pub fn as_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> Result<T, String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(f());
    }
    let guard = FsIdGuard::switch(uid, gid);
    let result = if guard.switched { Some(f()) } else { None };
    guard.restore()?;
    result.ok_or_else(|| format!("could not switch to uid {uid} to read the user's file"))
}

/// The thread's file-system identity before a switch; restores it when
/// dropped (unwinding included) unless [`FsIdGuard::restore`] did already.
struct FsIdGuard {
    old_uid: Uid,
    old_gid: Gid,
    /// Both ids took the requested values.
    switched: bool,
    restored: bool,
}

impl FsIdGuard {
    /// Switches the gid first (while the fsuid is still root, which may
    /// change it), then the uid.
    fn switch(uid: u32, gid: u32) -> Self {
        let old_gid = setfsgid(Gid::from_raw(gid));
        let old_uid = setfsuid(Uid::from_raw(uid));
        // setfsuid reports the previous value and no error; ask again to check.
        let now_uid = setfsuid(Uid::from_raw(uid));
        let now_gid = setfsgid(Gid::from_raw(gid));
        FsIdGuard {
            old_uid,
            old_gid,
            switched: now_uid.as_raw() == uid && now_gid.as_raw() == gid,
            restored: false,
        }
    }

    /// Puts the old ids back (uid first: only a root fsuid may set the gid
    /// back) and reports whether they took.
    fn put_back(&mut self) -> bool {
        self.restored = true;
        setfsuid(self.old_uid);
        setfsgid(self.old_gid);
        setfsuid(self.old_uid) == self.old_uid && setfsgid(self.old_gid) == self.old_gid
    }

    fn restore(mut self) -> Result<(), String> {
        if self.put_back() {
            Ok(())
        } else {
            Err("could not restore the file-system identity".to_string())
        }
    }
}

impl Drop for FsIdGuard {
    fn drop(&mut self) {
        if !self.restored {
            // Unwinding out of the closure: nothing to report to, but the
            // ids must come back before the panic reaches the FFI boundary.
            let _ = self.put_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The current fsuid/fsgid, read by setting them to an invalid id
    /// (-1 never takes, and setfs* returns the current value).
    fn current() -> (u32, u32) {
        (
            setfsuid(Uid::from_raw(u32::MAX)).as_raw(),
            setfsgid(Gid::from_raw(u32::MAX)).as_raw(),
        )
    }

    #[test]
    fn ids_are_switched_inside_and_restored_after() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root to switch fsuid");
            return;
        }
        let before = current();
        let inside = as_user(65534, 65534, current).unwrap();
        assert_eq!(inside, (65534, 65534));
        assert_eq!(current(), before);
    }

    #[test]
    fn a_panic_inside_the_closure_restores_the_ids() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root to switch fsuid");
            return;
        }
        let before = current();
        assert_eq!(before, (0, 0), "the test starts as root");
        // The same catch the FFI boundary uses.
        let caught = std::panic::catch_unwind(|| {
            as_user(65534, 65534, || {
                assert_eq!(current(), (65534, 65534));
                panic!("boom inside as_user");
            })
        });
        assert!(caught.is_err(), "the panic must reach the catch");
        assert_eq!(current(), (0, 0), "fsuid/fsgid are root's again");
    }
}
