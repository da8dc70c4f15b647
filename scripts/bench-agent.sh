#!/usr/bin/env bash
# Measures the agent tunnel: pgbench -S (8 clients, 2 threads, DURATION s)
#   1. direct to PostgreSQL,
#   2. through `gatehouse up` (gateway + in-process agent over an in-memory
#      tunnel),
#   3. through `gatehouse gateway` + a separate `gatehouse agent` process
#      (mTLS tunnel on loopback),
# in one run, ROUNDS times, and prints TPS and ratios against direct. Token
# auth, policy, guardrails, masking, recording and audit are on in both
# gateway runs. Uses the private PostgreSQL of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-1}
SCALE=${SCALE:-10}

eval "$(bash scripts/test-postgres.sh)"
work=$(mktemp -d /tmp/gatehouse-bench-agent.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

admin=$GATEHOUSE_TEST_POSTGRES
db=gh_bench_agent
role=gh_bench_agent
pw=bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
psql "$admin" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS $role" \
  -c "CREATE ROLE $role LOGIN PASSWORD '$pw'" -c "CREATE DATABASE $db OWNER $role" >/dev/null
hostport=$(echo "$admin" | sed -E 's#.*@([^/]+)/.*#\1#')
direct="postgres://$role:$pw@$hostport/$db?sslmode=disable"
echo "== preparing: pgbench -i -s $SCALE" >&2
pgbench -i -s "$SCALE" -q "$direct" >/dev/null 2>&1

go build -o "$work/gatehouse" ./cmd/gatehouse
gh=$work/gatehouse
cp -r internal/policy/starter "$work/policies"

# gatehouse up: the connection (and its credential) in the gateway's config.
cat > "$work/up.yaml" <<YAML
data_dir: ./up-data
listen: {api: 127.0.0.1:18180, postgres: 127.0.0.1:15533}
policies: ./policies
allow_insecure_loopback: true
log: {level: warn}
connections:
  - {name: pg, type: postgres, address: "$hostport", database: $db, user: $role, password: "env:BENCH_PG_PASSWORD", tls_mode: disable}
YAML
# gateway + agent: the gateway knows no credential; the agent holds it.
cat > "$work/gateway.yaml" <<YAML
data_dir: ./gw-data
listen: {api: 127.0.0.1:18181, postgres: 127.0.0.1:15534, agents: 127.0.0.1:18543}
policies: ./policies
allow_insecure_loopback: true
log: {level: warn}
YAML
cat > "$work/agent.yaml" <<YAML
name: bench-agent
gateway: 127.0.0.1:18543
enroll_token: env:GATEHOUSE_ENROLL_TOKEN
data_dir: ./agent-data
log: {level: warn}
connections:
  - {name: pg, type: postgres, address: "$hostport", database: $db, user: $role, password: "env:BENCH_PG_PASSWORD", tls_mode: disable}
YAML

wait_ready() { # $1 = api port
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "gateway on :$1 did not become ready" >&2; exit 1
}
stop_pid() {
  kill "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
}
tps() { pgbench -n -S -c 8 -j 2 -T "$DURATION" "$1" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== pgbench -S, 8 clients, 2 threads, ${DURATION}s each, $ROUNDS round(s)" >&2
for round in $(seq "$ROUNDS"); do
  d=$(tps "$direct")

  (cd "$work" && BENCH_PG_PASSWORD=$pw exec "$gh" up --config up.yaml >"$work/up.log" 2>&1) &
  up_pid=$!; pids+=("$up_pid")
  wait_ready 18180
  tok=$("$gh" token issue --config "$work/up.yaml" --agent bench --on-behalf-of bench@example.com --connection pg --scope read --ttl 1h)
  u=$(tps "postgres://pg:$tok@127.0.0.1:15533/$db?sslmode=disable")
  stop_pid "$up_pid"

  (cd "$work" && exec "$gh" gateway --config gateway.yaml >"$work/gateway.log" 2>&1) &
  gw_pid=$!; pids+=("$gw_pid")
  wait_ready 18181
  enroll=""
  [[ -f $work/agent-data/agent.pem ]] || enroll=$("$gh" agents enroll --config "$work/gateway.yaml" --name bench-agent 2>/dev/null)
  (cd "$work" && GATEHOUSE_ENROLL_TOKEN=$enroll BENCH_PG_PASSWORD=$pw exec "$gh" agent --config agent.yaml >"$work/agent.log" 2>&1) &
  ag_pid=$!; pids+=("$ag_pid")
  for _ in $(seq 200); do
    "$gh" agents list --config "$work/gateway.yaml" 2>/dev/null | grep -q ' connected ' && break
    sleep 0.05
  done
  tok=$("$gh" token issue --config "$work/gateway.yaml" --agent bench --on-behalf-of bench@example.com --connection pg --scope read --ttl 1h)
  s=$(tps "postgres://pg:$tok@127.0.0.1:15534/$db?sslmode=disable")
  stop_pid "$ag_pid"
  stop_pid "$gw_pid"

  echo "round $round: direct ${d} tps | gatehouse up ${u} tps (ratio $(ratio "$u" "$d")) | gateway + agent ${s} tps (ratio $(ratio "$s" "$d"); vs up $(ratio "$s" "$u"))"
done
