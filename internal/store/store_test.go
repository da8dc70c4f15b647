package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestStore runs the same suite against SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			spec, dir := kind.Spec(t)
			st := testenv.OpenStore(t, spec, dir)
			ctx := context.Background()
			t.Run("revocations", func(t *testing.T) { testRevocations(t, ctx, st) })
			t.Run("audit append and scan", func(t *testing.T) { testAudit(t, ctx, st) })
			t.Run("checkpoints", func(t *testing.T) { testCheckpoints(t, ctx, st) })
			t.Run("recordings", func(t *testing.T) { testRecordings(t, ctx, st) })
			t.Run("reopen keeps data", func(t *testing.T) {
				st2 := testenv.OpenStore(t, spec, dir)
				if n, err := st2.AuditSize(ctx); err != nil || n != 3 {
					t.Fatalf("size after reopen = %d, %v", n, err)
				}
			})
		})
	}
}

func testRevocations(t *testing.T, ctx context.Context, st store.Store) {
	now := time.Now()
	for _, r := range []store.Revocation{
		{JTI: "live", ExpiresAt: now.Add(time.Hour), RevokedAt: now, Reason: "leaked"},
		{JTI: "old", ExpiresAt: now.Add(-time.Minute), RevokedAt: now.Add(-time.Hour)},
		{JTI: "live", ExpiresAt: now.Add(time.Hour), RevokedAt: now, Reason: "twice is fine"},
	} {
		if err := st.Revoke(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := st.Revocations(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].JTI != "live" || rs[0].Reason != "leaked" {
		t.Fatalf("revocations = %+v, want only the unexpired one, first reason kept", rs)
	}
}

func testAudit(t *testing.T, ctx context.Context, st store.Store) {
	for i := range 3 {
		err := st.AppendAudit(ctx, func(size int64, last []byte) ([]store.AuditRecord, error) {
			if size != int64(i) {
				t.Fatalf("size = %d, want %d", size, i)
			}
			if i > 0 && string(last) != "h"+string(rune('0'+i-1)) {
				t.Fatalf("last leaf = %q", last)
			}
			return []store.AuditRecord{{Index: size, ID: "e" + string(rune('0'+i)), Time: time.Now(), Body: []byte("{}"), LeafHash: []byte("h" + string(rune('0'+i)))}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A record at the wrong index is refused and nothing is written.
	err := st.AppendAudit(ctx, func(size int64, _ []byte) ([]store.AuditRecord, error) {
		return []store.AuditRecord{{Index: size + 5, ID: "bad", Body: []byte("{}"), LeafHash: []byte("x")}}, nil
	})
	if err == nil {
		t.Fatal("append at a wrong index succeeded")
	}
	var seen []int64
	if err := st.ScanAudit(ctx, 1, func(r store.AuditRecord) error { seen = append(seen, r.Index); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 2 {
		t.Fatalf("scan from 1 = %v", seen)
	}
	if leaves, err := st.AuditLeaves(ctx, 1, 3); err != nil || len(leaves) != 2 || string(leaves[0]) != "h1" || string(leaves[1]) != "h2" {
		t.Fatalf("leaves [1,3) = %q %v", leaves, err)
	}
	if leaves, err := st.AuditLeaves(ctx, 2, 10); err != nil || len(leaves) != 1 {
		t.Fatalf("leaves [2,10) = %q %v", leaves, err)
	}
	if r, err := st.AuditByID(ctx, "e1"); err != nil || r.Index != 1 {
		t.Fatalf("by id: %+v %v", r, err)
	}
	if _, err := st.AuditByID(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing id: %v", err)
	}
}

func testCheckpoints(t *testing.T, ctx context.Context, st store.Store) {
	if _, err := st.LatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("latest of none: %v", err)
	}
	for _, size := range []int64{2, 1, 3} {
		if err := st.PutCheckpoint(ctx, store.Checkpoint{Size: size, Root: []byte{byte(size)}, Time: time.Now(), Note: []byte("n")}); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := st.LatestCheckpoint(ctx)
	if err != nil || cp.Size != 3 {
		t.Fatalf("latest = %+v %v", cp, err)
	}
	all, err := st.Checkpoints(ctx)
	if err != nil || len(all) != 3 || all[0].Size != 1 || all[2].Size != 3 {
		t.Fatalf("checkpoints = %+v %v", all, err)
	}
}

func testRecordings(t *testing.T, ctx context.Context, st store.Store) {
	start := time.Now().UTC().Truncate(time.Microsecond)
	b := store.RecBatch{
		Sessions: []store.RecSession{{ID: "s1", Protocol: "postgres", Connection: "pg", Principal: `Agent::"a"`, Start: start}},
		Statements: []store.RecStatement{
			{Session: "s1", Seq: 1, Time: start, Duration: time.Millisecond, Statement: "SELECT $1", Decision: "allow", Rows: 1, Params: []string{"[REDACTED:EMAIL]"}},
			{Session: "s1", Seq: 2, Time: start, Statement: "DROP TABLE t", Decision: "deny", Reason: "guard-drop"},
		},
	}
	if err := st.PutRecordings(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := st.PutRecordings(ctx, store.RecBatch{Ends: []store.RecEnd{{ID: "s1", End: start.Add(time.Second), Reason: "client terminated"}}}); err != nil {
		t.Fatal(err)
	}
	ss, err := st.ListSessions(ctx, 10)
	if err != nil || len(ss) != 1 || ss[0].Statements != 2 || ss[0].EndReason != "client terminated" {
		t.Fatalf("sessions = %+v %v", ss, err)
	}
	stmts, err := st.SessionStatements(ctx, "s1")
	if err != nil || len(stmts) != 2 || stmts[0].Params[0] != "[REDACTED:EMAIL]" || stmts[1].Decision != "deny" || stmts[0].Duration != time.Millisecond {
		t.Fatalf("statements = %+v %v", stmts, err)
	}
}
