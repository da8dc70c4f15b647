#!/usr/bin/env bash
# The whole test suite, from a fresh machine with Go: installs and starts
# what the tests need (a private PostgreSQL, Node packages for the OpenID
# provider and the TypeScript MCP client), checks formatting and vet, then
# runs every test with -race.
# Idempotent: running it again reuses what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -f /tmp/gatehouse-test/.apt-updated ]]; then
    mkdir -p /tmp/gatehouse-test
    apt-get update -qq && touch /tmp/gatehouse-test/.apt-updated
  fi
  apt-get install -y -qq "$@" >/dev/null
}

command -v go >/dev/null || { echo "Go is required (https://go.dev/doc/install)" >&2; exit 1; }
command -v gcc >/dev/null || { log "installing gcc for cgo"; apt_install build-essential; }

log "private PostgreSQL"
eval "$(bash scripts/test-postgres.sh)"

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
go test -race -count=1 -timeout 15m ./... 2>&1 | tee /tmp/gatehouse-test/go-test.log
