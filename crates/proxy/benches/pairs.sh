#!/usr/bin/env bash
# CPU per request of one hop, nginx and one or more `strait` binaries measured in alternation
# (a busy shared machine drifts; alternating keeps each comparison within the same minute).
# Uses the harness's generated configs (target/bench/{nginx/nginx.conf,strait/proxy.json}, from
# `bench/run`) with ports moved to 19xxx. Load generator and backend on CPU 0, proxy on CPU 1.
#
#   crates/proxy/benches/pairs.sh ROUNDS STRAIT_BINARY...
#
# Per round and proxy: `bench-load -q 1000 -c 16 -z 10` (1,000 rps) then `wrk -t1 -c64 -d4s`
# (maximum). Prints one line per run: CPU seconds per 10,000 requests = Δ(utime+stime of the
# proxy's processes) / requests × 10,000, and its user and system parts, from /proc (100 Hz
# ticks, so ±1 tick ≈ ±0.01 s per 10k at 1,000 rps).
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
shift
out=${OUT:-/tmp/strait-pairs}
source crates/proxy/benches/common.sh
moved_configs "$out"
start_backend

# "utime stime" ticks of a process and its children.
ticks() {
  local u=0 s=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    read -r pu ps < <(awk '{print $14, $15}' "/proc/$p/stat")
    u=$((u + pu))
    s=$((s + ps))
  done
  echo "$u $s"
}

# name requests "u0 s0" "u1 s1"
report() {
  python3 - "$@" <<'PY'
import sys
name, n, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
u, s = (int(b[0]) - int(a[0])) / 100, (int(b[1]) - int(a[1])) / 100
k = 10000 / n if n > 0 else float("nan")
print(f"{name:28} requests={n:7} cpu_s_per_10k={(u + s) * k:.3f} user={u * k:.3f} sys={s * k:.3f}")
PY
}

measure() { # name pid port
  local name=$1 pid=$2 port=$3 t0 t1 n
  t0=$(ticks "$pid")
  n=$(taskset -c 0 target/release/bench-load --addr "127.0.0.1:$port" -q 1000 -c 16 -z 10 |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["total_requests"] if d["errors"]==0 else -1)')
  t1=$(ticks "$pid")
  report "$name 1k" "$n" "$t0" "$t1"
  t0=$(ticks "$pid")
  n=$(taskset -c 0 wrk -t1 -c64 -d4s -H 'Host: bench-backend' "http://127.0.0.1:$port/" |
    awk '/requests in/ {print $1}')
  t1=$(ticks "$pid")
  report "$name max" "$n" "$t0" "$t1"
}

for r in $(seq 1 "$rounds"); do
  start_nginx "$out"
  measure "r$r nginx" "$sut" 19101
  stop_sut
  for bin in "$@"; do
    start_strait "$out" "$bin"
    measure "r$r $(basename "$bin")" "$sut" 19121
    stop_sut
  done
done
