#!/usr/bin/env bash
# Instruction count per request of nginx and HAProxy as one-hop reverse proxies, under the same
# callgrind client as strait's (callgrind.sh): the yardsticks' side of "Ir per request", measured
# in the same session so that the comparison does not lean on an old figure.
#
#   crates/proxy/benches/callgrind-yardsticks.sh [REQUESTS]
#
# Uses the harness's generated configs (target/bench, from `bench/run`), moved to 19xxx ports, in
# one process each: nginx with `master_process off` (the worker is the process callgrind
# watches), HAProxy with one thread in the foreground. Counters are zeroed after a warm-up and
# dumped after REQUESTS (default 2000) requests on 4 keep-alive connections.
set -euo pipefail
cd "$(dirname "$0")/../../.."
n=${1:-2000}
out=${OUT:-/tmp/yardsticks-cg}
source crates/proxy/benches/common.sh
moved_configs "$out"
sed -i -e 's/^daemon off;/daemon off;\nmaster_process off;/' "$out/nginx/nginx.conf"
grep -q '^master_process off;' "$out/nginx/nginx.conf"
start_backend
wait_port 19080

# measure NAME PORT COMMAND...: prints "NAME Ir/request: N".
measure() {
  local name=$1 port=$2
  shift 2
  rm -f "$out/callgrind.$name".*
  valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$out/callgrind.$name.%p" "$@" >"$out/$name.log" 2>&1 &
  sut=$!
  wait_port "$port"
  python3 crates/proxy/benches/client.py "127.0.0.1:$port" 200 4 >/dev/null
  callgrind_control -z "$sut" >/dev/null
  python3 crates/proxy/benches/client.py "127.0.0.1:$port" "$n" 4 >/dev/null
  callgrind_control -d "$sut" >/dev/null
  sleep 1
  kill "$sut" 2>/dev/null || true
  wait "$sut" 2>/dev/null || true
  sut=
  local f total
  f=$(ls -t "$out/callgrind.$name".*.* | head -1)
  total=$(callgrind_annotate "$f" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
  echo "$name Ir/request: $((total / n))  (file: $f)"
}

measure nginx 19101 nginx -c "$out/nginx/nginx.conf" -p "$out/nginx"
measure haproxy 19111 haproxy -f "$out/haproxy.cfg" -db
