#!/usr/bin/env python3
"""Self and inclusive Ir per function from an uncompressed callgrind dump
(callgrind_annotate 3.19 mis-attributes Rust binaries here).

usage: cgself.py FILE [TOP] [REQUESTS]
EVENT=D1mw (an event of the dump's `events:` line, e.g. with CG_OPTS=--cache-sim=yes) counts that
event instead of Ir."""
import collections, re, sys

f = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
selfc = collections.Counter()
incl = collections.Counter()
fn = None
after_calls = False
cfn = None
column = 1
for line in open(f, errors="replace"):
    line = line.rstrip("\n")
    if line.startswith("events:"):
        names = line.split()[1:]
        want_event = __import__("os").environ.get("EVENT", names[0])
        column = 1 + names.index(want_event)
        continue
    if line.startswith("fn="):
        fn = line[3:]
        after_calls = False
        continue
    if line.startswith("cfn="):
        cfn = line[4:]
        continue
    if line.startswith("calls="):
        after_calls = True
        continue
    if line and (line[0].isdigit() or line[0] in "+-*"):
        parts = line.split()
        if len(parts) <= column:
            continue
        c = int(parts[column])
        if after_calls:
            if cfn != fn:
                incl[(fn, cfn)] += c
            after_calls = False
        else:
            selfc[fn] += c
total = sum(selfc.values())
print(f"total {__import__('os').environ.get('EVENT', 'Ir')} {total} ({total / n:.0f} per request)")
for name, c in selfc.most_common(top):
    print(f"{c / n:9.0f} {100 * c / total:5.1f}%  {name[:150]}")

# Optional: CALLERS=substring prints who calls matching functions, CALLEES=substring what
# matching functions call (inclusive Ir of each call).
import os


def edges(env, side, title):
    want = os.environ.get(env)
    if not want:
        return
    rows = sorted(((c, a, b) for (a, b), c in incl.items() if want in (a, b)[side]), reverse=True)
    print(f"\n{title} of *{want}*:")
    for c, a, b in rows[:30]:
        print(f"{c / n:9.0f}  {a[:110]}  ->  {b[:100]}")


edges("CALLERS", 1, "callers")
edges("CALLEES", 0, "callees")

# Optional: INCL=sub1,sub2 prints inclusive Ir (self + calls made) of functions matching each.
want = os.environ.get("INCL")
if want:
    out = collections.Counter()
    for (a, b), c in incl.items():
        out[a] += c
    for a, c in selfc.items():
        out[a] += c
    for w in want.split(","):
        rows = sorted(((c, a) for a, c in out.items() if w in a), reverse=True)[:4]
        for c, a in rows:
            print(f"{c / n:9.0f}  {a[:150]}")

