# Sourced by scripts/test.sh, faultsweep.sh and soak.sh (from the clone's
# top directory): chooses where cargo builds, so that the test files the
# module must trust are in a usable place, and exports CARGO_TARGET_DIR
# when that is not ./target.
#
# The module trusts only files whose every parent directory is root-owned
# and not writable by group or other (like OpenSSH's StrictModes), and the
# tests make their files under the target directory, where the test users
# (nss_wrapper uids), the setuid driver's dropped identity and sshd's
# per-user reads must also reach them. A clone under /tmp (world-writable)
# or in a private home (/root, a 0700 /home/u) fails one of the two, so the
# build then goes to /var/cache/pam_yubiotp-tests/<hash of the clone's
# path>/target (root-owned, 0755), one per clone.

usable_path() {
  local d mode
  d=$(readlink -f "$1")
  while :; do
    [ "$(stat -c %u "$d")" = 0 ] || return 1
    mode=$(stat -c %a "$d")
    (( 8#$mode & 8#022 )) && return 1   # writable by others: refused
    (( 8#$mode & 8#001 )) || return 1   # not traversable by others
    [ "$d" = / ] && return 0
    d=$(dirname "$d")
  done
}
if [ -z "${CARGO_TARGET_DIR:-}" ] && ! { usable_path "$PWD" && { [ ! -e target ] || usable_path target; }; }; then
  cache=/var/cache/pam_yubiotp-tests
  hash=$(readlink -f "$PWD" | sha256sum | cut -c1-16)
  export CARGO_TARGET_DIR=$cache/$hash/target
  mkdir -p "$CARGO_TARGET_DIR"
  chmod 755 "$cache" "$cache/$hash" "$CARGO_TARGET_DIR"
  readlink -f "$PWD" > "$cache/$hash/clone"
  echo "${0##*/}: $PWD is not usable for test files (a parent is writable or not traversable by others); building in $CARGO_TARGET_DIR (set CARGO_TARGET_DIR to choose)" >&2
fi

