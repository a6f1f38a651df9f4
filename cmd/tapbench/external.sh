#!/usr/bin/env bash
# external.sh — run tapwars in external mode for load tests: a redis-server
# on a free port with a temp dir, a kfake broker as its own process
# (tapbench -broker), the tapwars binary with every limit off, and a
# do-nothing server (tapbench -noop-server) to compare ingest with.
#
#   cmd/tapbench/external.sh up          # builds into $WORK, starts all, prints the ports
#   cmd/tapbench/external.sh bench ARGS  # tapbench against it, with baseline, pids and CPU watch
#   cmd/tapbench/external.sh down        # stops what up started (by pid)
#   cmd/tapbench/external.sh fanout [-clients N] [-pairs N] [tapbench flags]
#       # fan-out: tapwars (a fresh up for each run) and the bare scoreboard
#       # server (tapbench -scoreboard-server, fresh each run) alternately,
#       # the same tapbench command against both (N game-page clients, half
#       # SSE, half WS; defaults 10000 clients, 3 pairs, -rate 1000
#       # -duration 20s), then the table and the ratios tapwars / bare.
#
# WORK (default /tmp/tapbench-external) holds binaries, data, logs, pids.
# PARTS sets the partitions of game-taps (default 6); TAPWARS_BIN runs that
# binary instead of building ./cmd/tapwars (e.g. a patched scratch copy).
# Other tapwars settings pass through the environment.
set -euo pipefail
WORK=${WORK:-/tmp/tapbench-external}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

build() {
  mkdir -p "$WORK"
  (cd "$ROOT" && go build -o "$WORK/tapbench" ./cmd/tapbench)
  if [ -z "${TAPWARS_BIN:-}" ]; then (cd "$ROOT" && go build -o "$WORK/tapwars" ./cmd/tapwars); fi
}

up() { build; start; }

# start runs what up starts, from the binaries build made.
start() {
  local BIN=${TAPWARS_BIN:-$WORK/tapwars}
  local D="$WORK/run"; rm -rf "$D"; mkdir -p "$D/redis" "$D/kafka" "$D/data"
  local RP KP AP NP MP; RP=$(free); KP=$(free); AP=$(free); NP=$(free); MP=$(free)
  echo "RP=$RP KP=$KP AP=$AP NP=$NP MP=$MP" > "$D/ports"
  redis-server --port "$RP" --bind 127.0.0.1 --dir "$D/redis" --appendonly yes --appendfsync everysec \
    --save "" --daemonize no --logfile "$D/redis/log" >/dev/null 2>&1 &
  echo $! > "$D/redis.pid"
  "$WORK/tapbench" -broker "127.0.0.1:$KP" -partitions "${PARTS:-6}" -data-dir "$D/kafka" 2> "$D/kafka.log" &
  echo $! > "$D/kafka.pid"
  for _ in $(seq 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && grep -q "broker on" "$D/kafka.log" && break; sleep 0.1; done
  REDIS_URL="redis://127.0.0.1:$RP/0" KAFKA_BROKERS="127.0.0.1:$KP" ADDR="127.0.0.1:$AP" METRICS_ADDR="127.0.0.1:$MP" DATA_DIR="$D/data" \
    LOG_LEVEL=${LOG_LEVEL:-warn} TAP_RATE_LIMIT=0 JOIN_RATE_LIMIT=0 JOINS_PER_SECOND=0 MAX_CONNECTIONS=0 MAX_CONNECTIONS_PER_IP=0 MAX_TCP_CONNECTIONS_PER_IP=0 \
    SESSION_SECRET=tapbench-secret-0123456789 "$BIN" 2> "$D/tapwars.log" &
  echo $! > "$D/tapwars.pid"
  "$WORK/tapbench" -noop-server "127.0.0.1:$NP" 2> "$D/noop.log" &
  echo $! > "$D/noop.pid"
  for _ in $(seq 200); do curl -sf "127.0.0.1:$AP/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "127.0.0.1:$AP/readyz" >/dev/null || { cat "$D/tapwars.log"; exit 1; }
  echo "up: tapwars http://127.0.0.1:$AP, metrics http://127.0.0.1:$MP (pid $(cat "$D/tapwars.pid")), redis :$RP, kfake :$KP, noop http://127.0.0.1:$NP"
}

down() {
  local D="$WORK/run"
  for p in tapwars noop kafka redis; do
    [ -f "$D/$p.pid" ] && stop "$(cat "$D/$p.pid")"
    rm -f "$D/$p.pid"
  done
  echo down
}

# stop ends one process (by pid) and waits until it is gone.
stop() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

bench() {
  local D="$WORK/run"; . "$D/ports"
  "$WORK/tapbench" -url "http://127.0.0.1:$AP" -baseline-url "http://127.0.0.1:$NP" -server-pid "$(cat "$D/tapwars.pid")" \
    -cpu-pids "broker=$(cat "$D/kafka.pid"),redis=$(cat "$D/redis.pid"),noop=$(cat "$D/noop.pid")" "$@"
}

fanout() {
  local clients=10000 pairs=3 args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -clients|--clients) clients=$2; shift 2 ;;
      -clients=*|--clients=*) clients=${1#*=}; shift ;;
      -pairs|--pairs) pairs=$2; shift 2 ;;
      -pairs=*|--pairs=*) pairs=${1#*=}; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  if [ -f "$WORK/run/tapwars.pid" ]; then echo "fanout: $0 up is running in $WORK: $0 down first" >&2; exit 1; fi
  build
  local OUT="$WORK/fanout"; rm -rf "$OUT"; mkdir -p "$OUT"
  # Flags given after these win (the last of a flag counts).
  local common=(-format html -sse $((clients / 2)) -ws $((clients - clients / 2)) -rate 1000 -duration 20s ${args[@]+"${args[@]}"})
  echo "fanout: $pairs pairs of tapbench ${common[*]}; results in $OUT" >&2
  for i in $(seq "$pairs"); do
    local order="bare tapwars"
    [ $((i % 2)) -eq 0 ] && order="tapwars bare"   # alternate which goes first
    for t in $order; do
      "fanout_$t" "$OUT/$t-$i" "${common[@]}" || echo "fanout: pair $i $t failed, see $OUT/$t-$i.log" >&2
      grep -E '^  (live|freshness|memory) ' "$OUT/$t-$i.log" | sed "s/^/  pair $i $t: /" >&2 || true
      sleep 2
    done
  done
  "$WORK/tapbench" -fanout-report "$OUT"
}

# fanout_tapwars runs tapbench once against a freshly started tapwars.
fanout_tapwars() {
  local out=$1; shift
  start > /dev/null
  local D="$WORK/run"; . "$D/ports"
  local rc=0
  "$WORK/tapbench" -url "http://127.0.0.1:$AP" -server-pid "$(cat "$D/tapwars.pid")" \
    -cpu-pids "broker=$(cat "$D/kafka.pid"),redis=$(cat "$D/redis.pid")" "$@" > "$out.json" 2> "$out.log" || rc=$?
  down > /dev/null
  return $rc
}

# fanout_bare runs tapbench once against a freshly started bare scoreboard server.
fanout_bare() {
  local out=$1; shift
  local SP; SP=$(free)
  "$WORK/tapbench" -scoreboard-server "127.0.0.1:$SP" 2> "$out.server.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$SP/api/game-state?limit=1" >/dev/null && break; sleep 0.1; done
  local rc=0
  "$WORK/tapbench" -url "http://127.0.0.1:$SP" -server-pid "$pid" "$@" > "$out.json" 2> "$out.log" || rc=$?
  stop "$pid"
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  bench) shift; bench "$@" ;;
  fanout) shift; fanout "$@" ;;
  *) echo "usage: $0 up | bench [tapbench flags] | down | fanout [-clients N] [-pairs N] [tapbench flags]" >&2; exit 2 ;;
esac
