package agent_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// TestServedHidesCredentials: what an agent tells the gateway about its
// connections carries no address, user or password.
func TestServedHidesCredentials(t *testing.T) {
	a := agent.New([]config.Connection{
		{Name: "pg2", Type: "postgres", Address: "10.0.0.9:5432", User: "u", Password: "env:X", Database: "d2"},
		{Name: "pg1", Type: "postgres", Address: "10.0.0.8:5432", User: "u", Password: "literal-secret", Database: "d1"},
	}, slog.New(slog.DiscardHandler))
	got := a.Served()
	if len(got) != 2 || got[0].Name != "pg1" || got[1].Database != "d2" {
		t.Fatalf("served = %+v", got)
	}
	for _, c := range got {
		if c.Address != "" || c.User != "" || c.Password != "" {
			t.Fatalf("served leaks %+v", c)
		}
	}
}

// TestSecretResolverSeam: a secret manager plugs in as a SecretResolver;
// without one its references are refused, never used as literals.
func TestSecretResolverSeam(t *testing.T) {
	if _, err := config.Secret("vault:secret/data/pg#password").Resolve(); !errors.Is(err, config.ErrSecretScheme) {
		t.Fatalf("vault reference without a resolver: %v", err)
	}
	if config.Secret("vault:x").IsLiteral() || !config.Secret("plain").IsLiteral() {
		t.Fatal("IsLiteral")
	}
	a := agent.New([]config.Connection{{Name: "pg", Type: "postgres", Address: "127.0.0.1:1", User: "u", Password: "vault:pg", TLSMode: "disable"}}, slog.New(slog.DiscardHandler))
	var asked config.Secret
	a.Secrets = func(ctx context.Context, ref config.Secret) (string, error) {
		asked = ref
		return "", errors.New("vault unreachable")
	}
	_, err := a.DialPostgres(context.Background(), "pg", agent.PostgresParams{})
	if asked != "vault:pg" || err == nil || !strings.Contains(err.Error(), "vault unreachable") {
		t.Fatalf("resolver asked %q, dial err %v", asked, err)
	}
}
