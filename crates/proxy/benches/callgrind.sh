#!/usr/bin/env bash
# Instruction count per request of one `strait proxy` hop, under callgrind (repeatable on a noisy
# machine, unlike wall-clock CPU). Uses the benchmark harness's generated config
# (target/bench/strait/proxy.json, from `bench/run`) with ports moved to 19xxx.
#
#   crates/proxy/benches/callgrind.sh [STRAIT_BINARY] [REQUESTS]
# Prints Ir per request (the counters are zeroed after a warm-up and dumped after REQUESTS).
# CG_OPTS adds callgrind options, e.g. CG_OPTS=--cache-sim=yes (then callgrind_annotate FILE
# shows I1mr/D1mr/D1mw).
set -euo pipefail
cd "$(dirname "$0")/../../.."
bin=${1:-target/release/strait}
n=${2:-2000}
out=${OUT:-/tmp/strait-cg}
mkdir -p "$out"
sed -e 's/127.0.0.1:18121/127.0.0.1:19121/' -e 's/127.0.0.1:18080/127.0.0.1:19080/' \
  target/bench/strait/proxy.json >"$out/proxy.json"
target/release/bench-backend --address 127.0.0.1:19080 >/dev/null 2>&1 &
backend=$!
rm -f "$out"/callgrind.out.*
# The lean binary (strait-proxy*, sp-*) is the proxy alone: no `proxy` subcommand.
sub=proxy
case "$(basename "$bin")" in strait-proxy* | sp-*) sub= ;; esac
TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1} valgrind --tool=callgrind ${CG_OPTS:-} --compress-strings=no --compress-pos=no --callgrind-out-file="$out/callgrind.out.%p" \
  "$bin" $sub --config "$out/proxy.json" --address 127.0.0.1 --admin 127.0.0.1:19000 --no-access-log \
  >"$out/proxy.log" 2>&1 &
proxy=$!
cleanup() { kill "$proxy" "$backend" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  curl -fs -o /dev/null http://127.0.0.1:19000/ready && break
  sleep 0.1
done
python3 crates/proxy/benches/client.py 127.0.0.1:19121 200 4 >/dev/null
grep VmRSS /proc/$proxy/status || true
callgrind_control -z "$proxy" >/dev/null
python3 crates/proxy/benches/client.py 127.0.0.1:19121 "$n" 4
callgrind_control -d "$proxy" >/dev/null
sleep 1
f=$(ls -t "$out"/callgrind.out.*.* 2>/dev/null | head -1)
total=$(callgrind_annotate "$f" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
echo "file: $f"
echo "Ir total: $total  requests: $n  Ir/request: $((total / n))"
