#!/usr/bin/env python3
"""Percentiles of the samples tail.sh wrote: per candidate and round, and added over direct.

    tail.py DIR
"""
import collections
import glob
import os
import statistics
import sys

QS = [0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]


def rank(sorted_, q):
    i = max(0, min(len(sorted_) - 1, int(-(-q * len(sorted_) // 1)) - 1))
    return sorted_[i]


runs = collections.defaultdict(dict)
for path in glob.glob(os.path.join(sys.argv[1], "r*-*.txt")):
    rnd, name = os.path.basename(path)[1:-4].split("-", 1)
    lat = sorted(int(line.split()[2]) for line in open(path))
    runs[name][int(rnd)] = [rank(lat, q) for q in QS]

head = " ".join(f"{'p' + format(q * 100, 'g'):>7}" for q in QS)
print(f"{'candidate':16} {'round':>5} {head}")
for name in sorted(runs):
    for rnd in sorted(runs[name]):
        row = " ".join(f"{v:7}" for v in runs[name][rnd])
        print(f"{name:16} {rnd:5} {row}")
print("\nadded over the same round's direct run (median over rounds):")
print(f"{'candidate':16} {head}")
direct = runs.get("direct", {})
for name in sorted(runs):
    if name == "direct":
        continue
    added = []
    for i in range(len(QS)):
        vals = [runs[name][r][i] - direct[r][i] for r in runs[name] if r in direct]
        added.append(statistics.median(vals) if vals else float("nan"))
    print(f"{name:16} " + " ".join(f"{v:7.0f}" for v in added))
