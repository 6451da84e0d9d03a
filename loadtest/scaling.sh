#!/usr/bin/env bash
# Multi-core scaling: ringdns, Knot and NSD with 1, 2, 4, 8 and 12 workers
# on CPUs 0..W-1, clients (dnsperf, then ringdns-loadgen) on the remaining
# CPUs, through loadtest/compare.sh. Meant for a machine with 16 CPUs.
#   SECONDS_PER_RUN=5 loadtest/scaling.sh
# DNSPERF_EXTRA / LOADGEN_EXTRA are appended to the clients' flags (e.g.
# "-D" and "-e 1232 -D" for DO=1); ZONE_FILE etc. pass to compare.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cpus=$(nproc)
for workers in ${WORKER_COUNTS:-1 2 4 8 12}; do
    [ "$workers" -lt "$cpus" ] || continue
    client_threads=$((cpus - workers))
    [ "$client_threads" -gt 4 ] && client_threads=4
    first_client=$workers
    last_client=$((workers + client_threads - 1))
    WORKERS=$workers SERVER_CPUS="0-$((workers - 1))" CLIENT_CPUS="$first_client-$last_client" \
        DNSPERF_ARGS="-c $((8 * client_threads)) -q 512 -T $client_threads ${DNSPERF_EXTRA:-}" \
        LOADGEN_ARGS="-c $((8 * client_threads)) -q 64 -T $client_threads ${LOADGEN_EXTRA:-}" \
        SERVERS="${SERVERS:-ringdns ringdns-recvmmsg reflector-recvmmsg knot nsd}" loadtest/compare.sh
done
