#!/usr/bin/env bash
# Installs and starts what the test suite needs beyond Node: Chromium for the browser tests,
# redis-server (a spawned instance is restarted in the fault tests), and running Redis and PostgreSQL.
# Needs root and Debian's packages; elsewhere it says what is missing and the tests skip (outside CI).
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
can_install() { [ "$(id -u)" = 0 ] && have apt-get; }
apt_updated=0
install() {
  if ! can_install; then echo "provision: cannot install $* (needs root and apt-get)"; return 1; fi
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[ -x /usr/bin/chromium ] || install chromium || true
have redis-server || install redis-server || true

if ! port_open 6379 && have redis-server; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
fi
if ! port_open 5432; then
  if have pg_ctlcluster && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
fi
for _ in $(seq 1 50); do port_open 6379 && port_open 5432 && break; sleep 0.2; done
port_open 6379 && echo "provision: redis on 127.0.0.1:6379" || echo "provision: no redis on 127.0.0.1:6379"
port_open 5432 && echo "provision: postgres on 127.0.0.1:5432" || echo "provision: no postgres on 127.0.0.1:5432"
[ -x /usr/bin/chromium ] && echo "provision: chromium at /usr/bin/chromium" || echo "provision: no chromium"
exit 0
