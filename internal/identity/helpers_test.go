package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// memRevocations is an in-memory identity.RevocationStore: the fake of our
// own two-method interface, shared by Service instances to stand for the
// store that the gateway and the CLI share.
type memRevocations struct {
	mu   sync.Mutex
	rows map[string]store.Revocation
}

func newMemRevocations() *memRevocations {
	return &memRevocations{rows: map[string]store.Revocation{}}
}

func (m *memRevocations) Revoke(_ context.Context, r store.Revocation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[r.JTI]; !ok {
		m.rows[r.JTI] = r
	}
	return nil
}

func (m *memRevocations) Revocations(_ context.Context, now time.Time) ([]store.Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Revocation
	for _, r := range m.rows {
		if now.Before(r.ExpiresAt) {
			out = append(out, r)
		}
	}
	return out, nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one test's services and the state they share.
type env struct {
	t      *testing.T
	clock  *clock
	store  *memRevocations
	keyDir string
	events *eventLog
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{
		t:      t,
		clock:  newClock(),
		store:  newMemRevocations(),
		keyDir: filepath.Join(t.TempDir(), "keys"),
		events: &eventLog{},
	}
}

// service builds a Service on the env's clock, store and key directory, as
// another gateway process or the CLI would.
func (e *env) service(cfg identity.Config) *identity.Service {
	e.t.Helper()
	s, err := identity.New(context.Background(), cfg, e.keyDir, e.store, identity.Options{
		Now:     e.clock.Now,
		OnEvent: e.events.add,
	})
	if err != nil {
		e.t.Fatalf("identity.New: %v", err)
	}
	return s
}

// activeKey reads the private key the service signs with from the key
// directory, so tests can forge tokens with the right key.
func (e *env) key(kid string) ed25519.PrivateKey {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.keyDir, kid+".pem"))
	if err != nil {
		e.t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		e.t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

type eventLog struct {
	mu     sync.Mutex
	events []identity.Event
}

func (l *eventLog) add(_ context.Context, e identity.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = nil
}

func (l *eventLog) kinds() []identity.EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []identity.EventKind
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

func (l *eventLog) last() identity.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == 0 {
		return identity.Event{}
	}
	return l.events[len(l.events)-1]
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// forge builds a compact JWS from header and claims, signed by sign over
// the signing input.
func forge(t *testing.T, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, claims)
	return input + "." + b64(sign([]byte(input)))
}

// decodeClaims returns a token's payload as a map (no verification).
func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := splitDots(tok)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(splitDots(tok)[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func splitDots(tok string) []string { return strings.Split(tok, ".") }
