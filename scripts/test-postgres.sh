#!/usr/bin/env bash
# Starts (once) a private PostgreSQL for the tests: its own data directory,
# scram-sha-256 authentication, 127.0.0.1 on a port below the ephemeral
# range. Prints `export GATEHOUSE_TEST_POSTGRES=...` for the caller to eval.
# Idempotent: a running instance is reused.
set -euo pipefail

state=${GATEHOUSE_TEST_STATE:-/tmp/gatehouse-test}
port=${GATEHOUSE_TEST_PG_PORT:-25432}
pgdir=$state/pg
password=gatehouse-test-admin

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
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
