#!/usr/bin/env python3
"""Resident KB per ELF section of a running process's executable (pagemap present bits; run as root).

usage: sections.py PID
"""
import os, re, struct, subprocess, sys
pid = int(sys.argv[1]); exe = os.readlink(f"/proc/{pid}/exe")
maps = []
for line in open(f"/proc/{pid}/maps"):
    p = line.split()
    if len(p) >= 6 and p[5] == exe:
        lo, hi = (int(x, 16) for x in p[0].split("-")); maps.append((lo, hi, int(p[2], 16)))
base = maps[0][0] - maps[0][2]
secs = []
for line in subprocess.run(["readelf", "-S", "-W", exe], capture_output=True, text=True).stdout.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
    if m and int(m.group(2), 16):
        secs.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16)))
pm = open(f"/proc/{pid}/pagemap", "rb")
def present(va):
    pm.seek(va // 4096 * 8); return struct.unpack("<Q", pm.read(8))[0] >> 63 & 1
tot = 0
for name, addr, size in secs:
    first, last = (base + addr) // 4096, (base + addr + size - 1) // 4096
    n = sum(present(pg * 4096) for pg in range(first, last + 1))
    tot += n
    print(f"{name:24s} size {size/1024:8.0f} KB resident {n*4:6d} KB")
print("total (pages shared by two sections count twice)", tot * 4, "KB")
