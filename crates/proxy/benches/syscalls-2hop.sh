#!/usr/bin/env bash
# System calls per request of the two-hop mTLS chains, strait pair vs nginx pair: `strace -c -f`
# on every proxy process while bench-load sends 1,000 rps for 5 s. Uses the harness's generated
# configs and certificates (target/bench/{strait-2hop,nginx-2hop}/, from `bench/run`) and its
# ports, so run it when no benchmark is running. Load generator and backend on CPU 0, proxies on
# CPU 1. Prints each process's strace summary: total calls, then the most frequent.
#
#   crates/proxy/benches/syscalls-2hop.sh        # STRAIT=path picks another strait-proxy binary
set -u
cd "$(dirname "$0")/../../.."
B=target/bench
HOST=${HOST:-bench-backend.bench.svc.cluster.local}
out=${OUT:-/tmp/strait-syscalls}
mkdir -p "$out"
taskset -c 0 target/release/bench-backend --address 127.0.0.1:18080 >/dev/null 2>&1 &
backend=$!
pids=()
cleanup() { kill "${pids[@]}" "$backend" 2>/dev/null; }
trap cleanup EXIT

measure() { # name port pid...
  local name=$1 port=$2
  shift 2
  local tracers=()
  for p in "$@"; do
    timeout 9 strace -c -f -q -p "$p" -o "$out/$name.$p.txt" &
    tracers+=($!)
  done
  sleep 1
  taskset -c 0 target/release/bench-load --addr "127.0.0.1:$port" -q 1000 -c 16 -z 5 --warmup 1 \
    --host "$HOST" >"$out/$name.load.txt" 2>&1
  wait "${tracers[@]}"
  grep -o '"requests":[0-9]*\|"errors":[0-9]*' "$out/$name.load.txt" | tr '\n' ' '
  echo
  for p in "$@"; do
    echo "== $name pid $p"
    sort -k4 -n -r "$out/$name.$p.txt" | awk '$4 ~ /^[0-9]+$/ {print $4, $NF}' | sed -n 1,8p
  done
}

for side in server client; do
  admin=$([ $side = server ] && echo 18152 || echo 18151)
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn taskset -c 1 "${STRAIT:-target/release/strait-proxy}" \
    --config "$B/strait-2hop/$side.json" --address 127.0.0.1 --admin "127.0.0.1:$admin" \
    --no-access-log >"$out/strait-$side.log" 2>&1 &
  pids+=($!)
done
sleep 1.5
measure strait 18141 "${pids[@]}"
kill "${pids[@]}"
pids=()
for side in server client; do
  taskset -c 1 nginx -p "$PWD/$B/nginx-2hop/$side/" -c "$PWD/$B/nginx-2hop/$side/nginx.conf" >/dev/null 2>&1 &
  pids+=($!)
done
sleep 1.5
# `daemon off` with one worker: strace the masters' workers too.
traced=()
for p in "${pids[@]}"; do traced+=("$p" $(pgrep -P "$p")); done
measure nginx 18161 "${traced[@]}"
