#!/usr/bin/env python3
"""Parallel logins on distinct keys: pamtester under pam_wrapper, K users
each with their own key, first all K*R logins one after another, then K
workers at once (R logins each). Prints both throughputs and the ratio.

usage: pam_parallel.py ENV_FILE SERVICE DIR K R

DIR/otps-<i>.txt holds the OTPs of user p<i> (i = 1..K).
"""
import statistics, sys, threading, time

from pam_whole_process import load_env, one


def main():
    env_file, service, d, k, r = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    env = load_env(env_file)
    otps = {i: [l.strip() for l in open(f"{d}/otps-{i}.txt") if l.strip()] for i in range(1, k + 1)}
    if any(len(v) < 2 * r + 1 for v in otps.values()):
        sys.exit(f"need {2 * r + 1} OTPs per user")
    for i in range(1, k + 1):  # warm up, one login per key
        assert one(env, service, otps[i].pop(0) + "\n", user=f"p{i}")[2] == 0, f"p{i} warm-up failed"
    failures = []

    def run(i):
        for _ in range(r):
            rc = one(env, service, otps[i].pop(0) + "\n", user=f"p{i}")[2]
            if rc != 0:
                failures.append((i, rc))

    start = time.perf_counter()
    for _ in range(r):
        for i in range(1, k + 1):
            rc = one(env, service, otps[i].pop(0) + "\n", user=f"p{i}")[2]
            if rc != 0:
                failures.append((i, rc))
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
