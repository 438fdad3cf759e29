#!/usr/bin/env bash
# Local mode, whole process, the user's key from LDAP (a real slapd on
# 127.0.0.1, anonymous base-object search) against the central authfile,
# with pam_permit.so as the baseline, in the same run: pamtester +
# pam_wrapper, every service once per round in turn. Prints the medians.
# Not part of the test suite (timings depend on the machine's load).
#   benches/ldap.sh [ROUNDS]     (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
scripts/setup.sh
cargo build --release -q -p pam_yubiotp
cargo build --release -q -p yubiotp-tests --bins
cargo build --release -q -p yubiotp-testsupport --bin test-slapd
dir=target/bench-ldap
rm -rf "$dir"; mkdir -p "$dir"
w=$dir/world
module=$PWD/target/release/libpam_yubiotp.so
target/release/yubiotp-fixture "$w" --otps $((4 * runs + 20)) --module "$module" > "$dir/env"
id=$(cut -d: -f2 "$w/etc/authorized_yubikeys")
printf 'dn: uid=alice,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nobjectClass: yubiKeyUser\nuid: alice\ncn: alice\nsn: alice\nyubiKeyId: %s\n\n' "$id" > "$dir/people.ldif"
# slapd lives as long as this script holds the pipe open (EOF stops it).
exec 3> >(exec target/release/test-slapd "$dir/people.ldif" "$dir/uri")
for _ in $(seq 400); do [ -s "$dir/uri" ] && break; sleep 0.05; done
[ -s "$dir/uri" ] || { echo "slapd did not start" >&2; exit 1; }
uri=$(cat "$dir/uri")
# The LDAP service: the same config without the authfile, plus [ldap].
{ grep -v '^authfile' "$w/etc/yubiotp.toml"
  printf '[ldap]\nuri = "%s"\nbasedn = "ou=people,dc=example,dc=org"\nuser_attr = "uid"\nyubi_attr = "yubiKeyId"\n' "$uri"
} > "$w/etc/ldap.toml"
chmod 600 "$w/etc/ldap.toml"
printf 'auth required %s config=%s\n' "$module" "$PWD/$w/etc/ldap.toml" > "$w/services/yubiotp-ldap"

echo "== LDAP mapping ($uri) vs central authfile vs pam_permit, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/pam_table.py "$dir/env" "$w/otps.txt" "$runs" \
  "LDAP vs authfile:yubiotp-ldap:yubiotp" "authfile vs pam_permit:yubiotp:permit"
echo "(load afterwards: $(cut -d' ' -f1-3 /proc/loadavg))"
exec 3>&-
