#!/usr/bin/env python3
"""Whole-process PAM timings for several (ours, baseline) service pairs in
one run: pamtester under pam_wrapper, every service once per round in turn
(so machine load hits all alike), N rounds. Prints a Markdown table of
medians: | | ours | baseline | ratio |.

usage: pam_table.py ENV_FILE OTPS_FILE N LABEL:OURS:BASELINE...

Every run, of any service, gets the next fresh OTP from OTPS_FILE.
"""
import statistics, sys

from pam_whole_process import load_env, one


def main():
    env_file, otps_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = [a.split(":", 2) for a in sys.argv[4:]]
    if not rows or any(len(r) != 3 for r in rows):
        sys.exit(__doc__)
    env = load_env(env_file)
    otps = [l.strip() for l in open(otps_file) if l.strip()]
    services = [s for _, ours, base in rows for s in (ours, base)]
    if len(otps) < len(services) * (n + 1):
        sys.exit(f"need {len(services) * (n + 1)} OTPs, have {len(otps)}")
    times = {s: [] for s in services}
    for s in services:  # warm the page cache and the servers
        one(env, s, otps.pop(0) + "\n")
    for i in range(n):
        for s in services:
            t, _, rc = one(env, s, otps.pop(0) + "\n")
            if rc != 0:
                sys.exit(f"round {i}: {s} failed (exit {rc}); not a valid measurement")
            times[s].append(t)
    print(f"rounds: {n}, each service once per round in turn; medians (min-max)")
    print()
    print("| | ours | baseline | ratio |")
    print("| --- | --- | --- | --- |")
    for label, ours, base in rows:
        mo, mb = statistics.median(times[ours]), statistics.median(times[base])
        cell = lambda s, m: f"{m*1000:.1f} ms ({min(times[s])*1000:.1f}-{max(times[s])*1000:.1f})"
        print(f"| {label} | {cell(ours, mo)} | {cell(base, mb)} | {mo/mb:.3f}x |")


if __name__ == "__main__":
    main()
