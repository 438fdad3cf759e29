#!/usr/bin/env bash
# A fault at every step of a login (issue 10, item 7). Not part of CI.
#
#   scripts/faultsweep.sh [--mode local|hybrid|all] [--max-per-syscall N]
#                         [--only SYSCALL] [--verbose]
#
# Traces one local-mode and one hybrid-mode login of the C test driver
# (tests/driver) with strace -f, then fails every system call it made
# between pam_start and pam_end, once per occurrence and per errno that
# call can return (plus SIGKILL on the counter-state calls, and a simulated
# power loss that discards everything not fsync'ed), and checks each login
# failed closed, the host survived, the counter state is the old or the new
# value, a replay is refused and a fresh OTP accepted. Prints a summary;
# exits 1 on any violation. Needs root (the module trusts root-owned files
# only) and strace. See tests/src/bin/yubiotp-faultsweep.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v strace >/dev/null || { echo "faultsweep: strace is not installed (scripts/setup.sh)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || echo "faultsweep: runs as root (the module trusts only root-owned files)" >&2

# Like scripts/test.sh: the scratch worlds live under the target directory.
. scripts/target-dir.sh
target=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --locked -p pam_yubiotp -p yubiotp-tests --bins >&2
exec "$target/debug/yubiotp-faultsweep" "$@"
