#!/usr/bin/env bash
# Scale on one host (issue 15): key stores and authfiles of 10, 1,000,
# 10,000 and 100,000 keys/users, in local mode, whole process (pamtester
# under pam_wrapper, benches/pam_table.py) beside pam_permit as the floor;
# the time of `ykmap key import` per size; and 32 parallel logins on
# distinct keys against the same logins one after another (the C test
# driver with pam_start_confdir, benches/pam_parallel.py). Not a test.
#   benches/scale.sh [ROUNDS] [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-30}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 1000 10000 100000)
par_k=32 par_r=${PAR_R:-4}
scripts/setup.sh > /dev/null
cargo build --release -q -p pam_yubiotp -p ykmap-tool -p yubiotp-tests --bins --lib
so=$PWD/target/release/libpam_yubiotp.so
ykmap=$PWD/target/release/ykmap
dir=$PWD/target/bench-scale
# The last run's tree is removed at the end, after the measurements: on
# ext4 without a journal (this machine's root) inodes freed less than 60 s
# (300 s while their table block is dirty) ago are skipped one by one when
# new files are allocated, so deleting 400,000 files just before the
# imports made them up to ten times slower than on a settled file system.
# Leave five minutes between runs.
old=
if [ -e "$dir" ]; then old=$dir.old.$$; mv "$dir" "$old"; fi
target/release/yubiotp-fixture "$dir" --otps $((8 * (rounds + 1) + 10)) --module "$so" > "$dir.env"
# alice's key, from the fixture's (single-file) key store.
read -r alice_id alice_uid alice_aes < <(grep -v '^#' "$dir/etc/keys")
for i in $(seq 1 "$par_k"); do
  echo "p$i:x:$((3000 + i)):$((3000 + i)):p$i:$dir/home/p$i:/bin/sh" >> "$dir/passwd"
  echo "p$i:x:$((3000 + i)):" >> "$dir/group"
done
gen() { # N CSV AUTHFILE: N-1 random keys and users, then alice's, alice last
  python3 - "$@" "$alice_id" "$alice_uid" "$alice_aes" <<'PY'
import secrets, sys
n, csv, auth, aid, auid, aaes = int(sys.argv[1]), sys.argv[2], sys.argv[3], *sys.argv[4:7]
mh = "cbdefghijklnrtuv"
ids = set()
while len(ids) < n - 1:
    ids.add("cccc" + "".join(secrets.choice(mh) for _ in range(8)))
with open(csv, "w") as c, open(auth, "w") as a:
    for i, pid in enumerate(sorted(ids), 1):
        c.write(f"{i},{pid},{secrets.token_hex(6)},{secrets.token_hex(16)},,2026-01-01T00:00:00,\n")
        a.write(f"user{i}:{pid}\n")
    c.write(f"0,{aid},{auid},{aaes},,2026-01-01T00:00:00,\n")
    a.write(f"alice:{aid}\n")
PY
}
declare -A import_s
for n in "${sizes[@]}"; do
  s=$dir/s$n
  mkdir -p -m 0700 "$s/etc" "$s/state"
  gen "$n" "$s/keys.csv" "$s/etc/authorized_yubikeys"
  chmod 0644 "$s/etc/authorized_yubikeys"
  cfg=$s/etc/yubiotp.toml
  printf 'mode = "local"\nauthfile = "%s"\n[local]\nkeystore = "%s"\nstatedir = "%s"\n' \
    "$s/etc/authorized_yubikeys" "$s/etc/keys" "$s/state" > "$cfg"
  chmod 0600 "$cfg"
  t0=$(date +%s.%N)
  "$ykmap" --config "$cfg" key import "$s/keys.csv" > /dev/null 2> "$s/import.err"
  t1=$(date +%s.%N)
  import_s[$n]=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  echo "auth required $so config=$cfg" > "$dir/services/yubiotp-$n"
done
rows=()
for n in "${sizes[@]}"; do rows+=("$n:yubiotp-$n:permit"); done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "### Login (median whole-process time, alice on the last authfile line)"
echo
python3 benches/pam_table.py "$dir.env" "$dir/otps.txt" "$rounds" "${rows[@]}"
echo
echo "### ykmap key import (one CSV of N keys into an empty store)"
echo
echo "| keys | seconds |"
echo "| --- | --- |"
for n in "${sizes[@]}"; do echo "| $n | ${import_s[$n]} |"; done
# Parallel: 32 software keys in the largest store, users p1..p32.
big=${sizes[-1]}
s=$dir/s$big
for i in $(seq 1 "$par_k"); do
  "$ykmap" --config "$s/etc/yubiotp.toml" softkey new "$s/sk-$i" --register > /dev/null 2>&1
  id=$("$ykmap" softkey show "$s/sk-$i" | awk '/public id/ {print $NF; exit}')
  echo "p$i:$id" >> "$s/etc/authorized_yubikeys"
  for _ in $(seq 1 $((2 * par_r + 2))); do "$ykmap" softkey otp "$s/sk-$i"; done > "$s/otps-$i.txt"
done
echo
echo "### $par_k logins in parallel on distinct keys (store of $big keys)"
echo
echo "| | throughput | |"
echo "| --- | --- | --- |"
cc -O2 -o "$dir/pam_driver" tests/driver/pam_driver.c -lpam
python3 benches/pam_parallel.py "$dir/pam_driver" "$dir/services" "yubiotp-$big" "$s" "$par_k" "$par_r"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
[ -z "$old" ] || rm -rf "$old"
