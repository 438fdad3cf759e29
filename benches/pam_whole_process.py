#!/usr/bin/env python3
"""Whole-process PAM timings: pamtester under pam_wrapper, our module against a
baseline service, alternating, N runs each. Prints medians, the ratio and the
extra maximum resident memory of the host process.

usage: pam_whole_process.py ENV_FILE OTPS_FILE SERVICE BASELINE_SERVICE [N]

ENV_FILE holds `export K=V` lines (yubiotp-fixture's output). Each run of
SERVICE consumes the next OTP from OTPS_FILE; BASELINE_SERVICE gets the same
stdin but does not read it.
"""
import os, statistics, subprocess, sys, time


def load_env(path):
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    for line in open(path):
        line = line.strip()
        if not line.startswith("export "):
            continue
        for kv in line[len("export "):].split():
            k, _, v = kv.partition("=")
            env[k] = v
    return env


def one(env, service, stdin_text):
    start = time.perf_counter()
    p = subprocess.Popen(["pamtester", service, "alice", "authenticate"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    p.stdin.write(stdin_text.encode())
    p.stdin.close()
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss, p.returncode


def main():
    env_file, otps_file, service, baseline = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    env = load_env(env_file)
    otps = [l.strip() for l in open(otps_file) if l.strip()]
    if len(otps) < n + 1:
        sys.exit(f"need {n + 1} OTPs, have {len(otps)}")
    ours, base, rss_ours, rss_base = [], [], [], []
    one(env, service, otps.pop(0) + "\n")  # warm the page cache
    for i in range(n):
        t, rss, rc = one(env, service, otps.pop(0) + "\n")
        if rc != 0:
            sys.exit(f"run {i}: {service} failed (exit {rc}); not a valid measurement")
        ours.append(t); rss_ours.append(rss)
        t, rss, rc = one(env, baseline, "x\n")
        base.append(t); rss_base.append(rss)
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"runs each: {n} (alternating)")
    print(f"{service:>12}: median {mo*1000:.2f} ms  (min {min(ours)*1000:.2f}, max {max(ours)*1000:.2f})")
    print(f"{baseline:>12}: median {mb*1000:.2f} ms  (min {min(base)*1000:.2f}, max {max(base)*1000:.2f})")
    print(f"added per authentication: {(mo-mb)*1000:.2f} ms  (ratio {mo/mb:.2f}x)")
    print(f"max RSS: {statistics.median(rss_ours)} KiB vs {statistics.median(rss_base)} KiB "
          f"(+{statistics.median(rss_ours)-statistics.median(rss_base)} KiB)")


if __name__ == "__main__":
    main()
