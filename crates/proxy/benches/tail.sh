#!/usr/bin/env bash
# Latency samples of one hop at 1,000 rps, every candidate in alternation: direct, nginx,
# haproxy and one or more `strait` binaries, per round, each run writing every response's
# `slot at_us latency_us` (bench-load --samples) to $OUT/rROUND-NAME.txt; `tail.py $OUT` then
# prints the percentiles from p50 to p99.9 and each proxy's added latency against the same
# round's direct run. Uses the harness's generated configs (target/bench, from `bench/run`)
# with ports moved to 19xxx. Load generator and backend on CPU 0, proxy on CPU 1, as the harness.
# KDAMOND=move keeps the kernel's DAMON sampler (kdamond) on CPU 0 for the run and gives it its
# CPUs back at the end, as `bench-runner --move-kdamond` (crates/bench/src/kthreads.rs says why).
# FLOOR=1 adds `haproxy-tcp`: HAProxy relaying bytes without parsing HTTP, the floor of a hop.
#
#   crates/proxy/benches/tail.sh ROUNDS SECONDS STRAIT_BINARY...
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
secs=${2:-30}
shift 2
out=${OUT:-/tmp/strait-tail}
source crates/proxy/benches/common.sh
moved_configs "$out"
taskset -c 0 target/release/bench-backend --address 127.0.0.1:19080 >/dev/null 2>&1 &
backend=$!
sut=
kd=()
if [ "${KDAMOND:-leave}" = move ]; then
  for p in $(pgrep -P 2 '^kdamond' || true); do
    kd+=("$p:$(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$p/status")")
    taskset -pc 0 "$p" >/dev/null
  done
fi
cleanup() {
  [ -n "$sut" ] && kill "$sut" 2>/dev/null || true
  kill "$backend" 2>/dev/null || true
  for k in "${kd[@]}"; do taskset -pc "${k#*:}" "${k%%:*}" >/dev/null || true; done
}
trap cleanup EXIT

load() { # file port
  taskset -c 0 target/release/bench-load --addr "127.0.0.1:$2" -q 1000 -c 16 --warmup 3 \
    -z "$secs" --samples "$1" >/dev/null
}

wait_port 19080
for r in $(seq 1 "$rounds"); do
  load "$out/r$r-direct.txt" 19080
  start_nginx "$out"
  load "$out/r$r-nginx.txt" 19101
  stop_sut
  start_haproxy "$out"
  load "$out/r$r-haproxy.txt" 19111
  stop_sut
  if [ "${FLOOR:-0}" = 1 ]; then
    taskset -c 1 haproxy -f "$out/haproxy-tcp.cfg" >/dev/null 2>&1 &
    sut=$!
    wait_port 19131
    load "$out/r$r-haproxy-tcp.txt" 19131
    stop_sut
  fi
  for bin in "$@"; do
    start_strait "$out" "$bin" --concurrency 1
    load "$out/r$r-$(basename "$bin").txt" 19121
    stop_sut
  done
  echo "round $r done" >&2
done
