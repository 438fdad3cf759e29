//! Running a closure with another user's file-system identity, to read a
//! file in that user's home as that user and never as root.
//!
//! Uses `setfsuid`/`setfsgid`, which change only the calling thread's
//! file-access identity (other threads of the host and its real/effective
//! ids are untouched), and are restored before returning. Supplementary
//! groups are left as they are (root's, in practice group 0 only).

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
    let old_gid = setfsgid(Gid::from_raw(gid));
    let old_uid = setfsuid(Uid::from_raw(uid));
    // setfsuid reports the previous value and no error; ask again to check.
    let now_uid = setfsuid(Uid::from_raw(uid));
    let now_gid = setfsgid(Gid::from_raw(gid));
    let switched = now_uid.as_raw() == uid && now_gid.as_raw() == gid;
    let result = if switched { Some(f()) } else { None };
    setfsuid(old_uid);
    setfsgid(old_gid);
    let back_uid = setfsuid(old_uid);
    let back_gid = setfsgid(old_gid);
    if back_uid != old_uid || back_gid != old_gid {
        return Err("could not restore the file-system identity".to_string());
    }
    result.ok_or_else(|| format!("could not switch to uid {uid} to read the user's file"))
}
