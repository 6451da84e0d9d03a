#!/usr/bin/env bash
# Packs what loadtest/scaling.sh needs into .bench-bundle/ (git-ignored) for
# a machine that reaches no package registry: the release binaries of
# ringdns, and dnsperf, knotd and nsd with the shared libraries they load
# (all from Debian packages installed here), glibc excepted.
#   loadtest/bundle.sh && ls .bench-bundle
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin ringdns --bin ringdns-loadgen >&2
rm -rf .bench-bundle && mkdir -p .bench-bundle/bin .bench-bundle/lib
cp target/release/ringdns target/release/ringdns-loadgen .bench-bundle/bin/
for tool in dnsperf knotd nsd; do
    path=$(command -v "$tool" || echo "/usr/sbin/$tool")
    cp "$path" .bench-bundle/bin/
    ldd "$path" | awk '/=> \// {print $3}' | while read -r library; do
        case $(basename "$library") in
            libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) ;;
            *) cp -n "$library" .bench-bundle/lib/ ;;
        esac
    done
done
du -sh .bench-bundle
