package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// starter is the commented config `gatehouse up` writes when there is none.
// docs/configuration.md documents every key.
const starter = `# Gatehouse configuration, written by ` + "`gatehouse up`" + `.
# Every key is documented in docs/configuration.md. Relative paths are
# relative to this file.

# Keys, the embedded SQLite store and session recordings live here.
data_dir: ./.gatehouse

# "sqlite" (embedded, the default) or a postgres://user@host/db URL shared
# by several gateway nodes.
store: sqlite

listen:
  api: 127.0.0.1:8080        # REST API, /metrics, /healthz, JWKS, token exchange
  postgres: 127.0.0.1:15432  # PostgreSQL wire protocol for psql, pgx, pgbench, ...
  # agents: 0.0.0.0:8443     # network-resident agents dial in here (docs/agents.md)

# Cedar policy files, validated at load and reloaded on change.
policies: ./policies

# Wire clients pass a token as their password. Without TLS that is only
# accepted from loopback addresses, and only when this is true.
allow_insecure_loopback: true

log:
  level: info     # debug, info, warn, error
  format: json    # json or text

identity:
  default_ttl: 15m
  max_ttl: 1h
  # oidc:                       # external issuers (humans, workload tokens)
  #   - issuer: https://login.example.com
  #     audience: gatehouse
  #     accept_direct: true     # humans may use its tokens directly
  # token_exchange:             # RFC 8693 mapping rules for POST /v1/token
  #   - name: ci
  #     issuer: https://login.example.com
  #     match: {sub: "repo:acme/*"}
  #     agent: ci-bot
  #     connections: [pg]
  #     scopes: [read]

audit:
  durability: group         # group (bounded group commit) or sync
  checkpoint_every: 1000    # sign a checkpoint after this many events
  checkpoint_interval: 10s  # ... or at least this often
  # checkpoint_file: /elsewhere/audit-checkpoints.log  # copy of the checkpoints outside the store
  #                                                    # (default data_dir/audit-checkpoints.log)
  # witness_url: https://witness.example.com/gatehouse # POSTed every checkpoint (signed note)

# Upstream targets. Credentials are references: env:NAME or file:PATH.
# To add one, delete the "# " at the start of each line of the example
# (keep the two spaces before "- name"), then restart.
connections:
  # - name: pg
  #   type: postgres
  #   address: 127.0.0.1:5432
  #   database: postgres
  #   user: app
  #   password: env:PG_PASSWORD
`

// Starter returns the starter config text.
func Starter() string { return starter }

// WriteStarter writes the starter config to path unless a file is there.
// It reports whether it wrote one.
func WriteStarter(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write starter config: %w", err)
	}
	if _, err := f.WriteString(starter); err != nil {
		f.Close()
		return false, fmt.Errorf("write starter config: %w", err)
	}
	return true, f.Close()
}
