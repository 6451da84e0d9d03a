#!/usr/bin/env bash
# The one run on the lent 16-CPU machine (see BENCHMARKS.md §2): scaling
# with 1-12 workers on the generated workload, then DO=1 on the signed
# root zone at 1 and 4 workers, ringdns beside Knot and NSD. Expects
# .bench-bundle/ from loadtest/bundle.sh plus root.zone and root.queries
# in it; writes everything to $OUT (or ./device-out).
#   loadtest/bundle.sh && cp ../shared/data/root.zone.2020101902.signed .bench-bundle/root.zone \
#     && loadtest/root_queries.py .bench-bundle/root.zone .bench-bundle/root.queries
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-out}
mkdir -p "$out"
bundle=$PWD/.bench-bundle
export LD_LIBRARY_PATH=$bundle/lib BIN_DIR=$bundle/bin KNOTD=$bundle/bin/knotd NSD=$bundle/bin/nsd DNSPERF=$bundle/bin/dnsperf
export SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
{
    echo "== $(date -u +%FT%TZ) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    WORKER_COUNTS="1 2 4 8 12" SERVERS="ringdns knot nsd" loadtest/scaling.sh
} >"$out/scaling.txt" 2>&1
{
    echo "== DO=1 on the signed root zone"
    ZONE_FILE=$bundle/root.zone QUERIES_FILE=$bundle/root.queries ORIGIN=. \
        DNSPERF_EXTRA="-D" LOADGEN_EXTRA="-e 1232 -D" \
        WORKER_COUNTS="1 4" SERVERS="ringdns knot nsd" loadtest/scaling.sh
} >"$out/signed-root-do.txt" 2>&1
tail -n 40 "$out"/*.txt
