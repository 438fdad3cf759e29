#!/usr/bin/env python3
"""Parallel logins on distinct keys, whole process: K users each with their
own key, first all K*R logins one after another, then R rounds of K logins
at once (one per key). Prints both throughputs and the ratio.

usage: pam_parallel.py DRIVER SERVICE_DIR SERVICE DIR K R

DRIVER is tests/driver/pam_driver.c compiled; every login is one run of it
with `--confdir SERVICE_DIR` (pam_start_confdir), so libpam reads the
service file directly. pamtester under pam_wrapper is not used here:
pam_wrapper copies each process's service files into one of 62
/tmp/pam.<c> directories, and with 32 processes at once it prints "Failed
to create pam_wrapper config dir" for runs that then go on and log in
anyway. A harness that repeats such a run replays an OTP the module has
already accepted (that was the "unexplained" failure of earlier runs).

DIR/otps-<i>.txt holds the OTPs of user p<i> (i = 1..K). Every login must
succeed: one failure makes the run invalid (nothing is retried).
"""
import os, subprocess, sys, tempfile, threading, time


def one(driver, confdir, service, user, otp, scratch):
    """One pam_driver run; (pam_authenticate code or None, output tail)."""
    answers = os.path.join(scratch, f"{user}.answers")
    with open(answers, "w") as f:
        f.write(otp.encode().hex() + "\n")
    p = subprocess.run([driver, service, user, "--confdir", confdir, "--answers", answers],
                       env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    for line in p.stdout.splitlines():
        if line.startswith("rc authenticate "):
            return int(line.split()[2]), ""
    return None, (p.stdout + p.stderr).strip()[-300:]


def main():
    driver, confdir, service, d = sys.argv[1:5]
    k, r = int(sys.argv[5]), int(sys.argv[6])
    otps = {i: [l.strip() for l in open(f"{d}/otps-{i}.txt") if l.strip()] for i in range(1, k + 1)}
    if any(len(v) < 2 * r + 1 for v in otps.values()):
        sys.exit(f"need {2 * r + 1} OTPs per user")
    failures = []
    with tempfile.TemporaryDirectory(dir=d) as scratch:

        def run1(i):
            rc, err = one(driver, confdir, service, f"p{i}", otps[i].pop(0), scratch)
            if rc != 0:
                failures.append((i, rc, err))

        for i in range(1, k + 1):  # warm up, one login per key
            run1(i)
        if failures:
            sys.exit(f"warm-up failed: {failures[:3]}")
        start = time.perf_counter()
        for _ in range(r):
            for i in range(1, k + 1):
                run1(i)
        seq = time.perf_counter() - start
        # R rounds of K logins at once, one per key.
        par = 0.0
        for _ in range(r):
            threads = [threading.Thread(target=run1, args=(i,)) for i in range(1, k + 1)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            par += time.perf_counter() - start
    if failures:
        sys.exit(f"{len(failures)} logins failed, e.g. {failures[:3]}; not a valid measurement")
    n = k * r
    print(f"| sequential, {n} logins on {k} keys | {n / seq:.0f} logins/s | {seq * 1000 / n:.2f} ms each |")
    print(f"| {k} in parallel, {n} logins | {n / par:.0f} logins/s | {seq / par:.2f}x sequential |")


if __name__ == "__main__":
    main()
