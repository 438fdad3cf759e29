#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, format, lints, every test.
#
#   scripts/test.sh                     everything (make test)
#   scripts/test.sh -E 'binary(sshd)'   only these tests (arguments go to
#                                       cargo nextest run; no fmt/clippy),
#                                       from the same build location
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

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
if [ "$(id -u)" -ne 0 ]; then
  echo "test: the suite runs as root (it chowns test files and checks root ownership); use sudo" >&2
fi
if [ -z "${CARGO_TARGET_DIR:-}" ] && ! { usable_path "$PWD" && { [ ! -e target ] || usable_path target; }; }; then
  cache=/var/cache/pam_yubiotp-tests
  hash=$(readlink -f "$PWD" | sha256sum | cut -c1-16)
  export CARGO_TARGET_DIR=$cache/$hash/target
  mkdir -p "$CARGO_TARGET_DIR"
  chmod 755 "$cache" "$cache/$hash" "$CARGO_TARGET_DIR"
  readlink -f "$PWD" > "$cache/$hash/clone"
  echo "test: $PWD is not usable for test files (a parent is writable or not traversable by others); building in $CARGO_TARGET_DIR (set CARGO_TARGET_DIR to choose)" >&2
fi

if (($#)); then
  exec cargo nextest run --workspace --locked "$@"
fi

echo "== cargo fmt --check" >&2
cargo fmt --all --check

echo "== cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests; run them first so the run ends on
  # nextest's summary of the whole suite.
  cargo test --workspace --locked --doc
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
