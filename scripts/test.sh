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

if [ "$(id -u)" -ne 0 ]; then
  echo "test: the suite runs as root (it chowns test files and checks root ownership); use sudo" >&2
fi
. scripts/target-dir.sh

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
