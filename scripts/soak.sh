#!/usr/bin/env bash
# An hour-long soak (issue 10, item 8). Not part of CI.
#
#   SOAK_MINUTES=60 SOAK_WORKERS=20 scripts/soak.sh
#
# Starts two loopback validation servers (testsupport's ykval-mock: one
# answering OK, one REPLAYED_OTP, both signed) and runs SOAK_WORKERS
# long-running PAM hosts (the C driver in --serve mode: many
# pam_start/pam_authenticate/pam_end cycles in one process), each doing
# mixed logins for SOAK_MINUTES (default 60): local, cloud, hybrid (cloud up
# and down); fresh, replayed and wrong OTPs, an unknown user, a keyless user
# under nullok. Reports each host's RSS, open fds and threads after a
# warm-up and at the end; exits 1 on any unexpected result or growth.
# Needs root (the module trusts only root-owned files).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${SOAK_MINUTES:-60}
workers=${SOAK_WORKERS:-20}

# Like scripts/test.sh: the scratch worlds live under the target directory.
. scripts/target-dir.sh
target=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --locked -p pam_yubiotp -p yubiotp-tests -p yubiotp-testsupport --bins >&2

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

key='mG5be6ZJU1qBGz24yPh/ESM3UdU=' # testsupport's TEST_KEY_B64
life=$(( ${minutes%.*} * 60 + 300 ))
# Called directly, not in $(...): a subshell would keep the pid from
# cleanup. The URL is read from the port file afterwards.
start_mock() { # NAME ARGS...
  local name=$1; shift
  "$target/debug/ykval-mock" --key "$key" --port-file "$tmp/$name.port" --max-secs "$life" "$@" >/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$tmp/$name.port" ] && break; sleep 0.1; done
  [ -s "$tmp/$name.port" ] || { echo "soak: ykval-mock $name did not start" >&2; exit 1; }
}
mock_url() { echo "http://127.0.0.1:$(cat "$tmp/$1.port")/wsapi/2.0/verify"; }
start_mock ok
start_mock replayed --status REPLAYED_OTP
ok_url=$(mock_url ok)
replayed_url=$(mock_url replayed)

"$target/debug/yubiotp-soak" --minutes "$minutes" --workers "$workers" \
  --ok-url "$ok_url" --replayed-url "$replayed_url"
