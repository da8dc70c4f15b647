package identity_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// TestConfigYAML keeps the documented YAML honest: it decodes into Config
// and New accepts it (no network: discovery is lazy).
func TestConfigYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg identity.Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if cfg.MaxTTL != time.Hour || cfg.TokenExchange[0].TTL != 10*time.Minute || len(cfg.OIDC) != 2 ||
		!cfg.OIDC[0].AcceptDirect || cfg.TokenExchange[1].Scopes[2] != identity.ScopeDDL {
		t.Errorf("decoded %+v", cfg)
	}
	if _, err := identity.New(context.Background(), cfg, t.TempDir(), newMemRevocations(), identity.Options{}); err != nil {
		t.Fatalf("New: %v", err)
	}
}
