#!/usr/bin/env bash
# external.sh — run tapwars in external mode for load tests: a redis-server
# on a free port with a temp dir, a kfake broker as its own process
# (tapbench -broker), the tapwars binary with every limit off, and a
# do-nothing server (tapbench -noop-server) to compare ingest with.
#
#   cmd/tapbench/external.sh up          # builds into $WORK, starts all, prints the ports
#   cmd/tapbench/external.sh bench ARGS  # tapbench against it, with baseline, pids and CPU watch
#   cmd/tapbench/external.sh down        # stops what up started (by pid)
#
# WORK (default /tmp/tapbench-external) holds binaries, data, logs, pids.
# PARTS sets the partitions of game-taps (default 6); TAPWARS_BIN runs that
# binary instead of building ./cmd/tapwars (e.g. a patched scratch copy).
# Other tapwars settings pass through the environment.
set -euo pipefail
WORK=${WORK:-/tmp/tapbench-external}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

up() {
  mkdir -p "$WORK"
  (cd "$ROOT" && go build -o "$WORK/tapbench" ./cmd/tapbench)
  local BIN=${TAPWARS_BIN:-}
  if [ -z "$BIN" ]; then (cd "$ROOT" && go build -o "$WORK/tapwars" ./cmd/tapwars); BIN="$WORK/tapwars"; fi
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
    [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null || true
    rm -f "$D/$p.pid"
  done
  echo down
}

bench() {
  local D="$WORK/run"; . "$D/ports"
  "$WORK/tapbench" -url "http://127.0.0.1:$AP" -baseline-url "http://127.0.0.1:$NP" -server-pid "$(cat "$D/tapwars.pid")" \
    -cpu-pids "broker=$(cat "$D/kafka.pid"),redis=$(cat "$D/redis.pid"),noop=$(cat "$D/noop.pid")" "$@"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  bench) shift; bench "$@" ;;
  *) echo "usage: $0 up | bench [tapbench flags] | down" >&2; exit 2 ;;
esac
