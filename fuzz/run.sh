#!/usr/bin/env bash
# Short, reproducible fuzz runs of every target (CI): a fixed seed and a
# fixed number of runs from the checked-in seed corpus, so a run that passed
# once passes again. Longer exploratory runs: see README.md.
#   fuzz/run.sh            # RUNS=100000 per target by default
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-100000}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: skipped: no nightly toolchain (cargo fuzz needs one)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
for target in respond zone_file corefile transfer; do
    # A scratch copy of the seeds: the run adds to its corpus, and the
    # checked-in corpus stays as it is.
    scratch=$(mktemp -d)
    cp corpus/"$target"/seed-* "$scratch"/
    log="$scratch.log"
    status=0
    cargo +nightly fuzz run "$target" "$scratch" -- -seed=1 -runs="$RUNS" -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
    grep -E "^Done|SUMMARY|panicked" "$log" | sed "s/^/$target: /" || true
    rm -rf "$scratch" "$log"
    if [ "$status" -ne 0 ]; then
        echo "fuzz/run.sh: $target failed (status $status); see fuzz/artifacts/$target"
        exit 1
    fi
done
