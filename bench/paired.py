#!/usr/bin/env python3
"""Runs two commands alternately, N pairs, and reports the median of the per-pair time ratios.

Alternating A, B, A, B... keeps slow drifts of a shared machine (other tenants, disk writeback)
out of the ratio, which sequential benchmarks (all of A, then all of B) let in.

    python3 bench/paired.py --pairs 30 --warmup 3 -- "testloop run x" -- "/bin/sh -c '...'"
"""
import argparse
import shlex
import statistics
import subprocess
import sys
import time


def timed(command):
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("commands", nargs="+", help="-- A -- B")
    args = parser.parse_args()
    commands = [part for part in " ".join(args.commands).split(" -- ") if part.strip()]
    if len(commands) != 2:
        sys.exit("give exactly two commands separated by --")
    first, second = (shlex.split(command) for command in commands)
    for _ in range(args.warmup):
        timed(first)
        timed(second)
    a_times, b_times, ratios = [], [], []
    for _ in range(args.pairs):
        a = timed(first)
        b = timed(second)
        a_times.append(a)
        b_times.append(b)
        ratios.append(a / b)
    print(
        f"{statistics.median(a_times) * 1000:.0f} {statistics.median(b_times) * 1000:.0f} "
        f"{statistics.median(ratios):.2f} {min(ratios):.2f} {max(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
