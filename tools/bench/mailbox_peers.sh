#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Offline mailbox throughput, tundrad's store next to Redis as a mailbox (issue #11), in one
# interleaved run: per round, tundrad with the SQLite store at fsync = always, interval and off
# (`tundra-bench mailbox`: N senders each storing messages for its own logged-out receiver,
# every message ACKed with buffered = 1, then replayed and checked), and redis-server with
# appendonly yes at appendfsync always and everysec (`redis-benchmark`: RPUSH of 64 bytes to
# one of CLIENTS lists). Fresh server and empty data directory per run; server on core 1, load
# generator on core 0. One JSON line per run goes to OUT.
#
#   tools/bench/mailbox_peers.sh OUT.jsonl [ROUNDS] [CLIENTS] [WINDOW] [MESSAGES]
#
# CLIENTS connections (default 500) each keep WINDOW requests in flight (default 1; Redis:
# -P WINDOW), MESSAGES per tundra sender (default 200; Redis runs CLIENTS x MESSAGES RPUSHes).
# Needs build/src/tundrad and build/tools/bench/tundra-bench (or TUNDRAD / TUNDRA_BENCH),
# redis-server and redis-benchmark (Debian redis-server, installed if missing).
set -euo pipefail

OUT=${1:?usage: mailbox_peers.sh OUT.jsonl [ROUNDS] [CLIENTS] [WINDOW] [MESSAGES]}
ROUNDS=${2:-3}
CLIENTS=${3:-500}
WINDOW=${4:-1}
MESSAGES=${5:-200}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TUNDRAD=${TUNDRAD:-$ROOT/build/src/tundrad}
BENCH=${TUNDRA_BENCH:-$ROOT/build/tools/bench/tundra-bench}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tundra-mailbox.XXXXXX")
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_tundra() {  # $1 = fsync mode
    rm -rf "$WORK/data" && mkdir -p "$WORK/data"
    taskset -c 1 "$TUNDRAD" --bind 127.0.0.1 --port 0 --no-presence --log-level info \
        --data-dir "$WORK/data" --fsync "$1" --max-clients 5000 --max-buffered 100000 \
        --user-buffer-bytes 67108864 --max-connections-per-ip 0 --max-unregistered 0 \
        --register-rate 0 --rate-messages-per-s 0 --rate-bytes-per-s 0 2>"$WORK/tundrad.log" &
    PID=$!
    local port=
    for _ in $(seq 100); do
        port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/tundrad.log" | head -1 | sed 's/.*://') || true
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$WORK/tundrad.log" >&2; exit 1; }
    local line
    line=$(taskset -c 0 "$BENCH" --port "$port" --json --timeout 120 mailbox --pairs "$CLIENTS" \
        --messages "$MESSAGES" --window "$WINDOW") || { echo "tundra-bench failed: $line" >&2; exit 1; }
    kill "$PID"; wait "$PID" || true; PID=
    python3 - "$1" "$line" >>"$OUT" <<'EOF'
import json, sys
r = json.loads(sys.argv[2])
print(json.dumps({"server": "tundra", "fsync": sys.argv[1], "stored_per_s": r["stored_per_s"],
                  "p50_ms": r["latency_us"]["p50"] / 1000, "p99_ms": r["latency_us"]["p99"] / 1000,
                  "lost": r["lost"], "checked": r["delivered"]}))
EOF
}

run_redis() {  # $1 = appendfsync mode
    rm -rf "$WORK/redis" && mkdir -p "$WORK/redis"
    local port
    port=$(free_port)
    taskset -c 1 redis-server --bind 127.0.0.1 --port "$port" --dir "$WORK/redis" --save '' \
        --appendonly yes --appendfsync "$1" --maxclients 10000 --daemonize no \
        --loglevel warning >"$WORK/redis.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    local csv
    # RPUSH of a 64-byte value to one of CLIENTS lists (a mailbox per user), picked at random
    csv=$(taskset -c 0 redis-benchmark -p "$port" -c "$CLIENTS" -P "$WINDOW" \
        -n $((CLIENTS * MESSAGES)) -r "$CLIENTS" --csv \
        RPUSH 'mbox:__rand_int__' "$(printf 'm%.0s' $(seq 64))" | tail -1)
    kill "$PID"; wait "$PID" || true; PID=
    python3 - "$1" "$csv" >>"$OUT" <<'EOF'
import csv, json, sys
row = next(csv.reader([sys.argv[2]]))
print(json.dumps({"server": "redis", "fsync": sys.argv[1], "stored_per_s": float(row[1]),
                  "p50_ms": float(row[4]), "p99_ms": float(row[6])}))
EOF
}

for round in $(seq "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    run_tundra always
    run_redis always
    run_tundra interval
    run_redis everysec
    run_tundra off
done
python3 - "$OUT" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in runs:
    by.setdefault((r["server"], r["fsync"]), []).append(r)
print("| server | fsync | stored msgs/s (median, range) | ACK p99 ms (median) | runs |")
print("|---|---|---|---|---|")
for (srv, mode), rs in by.items():
    rates = [r["stored_per_s"] for r in rs]
    print(f"| {srv} | {mode} | {statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) "
          f"| {statistics.median([r['p99_ms'] for r in rs]):.2f} | {len(rs)} |")
EOF
