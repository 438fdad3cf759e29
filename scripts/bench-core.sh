#!/usr/bin/env bash
# Benchmarks the pure core (yubiotp-core/benches/verify.rs, criterion, bench
# profile = release + LTO) and prints the median time per offline
# verification (parse + decrypt + CRC + private id + counter of one 44-char
# OTP) and the verifications per second that makes on one core.
#
#   scripts/bench-core.sh                 # all benches
#   scripts/bench-core.sh verify/         # only the end-to-end ones
#
# Extra arguments go to criterion (a filter, --measurement-time 10, ...).
# Numbers depend on the machine and its load; nothing here asserts a time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo bench -p yubiotp-core --bench verify -- "$@"

# Where criterion put its estimates: <target dir>/criterion.
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
  | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
CRIT="$TARGET_DIR/criterion"

# Median point estimate (ns) from criterion's estimates.json, without jq.
median_ns() {
  local f="$CRIT/$1/new/estimates.json"
  [[ -f "$f" ]] || return 1
  sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([-0-9.eE+]+).*/\1/' "$f"
}

echo
echo "== yubiotp-core medians (one core) =="
for b in verify/parse_decrypt_verify_44 verify/verify_parsed parts/token_parse_44 \
         parts/modhex_decode_32 parts/aes128_key_schedule_and_decrypt \
         parts/aes128_decrypt_prekeyed parts/core_decrypt parts/crc16_16; do
  if ns="$(median_ns "$b")"; then
    awk -v b="$b" -v ns="$ns" 'BEGIN { printf "%-42s %9.1f ns  %12.0f /s\n", b, ns, 1e9 / ns }'
  fi
done

if ns="$(median_ns verify/parse_decrypt_verify_44)"; then
  echo
  awk -v ns="$ns" 'BEGIN {
    printf "median ns/verification: %.1f\n", ns
    printf "verifications/s (1 core): %.0f\n", 1e9 / ns
    printf "target >= 5000000/s: %s\n", (1e9 / ns >= 5e6) ? "met" : "MISSED"
  }'
fi
