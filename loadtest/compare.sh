#!/usr/bin/env bash
# Side-by-side load test: ringdns (io_uring and recvmmsg), the bare
# reflector, Knot DNS and NSD serve the same zone on loopback, one after the
# other, each pinned to the same server CPUs; the client is pinned to other
# CPUs. For each server and each client (dnsperf, ringdns-loadgen) it prints
# QPS, lost queries, latency and answers per server-CPU-second (utime+stime
# of the server's threads and child processes, from /proc).
#
#   loadtest/compare.sh                     # 10 s per run, server on CPU 0, client on CPU 1
#   SECONDS_PER_RUN=20 NAMES=1000000 loadtest/compare.sh
#
# Settings (environment):
#   SECONDS_PER_RUN  length of each client run (default 10)
#   SERVER_CPUS      CPU list for the servers (default 0)
#   CLIENT_CPUS      CPU list for the clients (default 1)
#   WORKERS          server worker count (ringdns workers, Knot udp-workers, NSD server-count; default 1)
#   SERVERS          which servers, in order (default "ringdns ringdns-recvmmsg reflector
#                    reflector-recvmmsg knot nsd"; the reflectors are `ringdns reflect`)
#   CLIENTS          which clients (default "dnsperf loadgen")
#   NAMES            names in the generated zone (default 10000)
#   LOADGEN_ARGS     extra flags for ringdns-loadgen (default "-c 8 -q 64")
#   DNSPERF_ARGS     extra flags for dnsperf (default "-c 8 -q 256")
#   BIN_DIR          where ringdns and ringdns-loadgen are (default target/release; built if missing)
#   KNOTD, NSD, DNSPERF  override tool paths (for machines with unpacked .debs)
#   ZONE_FILE, QUERIES_FILE, ORIGIN  serve this zone with these queries instead
#                    of the generated workload (DO=1: add -D to both clients'
#                    ARGS; see loadtest/root_queries.py)
# Everything runs on 127.0.0.1 and stops by itself; servers are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
WORKERS=${WORKERS:-1}
SERVERS=${SERVERS:-ringdns ringdns-recvmmsg reflector reflector-recvmmsg knot nsd}
CLIENTS=${CLIENTS:-dnsperf loadgen}
NAMES=${NAMES:-10000}
LOADGEN_ARGS=${LOADGEN_ARGS:--c 8 -q 64}
DNSPERF_ARGS=${DNSPERF_ARGS:--c 8 -q 256}
BIN_DIR=${BIN_DIR:-target/release}
KNOTD=${KNOTD:-$(command -v knotd || echo /usr/sbin/knotd)}
NSD=${NSD:-$(command -v nsd || echo /usr/sbin/nsd)}
DNSPERF=${DNSPERF:-$(command -v dnsperf || echo dnsperf)}
PORT=${PORT:-5300}
ORIGIN=${ORIGIN:-bench.test.}
ZONE_FILE=${ZONE_FILE:-}
QUERIES_FILE=${QUERIES_FILE:-}

if [ ! -x "$BIN_DIR/ringdns" ] || [ ! -x "$BIN_DIR/ringdns-loadgen" ]; then
    cargo build --release --bin ringdns --bin ringdns-loadgen >&2
fi

work=$(mktemp -d /tmp/ringdns-loadtest.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$ZONE_FILE" ]; then
    # A given zone and query file (e.g. the signed root zone, see
    # loadtest/root_queries.py) instead of the generated workload.
    cp "$ZONE_FILE" "$work/zone"
    cp "$QUERIES_FILE" "$work/queries"
else
    python3 loadtest/make_workload.py --names "$NAMES" --origin "$ORIGIN" "$work" >&2
fi
queries="$work/queries"

# A process and all its descendants (NSD's server is a grandchild).
descendants() {
    local child
    echo "$1"
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null || true); do descendants "$child"; done
}

# CPU seconds (utime+stime) used so far by a process, its threads and its descendants.
cpu_seconds() {
    local pid=$1 ticks=0 p
    for p in $(descendants "$pid"); do
        [ -r "/proc/$p/stat" ] || continue
        # Fields 14 and 15 (utime, stime) after the ")" that ends the command name.
        ticks=$((ticks + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

# Waits until the server answers an SOA query (python3, so no dig is needed
# on machines that only carry the servers and clients).
wait_ready() {
    python3 - "$PORT" "$ORIGIN" "$1" <<'PY' || { echo "server $1 did not come up" >&2; return 1; }
import socket, struct, sys, time
port, origin, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
qname = b"".join(bytes([len(l)]) + l.encode() for l in origin.strip(".").split(".") if l) + b"\0"
query = struct.pack(">HHHHHH", 0x4242, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 6, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.2)
deadline = time.time() + 30
while time.time() < deadline:
    try:
        sock.sendto(query, ("127.0.0.1", port))
        reply = sock.recv(4096)
        # The reflector echoes the query with QR set; a server answers NOERROR.
        if reply[:2] == b"\x42\x42" and reply[2] & 0x80 and (reply[3] & 0xF) == 0:
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

start_server() {
    local name=$1 dir="$work/$1"
    mkdir -p "$dir"
    case $name in
        ringdns | ringdns-recvmmsg | reflector | reflector-recvmmsg)
            local backend=io_uring
            case $name in *-recvmmsg) backend=recvmmsg ;; esac
            cat >"$dir/Corefile" <<CONF
$ORIGIN:$PORT {
    bind 127.0.0.1
    file $work/zone
    engine {
        workers $WORKERS
        cpus $SERVER_CPUS
        backend $backend
    }
}
CONF
            local command=serve
            case $name in reflector*) command=reflect ;; esac
            if [ $command = reflect ]; then
                taskset -c "$SERVER_CPUS" "$BIN_DIR/ringdns" reflect -conf "$dir/Corefile" 2>"$dir/log" &
            else
                taskset -c "$SERVER_CPUS" "$BIN_DIR/ringdns" -conf "$dir/Corefile" 2>"$dir/log" &
            fi
            server_pid=$!
            ;;
        knot)
            mkdir -p "$dir/storage" "$dir/run"
            cat >"$dir/knot.conf" <<CONF
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$PORT
    udp-workers: $WORKERS
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$dir/storage"
log:
  - target: stderr
    any: warning
zone:
  - domain: $ORIGIN
    file: "$work/zone"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
CONF
            taskset -c "$SERVER_CPUS" "$KNOTD" -c "$dir/knot.conf" 2>"$dir/log" &
            server_pid=$!
            ;;
        nsd)
            cat >"$dir/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$PORT
    server-count: $WORKERS
    reuseport: yes
    username: ""
    chroot: ""
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    pidfile: "$dir/nsd.pid"
    zonesdir: "$dir"
    logfile: "$dir/nsd.log"
    do-ip6: no
    rrl-ratelimit: 0
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: $ORIGIN
    zonefile: "$work/zone"
CONF
            taskset -c "$SERVER_CPUS" "$NSD" -d -c "$dir/nsd.conf" 2>"$dir/log" &
            server_pid=$!
            ;;
    esac
    wait_ready "$name"
    grep -h "engine:\|io_uring unavailable\|warning" "$dir/log" >&2 2>/dev/null || true
    # knotd places its UDP workers on CPUs itself: put every thread back.
    for process in $(descendants "$server_pid"); do
        taskset -a -p -c "$SERVER_CPUS" "$process" >/dev/null
    done
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    sleep 0.5
}

run_client() {
    local client=$1 out=$2
    case $client in
        dnsperf)
            taskset -c "$CLIENT_CPUS" "$DNSPERF" -s 127.0.0.1 -p "$PORT" -d "$queries" -l "$SECONDS_PER_RUN" $DNSPERF_ARGS >"$out" 2>&1 || true
            ;;
        loadgen)
            taskset -c "$CLIENT_CPUS" "$BIN_DIR/ringdns-loadgen" -s 127.0.0.1 -p "$PORT" -d "$queries" -l "$SECONDS_PER_RUN" $LOADGEN_ARGS >"$out" 2>/dev/null || true
            ;;
    esac
}

# Prints: qps lost latency_text responses
summarise() {
    local client=$1 out=$2
    case $client in
        dnsperf)
            local qps lost avg sd responses
            qps=$(awk '/Queries per second:/ {print $4}' "$out")
            lost=$(awk '/Queries lost:/ {print $3}' "$out")
            responses=$(awk '/Queries completed:/ {print $3}' "$out")
            avg=$(awk '/Average Latency/ {printf "%.0f", $4 * 1e6}' "$out")
            sd=$(awk '/Latency StdDev/ {printf "%.0f", $4 * 1e6}' "$out")
            echo "${qps:-0} ${lost:-?} avg=${avg:-?}us,sd=${sd:-?}us ${responses:-0}"
            ;;
        loadgen)
            local line
            line=$(grep '^RESULT ' "$out" || echo "RESULT")
            get() { echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
            echo "$(get qps) $(get lost) p50=$(get p50_us)us,p99=$(get p99_us)us $(get received)"
            ;;
    esac
}

echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
echo "servers on CPUs $SERVER_CPUS, clients on CPUs $CLIENT_CPUS, $WORKERS worker(s), $SECONDS_PER_RUN s per run, $NAMES names"
echo
printf '| %-17s | %-8s | %10s | %8s | %-22s | %12s | %22s |\n' server client QPS lost latency "server CPU s" "answers/server-CPU-s"
echo '|------------------:|----------|-----------:|---------:|------------------------|-------------:|-----------------------:|'
for server in $SERVERS; do
    start_server "$server"
    for client in $CLIENTS; do
        out="$work/$server.$client.out"
        before=$(cpu_seconds "$server_pid")
        run_client "$client" "$out"
        after=$(cpu_seconds "$server_pid")
        read -r qps lost latency responses <<<"$(summarise "$client" "$out")"
        cpu=$(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.2f", a - b}')
        per_cpu=$(awk -v r="$responses" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0) ? r / c : 0}')
        printf '| %-17s | %-8s | %10.0f | %8s | %-22s | %12s | %22s |\n' "$server" "$client" "${qps:-0}" "$lost" "$latency" "$cpu" "$per_cpu"
    done
    stop_server
done
