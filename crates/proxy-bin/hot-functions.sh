#!/usr/bin/env bash
# Regenerates crates/proxy-bin/hot-functions.txt: every function strait-proxy runs while it
# starts, serves HTTP/1.1 and h2c, answers the admin endpoints and follows a control plane.
# build.rs hands the list to the linker (lld's --symbol-ordering-file), which puts these
# functions next to each other at the start of .text. An idle proxy keeps resident every 64 KB
# window of code it touched (fault-around); packed together, the touched code spans far fewer
# windows (crates/proxy/benches/NOTES.md, "Memory (RSS)").
#
#   crates/proxy-bin/hot-functions.sh        # needs valgrind, curl, python3, and a bench config
#                                            # (target/bench/strait/proxy.json, from bench/run)
#
# Run it again after a toolchain or dependency upgrade: symbol names carry hashes of the
# compiler and crate versions, and the linker silently skips names it does not find (a stale
# list only costs resident memory, never correctness).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[[ -f target/bench/strait/proxy.json ]] || {
  echo "target/bench/strait/proxy.json is missing: run bench/run --quick once (it writes the config)" >&2
  exit 1
}
# Built alone, as bench/run and a release build it: building it together with other packages
# unifies dependency features differently, and the symbol hashes change with them.
cargo build --release -q -p strait-bench
cargo build --release -q -p strait
cargo build --release -q -p strait-proxy-bin
bin=target/release/strait-proxy
out=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true # valgrind writes its last dump on the way out
  rm -rf "$out"
}
trap cleanup EXIT
wait_http() { # URL: poll until it answers 200 (valgrind starts slowly)
  for _ in $(seq 1 600); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}
wait_any() { # URL: poll until anything answers HTTP
  for _ in $(seq 1 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") != 000 ]] && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2; return 1
}
callgrind() { # OUT ARGS...: the proxy under callgrind, mangled names, one worker
  local name=$1; shift
  TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --demangle=no --compress-strings=no \
    --compress-pos=no --callgrind-out-file="$out/$name.%p" "$bin" --concurrency 1 "$@" \
    >"$out/$name.log" 2>&1 &
  pids+=($!)
}

# 1. Static config (the benchmark's realistic one, ports moved to 197xx): HTTP/1.1, h2c, a 404,
#    the regex route, the admin endpoints.
sed -e 's/127.0.0.1:18121/127.0.0.1:19721/' -e 's/127.0.0.1:18080/127.0.0.1:19780/' \
  target/bench/strait/proxy.json >"$out/proxy.json"
target/release/bench-backend --address 127.0.0.1:19780 >/dev/null 2>&1 &
pids+=($!)
callgrind static --config "$out/proxy.json" --address 127.0.0.1 --admin 127.0.0.1:19700 --no-access-log
static=${pids[-1]}
wait_http http://127.0.0.1:19700/ready
host=bench-backend.bench.svc.cluster.local
python3 crates/proxy/benches/client.py 127.0.0.1:19721 300 4 >/dev/null
target/release/bench-load --addr 127.0.0.1:19721 --host "$host" --http2 -q 50 -c 4 -z 2 --warmup 0 >/dev/null
curl -s -o /dev/null -H "Host: $host" http://127.0.0.1:19721/static/app.css
curl -s -o /dev/null -H 'Host: unknown.example' http://127.0.0.1:19721/
for path in /ready /config_dump /stats/prometheus; do curl -s -o /dev/null "http://127.0.0.1:19700$path"; done

# 2. Following a control plane (what sidecars run): connect, Hello, push, apply, ACK.
target/release/strait control-plane --state-dir "$out/state" --rest 127.0.0.1:19714 \
  --grpc 127.0.0.1:19710 >"$out/cp.log" 2>&1 &
pids+=($!)
wait_any http://127.0.0.1:19714/
callgrind xds --control-plane http://127.0.0.1:19710 --address 127.0.0.97 --admin 127.0.0.1:19701 \
  --workload hot --labels app=hot,version=v1
xds=${pids[-1]}
wait_http http://127.0.0.1:19701/ready || echo "the xDS pass got no config; its start-up is still recorded" >&2
for p in "$static" "$xds"; do callgrind_control -d "$p" >/dev/null; done
sleep 1

# 3. Every function named in the dumps that is a function of this binary, sorted (a stable diff).
#    ThinLTO's local names (`...E.llvm.NNN`) change when their codegen unit changes; they stay,
#    since most belong to code that changes rarely (std, dependencies).
cat "$out"/static.* "$out"/xds.* | grep -E '^c?fn=' | sed -E 's/^c?fn=(\([0-9]+\) )?//' |
  grep -v '^([0-9]*)$' | sort -u >"$out/ran.txt"
nm --defined-only "$bin" | awk '$2 ~ /^[tT]$/ {print $3}' | sort -u >"$out/text.txt"
comm -12 "$out/ran.txt" "$out/text.txt" >crates/proxy-bin/hot-functions.txt
echo "crates/proxy-bin/hot-functions.txt: $(wc -l <crates/proxy-bin/hot-functions.txt) functions" >&2
