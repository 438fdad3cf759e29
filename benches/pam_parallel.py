#!/usr/bin/env python3
"""Parallel logins on distinct keys: pamtester under pam_wrapper, K users
each with their own key, first all K*R logins one after another, then K
workers at once (R logins each). Prints both throughputs and the ratio.

usage: pam_parallel.py ENV_FILE SERVICE DIR K R

DIR/otps-<i>.txt holds the OTPs of user p<i> (i = 1..K).
"""
import subprocess, sys, threading, time

from pam_whole_process import load_env


def one(env, service, stdin_text, user):
    """One pamtester run; (exit code, stderr tail). A run that lost
    pam_wrapper's start-up race for its /tmp/pam.<c> directory is repeated
    (as in pam_whole_process.py)."""
    for _ in range(5):
        p = subprocess.run(["pamtester", service, user, "authenticate"], input=stdin_text,
                           env=env, capture_output=True, text=True)
        if "Failed to create pam_wrapper config dir" not in p.stderr:
            return p.returncode, p.stderr.strip()[-300:]
        time.sleep(0.05)
    return 99, "pam_wrapper start-up kept failing"


def main():
    env_file, service, d, k, r = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    env = load_env(env_file)
    otps = {i: [l.strip() for l in open(f"{d}/otps-{i}.txt") if l.strip()] for i in range(1, k + 1)}
    if any(len(v) < 2 * r + 1 for v in otps.values()):
        sys.exit(f"need {2 * r + 1} OTPs per user")
    for i in range(1, k + 1):  # warm up, one login per key
        rc, err = one(env, service, otps[i].pop(0) + "\n", f"p{i}")
        if rc != 0:
            sys.exit(f"p{i} warm-up failed: {err}")
    failures = []

    def run(i):
        for _ in range(r):
            rc, err = one(env, service, otps[i].pop(0) + "\n", f"p{i}")
            if rc != 0:
                failures.append((i, rc, err))

    start = time.perf_counter()
    for _ in range(r):
        for i in range(1, k + 1):
            rc, err = one(env, service, otps[i].pop(0) + "\n", f"p{i}")
            if rc != 0:
                failures.append((i, rc, err))
    seq = time.perf_counter() - start
    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, k + 1)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    par = time.perf_counter() - start
    if failures:
        sys.exit(f"{len(failures)} logins failed, e.g. {failures[:3]}; not a valid measurement")
    n = k * r
    print(f"| sequential, {n} logins on {k} keys | {n / seq:.0f} logins/s | {seq * 1000 / n:.2f} ms each |")
    print(f"| {k} in parallel, {n} logins | {n / par:.0f} logins/s | {seq / par:.2f}x sequential |")


if __name__ == "__main__":
    main()
