#!/usr/bin/env bash
# Cloud mode, whole process, side by side with Yubico's pam_yubico.so
# (Debian libpam-yubico) against the same loopback validation server
# (plain HTTP, same API key, same mapping), pamtester + pam_wrapper,
# alternating. Then ours with a hanging server first in the URL list
# against ours with the good server alone. Not part of the test suite.
#   benches/cloud.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
scripts/setup.sh
dpkg-query -W -f='${Status}' libpam-yubico 2>/dev/null | grep -q "install ok installed" || {
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libpam-yubico >/dev/null
}
cargo build --release -q -p pam_yubiotp
cargo build --release -q -p yubiotp-tests --bins
cargo build --release -q -p yubiotp-testsupport --bin ykval-mock
key=mG5be6ZJU1qBGz24yPh/ESM3UdU=
dir=target/bench-cloud
rm -rf "$dir"; mkdir -p "$dir"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
target/release/ykval-mock --key "$key" --port-file "$dir/good.port" --max-secs 1800 >/dev/null &
pids+=($!)
target/release/ykval-mock --key "$key" --hang --port-file "$dir/hang.port" --max-secs 1800 >/dev/null &
pids+=($!)
for f in good hang; do for _ in $(seq 100); do [ -s "$dir/$f.port" ] && break; sleep 0.05; done; done
good=http://127.0.0.1:$(cat "$dir/good.port")/wsapi/2.0/verify
hang=http://127.0.0.1:$(cat "$dir/hang.port")/wsapi/2.0/verify

w=$dir/world
target/release/yubiotp-fixture "$w" --mode cloud --url "$good" --id 42 --key "$key" \
  --otps $((4 * runs + 60)) --module "$PWD/target/release/libpam_yubiotp.so" > "$dir/env"
# pam_yubico on the same mapping file, server and key.
yubico=$(dirname "$(find /lib /usr/lib -name pam_yubico.so -path '*security*' | head -1)")/pam_yubico.so
printf 'auth required %s id=42 key=%s urllist=%s authfile=%s\n' \
  "$yubico" "$key" "$good" "$PWD/$w/etc/authorized_yubikeys" > "$w/services/yubico"
# Ours with a hanging server first in the list.
sed "s|urls = \[.*\]|urls = [\"$hang\", \"$good\"]|" "$w/etc/yubiotp.toml" > "$w/etc/hang.toml"
chmod 600 "$w/etc/hang.toml"
printf 'auth required %s config=%s\n' "$PWD/target/release/libpam_yubiotp.so" "$PWD/$w/etc/hang.toml" > "$w/services/yubiotp-hang"

echo "== pam_yubiotp vs pam_yubico ($yubico), same loopback server"
python3 benches/pam_whole_process.py "$dir/env" "$w/otps.txt" yubiotp yubico "$runs"
echo
echo "== pam_yubiotp with a hanging server first in urllist vs the good server alone"
python3 benches/pam_whole_process.py "$dir/env" "$w/otps.txt" yubiotp-hang yubiotp "$runs"
