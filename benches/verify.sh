#!/usr/bin/env bash
# The privileged verifier's cost, whole process: pamtester + pam_wrapper
# authenticating `nobody` in local mode
#   - as root, in process (the module reads the stores itself), and
#   - as nobody (setpriv --reuid=65534), through the setuid helper,
# alternating in one run on the same key store and OTP stream; pam_permit
# run as nobody is the baseline for setpriv + pamtester start-up. Prints the
# medians and the helper's extra cost over the in-process run (the goal:
# at most 3 ms). Not part of the test suite; needs root (it copies the test
# build of the helper root:root 4755 into target/bench-verify).
#   benches/verify.sh [ROUNDS]     (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
[ "$(id -u)" = 0 ] || { echo "benches/verify.sh: needs root (setuid helper, setpriv)" >&2; exit 2; }
scripts/setup.sh
cargo build --release -q -p pam_yubiotp
cargo build --release -q -p yubiotp-tests --bins
so=$PWD/target/release/libpam_yubiotp.so
dir=$PWD/target/bench-verify
rm -rf "$dir"
target/release/yubiotp-fixture "$dir" --otps $((2 * runs + 30)) --module "$so" > "$dir.env"
# The helper sees the real passwd database: map the key to the real
# `nobody` (the nss_wrapper passwd gets the same line for pamtester).
id=$(cut -d: -f2 "$dir/etc/authorized_yubikeys")
printf 'nobody:%s\n' "$id" > "$dir/etc/authorized_yubikeys"
echo "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh" >> "$dir/passwd"
echo "nogroup:x:65534:" >> "$dir/group"
mkdir -m 0755 "$dir/libexec" "$dir/run"
chmod 0700 "$dir/run"
install -o root -g root -m 4755 target/release/yubiotp-test-verify "$dir/libexec/yubiotp-verify"
{ cat "$dir/etc/yubiotp.toml"; printf '[verifier]\nratelimit_dir = "%s/run/ratelimit"\n' "$dir"; } \
  > "$dir/libexec/yubiotp.toml"
chmod 0600 "$dir/libexec/yubiotp.toml"
chmod 0755 "$dir/services"
printf 'auth required %s verifier=%s\n' "$so" "$dir/libexec/yubiotp-verify" > "$dir/services/helper"
# Everyone may read the service files and the OTP list (pamtester as nobody).
chmod 0644 "$dir/services/"*
chmod 0755 "$dir" "$dir/home" 2>/dev/null || true
echo "== verifier: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$dir.env" "$dir/otps.txt" "$runs" <<'PY'
import os, statistics, sys, time
sys.path.insert(0, "benches")
from pam_whole_process import load_env

env_file, otps_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = load_env(env_file)
otps = [l.strip() for l in open(otps_file) if l.strip()]
nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# Root goes through setpriv too, so both sides start the same chain.
root = ["setpriv", "--reuid=0", "--regid=0", "--clear-groups"]

def one(prefix, service, otp):
    start = time.perf_counter()
    r, w = os.pipe()
    pid = os.posix_spawnp(prefix[0],
                          prefix + ["pamtester", service, "nobody", "authenticate"], env,
                          file_actions=[(os.POSIX_SPAWN_DUP2, r, 0),
                                        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                                        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
                                        (os.POSIX_SPAWN_CLOSE, w)])
    os.close(r)
    try:
        os.write(w, (otp + "\n").encode())
    except BrokenPipeError:
        pass
    os.close(w)
    _, status = os.waitpid(pid, 0)
    return time.perf_counter() - start, os.waitstatus_to_exitcode(status)

cases = [("root, in process", root, "yubiotp"), ("nobody, via the helper", nobody, "helper"),
         ("nobody, pam_permit", nobody, "permit")]
times = {c[0]: [] for c in cases}
for label, prefix, svc in cases:  # warm up
    one(prefix, svc, otps.pop(0))
for i in range(n):
    for label, prefix, svc in cases:
        t, rc = one(prefix, svc, otps.pop(0) if svc != "permit" else "")
        if rc != 0:
            sys.exit(f"round {i}: {label} failed (exit {rc}); not a valid measurement")
        times[label].append(t)
print(f"rounds: {n}, the three in turn each round; medians (min-max)")
print()
print("| | median |")
print("| --- | --- |")
med = {}
for label, _, _ in cases:
    v = times[label]
    med[label] = statistics.median(v)
    print(f"| {label} | {med[label]*1000:.2f} ms ({min(v)*1000:.2f}-{max(v)*1000:.2f}) |")
extra = (med["nobody, via the helper"] - med["root, in process"]) * 1000
print()
print(f"helper adds {extra:.2f} ms over the in-process run (goal: at most 3 ms)")
PY
echo "(load afterwards: $(cut -d' ' -f1-3 /proc/loadavg))"
