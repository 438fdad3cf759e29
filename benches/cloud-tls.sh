#!/usr/bin/env bash
# Cloud mode over plain HTTP and over HTTPS, whole process, ours beside
# Yubico's pam_yubico.so (Debian libpam-yubico, libcurl) in one run: the
# same loopback validation servers (ykval-mock, one plain, one with a
# fresh test CA), API key and mapping; pamtester + pam_wrapper; the four
# services take turns every round. Prints the medians as a table.
# Not part of the test suite (timings depend on the machine's load).
#   benches/cloud-tls.sh [ROUNDS]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
scripts/setup.sh
dpkg-query -W -f='${Status}' libpam-yubico 2>/dev/null | grep -q "install ok installed" || {
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libpam-yubico >/dev/null
}
cargo build --release -q -p pam_yubiotp
cargo build --release -q -p yubiotp-tests --bins
cargo build --release -q -p yubiotp-testsupport --bin ykval-mock
key=mG5be6ZJU1qBGz24yPh/ESM3UdU=
dir=target/bench-cloud-tls
rm -rf "$dir"; mkdir -p "$dir/tls"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
target/release/ykval-mock --key "$key" --port-file "$dir/http.port" --max-secs 1800 >/dev/null &
pids+=($!)
target/release/ykval-mock --key "$key" --tls-dir "$dir/tls" --port-file "$dir/https.port" --max-secs 1800 >/dev/null &
pids+=($!)
for f in http https; do for _ in $(seq 100); do [ -s "$dir/$f.port" ] && break; sleep 0.05; done; done
http=http://127.0.0.1:$(cat "$dir/http.port")/wsapi/2.0/verify
https=https://127.0.0.1:$(cat "$dir/https.port")/wsapi/2.0/verify
ca=$PWD/$dir/tls/ca.pem

w=$dir/world
module=$PWD/target/release/libpam_yubiotp.so
target/release/yubiotp-fixture "$w" --mode cloud --url "$http" --id 42 --key "$key" \
  --otps $((4 * runs + 20)) --module "$module" > "$dir/env"
# Ours over HTTPS: the same config with the TLS server and the test CA.
{ sed "s|urls = \[.*\]|urls = [\"$https\"]|" "$w/etc/yubiotp.toml"; echo "cafile = \"$ca\""; } > "$w/etc/https.toml"
chmod 600 "$w/etc/https.toml"
printf 'auth required %s config=%s\n' "$module" "$PWD/$w/etc/https.toml" > "$w/services/yubiotp-https"
# pam_yubico on the same mapping file, servers, key and CA.
yubico=$(dirname "$(find /lib /usr/lib -name pam_yubico.so -path '*security*' | head -1)")/pam_yubico.so
printf 'auth required %s id=42 key=%s urllist=%s authfile=%s\n' \
  "$yubico" "$key" "$http" "$PWD/$w/etc/authorized_yubikeys" > "$w/services/yubico"
printf 'auth required %s id=42 key=%s urllist=%s cainfo=%s authfile=%s\n' \
  "$yubico" "$key" "$https" "$ca" "$PWD/$w/etc/authorized_yubikeys" > "$w/services/yubico-https"

echo "== pam_yubiotp vs pam_yubico ($yubico), same loopback servers, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/pam_table.py "$dir/env" "$w/otps.txt" "$runs" \
  "plain HTTP:yubiotp:yubico" "HTTPS:yubiotp-https:yubico-https"
echo "(load afterwards: $(cut -d' ' -f1-3 /proc/loadavg))"
