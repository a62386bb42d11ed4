#!/usr/bin/env python3
"""Sends a fixed number of keep-alive HTTP/1.1 requests through a proxy (for callgrind runs).

usage: client.py HOST:PORT COUNT [CONNECTIONS] [PATH]
Requests rotate over the connections one at a time (no concurrency): the goal is a repeatable
instruction count per request, not load.
"""
import http.client
import sys

addr, count = sys.argv[1], int(sys.argv[2])
conns_n = int(sys.argv[3]) if len(sys.argv) > 3 else 4
path = sys.argv[4] if len(sys.argv) > 4 else "/"
host, port = addr.rsplit(":", 1)
conns = [http.client.HTTPConnection(host, int(port), timeout=30) for _ in range(conns_n)]
bad = 0
for i in range(count):
    c = conns[i % conns_n]
    c.request("GET", path, headers={"Host": "bench-backend"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        bad += 1
print(f"sent {count}, non-200 {bad}")
sys.exit(1 if bad else 0)
