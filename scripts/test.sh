#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, format, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

# The module trusts only files whose every parent directory is root-owned
# and not writable by group or other (like OpenSSH's StrictModes), and the
# tests make their files under the target directory. A clone under /tmp
# (world-writable) would fail those checks, so build elsewhere then.
trusted_path() {
  local d mode
  d=$(readlink -f "$1")
  while :; do
    [ "$(stat -c %u "$d")" = 0 ] || return 1
    mode=$(stat -c %a "$d")
    (( 8#$mode & 8#022 )) && return 1
    [ "$d" = / ] && return 0
    d=$(dirname "$d")
  done
}
if [ "$(id -u)" -ne 0 ]; then
  echo "test: the suite runs as root (it chowns test files and checks root ownership); use sudo" >&2
fi
if [ -z "${CARGO_TARGET_DIR:-}" ] && ! trusted_path "$PWD"; then
  export CARGO_TARGET_DIR=/var/cache/pam_yubiotp-tests/target
  mkdir -p "$CARGO_TARGET_DIR"
  chmod 755 /var/cache/pam_yubiotp-tests "$CARGO_TARGET_DIR"
  echo "test: $PWD has a parent directory others can write; building in $CARGO_TARGET_DIR" >&2
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
