#!/usr/bin/env bash
# Starts (once) a private PostgreSQL for the tests: its own data directory,
# scram-sha-256 authentication, 127.0.0.1 on a port below the ephemeral
# range. Prints `export GATEHOUSE_TEST_POSTGRES=...` for the caller to eval.
# Idempotent: a running instance is reused.
#   bash scripts/test-postgres.sh          start (once) and print the exports
#   bash scripts/test-postgres.sh status   exit 0 when it is running
#   bash scripts/test-postgres.sh stop     stop it (the data stays for the next start)
# Everything lives under $GATEHOUSE_TEST_STATE (default ${TMPDIR:-/tmp}/gatehouse-test).
set -euo pipefail

state=${GATEHOUSE_TEST_STATE:-${TMPDIR:-/tmp}/gatehouse-test}
cmd=${1:-start}
port=${GATEHOUSE_TEST_PG_PORT:-25432}
pgdir=$state/pg
password=gatehouse-test-admin

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [[ $cmd == start ]] && [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
  echo "test-postgres: installing PostgreSQL from apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql postgresql-client >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi

# initdb and postgres refuse to run as root: run them as the postgres user.
run() {
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case $cmd in
  status)
    [[ -x $bindir/pg_ctl && -f $pgdir/PG_VERSION ]] && run "$bindir/pg_ctl" -D "$pgdir" status >/dev/null 2>&1
    exit $? ;;
  stop)
    if [[ -x $bindir/pg_ctl && -f $pgdir/PG_VERSION ]] && run "$bindir/pg_ctl" -D "$pgdir" status >/dev/null 2>&1; then
      run "$bindir/pg_ctl" -D "$pgdir" -m fast -w stop >/dev/null
      echo "test-postgres: stopped $pgdir" >&2
    fi
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|status|stop]" >&2; exit 2 ;;
esac

mkdir -p "$state"
chmod 755 "$state"
if [[ ! -f $pgdir/PG_VERSION ]]; then
  rm -rf "$pgdir"
  mkdir -p "$pgdir"
  [[ $(id -u) -eq 0 ]] && chown postgres "$pgdir"
  pwfile=$(mktemp)
  echo "$password" > "$pwfile"
  chmod 644 "$pwfile"
  run "$bindir/initdb" -D "$pgdir" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 >/dev/null
  rm -f "$pwfile"
  cat >> "$pgdir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pgdir'
max_connections = 200
fsync = on
CONF
fi

if ! run "$bindir/pg_ctl" -D "$pgdir" status >/dev/null 2>&1; then
  run "$bindir/pg_ctl" -D "$pgdir" -l "$pgdir/server.log" -w -t 60 start >/dev/null
fi

echo "export GATEHOUSE_TEST_POSTGRES='postgres://postgres:$password@127.0.0.1:$port/postgres?sslmode=disable'"
echo "export GATEHOUSE_TEST_PG_BIN='$bindir'"
