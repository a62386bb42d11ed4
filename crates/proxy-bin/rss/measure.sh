#!/usr/bin/env bash
# Idle and loaded RSS of one proxy command, as recorded in crates/proxy/benches/NOTES.md
# ("Memory (RSS)"). Uses the benchmark's realistic config (target/bench/strait/proxy.json, from
# bench/run) with ports moved to 195xx, and the harness's bench-backend / bench-load.
#
#   crates/proxy-bin/rss/measure.sh LABEL PROGRAM [ARGS...]
#   e.g. ... measure.sh cli target/release/strait proxy
#        ... measure.sh lean target/release/strait-proxy
# Prints: idle VmRSS 2 s after /ready, the highest VmRSS during 5 s at 1,000 rps (16 connections),
# and VmHWM after wrk -t1 -c64 -d4s (the harness's maximum-throughput run), in KB.
# Alternate the programs and read each binary once before (`cat BIN >/dev/null`): how much of a
# binary the page cache holds changes how many pages fault-around maps.
set -euo pipefail
cd "$(dirname "$0")/../../.."
label=$1; shift
out=target/rss; mkdir -p "$out"
sed -e 's/127.0.0.1:18121/127.0.0.1:19521/' -e 's/127.0.0.1:18080/127.0.0.1:19580/' \
  target/bench/strait/proxy.json >"$out/proxy.json"
host=bench-backend.bench.svc.cluster.local
if ! curl -s -o /dev/null http://127.0.0.1:19580/; then
  taskset -c 0 target/release/bench-backend --address 127.0.0.1:19580 >/dev/null 2>&1 &
  backend=$!
  trap 'kill $backend 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:19580/ && break; sleep 0.1; done
fi
TOKIO_WORKER_THREADS=1 taskset -c 1 "$@" --config "$out/proxy.json" --address 127.0.0.1 \
  --admin 127.0.0.1:19502 --no-access-log --concurrency 1 >"$out/$label.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19502/ready) == 200 ]] && break
  sleep 0.1
done
sleep 2
rss() { awk "/$1/{print \$2}" "/proc/$pid/status"; }
idle=$(rss VmRSS)
taskset -c 0 target/release/bench-load --addr 127.0.0.1:19521 --host "$host" -q 1000 -c 16 -z 5 \
  >"$out/$label.load" 2>&1 &
load=$!
max=0
while kill -0 "$load" 2>/dev/null; do r=$(rss VmRSS); ((r > max)) && max=$r; sleep 0.1; done
wrk_hwm=-
if command -v wrk >/dev/null; then
  taskset -c 0 wrk -t1 -c64 -d4s -H "Host: $host" http://127.0.0.1:19521/ >/dev/null 2>&1
  wrk_hwm=$(rss VmHWM)
fi
kill "$pid"; wait "$pid" 2>/dev/null || true
echo "$label idle=$idle rss_max_1k=$max hwm_after_wrk=$wrk_hwm"
