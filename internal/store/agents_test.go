package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestAgents runs the agent enrollment suite against SQLite and PostgreSQL.
func TestAgents(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			spec, dir := kind.Spec(t)
			st := testenv.OpenStore(t, spec, dir)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Microsecond)
			hash := []byte("hash-of-secret")
			put := func(id, name string, ttl time.Duration) {
				t.Helper()
				if err := st.PutEnrollToken(ctx, store.EnrollToken{ID: id, Name: name, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
					t.Fatal(err)
				}
			}

			t.Run("enroll once", func(t *testing.T) {
				put("t1", "a1", time.Minute)
				if _, err := st.EnrollAgent(ctx, "a1", "t1", []byte("wrong"), now); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("wrong secret: %v, want ErrNotFound", err)
				}
				if _, err := st.EnrollAgent(ctx, "other", "t1", hash, now); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("token for another name: %v, want ErrNotFound", err)
				}
				a, err := st.EnrollAgent(ctx, "a1", "t1", hash, now)
				if err != nil || a.Name != "a1" || a.Epoch != 1 || a.Revoked() || !a.EnrolledAt.Equal(now) {
					t.Fatalf("enroll = %+v, %v", a, err)
				}
				if _, err := st.EnrollAgent(ctx, "a1", "t1", hash, now); !errors.Is(err, store.ErrTokenUsed) {
					t.Fatalf("second use: %v, want ErrTokenUsed", err)
				}
				if _, err := st.EnrollAgent(ctx, "a1", "nope", hash, now); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("unknown id: %v", err)
				}
			})
			t.Run("expired token", func(t *testing.T) {
				put("t2", "a2", time.Second)
				if _, err := st.EnrollAgent(ctx, "a2", "t2", hash, now.Add(2*time.Second)); !errors.Is(err, store.ErrTokenExpired) {
					t.Fatalf("expired: %v", err)
				}
				if _, err := st.GetAgent(ctx, "a2"); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("agent of expired token exists: %v", err)
				}
			})
			t.Run("concurrent use enrolls once", func(t *testing.T) {
				put("t3", "a3", time.Minute)
				var wg sync.WaitGroup
				var mu sync.Mutex
				ok := 0
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := st.EnrollAgent(ctx, "a3", "t3", hash, now); err == nil {
							mu.Lock()
							ok++
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if ok != 1 {
					t.Fatalf("%d enrollments succeeded with one token", ok)
				}
			})
			t.Run("seen, revoke, re-enroll", func(t *testing.T) {
				seen := store.AgentSeen{Name: "a1", Version: "v1.2.3", Connections: []store.AgentConn{{Name: "pg", Type: "postgres", Database: "app"}, {Name: "pg,2", Type: "postgres"}}, Time: now.Add(time.Second), CertExpires: now.Add(24 * time.Hour)}
				if err := st.AgentSeen(ctx, seen); err != nil {
					t.Fatal(err)
				}
				a, err := st.GetAgent(ctx, "a1")
				if err != nil || a.Version != "v1.2.3" || len(a.Connections) != 2 || a.Connections[1].Name != "pg,2" || a.Connections[0].Database != "app" || !a.LastSeen.Equal(seen.Time) || !a.CertExpires.Equal(seen.CertExpires) {
					t.Fatalf("after seen: %+v, %v", a, err)
				}
				put("t4", "a1", time.Minute) // issued before the revocation
				if err := st.RevokeAgent(ctx, "a1", now); err != nil {
					t.Fatal(err)
				}
				if err := st.RevokeAgent(ctx, "a1", now); err != nil {
					t.Fatalf("revoking twice: %v", err)
				}
				if err := st.RevokeAgent(ctx, "ghost", now); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("revoke unknown: %v", err)
				}
				if a, _ := st.GetAgent(ctx, "a1"); !a.Revoked() {
					t.Fatalf("not revoked: %+v", a)
				}
				if _, err := st.EnrollAgent(ctx, "a1", "t4", hash, now); !errors.Is(err, store.ErrTokenUsed) {
					t.Fatalf("token from before the revocation: %v, want ErrTokenUsed", err)
				}
				put("t5", "a1", time.Minute)
				a, err = st.EnrollAgent(ctx, "a1", "t5", hash, now)
				if err != nil || a.Epoch != 2 || a.Revoked() {
					t.Fatalf("re-enroll = %+v, %v; want epoch 2, not revoked", a, err)
				}
				all, err := st.ListAgents(ctx)
				if err != nil || len(all) != 2 || all[0].Name != "a1" || all[1].Name != "a3" {
					t.Fatalf("list = %+v, %v", all, err)
				}
			})
		})
	}
}
