#!/usr/bin/env python3
"""Parallel logins on distinct keys: pamtester under pam_wrapper, K users
each with their own key, first all K*R logins one after another, then R
rounds of K logins at once (one per key). Prints both throughputs and the ratio.

usage: pam_parallel.py ENV_FILE SERVICE DIR K R

DIR/otps-<i>.txt holds the OTPs of user p<i> (i = 1..K).
"""
import subprocess, sys, threading, time

from pam_whole_process import load_env


retried = []


def one_checked(env, service, stdin_text, user):
    """A failed login is tried once more with the same OTP. Only a run in
    which our module never saw the OTP can then succeed (it accepts an OTP
    once): pam_wrapper's stale-directory cleanup races with concurrent
    processes (`pwrap_clean_stale_dirs`) and can delete another process's
    service directory, which then falls to the `other` service (pam_deny).
    Such retries are counted and printed; a retry that fails too is a
    failure of the measurement."""
    rc, err = one(env, service, stdin_text, user)
    if rc != 0:
        rc2, err2 = one(env, service, stdin_text, user)
        if rc2 == 0:
            retried.append((user, err))
            return 0, ""
        return rc2, err2
    return rc, err


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

    def run1(i):
        rc, err = one_checked(env, service, otps[i].pop(0) + "\n", f"p{i}")
        if rc != 0:
            failures.append((i, rc, err))

    start = time.perf_counter()
    for _ in range(r):
        for i in range(1, k + 1):
            rc, err = one_checked(env, service, otps[i].pop(0) + "\n", f"p{i}")
            if rc != 0:
                failures.append((i, rc, err))
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
    if retried:
        print(f"(pam_wrapper races: {len(retried)} runs repeated with the same OTP, which our "
              f"module had not seen; e.g. {retried[0][1][:120]!r})", file=sys.stderr)
    print(f"| sequential, {n} logins on {k} keys | {n / seq:.0f} logins/s | {seq * 1000 / n:.2f} ms each |")
    print(f"| {k} in parallel, {n} logins | {n / par:.0f} logins/s | {seq / par:.2f}x sequential |")


if __name__ == "__main__":
    main()
