#!/usr/bin/env bash
# The whole test suite, from a fresh machine with Go: installs and starts
# what the tests need (a private PostgreSQL, Node packages for the OpenID
# provider and the TypeScript MCP client), checks formatting and vet, then
# runs every test with -race.
# Idempotent: running it again reuses what is already there.
#
# Everything it writes lives under one state directory,
# $GATEHOUSE_TEST_STATE (default ${TMPDIR:-/tmp}/gatehouse-test): the
# PostgreSQL data directory and log, the test log (go-test.log).
# On exit it stops the PostgreSQL it started; one that was already running
# is left running (stop it with `bash scripts/test-postgres.sh stop`), and
# GATEHOUSE_TEST_KEEP_POSTGRES=1 keeps the one it started for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

export GATEHOUSE_TEST_STATE=${GATEHOUSE_TEST_STATE:-${TMPDIR:-/tmp}/gatehouse-test}
state=$GATEHOUSE_TEST_STATE
mkdir -p "$state"

log "state directory: $state"
log "first run on a fresh machine: installs PostgreSQL, gcc and Node.js with apt-get and npm packages with npm ci, which needs root and network access to the Debian and npm package registries (and the Go module proxy); later runs reuse them"

apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "test.sh: installing $* needs root (apt-get); run as root or install it yourself" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -f $state/.apt-updated ]]; then
    apt-get update -qq && touch "$state/.apt-updated"
  fi
  apt-get install -y -qq "$@" >/dev/null
}

command -v go >/dev/null || { echo "Go is required (https://go.dev/doc/install)" >&2; exit 1; }
command -v gcc >/dev/null || { log "installing gcc for cgo"; apt_install build-essential; }

log "private PostgreSQL"
pg_was_running=0
bash scripts/test-postgres.sh status >/dev/null 2>&1 && pg_was_running=1
eval "$(bash scripts/test-postgres.sh)"
stop_postgres() {
  if [[ $pg_was_running == 1 ]]; then
    log "PostgreSQL was running before this run and is left running; stop it with: bash scripts/test-postgres.sh stop"
  elif [[ ${GATEHOUSE_TEST_KEEP_POSTGRES:-0} == 1 ]]; then
    log "PostgreSQL left running (GATEHOUSE_TEST_KEEP_POSTGRES=1); stop it with: bash scripts/test-postgres.sh stop"
  else
    log "stopping the PostgreSQL this run started"
    bash scripts/test-postgres.sh stop >&2 || true
  fi
}
trap stop_postgres EXIT

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js and npm"
  apt_install nodejs npm
fi
for dir in internal/identity/testdata/oidc internal/engine/mcp/testdata/ts; do
  if [[ -f $dir/package.json ]]; then
    if [[ ! -d $dir/node_modules ]] || [[ $dir/package-lock.json -nt $dir/node_modules ]]; then
      log "npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
done

log "gofmt"
unformatted=$(gofmt -l cmd internal)
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi

log "go vet"
go vet ./...

log "go test -race"
export GATEHOUSE_INTEGRATION=1
go test -race -count=1 -timeout 15m ./... 2>&1 | tee "$state/go-test.log"
