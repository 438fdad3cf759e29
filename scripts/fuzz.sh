#!/usr/bin/env bash
# Runs the yubiotp-core cargo-fuzz targets on the stable toolchain, each for
# SECONDS (default 30). `-s none` skips AddressSanitizer, which needs nightly;
# libFuzzer's coverage guidance still works. Not part of CI.
#
#   scripts/fuzz.sh        # 30 s per target
#   scripts/fuzz.sh 300    # 5 min per target
#
# Crashes land in yubiotp-core/fuzz/artifacts/<target>/; the corpus grows in
# yubiotp-core/fuzz/corpus/<target>/ (both git-ignored).
set -euo pipefail

SECONDS_PER_TARGET="${1:-30}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || (( SECONDS_PER_TARGET < 1 )); then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/yubiotp-core"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz not found; installing it (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked
fi

# Respect CARGO_TARGET_DIR (cargo-fuzz otherwise builds in fuzz/target).
TARGET_DIR_ARGS=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  TARGET_DIR_ARGS=(--target-dir "$CARGO_TARGET_DIR")
fi

TARGETS=(token_parse modhex)
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/yubiotp-fuzz.XXXXXX")"
status=0
for t in "${TARGETS[@]}"; do
  echo "== fuzz $t for ${SECONDS_PER_TARGET}s (log: $LOG_DIR/$t.log) =="
  set +e +o pipefail
  cargo fuzz run -s none "${TARGET_DIR_ARGS[@]}" "$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 2>&1 \
    | tee "$LOG_DIR/$t.log" \
    | grep --line-buffered -E '^(Done [0-9]+ runs|==[0-9]+== ERROR|SUMMARY|stat::number_of_executed_units|Test unit written|thread .* panicked)'
  rc="${PIPESTATUS[0]}"
  set -e -o pipefail
  if (( rc != 0 )); then
    echo "!! $t failed (exit $rc); see $LOG_DIR/$t.log and yubiotp-core/fuzz/artifacts/$t/" >&2
    status=1
  else
    echo "   $t: no crash"
  fi
done
exit "$status"
