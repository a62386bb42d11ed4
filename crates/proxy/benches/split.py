#!/usr/bin/env python3
"""Reads split.sh's runs and prints, per run, the proxy's CPU time per request (exact, from
/proc) and what its cpu-clock samples (one per 50 µs on the proxy's core) saw of it:

- wake: inside `sock_def_readable`, i.e. the sending proxy's own system call delivering the
  data over loopback and waking the reader on the other core (the load generator or the
  backend). Interrupts are off there, so the time shows up at `_raw_spin_unlock_irqrestore`.
- kernel: every other kernel sample of the proxy's processes (system calls, TCP, epoll, the
  scheduler).
- user: the proxy's own code and its libraries.
- unseen: the exact time minus all the sampled time. A sample that comes due while the virtual
  CPU is stopped (a hypervisor exit, a host-side stall) is taken once when it runs again, so a
  stall of any length counts as one period: this column is time the guest could not see.

Samples of other tasks on the proxy's core (kdamond, kworkers) are counted apart ("others",
in µs per request at the sampling period). Then the medians per candidate over the rounds.

    crates/proxy/benches/split.py DIR
"""
import collections
import glob
import gzip
import json
import os
import statistics
import sys

PERIOD_US = 50.0  # perf record -F 20000
KERNEL_THREADS = ("kdamond", "ksoftirqd", "kworker", "rcu_", "migration", "swapper", "perf",
                  "cpuhp", "idle_inject", "watchdog")


def samples(path):
    """Yields (comm, frames) with frames leaf first, as `perf script -F comm,ip,sym` prints."""
    comm, frames = None, []
    with gzip.open(path, "rt", errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    yield comm, frames
                comm, frames = None, []
            elif line[0] not in " \t":
                comm, frames = line.strip(), []
            else:
                parts = line.split(None, 1)
                ip = int(parts[0], 16) if all(c in "0123456789abcdef" for c in parts[0]) else 0
                frames.append((ip, parts[1].strip() if len(parts) > 1 else ""))
    if comm is not None:
        yield comm, frames


def split(path):
    counts = collections.Counter()
    for comm, frames in samples(path):
        if comm.startswith(KERNEL_THREADS):
            counts["others"] += 1
        elif not frames or frames[0][0] < 0xFFFF800000000000:
            counts["user"] += 1
        elif any(sym == "sock_def_readable" for _, sym in frames):
            counts["wake"] += 1
        else:
            counts["kernel"] += 1
    return counts


def main(d):
    rows = collections.defaultdict(list)
    print(f"{'run (µs per request)':28} {'requests':>8} {'cpu':>6} {'wake':>6} {'kernel':>7}"
          f" {'user':>6} {'unseen':>7} {'others':>7}")
    for script in sorted(glob.glob(os.path.join(d, "*.script.gz"))):
        name = os.path.basename(script)[: -len(".script.gz")]
        with open(os.path.join(d, name + ".json")) as f:
            load = json.load(f)
        n = load["total_requests"]
        with open(os.path.join(d, name + ".ticks")) as f:
            cpu_us = int(f.read()) * 10_000 / n
        c = split(script)
        own = c["wake"] + c["kernel"] + c["user"]
        if n == 0 or own == 0 or load.get("errors"):
            print(f"{name:28} invalid (requests {n}, errors {load.get('errors')})")
            continue
        part = {k: c[k] * PERIOD_US / n for k in ("wake", "kernel", "user", "others")}
        unseen = cpu_us - own * PERIOD_US / n
        print(f"{name:28} {n:8} {cpu_us:6.1f} {part['wake']:6.1f} {part['kernel']:7.1f}"
              f" {part['user']:6.1f} {unseen:7.1f} {part['others']:7.1f}")
        who = name.split("-", 1)[1]
        rows[who].append((cpu_us, part["wake"], part["kernel"], part["user"], unseen))
    print("\nmedians over the rounds (µs per request):")
    print(f"{'candidate':20} {'cpu':>6} {'wake':>6} {'kernel':>7} {'user':>6} {'unseen':>7}")
    for who, rs in sorted(rows.items()):
        m = [statistics.median(r[i] for r in rs) for i in range(5)]
        print(f"{who:20} {m[0]:6.1f} {m[1]:6.1f} {m[2]:7.1f} {m[3]:6.1f} {m[4]:7.1f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/strait-split")
