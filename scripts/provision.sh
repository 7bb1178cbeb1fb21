#!/usr/bin/env bash
# Installs and starts what the test suite needs beyond Node, and only what is missing, so running it
# again changes nothing:
#   - Chromium at /usr/bin/chromium (the browser tests),
#   - nginx (the reverse-proxy recipe runs behind a real one; the tests start their own),
#   - redis-server (the Redis tests spawn their own, and restart it in the fault tests),
#   - a Redis answering on 127.0.0.1:6379 (for REDIS_URL=redis://127.0.0.1:6379),
#   - PostgreSQL: installed, a cluster created and started on 127.0.0.1:5432, trust auth for TCP
#     from the loopback only, and a `test` database,
#   - pgbouncer (the Postgres store's test starts its own, in transaction mode, on a free port).
# Installing needs root and apt-get (Debian's packages); `apt-get update` runs at most once.
# It prints one line per thing it could not provision, with the tests that are skipped because of
# it. With CI set, anything missing fails the run instead (exit 1): CI must not pass by skipping.
#
# The paths and ports can be moved for this script's own test (test/provision.test.ts):
# PROVISION_CHROMIUM, PROVISION_REDIS_PORT, PROVISION_PG_PORT, PROVISION_PG_CONF (the folder of
# Debian's cluster configs), PROVISION_WAIT (tenths of a second to wait for a started service).
set -uo pipefail

CHROMIUM="${PROVISION_CHROMIUM:-/usr/bin/chromium}"
REDIS_PORT="${PROVISION_REDIS_PORT:-6379}"
PG_PORT="${PROVISION_PG_PORT:-5432}"
PG_CONF="${PROVISION_PG_CONF:-/etc/postgresql}"
WAIT="${PROVISION_WAIT:-50}"
HBA_MARK='# rewind scripts/provision.sh: trust TCP from the loopback for the test suite'

have() { command -v "$1" >/dev/null 2>&1; }
can_install() { [ "$(id -u)" = 0 ] && have apt-get; }
apt_updated=0
install_failed=''
# Installs Debian packages; on failure remembers why, for the report.
install() {
  if ! can_install; then
    install_failed='installing needs root and apt-get'
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    apt_updated=1
    apt-get update -qq >/dev/null 2>&1 || echo "provision: apt-get update failed; trying the install anyway"
  fi
  echo "provision: installing $* with apt-get"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
    install_failed="apt-get install $* failed"
    return 1
  fi
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 "$WAIT"); do port_open "$1" && return 0; sleep 0.1; done
  port_open "$1"
}
psql_tcp() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -w -d postgres -Atq "$@" 2>/dev/null; }

missing=0
# One line per thing that could not be provisioned: what, why, and what is skipped because of it.
report_missing() {
  missing=$((missing + 1))
  echo "provision: MISSING $1 ($2); skipped because of it: $3"
}

# --- Chromium -------------------------------------------------------------------------------------
install_failed=''
[ -x "$CHROMIUM" ] || install chromium
if [ -x "$CHROMIUM" ]; then
  echo "provision: ok    Chromium at $CHROMIUM"
else
  report_missing "Chromium at $CHROMIUM" "${install_failed:-apt-get installed no such file}" \
    'the browser tests (test/e2e/browser.test.ts)'
fi

# --- nginx ----------------------------------------------------------------------------------------
install_failed=''
# Debian's package starts no server here (no systemd); the tests run their own on a free port.
have nginx || install nginx
if have nginx; then
  echo "provision: ok    nginx at $(command -v nginx)"
else
  report_missing 'nginx' "${install_failed:-apt-get installed no nginx}" \
    'the reverse-proxy recipe test (examples/recipes/test/behind-a-proxy.test.ts)'
fi

# --- Redis ----------------------------------------------------------------------------------------
install_failed=''
have redis-server || install redis-server
if have redis-server; then
  echo "provision: ok    redis-server at $(command -v redis-server)"
else
  report_missing 'redis-server' "${install_failed:-apt-get installed no redis-server}" \
    'the Redis tests (packages/redis/test, test/e2e/cluster.test.ts, unless REDIS_URL is set; test/faults always)'
fi
if ! port_open "$REDIS_PORT" && have redis-server; then
  # No persistence: the tests' data is throwaway.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >/dev/null
  wait_port "$REDIS_PORT"
fi
if port_open "$REDIS_PORT"; then
  echo "provision: ok    Redis on 127.0.0.1:$REDIS_PORT"
else
  report_missing "a Redis on 127.0.0.1:$REDIS_PORT" 'redis-server is missing or did not start' \
    "tests run with REDIS_URL=redis://127.0.0.1:$REDIS_PORT (without it they spawn their own)"
fi

# --- PostgreSQL -----------------------------------------------------------------------------------
install_failed=''
pg_why=''
have pg_ctlcluster || install postgresql postgresql-client || pg_why="$install_failed"
if have pg_lsclusters && have pg_ctlcluster; then
  # Debian's wrappers: every cluster is "version name port status ..." in `pg_lsclusters -h`.
  if [ -z "$(pg_lsclusters -h 2>/dev/null)" ] && have pg_createcluster; then
    version="$(ls "$PG_CONF" 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$version" ] || version="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$version" ] && pg_createcluster "$version" main --port "$PG_PORT" >/dev/null 2>&1
  fi
  cluster="$(pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $4; exit }')"
  if [ -n "$cluster" ]; then
    read -r version name status <<<"$cluster"
    if [ "$status" != online ]; then
      pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start >/dev/null 2>&1 || true
      wait_port "$PG_PORT"
    fi
    # Trust for TCP from the loopback, only if it is not already how this machine answers: a
    # working setup is left alone. First match wins in pg_hba.conf, so the lines go on top.
    hba="$PG_CONF/$version/$name/pg_hba.conf"
    if port_open "$PG_PORT" && ! psql_tcp -c 'SELECT 1' >/dev/null && [ -w "$hba" ] \
      && ! grep -qF "$HBA_MARK" "$hba"; then
      { printf '%s\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' "$HBA_MARK"; cat "$hba"; } \
        >"$hba.rewind" && cat "$hba.rewind" >"$hba" && rm -f "$hba.rewind"
      pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload >/dev/null 2>&1 || true
      sleep 0.5
    fi
  else
    pg_why="${pg_why:-no PostgreSQL cluster on port $PG_PORT (pg_lsclusters)}"
  fi
fi
if port_open "$PG_PORT" && [ "$(psql_tcp -c 'SELECT 1')" = 1 ]; then
  if [ "$(psql_tcp -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
    psql_tcp -c 'CREATE DATABASE test' >/dev/null
  fi
  if [ "$(psql_tcp -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" = 1 ]; then
    echo "provision: ok    PostgreSQL on 127.0.0.1:$PG_PORT (user postgres, trust), database test"
  else
    report_missing "the PostgreSQL database test" 'CREATE DATABASE failed' \
      'nothing yet (the examples use the postgres database)'
  fi
else
  if [ -z "$pg_why" ]; then
    if port_open "$PG_PORT"; then pg_why="it does not let user postgres in without a password over TCP"
    else pg_why='it is not installed or did not start'; fi
  fi
  report_missing "PostgreSQL on 127.0.0.1:$PG_PORT" "$pg_why" \
    'the Postgres example tests (examples/todo-postgres/test), unless DATABASE_URL is set'
fi

# --- PgBouncer ------------------------------------------------------------------------------------
install_failed=''
# Debian's package starts no server here (no systemd); the test runs its own on a free port.
have pgbouncer || install pgbouncer
if have pgbouncer; then
  echo "provision: ok    pgbouncer at $(command -v pgbouncer)"
else
  report_missing 'pgbouncer' "${install_failed:-apt-get installed no pgbouncer}" \
    'the Postgres store test through a transaction-mode pooler (packages/postgres/test/pgbouncer.test.ts)'
fi

if [ "$missing" -gt 0 ] && [ -n "${CI:-}" ]; then
  echo "provision: CI is set and $missing thing(s) could not be provisioned: failing instead of skipping"
  exit 1
fi
exit 0
