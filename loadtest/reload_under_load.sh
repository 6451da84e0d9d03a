#!/usr/bin/env bash
# Reloads under load: dnsperf sends queries at a fixed rate while the zone
# file gets a new serial and ringdns a SIGHUP, RELOADS times; then the same
# run without reloads as the baseline. Prints both dnsperf summaries, the
# reloads ringdns logged and how long each compile took. A reload that lost
# queries would show as "Queries lost" above the baseline's.
#
#   loadtest/reload_under_load.sh                 # 20 reloads in 20 s at 20,000 qps
#   RELOADS=20 SECONDS_PER_RUN=30 QPS=50000 NAMES=100000 loadtest/reload_under_load.sh
#
# Settings (environment): SECONDS_PER_RUN (20), RELOADS (20), QPS (20000),
# NAMES (100000 names in the zone), SERVER_CPUS (0), CLIENT_CPUS (1),
# WORKERS (1), BIN_DIR (target/release), DNSPERF.
# Everything runs on 127.0.0.1; the server is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
RELOADS=${RELOADS:-20}
QPS=${QPS:-20000}
NAMES=${NAMES:-100000}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
WORKERS=${WORKERS:-1}
BIN_DIR=${BIN_DIR:-target/release}
DNSPERF=${DNSPERF:-$(command -v dnsperf || echo dnsperf)}
PORT=${PORT:-5301}
ORIGIN=bench.test.

if [ ! -x "$BIN_DIR/ringdns" ]; then
    cargo build --release --bin ringdns >&2
fi

work=$(mktemp -d /tmp/ringdns-reload-load.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

python3 loadtest/make_workload.py --names "$NAMES" --origin "$ORIGIN" "$work" >&2
cat >"$work/Corefile" <<CONF
$ORIGIN:$PORT {
    bind 127.0.0.1
    file $work/zone {
        reload 0
    }
    engine {
        workers $WORKERS
        cpus $SERVER_CPUS
    }
}
CONF

run() {
    local reloads=$1 label=$2
    taskset -c "$SERVER_CPUS" "$BIN_DIR/ringdns" -conf "$work/Corefile" 2>"$work/log.$label" &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "serving on" "$work/log.$label" && break
        sleep 0.1
    done
    taskset -c "$CLIENT_CPUS" "$DNSPERF" -s 127.0.0.1 -p "$PORT" -d "$work/queries" \
        -l "$SECONDS_PER_RUN" -Q "$QPS" -c 8 >"$work/dnsperf.$label" 2>&1 &
    local client=$!
    if [ "$reloads" -gt 0 ]; then
        local gap
        gap=$(awk -v s="$SECONDS_PER_RUN" -v n="$reloads" 'BEGIN {printf "%.3f", s / (n + 2)}')
        sleep "$gap"
        for i in $(seq "$reloads"); do
            # A new serial each time: SOA serial + i.
            python3 - "$work/zone" "$i" <<'PY'
import re, sys
path, step = sys.argv[1], int(sys.argv[2])
text = open(path).read()
text = re.sub(r"^(@ SOA \S+ \S+ )(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 1), text, count=1, flags=re.M)
open(path + ".new", "w").write(text)
PY
            mv "$work/zone.new" "$work/zone"
            kill -HUP "$server_pid"
            sleep "$gap"
        done
    fi
    wait "$client" || true
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    echo "== $label: $reloads reloads during $SECONDS_PER_RUN s at $QPS qps, $NAMES names"
    grep -E "Queries sent|Queries completed|Queries lost|Queries per second|Average Latency|Latency StdDev" "$work/dnsperf.$label"
    echo "reloads logged: $(grep -c 'reloaded serial' "$work/log.$label" || true)"
    grep -m1 "compiled" "$work/log.$label" || true
}

run "$RELOADS" reloading
run 0 baseline
