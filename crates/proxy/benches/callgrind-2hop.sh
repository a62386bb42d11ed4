#!/usr/bin/env bash
# Instruction count per request of each proxy of the two-hop mTLS chains (client sidecar →
# mTLS → server sidecar → backend), strait's pair and nginx's, under the same callgrind client as
# callgrind.sh. Uses the harness's generated configs and certificates (target/bench/
# {strait-2hop,nginx-2hop}/, from `bench/run`) and its ports, so run it when no benchmark runs.
#
#   crates/proxy/benches/callgrind-2hop.sh [REQUESTS]     # STRAIT=path picks another strait-proxy
#
# Prints Ir per request of the client side and of the server side of each pair.
set -euo pipefail
cd "$(dirname "$0")/../../.."
n=${1:-2000}
B=target/bench
out=${OUT:-/tmp/callgrind-2hop}
mkdir -p "$out"
source crates/proxy/benches/common.sh
target/release/bench-backend --address 127.0.0.1:18080 >/dev/null 2>&1 &
backend=$!
pids=()
cleanup() { kill "${pids[@]}" "$backend" 2>/dev/null || true; }
trap cleanup EXIT
wait_port 18080

# chain NAME ENTRY_PORT SERVER_PORT: warms up, counts N requests, prints each side's Ir/request.
chain() {
  local name=$1 entry=$2 inner=$3
  wait_port "$inner"
  wait_port "$entry"
  python3 crates/proxy/benches/client.py "127.0.0.1:$entry" 200 4 >/dev/null
  for p in "${pids[@]}"; do callgrind_control -z "$p" >/dev/null; done
  python3 crates/proxy/benches/client.py "127.0.0.1:$entry" "$n" 4 >/dev/null
  for p in "${pids[@]}"; do callgrind_control -d "$p" >/dev/null; done
  sleep 1
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
  local side f total
  for side in client server; do
    f=$(ls -t "$out/callgrind.$name-$side".*.* | head -1)
    total=$(callgrind_annotate "$f" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
    echo "$name $side Ir/request: $((total / n))  (file: $f)"
  done
}

cg() { # NAME-SIDE COMMAND...
  local tag=$1
  shift
  rm -f "$out/callgrind.$tag".*
  valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$out/callgrind.$tag.%p" "$@" >"$out/$tag.log" 2>&1 &
  pids+=($!)
}

# One worker per sidecar, as the harness runs them (nginx ignores these).
export TOKIO_WORKER_THREADS=1 RUST_LOG=warn
for side in server client; do
  admin=$([ $side = server ] && echo 18152 || echo 18151)
  cg "strait-$side" "${STRAIT:-target/release/strait-proxy}" \
    --config "$B/strait-2hop/$side.json" --address 127.0.0.1 --admin "127.0.0.1:$admin" --no-access-log
done
chain strait 18141 18142

for side in server client; do
  mkdir -p "$out/nginx-$side"
  sed -e 's/^daemon off;/daemon off;\nmaster_process off;/' "$B/nginx-2hop/$side/nginx.conf" >"$out/nginx-$side/nginx.conf"
  cg "nginx-$side" nginx -p "$PWD/$B/nginx-2hop/$side/" -c "$out/nginx-$side/nginx.conf"
done
chain nginx 18161 18162
