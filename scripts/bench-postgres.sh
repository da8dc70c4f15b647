#!/usr/bin/env bash
# Measures the PostgreSQL data path, direct and through `gatehouse up` in the
# same run, with token auth, policy, guardrails, masking and audit all on:
#   1. pgbench -S (8 clients, 2 threads, DURATION s), direct vs gateway, for
#      audit durability group (the default) and sync;
#   2. a 100,000-row SELECT of a table with email and card-number columns,
#      direct vs gateway with masking (median of RUNS runs).
# Prints TPS, times and ratios. Uses the private PostgreSQL of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
RUNS=${RUNS:-5}
SCALE=${SCALE:-10}

eval "$(bash scripts/test-postgres.sh)"
work=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

admin=$GATEHOUSE_TEST_POSTGRES
db=gh_bench
role=gh_bench
pw=bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
psql "$admin" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS $role" \
  -c "CREATE ROLE $role LOGIN PASSWORD '$pw'" -c "CREATE DATABASE $db OWNER $role" >/dev/null
hostport=$(echo "$admin" | sed -E 's#.*@([^/]+)/.*#\1#')
direct="postgres://$role:$pw@$hostport/$db?sslmode=disable"

echo "== preparing: pgbench -i -s $SCALE, and a 100,000-row table of emails and card numbers" >&2
pgbench -i -s "$SCALE" -q "$direct" >/dev/null 2>&1
psql "$direct" -qAt <<'SQL'
CREATE TABLE masked_data (id int PRIMARY KEY, email text, card text, note text);
INSERT INTO masked_data
SELECT i, 'customer' || i || '@example.com',
       (ARRAY['4111 1111 1111 1111','5500 0000 0000 0004','3400 000000 00009'])[1 + i % 3],
       'order ' || i || ' shipped'
FROM generate_series(1, 100000) i;
ANALYZE masked_data;
SQL

go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/tcpproxy" ./scripts/tcpproxy

start_gateway() { # $1 = durability
  local dir=$work/gw-$1
  mkdir -p "$dir"
  cat > "$dir/gatehouse.yaml" <<YAML
data_dir: ./.gatehouse
listen: {api: 127.0.0.1:18080, postgres: 127.0.0.1:15433}
policies: ./policies
allow_insecure_loopback: true
log: {level: warn}
audit: {durability: $1}
connections:
  - {name: pg, type: postgres, address: "$hostport", database: $db, user: $role, password: "env:BENCH_PG_PASSWORD", tls_mode: disable}
YAML
  (cd "$dir" && BENCH_PG_PASSWORD=$pw GATEHOUSE_CPUPROFILE=${PROFILE:+$PROFILE.$1} "$work/gatehouse" up >"$dir/log" 2>&1 &)
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break
    sleep 0.1
  done
  token=$(cd "$dir" && "$work/gatehouse" token issue --agent bench --on-behalf-of bench@example.com --connection pg --scope read --ttl 1h)
  gateway="postgres://pg:$token@127.0.0.1:15433/$db?sslmode=disable"
}
stop_gateway() {
  pkill -f "$work/gatehouse up" || true
  for _ in $(seq 100); do pgrep -f "$work/gatehouse up" >/dev/null || break; sleep 0.1; done
}

tps() { pgbench -n -S -c 8 -j 2 -T "$DURATION" "$1" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

median_time() { # $1 = URL; prints seconds
  for _ in $(seq "$RUNS"); do
    local s e
    s=$(date +%s.%N)
    psql "$1" -qAt -c "SELECT * FROM masked_data" >"$work/out" 
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }'
  done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

echo "== pgbench -S, 8 clients, 2 threads, ${DURATION}s each" >&2
# Reference: a plain byte-copying proxy, so the cost of one extra hop on
# this machine is visible next to the gateway's.
"$work/tcpproxy" 127.0.0.1:15434 "$hostport" &
proxy_pid=$!
sleep 0.3
d=$(tps "$direct")
p=$(tps "postgres://$role:$pw@127.0.0.1:15434/$db?sslmode=disable")
echo "pgbench -S  plain TCP proxy (reference)  direct ${d} tps  proxy ${p} tps  ratio $(ratio "$p" "$d")"
kill "$proxy_pid"
for durability in group sync; do
  start_gateway "$durability"
  d=$(tps "$direct")
  g=$(tps "$gateway")
  echo "pgbench -S  durability=$durability  direct ${d} tps  gateway ${g} tps  ratio $(ratio "$g" "$d")"
  if [[ $durability == group ]]; then
    dt=$(median_time "$direct")
    gt=$(median_time "$gateway")
    if grep -q '@example.com' "$work/out"; then echo "masking FAILED: emails in gateway output" >&2; exit 1; fi
    echo "100k-row masked SELECT (median of $RUNS)  direct ${dt}s  gateway ${gt}s  ratio $(ratio "$gt" "$dt")"
  fi
  stop_gateway
done
