#!/usr/bin/env bash
# Where a proxy's CPU goes at 1,000 rps: nginx, HAProxy and one or more `strait` binaries in
# alternation, each sampled on its core by `perf record -e cpu-clock -g -C 1` for the length of
# one `bench-load -q 1000 -c 16` run, with the exact CPU time of its processes from /proc.
# `split.py $OUT` then divides each run's CPU per request into the kernel's wake-ups of the
# other core's tasks, the rest of the kernel, user space, and the time no sample saw (the
# virtual CPU stopped by the hypervisor). Uses the harness's generated
# configs (target/bench, from `bench/run`) with ports moved to 19xxx; load generator and
# backend on CPU 0, proxy on CPU 1, as the harness.
#
#   crates/proxy/benches/split.sh ROUNDS SECONDS STRAIT_BINARY...
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
secs=${2:-8}
shift 2
out=${OUT:-/tmp/strait-split}
source crates/proxy/benches/common.sh
moved_configs "$out"
start_backend

# utime+stime ticks (1/100 s) of a process and its children.
ticks() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

sample() { # name pid port
  local name=$1 pid=$2 port=$3 t0 t1
  taskset -c 0 target/release/bench-load --addr "127.0.0.1:$port" -q 1000 -c 16 -z 2 >/dev/null
  t0=$(ticks "$pid")
  perf record -q -e cpu-clock -F 20000 -C 1 -g -o "$out/$name.data" -- \
    taskset -c 0 target/release/bench-load --addr "127.0.0.1:$port" -q 1000 -c 16 -z "$secs" \
    >"$out/$name.json" 2>/dev/null
  t1=$(ticks "$pid")
  echo "$((t1 - t0))" >"$out/$name.ticks"
  perf script -i "$out/$name.data" -F comm,ip,sym 2>/dev/null | gzip >"$out/$name.script.gz"
  rm -f "$out/$name.data"
}

wait_port 19080
for r in $(seq 1 "$rounds"); do
  start_nginx "$out"
  sample "r$r-nginx" "$sut" 19101
  stop_sut
  start_haproxy "$out"
  sample "r$r-haproxy" "$sut" 19111
  stop_sut
  for bin in "$@"; do
    start_strait "$out" "$bin"
    sample "r$r-$(basename "$bin")" "$sut" 19121
    stop_sut
  done
  echo "round $r done" >&2
done
