#!/usr/bin/env bash
# restart.sh MODE — embedded restart with history: runs the tapwars binary in
# embedded mode (EMBEDDED_REDIS=MODE: redis-server or memory) in a fresh
# DATA_DIR, taps TAPS (default 1,000,000) one tap per request through HTTP,
# then kills it with SIGKILL and restarts it, then stops it with SIGTERM and
# restarts it; each restart reports the time until /readyz answers 200 and
# until /api/game-state shows every acknowledged tap.
#
#   cmd/tapbench/restart.sh redis-server
#   TAPS=200000 COUNT=5 cmd/tapbench/restart.sh memory
set -euo pipefail
MODE=${1:-redis-server}
TAPS=${TAPS:-1000000}
COUNT=${COUNT:-1}
WORK=${WORK:-/tmp/tapbench-external}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$WORK"
(cd "$ROOT" && go build -o "$WORK/tapwars" ./cmd/tapwars && go build -o "$WORK/tapbench" ./cmd/tapbench)
DATA="$WORK/restart-$MODE"; rm -rf "$DATA"
AP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$AP"
ms() { date +%s%3N; }
start() {
  EMBEDDED_REDIS=$MODE DATA_DIR="$DATA" ADDR="127.0.0.1:$AP" LOG_LEVEL=warn TAP_RATE_LIMIT=0 JOIN_RATE_LIMIT=0 JOINS_PER_SECOND=0 \
    MAX_CONNECTIONS=0 MAX_CONNECTIONS_PER_IP=0 MAX_TCP_CONNECTIONS_PER_IP=0 METRICS_ADDR=127.0.0.1:0 "$WORK/tapwars" 2>> "$WORK/restart-$MODE.log" &
  PID=$!
}
total() { curl -sf "$URL/api/game-state?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gameState"]["totalTaps"])' 2>/dev/null || echo -1; }
restart() { # $1 = what happened before
  local t0 tr ts; t0=$(ms); start
  until curl -sf "$URL/readyz" >/dev/null; do sleep 0.02; done; tr=$(ms)
  until [ "$(total)" = "$EXPECTED" ]; do sleep 0.02; done; ts=$(ms)
  echo "restart after $1 (EMBEDDED_REDIS=$MODE, $EXPECTED taps of history): ready in $((tr - t0)) ms, all taps visible in $((ts - t0)) ms"
}
start
until curl -sf "$URL/readyz" >/dev/null; do sleep 0.05; done
"$WORK/tapbench" -url "$URL" -taps "$TAPS" -count "$COUNT" -duration 30m -warmup 0 -verify-players=false 2>&1 >/dev/null | grep -E "ingest|exact" || true
EXPECTED=$(total)
echo "history: $EXPECTED taps; data dir $(du -sh "$DATA" | cut -f1) ($(du -sh "$DATA/kafka" | cut -f1) kafka, $(du -sh "$DATA/redis" | cut -f1) store)"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
restart "kill -9"
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
restart "SIGTERM"
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
