#!/usr/bin/env python3
"""Which code of a running process's executable is resident, by crate.

usage: rss_pages.py PID [BINARY]
Reads /proc/PID/maps and /proc/PID/pagemap (present bits), maps every resident page of the
executable's mappings to the symbols that overlap it (`nm -C`), and sums 4 KB pages per
crate (first path segment of the symbol). A page shared by several crates counts for each
of them in proportion to the bytes they occupy on it.
"""
import bisect, collections, os, re, struct, subprocess, sys

pid = int(sys.argv[1])
exe = sys.argv[2] if len(sys.argv) > 2 else os.readlink(f"/proc/{pid}/exe")
PAGE = 4096
maps = []
for line in open(f"/proc/{pid}/maps"):
    parts = line.split()
    if len(parts) >= 6 and parts[5] == exe:
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        maps.append((lo, hi, int(parts[2], 16), parts[1]))
base = min(lo - off for lo, hi, off, _ in maps)
# file offset == vaddr for the usual PIE layout only when segments are aligned; use the
# program headers instead: vaddr = load address - base.
syms = []
out = subprocess.run(["nm", "-C", "--defined-only", "-S", "--numeric-sort", exe],
                     capture_output=True, text=True).stdout
for line in out.splitlines():
    p = line.split(" ", 3)
    if len(p) < 4 or p[2] not in "tTrRdDbBwWvV":
        continue
    try:
        addr, size = int(p[0], 16), int(p[1], 16)
    except ValueError:
        continue
    syms.append((addr, size, p[3]))
starts = [s[0] for s in syms]

def crate(name):
    name = name.lstrip("<&*(")
    name = re.sub(r"^(impl |dyn |mut |const )", "", name)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", name)
    return m.group(1) if m else "?"

per = collections.Counter()
kinds = collections.Counter()
with open(f"/proc/{pid}/pagemap", "rb") as pm:
    for lo, hi, off, perm in maps:
        for va in range(lo, hi, PAGE):
            pm.seek(va // PAGE * 8)
            (entry,) = struct.unpack("<Q", pm.read(8))
            if not entry >> 63 & 1:
                continue
            kinds[perm] += 1
            rel = va - base
            i = bisect.bisect_right(starts, rel + PAGE) - 1
            share = collections.Counter()
            while i >= 0 and syms[i][0] + max(syms[i][1], 1) > rel - 65536:
                a, sz, n = syms[i]
                ov = min(a + sz, rel + PAGE) - max(a, rel)
                if ov > 0:
                    share[crate(n)] += ov
                i -= 1
                if a < rel - 1 << 20:
                    break
            tot = sum(share.values())
            if not tot:
                per["(no symbol)"] += 1
                continue
            for c, b in share.items():
                per[c] += b / tot
print("resident pages by permission:", {k: f"{v * 4} KB" for k, v in kinds.items()})
for c, n in per.most_common(40):
    print(f"{n * 4:8.0f} KB  {c}")
