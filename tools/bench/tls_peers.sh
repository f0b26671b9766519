#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tundra over TLS next to Redis pub/sub over TLS, plaintext beside each, in one interleaved run.
#
#   tools/bench/tls_peers.sh TUNDRAD OUT.jsonl [ROUNDS]
#
# The load generator is the peer harness's `fanout` (shared/bench/fanout.cpp: every delivery
# checked for gaps, duplicates and order; p50/p99), which speaks only plaintext. For the TLS runs
# a client-side TLS terminator (HAProxy in TCP mode with one thread, or stunnel in client mode;
# one accept port, fresh per run) sits between fanout and the server's TLS port, so both servers
# do real server-side TLS (TLS 1.3, self-signed P-256 certificate made with openssl at run time,
# verified by the terminator) and the client-side TLS cost is the same for both. HAProxy is the
# default: stunnel's thread per connection costs several times the server's CPU per delivery
# and so measures stunnel, not the server.
#
# Per round, for each workload, six runs with a fresh server each: tundra plain (direct), proxy
# (plaintext through the same HAProxy: the control for the extra hop) and TLS, then the same for
# redis (odd rounds in that order, even rounds reversed; TERMINATOR=stunnel has no proxy runs).
# Both servers always have both listeners; only the port the generator uses differs. Server on
# core 1; generator and terminator on core 0. One JSON line per run goes to OUT: fanout's RESULT
# plus server/transport/workload/round and, over the measured seconds, each of server, generator
# and terminator's CPU (*_run_pct) and demand (*_demand_pct: run + runqueue wait; near 100 = it
# wanted the CPU all along, so it is what limits the rate). A markdown table of medians and
# ratios goes to stdout. Server CPU per delivery is in the table too: on a shared machine it moves
# less than deliveries/s, and it is what the server pays whichever side limits the rate.
#
# Environment (optional):
#   PEER_BENCH    folder holding fanout.cpp (default: ../shared/bench beside the repository or
#                 beside its main checkout)
#   WORKLOADS     ';'-separated "name=fanout args" (default: fanout=--mode fanout --subs 500
#                 --pubs 5 --window 16;pairs=--mode pairs --pairs 200 --window 16;fanout-rate=
#                 the fanout at 300 published/s (150k deliveries/s), staggered: CPU at equal load)
#   WARMUP, DURATION  seconds per run (default 1 and 5)
#   TERMINATOR    haproxy (default) or stunnel
#   KEEP_WORK=1   keep the temp work dir (logs, certificate) instead of removing it
# Needs g++, openssl, python3, taskset, ss, redis-server and haproxy or stunnel (Debian
# redis-server, haproxy, stunnel4; installed with apt-get if missing).
set -euo pipefail

usage="usage: tls_peers.sh TUNDRAD OUT.jsonl [ROUNDS]"
TUNDRAD=$(realpath "${1:?$usage}")
OUT_ARG=${2:?$usage}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${PEER_BENCH:-}" ]; then  # beside the repository, or beside the main checkout of a worktree
    PEER_BENCH=$ROOT/../shared/bench
    common=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) || common=
    if [ ! -f "$PEER_BENCH/fanout.cpp" ] && [ -n "$common" ]; then PEER_BENCH=$(dirname "$common")/../shared/bench; fi
fi
WORKLOADS=${WORKLOADS:-"fanout=--mode fanout --subs 500 --pubs 5 --window 16;pairs=--mode pairs --pairs 200 --window 16;fanout-rate=--mode fanout --subs 500 --pubs 5 --window 16 --rate 300 --stagger"}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-5}
TERMINATOR=${TERMINATOR:-haproxy}
SRV_CPU=1
GEN_CPU=0

[ -x "$TUNDRAD" ] || { echo "not executable: $TUNDRAD" >&2; exit 2; }
[ -f "$PEER_BENCH/fanout.cpp" ] || { echo "no fanout.cpp in $PEER_BENCH (set PEER_BENCH)" >&2; exit 2; }
grep -q -- '--tls-port' <<<"$("$TUNDRAD" --help 2>&1)" || { echo "$TUNDRAD has no --tls-port" >&2; exit 2; }
case $TERMINATOR in
    haproxy) term_pkg=haproxy ;;
    stunnel) term_pkg=stunnel4 ;;
    *) echo "TERMINATOR must be haproxy or stunnel" >&2; exit 2 ;;
esac
if ! command -v redis-server >/dev/null || ! command -v "$TERMINATOR" >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server "$term_pkg"
fi
mkdir -p "$(dirname "$OUT_ARG")"
OUT=$(realpath "$OUT_ARG")
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tundra-tls-peers.XXXXXX")
PIDS=()  # every process this script started and has not yet stopped
stop_pid() {  # stop one process we started: TERM, then KILL after 5 s
    local p=$1
    kill "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    local keep=() q
    for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
}
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    if [ "$rc" != 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() {  # $1 = port, $2 = pid that must stay alive
    for _ in $(seq 100); do
        ss -ltnH "sport = :$1" | grep -q LISTEN && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# generator, certificate
g++ -O2 -std=c++17 -Wall -o "$WORK/fanout" "$PEER_BENCH/fanout.cpp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>"$WORK/openssl.log"
chmod 600 "$WORK/key.pem"

SRV_PID=; PLAIN_PORT=; TLS_PORT=
start_tundra() {
    local log=$WORK/tundrad.$1.log
    taskset -c $SRV_CPU "$TUNDRAD" --bind 127.0.0.1 --port 0 --tls-port 0 \
        --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" --storage memory --log-level info \
        --max-connections-per-ip 0 --register-rate 0 --rate-messages-per-s 0 --rate-bytes-per-s 0 \
        --max-unregistered 0 --no-presence --max-clients 5000 >"$log" 2>&1 &
    SRV_PID=$!; PIDS+=("$SRV_PID")
    PLAIN_PORT=; TLS_PORT=
    for _ in $(seq 100); do
        PLAIN_PORT=$(sed -n 's/.*tundrad [^ ]* listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | grep -v '^$' | head -1) || true
        TLS_PORT=$(sed -n 's/.*tls listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1) || true
        [ -n "$PLAIN_PORT" ] && [ -n "$TLS_PORT" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$PLAIN_PORT" ] || [ -z "$TLS_PORT" ]; then
        echo "tundrad did not start:" >&2; cat "$log" >&2; exit 1
    fi
}
start_redis() {
    rm -rf "$WORK/redis" && mkdir -p "$WORK/redis"
    PLAIN_PORT=$(free_port); TLS_PORT=$(free_port)
    taskset -c $SRV_CPU redis-server --bind 127.0.0.1 --port "$PLAIN_PORT" --tls-port "$TLS_PORT" \
        --tls-cert-file "$WORK/cert.pem" --tls-key-file "$WORK/key.pem" \
        --tls-ca-cert-file "$WORK/cert.pem" --tls-auth-clients no --protected-mode no \
        --save '' --appendonly no --dir "$WORK/redis" --maxclients 15000 --tcp-backlog 4096 \
        --daemonize no --loglevel warning --logfile "$WORK/redis.$1.log" >/dev/null 2>&1 &
    SRV_PID=$!; PIDS+=("$SRV_PID")
    if ! { wait_listen "$PLAIN_PORT" "$SRV_PID" && wait_listen "$TLS_PORT" "$SRV_PID"; }; then
        echo "redis-server did not start:" >&2; cat "$WORK/redis.$1.log" >&2; exit 1
    fi
}
TERM_PID=; TERM_PORT=
start_haproxy() {  # $1 = run tag, $2 = tls|proxy; plaintext in on TERM_PORT, out to TLS_PORT
    # over TLS (or to PLAIN_PORT in plaintext: the control for the hop), one thread
    TERM_PORT=$(free_port)
    cat >"$WORK/haproxy.$1.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    maxconn 4000
    timeout connect 10s
    timeout client 300s
    timeout server 300s
frontend plain
    bind 127.0.0.1:$TERM_PORT
    default_backend tls
backend tls
$(if [ "$2" = tls ]; then
    echo "    server s 127.0.0.1:$TLS_PORT ssl verify required ca-file $WORK/cert.pem verifyhost localhost"
else
    echo "    server s 127.0.0.1:$PLAIN_PORT"
fi)
EOF
    taskset -c $GEN_CPU haproxy -db -f "$WORK/haproxy.$1.cfg" >"$WORK/haproxy.$1.log" 2>&1 &
    TERM_PID=$!; PIDS+=("$TERM_PID")
    wait_listen "$TERM_PORT" "$TERM_PID" || { echo "haproxy did not start:" >&2; cat "$WORK/haproxy.$1.log" >&2; exit 1; }
}
start_stunnel() {  # $1 = run tag; client mode: plaintext in on TERM_PORT, TLS out to TLS_PORT
    TERM_PORT=$(free_port)
    cat >"$WORK/stunnel.$1.conf" <<EOF
foreground = yes
pid =
output = $WORK/stunnel.$1.log
debug = 4
[tls]
client = yes
accept = 127.0.0.1:$TERM_PORT
connect = 127.0.0.1:$TLS_PORT
verifyChain = yes
CAfile = $WORK/cert.pem
checkIP = 127.0.0.1
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
EOF
    taskset -c $GEN_CPU stunnel "$WORK/stunnel.$1.conf" >/dev/null 2>&1 &
    TERM_PID=$!; PIDS+=("$TERM_PID")
    wait_listen "$TERM_PORT" "$TERM_PID" || { echo "stunnel did not start:" >&2; cat "$WORK/stunnel.$1.log" >&2; exit 1; }
}

run_one() {  # $1 = tundra|redis, $2 = plain|tls, $3 = workload name, $4 = round, $5 = fanout args
    local srv=$1 tr=$2 wl=$3 round=$4 args=$5 tag="$3.$1.$2.r$4" port rc=0
    "start_$srv" "$tag"
    port=$PLAIN_PORT
    if [ "$tr" != plain ]; then "start_$TERMINATOR" "$tag" "$tr"; port=$TERM_PORT; fi
    local res=$WORK/fanout.$tag.out samples=$WORK/cpu.$tag.txt
    # shellcheck disable=SC2086  # args is a list of fanout flags
    timeout 150 taskset -c $GEN_CPU "$WORK/fanout" --proto "$srv" --port "$port" \
        --server-pid "$SRV_PID" --concurrency 64 --warmup "$WARMUP" --duration "$DURATION" \
        --setup-timeout 60 --label "$srv-$tr $wl r$round" $args >"$res" 2>"$WORK/fanout.$tag.err" &
    local gpid=$!
    PIDS+=("$gpid")
    # CPU of server, generator and terminator over the measured seconds: run and runqueue-wait
    # time (/proc/PID/task/*/schedstat) sampled every 50 ms until fanout's RESULT line appears;
    # run + wait near 100% = that process wanted the CPU all along (it is the one that limits)
    taskset -c $GEN_CPU python3 - "$gpid" "$res" "$SRV_PID" "${TERM_PID:-0}" >"$samples" <<'EOF' &
import json, os, sys, time
gpid, res, spid, tpid = sys.argv[1:]
last = {}
def sched(who, pid):  # run and runqueue-wait ns, summed over the threads (the last seen if gone)
    run = wait = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            a = open(f"/proc/{pid}/task/{t}/schedstat").read().split()
            run, wait = run + int(a[0]), wait + int(a[1])
        last[who] = [run, wait]
    except (OSError, TypeError):
        pass
    return last.get(who, [0, 0])
def state_ppid(pid):
    try:
        st = open(f"/proc/{pid}/stat").read()
        f = st[st.rindex(")") + 2:].split()
        return f[0], f[1]
    except (OSError, ValueError, IndexError):
        return None, None
gen = None
while True:
    alive = state_ppid(gpid)[0] not in (None, "Z")
    if gen is None:  # fanout is the child of timeout
        gen = next((p for p in os.listdir("/proc") if p.isdigit() and state_ppid(p)[1] == gpid), None)
    try:
        seen = any(l.startswith("RESULT ") for l in open(res))
    except OSError:
        seen = False
    s = {"t": time.monotonic(), "result": seen, "srv": sched("srv", spid), "gen": sched("gen", gen)}
    if tpid != "0":
        s["term"] = sched("term", tpid)
    print(json.dumps(s), flush=True)
    if seen or not alive:
        break
    time.sleep(0.05)
EOF
    local spl=$!
    PIDS+=("$spl")
    wait "$gpid" || rc=$?
    wait "$spl" || true
    local keep=() q
    for q in "${PIDS[@]}"; do [ "$q" = "$gpid" ] || [ "$q" = "$spl" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
    if [ -n "$TERM_PID" ]; then stop_pid "$TERM_PID"; TERM_PID=; fi
    stop_pid "$SRV_PID"; SRV_PID=
    python3 - "$srv" "$tr" "$wl" "$round" "$rc" "$res" "$samples" "$TERMINATOR" >>"$OUT" <<'EOF'
import json, sys
srv, tr, wl, rnd, rc, res, samples, term = sys.argv[1:]
lines = [l for l in open(res) if l.startswith("RESULT ")]
r = json.loads(lines[-1][7:]) if lines else {"error": "no RESULT"}
r.update(server=srv, transport=tr, workload=wl, round=int(rnd), exit=int(rc))
if tr != "plain":
    r["terminator"] = term
r["valid"] = bool(lines) and "error" not in r and not (r["gaps"] or r["dups"] or r["bad"] or r["dead"]
                                                     or r["stalled"] or r["undelivered_after_drain"])
s = [json.loads(l) for l in open(samples) if l.strip()]
if "secs" in r and s and s[-1]["result"]:
    # measured window: the RESULT line's time (to within the 50 ms sampling) back by secs
    t1 = s[-1]["t"] - 0.025
    t0 = t1 - r["secs"]
    def at(t, who, i):  # counter i of process who at time t, interpolated between samples
        prev = s[0]
        for x in s:
            if x["t"] >= t:
                if x["t"] == prev["t"]:
                    return x[who][i]
                return prev[who][i] + (x[who][i] - prev[who][i]) * (t - prev["t"]) / (x["t"] - prev["t"])
            prev = x
        return s[-1][who][i]
    for who in ("srv", "gen", "term"):
        if who in s[0]:
            run = (at(t1, who, 0) - at(t0, who, 0)) / 1e9 / r["secs"]
            wait = (at(t1, who, 1) - at(t0, who, 1)) / 1e9 / r["secs"]
            r[f"{who}_run_pct"], r[f"{who}_demand_pct"] = round(100 * run), round(100 * (run + wait))
print(json.dumps(r))
print(f'  {r.get("label", srv + "-" + tr)}: {r.get("delivered_per_s", 0):,.0f}/s p99 {r.get("p99_us", 0) / 1000:.2f} ms'
      f' cpu/demand %: srv {r.get("srv_run_pct")}/{r.get("srv_demand_pct")} gen {r.get("gen_run_pct")}/{r.get("gen_demand_pct")}'
      f' {term if tr != "plain" else "term"} {r.get("term_run_pct", "-")}/{r.get("term_demand_pct", "-")}'
      f' valid={r["valid"]}' + ("" if "error" not in r else " " + r["error"]), file=sys.stderr)
EOF
    sleep 0.5
}

echo "uptime at start: $(uptime)" >&2
IFS=';' read -r -a WLS <<<"$WORKLOADS"
TRS=(plain proxy tls)
[ "$TERMINATOR" = haproxy ] || TRS=(plain tls)
CONFIGS=()
for srv in tundra redis; do for tr in "${TRS[@]}"; do CONFIGS+=("$srv $tr"); done; done
for round in $(seq "$ROUNDS"); do
    order=("${CONFIGS[@]}")
    if [ $((round % 2)) = 0 ]; then
        order=(); for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do order+=("${CONFIGS[i]}"); done
    fi
    for w in "${WLS[@]}"; do
        name=${w%%=*}
        echo "round $round of $ROUNDS, $name: ${w#*=}" >&2
        for c in "${order[@]}"; do
            # shellcheck disable=SC2086  # c is "server transport"
            run_one $c "$name" "$round" "${w#*=}"
        done
    done
done
echo "uptime at end: $(uptime)" >&2

python3 - "$OUT" <<'EOF'
import json, statistics as st, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def rng(xs, f):
    return f"{f(st.median(xs))} ({f(min(xs))}-{f(max(xs))})"
for wl in dict.fromkeys(r["workload"] for r in runs):
    rs = [r for r in runs if r["workload"] == wl and r["valid"]]
    bad = sum(1 for r in runs if r["workload"] == wl and not r["valid"])
    print(f"\n### {wl}" + (f" ({bad} invalid runs left out)" if bad else ""))
    print("| server | deliveries/s median (range) | p99 ms median (range) | server CPU us/delivery (range) "
          "| CPU/demand %: server, generator, terminator | terminator CPU us/delivery | runs |")
    print("|---|---|---|---|---|---|---|")
    by = {}
    for r in rs:
        by.setdefault(f'{r["server"]}-{r["transport"]}', {})[r["round"]] = r
    for k in ("tundra-plain", "tundra-proxy", "tundra-tls", "redis-plain", "redis-proxy", "redis-tls"):
        v = list(by.get(k, {}).values())
        if not v:
            continue
        def us(who):
            xs = [1e4 * r[f"{who}_run_pct"] / r["delivered_per_s"] for r in v if f"{who}_run_pct" in r]
            return rng(xs, lambda x: f"{x:.2f}") if xs else "-"
        def cd(who):
            xs = [r for r in v if f"{who}_run_pct" in r]
            if not xs:
                return "-"
            return f'{st.median(r[f"{who}_run_pct"] for r in xs):.0f}/{st.median(r[f"{who}_demand_pct"] for r in xs):.0f}'
        print(f"| {k} | {rng([r['delivered_per_s'] for r in v], lambda x: f'{x:,.0f}')} "
              f"| {rng([r['p99_us'] / 1000 for r in v], lambda x: f'{x:.2f}')} | {us('srv')} "
              f"| {cd('srv')}, {cd('gen')}, {cd('term')} | {us('term')} | {len(v)} |")
    print("\n| ratio | deliveries/s: of medians (per-round range) | p99: of medians (per-round range) |")
    print("|---|---|---|")
    for a, b in (("tundra-tls", "redis-tls"), ("tundra-tls", "tundra-plain"), ("redis-tls", "redis-plain"),
                 ("tundra-tls", "tundra-proxy"), ("redis-tls", "redis-proxy"), ("tundra-plain", "redis-plain")):
        A, B = by.get(a, {}), by.get(b, {})
        both = sorted(set(A) & set(B))
        if not both:
            continue
        cells = []
        for key in ("delivered_per_s", "p99_us"):
            med = st.median(A[x][key] for x in A) / st.median(B[x][key] for x in B)
            per = [A[x][key] / B[x][key] for x in both]
            cells.append(f"{med:.2f} ({min(per):.2f}-{max(per):.2f})")
        print(f"| {a} / {b} | {cells[0]} | {cells[1]} |")
EOF
