# Shared by pairs.sh, tail.sh and callgrind-yardsticks.sh (sourced, from the repository root): the
# harness's generated configs with their ports moved to 19xxx, a wait for a port to accept, and
# the backend with its clean-up (tail.sh, which moves kdamond too, cleans up by itself).

# moved_configs OUT: writes OUT/nginx/nginx.conf, OUT/haproxy.cfg and OUT/proxy.json from
# target/bench (written by `bench/run`), listening on 19101 (nginx), 19111 (HAProxy) and 19121
# (strait), all with the backend on 19080, and OUT/haproxy-tcp.cfg (19131).
moved_configs() {
  local out=$1
  mkdir -p "$out/nginx"
  sed -e 's/127.0.0.1:18101/127.0.0.1:19101/' -e 's/127.0.0.1:18080/127.0.0.1:19080/' \
    -e "s#/work/main/target/bench/nginx#$out/nginx#g" target/bench/nginx/nginx.conf >"$out/nginx/nginx.conf"
  sed -e 's/127.0.0.1:18111/127.0.0.1:19111/' -e 's/127.0.0.1:18080/127.0.0.1:19080/' \
    target/bench/haproxy/haproxy.cfg >"$out/haproxy.cfg"
  sed -e 's/127.0.0.1:18121/127.0.0.1:19121/' -e 's/127.0.0.1:18080/127.0.0.1:19080/' \
    target/bench/strait/proxy.json >"$out/proxy.json"
  # The floor of a one-hop proxy: HAProxy relaying bytes (`mode tcp`, one upstream connection per
  # client connection, no HTTP parsed), on 19131.
  sed -e 's/mode http/mode tcp/' -e '/http-reuse/d' -e 's/127.0.0.1:19111/127.0.0.1:19131/' \
    "$out/haproxy.cfg" >"$out/haproxy-tcp.cfg"
}

# wait_port PORT: until 127.0.0.1:PORT accepts (10 s at most).
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  return 1
}

# start_backend: bench-backend on CPU 0 at 127.0.0.1:19080 (pid in $backend), and an EXIT trap
# that stops it and the proxy under test (pid in $sut, when set). A script with more to undo
# defines its own `cleanup` after calling this.
start_backend() {
  taskset -c 0 target/release/bench-backend --address 127.0.0.1:19080 >/dev/null 2>&1 &
  backend=$!
  sut=
  cleanup() {
    [ -n "$sut" ] && kill "$sut" 2>/dev/null || true
    kill "$backend" 2>/dev/null || true
  }
  trap cleanup EXIT
}

# start_strait OUT BIN [ARG...]: the proxy BIN on CPU 1 with OUT/proxy.json, one worker thread,
# access log off, listening on 19121 (pid in $sut), once its port accepts. `strait` needs its
# `proxy` subcommand; the lean binaries (names starting with `strait-proxy` or `sp-`) are the
# proxy alone.
start_strait() {
  local out=$1 bin=$2 sub=proxy
  shift 2
  case "$(basename "$bin")" in strait-proxy* | sp-*) sub= ;; esac
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn taskset -c 1 "$bin" $sub --config "$out/proxy.json" \
    --address 127.0.0.1 --admin 127.0.0.1:19000 --no-access-log "$@" >"$out/strait.log" 2>&1 &
  sut=$!
  wait_port 19121
}

# start_nginx OUT / start_haproxy OUT: the yardstick on CPU 1 (pid in $sut), once its port
# (19101 / 19111) accepts.
start_nginx() {
  taskset -c 1 nginx -c "$1/nginx/nginx.conf" -p "$1/nginx" >/dev/null 2>&1 &
  sut=$!
  wait_port 19101
}
start_haproxy() {
  taskset -c 1 haproxy -f "$1/haproxy.cfg" >/dev/null 2>&1 &
  sut=$!
  wait_port 19111
}

# stop_sut: stops the proxy under test and waits for it to go.
stop_sut() {
  kill "$sut"
  wait "$sut" 2>/dev/null || true
  sut=
}
