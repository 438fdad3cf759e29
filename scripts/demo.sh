#!/usr/bin/env bash
# The README's first command: build the module and ykmap, make a throw-away
# world in target/demo (config, key store, counter state, mapping, a user
# known only to nss_wrapper, a PAM service known only to pam_wrapper), mint
# a software YubiKey, and authenticate through the real libpam:
# a fresh OTP, the same OTP replayed, a tampered OTP.
# No system PAM, passwd or sshd file is read for the demo or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  # The module trusts only root-owned key stores and state, as in production.
  echo "demo: the key store must be root-owned; re-running with sudo" >&2
  exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME "$0" "$@"
fi

scripts/setup.sh
echo "== building the module and ykmap" >&2
cargo build -q -p pam_yubiotp -p ykmap-tool

top=$PWD
so=$top/target/debug/libpam_yubiotp.so
ykmap=$top/target/debug/ykmap
demo=$top/target/demo
rm -rf "$demo"
mkdir -p "$demo/etc" "$demo/state" "$demo/services" "$demo/home/demo"
chmod 755 "$demo"
chmod 700 "$demo/etc" "$demo/state"

# A user that exists only for nss_wrapper.
printf 'root:x:0:0:root:/root:/bin/sh\ndemo:x:4242:4242:demo:%s/home/demo:/bin/sh\n' "$demo" > "$demo/passwd"
printf 'root:x:0:\ndemo:x:4242:\n' > "$demo/group"

cat > "$demo/etc/yubiotp.toml" <<TOML
mode = "local"
authfile = "$demo/etc/authorized_yubikeys"

[local]
keystore = "$demo/etc/keys"
statedir = "$demo/state"
TOML
chmod 600 "$demo/etc/yubiotp.toml"

# A PAM service that exists only for pam_wrapper.
printf 'auth required %s config=%s\n' "$so" "$demo/etc/yubiotp.toml" > "$demo/services/demo-login"
printf 'auth required pam_deny.so\n' > "$demo/services/other"

yk() {
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so \
    NSS_WRAPPER_PASSWD="$demo/passwd" NSS_WRAPPER_GROUP="$demo/group" \
    "$ykmap" --config "$demo/etc/yubiotp.toml" "$@"
}
echo "== minting a software YubiKey and mapping it to user 'demo'" >&2
yk softkey new "$demo/softkey" --register >/dev/null
pubid=$(yk softkey show "$demo/softkey" | awk '/public id/ {print $NF; exit}')
yk map add demo "$pubid"
yk softkey show "$demo/softkey"

login() { # login LABEL OTP
  local out rc=0
  out=$(printf '%s\n' "$2" | env -i PATH=/usr/bin:/bin \
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so:/usr/lib/x86_64-linux-gnu/libnss_wrapper.so \
    PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$demo/services" PAM_WRAPPER_DEBUGLEVEL=2 \
    NSS_WRAPPER_PASSWD="$demo/passwd" NSS_WRAPPER_GROUP="$demo/group" \
    pamtester demo-login demo authenticate 2>&1) || rc=$?
  printf '\n-- %s\n' "$1"
  printf '%s\n' "$out" | sed -n 's/.*SYSLOG([0-9]*): /   module log: /p'
  printf '%s\n' "$out" | grep '^pamtester:' | sed 's/^/   /'
  return 0
}

otp=$(yk softkey otp "$demo/softkey")
# Change one character of the encrypted part (position 20) to another
# modhex character: the public id still matches, the decryption does not.
if [ "${otp:20:1}" = c ]; then swap=b; else swap=c; fi
tampered=${otp:0:20}$swap${otp:21}
echo "== authenticating user 'demo' through libpam (pam_wrapper + pamtester)" >&2
login "fresh OTP (key touched): expect success" "$otp"
login "the same OTP again: expect a replay refusal" "$otp"
login "an OTP with one character changed: expect a refusal" "$tampered"
login "the next fresh OTP: expect success" "$(yk softkey otp "$demo/softkey")"
echo
echo "Everything lives in $demo; remove it with: rm -rf $demo"
