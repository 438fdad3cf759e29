#!/usr/bin/env bash
# Local (offline) mode, whole process: pamtester + pam_wrapper with our
# module against the same harness with pam_permit.so, alternating.
# Also prints the stripped module size. Not part of the test suite.
#   benches/local.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
scripts/setup.sh
cargo build --release -q -p pam_yubiotp
cargo build --release -q -p yubiotp-tests --bins
so=target/release/libpam_yubiotp.so
dir=target/bench-local
rm -rf "$dir"
target/release/yubiotp-fixture "$dir" --otps $((runs + 20)) --module "$PWD/$so" > "$dir.env"
python3 benches/pam_whole_process.py "$dir.env" "$dir/otps.txt" yubiotp permit "$runs"
strip -o "$dir/pam_yubiotp.so" "$so"
echo "module size: $(stat -c %s "$so") bytes, stripped $(stat -c %s "$dir/pam_yubiotp.so") bytes"
