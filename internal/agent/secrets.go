package agent

import (
	"cmp"
	"context"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// SecretResolver reads the value of a credential reference. It is the seam
// for secret managers: one that understands, say, "vault:" references
// wraps the default and handles its own scheme, and nothing else in the
// agent changes. Values are used where the upstream connection is made and
// never leave the agent.
type SecretResolver func(ctx context.Context, ref config.Secret) (string, error)

// DefaultSecrets resolves env: and file: references and literals.
func DefaultSecrets(_ context.Context, ref config.Secret) (string, error) {
	return ref.Resolve()
}

func (a *Agent) secret(ctx context.Context, ref config.Secret) (string, error) {
	if a.Secrets != nil {
		return a.Secrets(ctx, ref)
	}
	return DefaultSecrets(ctx, ref)
}

// Served describes the connections a serves, as the gateway may learn
// them: name, type, the databases it serves and what is read-only, never an
// address or credential.
func (a *Agent) Served() []config.Connection {
	out := make([]config.Connection, 0, len(a.conns))
	for _, c := range a.conns {
		out = append(out, config.Connection{Name: c.Name, Type: c.Type, Database: c.Database, Databases: c.Databases,
			ReadOnly: c.ReadOnly, ReadOnlyFunctions: c.ReadOnlyFunctions})
	}
	slices.SortFunc(out, func(x, y config.Connection) int { return cmp.Compare(x.Name, y.Name) })
	return out
}
