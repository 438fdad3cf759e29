#!/usr/bin/env python3
"""Whole-process PAM timings: pamtester under pam_wrapper, our module against a
baseline service, alternating, N runs each. Prints medians, the ratio and the
extra maximum resident memory of the host process.

usage: pam_whole_process.py ENV_FILE OTPS_FILE SERVICE BASELINE_SERVICE [N]

ENV_FILE holds `export K=V` lines (yubiotp-fixture's output). Every run, of
either service, is given the next fresh OTP from OTPS_FILE on stdin (a
baseline such as pam_permit.so just does not read it).
"""
import os, statistics, sys, time


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


def one(env, service, stdin_text, tries=5, argv0=()):
    """One pamtester run: (seconds, max RSS KiB, exit code). posix_spawn
    (vfork) keeps this Python process's pages out of the child's max RSS.
    A run that failed after losing pam_wrapper's start-up race for a
    /tmp/pam.<c> directory (another pam_wrapper process started at the
    same moment) is repeated. pam_wrapper prints the same message for runs
    that then go on and authenticate: those count as they are, since
    repeating one would replay an OTP the module has accepted."""
    for _ in range(tries):
        in_r, in_w = os.pipe()
        err_r, err_w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
            (os.POSIX_SPAWN_CLOSE, in_w),
            (os.POSIX_SPAWN_CLOSE, err_r),
        ]
        start = time.perf_counter()
        argv = list(argv0) + ["pamtester", service, "alice", "authenticate"]
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
        os.close(in_r)
        os.close(err_w)
        try:
            os.write(in_w, stdin_text.encode())
        except BrokenPipeError:
            pass  # the baseline service never reads its stdin
        os.close(in_w)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - start
        with os.fdopen(err_r, "rb") as f:
            err = f.read()
        code = os.waitstatus_to_exitcode(status)
        if code == 0 or b"Failed to create pam_wrapper config dir" not in err:
            rss = usage.ru_maxrss
            if argv0:  # GNU time prints the child's max RSS (KiB) last
                rss = int(err.decode(errors="replace").split()[-1])
            return elapsed, rss, code
        time.sleep(0.05)
    sys.exit("pam_wrapper start-up kept failing")


def main():
    env_file, otps_file, service, baseline = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    env = load_env(env_file)
    otps = [l.strip() for l in open(otps_file) if l.strip()]
    if len(otps) < 2 * n + 21:
        sys.exit(f"need {2 * n + 21} OTPs, have {len(otps)}")
    ours, base, rss_ours, rss_base = [], [], [], []
    one(env, service, otps.pop(0) + "\n")  # warm the page cache
    for i in range(n):
        t, rss, rc = one(env, service, otps.pop(0) + "\n")
        if rc != 0:
            sys.exit(f"run {i}: {service} failed (exit {rc}); not a valid measurement")
        ours.append(t)
        t, rss, rc = one(env, baseline, otps.pop(0) + "\n")
        if rc != 0:
            sys.exit(f"run {i}: {baseline} failed (exit {rc}); not a valid measurement")
        base.append(t)
    # Max RSS through GNU time: a child forked from this (large) Python
    # process would count Python's pages in its own high-water mark.
    timer = ["/usr/bin/time", "-f", "%M"]
    for _ in range(10):
        rss_ours.append(one(env, service, otps.pop(0) + "\n", argv0=timer)[1])
        rss_base.append(one(env, baseline, otps.pop(0) + "\n", argv0=timer)[1])
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"runs each: {n} (alternating)")
    print(f"{service:>12}: median {mo*1000:.2f} ms  (min {min(ours)*1000:.2f}, max {max(ours)*1000:.2f})")
    print(f"{baseline:>12}: median {mb*1000:.2f} ms  (min {min(base)*1000:.2f}, max {max(base)*1000:.2f})")
    print(f"added per authentication: {(mo-mb)*1000:.2f} ms  (ratio {mo/mb:.2f}x)")
    ro, rb = statistics.median(rss_ours), statistics.median(rss_base)
    print(f"max RSS of the host (median of 10): {ro:.0f} KiB vs {rb:.0f} KiB (+{ro-rb:.0f} KiB)")


if __name__ == "__main__":
    main()
