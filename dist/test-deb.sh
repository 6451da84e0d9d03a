#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, installs it with apt, checks
# what it put in place, and starts the installed server as its own user on
# the installed Corefile, then asks it a question. CI runs this as root on
# a fresh machine; it installs cargo-deb if missing.
#
#   dist/test-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"

if ! cargo deb --version >/dev/null 2>&1; then
    echo "dist/test-deb.sh: installing cargo-deb"
    cargo install --locked --quiet cargo-deb
fi
command -v kdig >/dev/null || { echo "kdig missing (tests/run installs it)"; exit 1; }

cargo deb --quiet --output target/debian/ >/dev/null
deb=$(ls -t target/debian/ringdns_*.deb | head -1)
echo "dist/test-deb.sh: built $deb"
dpkg-deb --info "$deb" | grep -E "Package|Version|Depends"
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "./$deb" >/dev/null

fail() { echo "dist/test-deb.sh: FAIL: $*"; exit 1; }
[ -x /usr/bin/ringdns ] || fail "no /usr/bin/ringdns"
[ -f /etc/ringdns/Corefile ] || fail "no /etc/ringdns/Corefile"
[ -f /lib/systemd/system/ringdns.service ] || [ -f /usr/lib/systemd/system/ringdns.service ] || fail "no unit file"
getent passwd ringdns >/dev/null || fail "no ringdns user"
getcap /usr/bin/ringdns | grep -q cap_net_bind_service || fail "no CAP_NET_BIND_SERVICE on the binary"
/usr/bin/ringdns check -conf /etc/ringdns/Corefile

# Start it: through systemd when this machine runs it, else by hand as the
# ringdns user (no root: the file capability lets it bind port 53).
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq ringdns >/dev/null 2>&1 || true
}
trap cleanup EXIT
if [ -d /run/systemd/system ] && systemctl is-system-running >/dev/null 2>&1; then
    $sudo systemctl restart ringdns
    systemctl is-active ringdns || fail "the service did not start"
else
    log=$(mktemp)
    $sudo runuser -u ringdns -- /usr/bin/ringdns -conf /etc/ringdns/Corefile 2>"$log" &
    pid=$!
    for _ in $(seq 50); do grep -q "serving on" "$log" && break; sleep 0.1; done
    grep -q "serving on" "$log" || { cat "$log"; fail "ringdns did not start as the ringdns user"; }
fi
answer=$(kdig @127.0.0.1 -p 53 +short +retry=2 +timeout=2 www.example.com A)
[ -n "$answer" ] || fail "no answer from the installed server on 127.0.0.1:53"
echo "dist/test-deb.sh: the installed server answered www.example.com A: $answer"
echo "dist/test-deb.sh: OK"
