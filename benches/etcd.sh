#!/usr/bin/env bash
# Local mode with shared counters in etcd (one member on loopback) vs the
# same local mode without them, whole process, in one run: pamtester +
# pam_wrapper, the services take turns every round (pam_permit as the
# floor). Goal (issue 16): the store adds at most 2 ms at the median.
# Not part of the test suite (timings depend on the machine's load).
#   benches/etcd.sh [ROUNDS]     (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
scripts/setup.sh
cargo build --release -q -p pam_yubiotp
cargo build --release -q -p yubiotp-tests --bins
so=$PWD/target/release/libpam_yubiotp.so
dir=target/bench-etcd
rm -rf "$dir"; mkdir -p "$dir"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(port); pport=$(port)
etcd --name b --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "b=http://127.0.0.1:$pport" > "$dir/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill "$etcd_pid" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  curl -sf "http://127.0.0.1:$cport/health" 2>/dev/null | grep -q true && break
  sleep 0.05
done
w=$dir/world
target/release/yubiotp-fixture "$w" --otps $((4 * runs + 30)) --module "$so" > "$dir/env"
{ cat "$w/etc/yubiotp.toml"; printf '[counters]\nstore = "etcd"\nendpoints = ["http://127.0.0.1:%s"]\n' "$cport"; } > "$w/etc/etcd.toml"
chmod 600 "$w/etc/etcd.toml"
printf 'auth required %s config=%s\n' "$so" "$PWD/$w/etc/etcd.toml" > "$w/services/yubiotp-etcd"
echo "== local mode, shared counters in etcd $(etcd --version | head -1 | cut -d' ' -f3) on loopback vs per-host; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/pam_table.py "$dir/env" "$w/otps.txt" "$runs" \
  "shared (etcd) vs per-host:yubiotp-etcd:yubiotp" "per-host vs pam_permit:yubiotp:permit"
echo "(load afterwards: $(cut -d' ' -f1-3 /proc/loadavg))"
