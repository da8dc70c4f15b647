package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// attacker holds what someone with write access to the store (and, for
// the key case, to the keys directory) works with.
type attacker struct {
	t      *testing.T
	f      *fixture
	db     *sql.DB
	rebind func(string) string
}

func (a attacker) exec(q string, args ...any) {
	a.t.Helper()
	if _, err := a.db.Exec(a.rebind(q), args...); err != nil {
		a.t.Fatalf("tamper %q: %v", q, err)
	}
}

// dropEvents deletes the events in [from, to) and renumbers, relinks and
// rehashes the rest, fixing the head: the events alone look intact.
func (a attacker) dropEvents(from, to int64) {
	testenv.ForgeAudit(a.t, a.db, a.rebind, func(i int64, body []byte) []byte {
		if i >= from && i < to {
			return nil
		}
		return body
	})
}

// signForged signs the forged tree with a key of the attacker's own, put in
// place of the gateway's key files, and stores that checkpoint.
func (a attacker) signForged() {
	a.t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, audit.KeyName)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := os.WriteFile(a.f.keys+"/audit.key", []byte(skey+"\n"), 0o600); err != nil {
		a.t.Fatal(err)
	}
	if err := os.WriteFile(a.f.keys+"/audit.pub", []byte(vkey+"\n"), 0o644); err != nil {
		a.t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		a.t.Fatal(err)
	}
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	rows, err := a.db.Query(`SELECT leaf_hash FROM audit_events ORDER BY idx`)
	if err != nil {
		a.t.Fatal(err)
	}
	for rows.Next() {
		var h []byte
		rows.Scan(&h)
		rng.Append(h, nil)
	}
	rows.Close()
	root, _ := rng.GetRootHash(nil)
	now := time.Now()
	msg, err := audit.SignCheckpoint(signer, int64(rng.End()), root, now)
	if err != nil {
		a.t.Fatal(err)
	}
	a.exec(`INSERT INTO audit_checkpoints (size, root, ts, note) VALUES (?, ?, ?, ?)`, int64(rng.End()), root, now.UnixNano(), msg)
}

// TestRewrittenLogDetected is the attack of issue 10 and its variants: an
// attacker with write access to the store rewrites the log so that the
// events alone look intact. Each must fail `audit verify`, and the next
// process to open the log (the gateway, or any admin command, which signs a
// checkpoint as it closes) must refuse to sign over the forgery.
func TestRewrittenLogDetected(t *testing.T) {
	cases := []struct {
		name   string
		attack func(a attacker)
		// want is what verify reports with the checkpoint file and the key
		// in the keys directory, as `gatehouse audit verify` runs.
		want string
		// aged: verify fails without any checkpoint file too, an hour on,
		// from the grace for unsigned events alone.
		aged bool
		// pinned: verify fails without the file, fresh, under a copy of the
		// original audit.pub.
		pinned bool
	}{
		{
			name: "delete events, renumber and rehash the rest, delete all checkpoints, fix the head",
			attack: func(a attacker) {
				a.dropEvents(5, 10)
				a.exec(`DELETE FROM audit_checkpoints`)
			},
			want: "missing from the store", aged: true,
		},
		{
			name: "truncate the tail",
			attack: func(a attacker) {
				a.dropEvents(25, 30)
				a.exec(`DELETE FROM audit_checkpoints WHERE size > 25`)
			},
			want: "missing from the store", aged: true,
		},
		{
			name:   "delete only the store's checkpoints",
			attack: func(a attacker) { a.exec(`DELETE FROM audit_checkpoints`) },
			want:   "missing from the store", aged: true,
		},
		{
			name: "rewrite one event and re-sign nothing",
			attack: func(a attacker) {
				testenv.ForgeAudit(a.t, a.db, a.rebind, func(i int64, body []byte) []byte {
					if i == 12 {
						return bytes.Replace(body, []byte(`"allow"`), []byte(`"deny"`), 1)
					}
					return body
				})
			},
			want: "does not match", aged: true, pinned: true,
		},
		{
			name: "replace the checkpoint signing key and re-sign the forgery",
			attack: func(a attacker) {
				a.dropEvents(5, 10)
				a.exec(`DELETE FROM audit_checkpoints`)
				a.signForged()
			},
			want: "not by the verifier key", pinned: true,
		},
	}
	for _, kind := range testenv.Stores() {
		for _, tc := range cases {
			t.Run(kind.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				f := open(t, kind, audit.Options{CheckpointEvery: 10})
				appendN(t, f.log, 30)
				if err := f.log.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := f.verify(t); err != nil {
					t.Fatalf("intact log fails: %v", err)
				}
				_, original, _ := audit.LoadOrCreateKeys(f.keys)
				db, rebind := testenv.RawDB(t, f.spec, f.dir)
				tc.attack(attacker{t, f, db, rebind})

				wantTampered := func(how string, err error, want string) {
					t.Helper()
					var te *audit.TamperError
					if !errors.As(err, &te) || !strings.Contains(te.What, want) {
						t.Fatalf("verify %s after the attack: %v; want a TamperError saying %q", how, err, want)
					}
				}
				_, err := f.verify(t)
				wantTampered("with the checkpoint file", err, tc.want)
				t.Logf("verify: %v", err)
				if tc.aged {
					_, v, _ := audit.LoadOrCreateKeys(f.keys)
					_, err := audit.Verify(ctx, f.st, v, audit.VerifyOptions{Now: func() time.Time { return time.Now().Add(time.Hour) }})
					wantTampered("an hour later without the file", err, "")
				}
				if tc.pinned {
					_, err := audit.Verify(ctx, f.st, original, audit.VerifyOptions{})
					wantTampered("under the original key", err, "")
				}

				// The next process over the store must not sign over the
				// forgery, whatever it appends.
				before := checkpoints(t, f.st)
				fileBefore, _ := os.ReadFile(f.cpFile)
				next := f.openLog(t, audit.Options{CheckpointEvery: 10})
				appendN(t, next, 12)
				if err := next.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if !audit.IsTampered(next.Err()) {
					t.Fatalf("the next log over the forged store signs: Err() = %v", next.Err())
				}
				t.Logf("next log refuses: %v", next.Err())
				if after := checkpoints(t, f.st); after != before {
					t.Fatalf("a checkpoint was signed over the forgery: store checkpoints %q, were %q", after, before)
				}
				if fileAfter, _ := os.ReadFile(f.cpFile); !bytes.Equal(fileAfter, fileBefore) {
					t.Fatal("a checkpoint over the forgery was written to the checkpoint file")
				}
				_, err = f.verify(t)
				wantTampered("after the next process ran", err, "")
			})
		}
	}
}

// checkpoints lists the stored checkpoints' sizes.
func checkpoints(t *testing.T, st store.Store) string {
	t.Helper()
	cps, err := st.Checkpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, cp := range cps {
		b.WriteString(" ")
		b.WriteString(strings.TrimSpace(strings.Split(string(cp.Note), "\n")[1]))
	}
	return b.String()
}

// TestRunningLogRefusesForgedStore rewrites the store under a log that is
// running (a gateway in service): its next commit finds the store's head is
// not the tree it holds, and it refuses to sign from then on, also when
// only the events after the last checkpoint, which nothing signed yet, were
// rewritten.
func TestRunningLogRefusesForgedStore(t *testing.T) {
	cases := []struct {
		name   string
		attack func(a attacker)
		want   string
	}{
		{"delete events, rehash, delete checkpoints, fix the head", func(a attacker) {
			a.dropEvents(5, 10)
			a.exec(`DELETE FROM audit_checkpoints`)
		}, "went back"},
		{"rewrite an unsigned event after the last checkpoint", func(a attacker) {
			testenv.ForgeAudit(a.t, a.db, a.rebind, func(i int64, body []byte) []byte {
				if i == 32 {
					return bytes.Replace(body, []byte(`"allow"`), []byte(`"deny"`), 1)
				}
				return body
			})
		}, "not the one this node holds"},
	}
	for _, kind := range testenv.Stores() {
		for _, tc := range cases {
			t.Run(kind.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				var refused int
				f := open(t, kind, audit.Options{CheckpointEvery: 10, CheckpointInterval: time.Hour, OnCheckpoint: func(r string) {
					if r == "refused" {
						refused++
					}
				}})
				appendN(t, f.log, 30)
				waitSigned(t, f.st, 30)
				appendN(t, f.log, 5) // 30..34: not signed yet
				db, rebind := testenv.RawDB(t, f.spec, f.dir)
				tc.attack(attacker{t, f, db, rebind})
				before := checkpoints(t, f.st)
				appendN(t, f.log, 20)
				if err := f.log.Close(ctx); err != nil {
					t.Fatal(err)
				}
				var te *audit.TamperError
				if err := f.log.Err(); !errors.As(err, &te) || !strings.Contains(te.What, tc.want) {
					t.Fatalf("running log after the attack: Err() = %v, want %q", err, tc.want)
				}
				t.Logf("running log refuses: %v", f.log.Err())
				if refused == 0 {
					t.Fatal("OnCheckpoint never reported the refusal")
				}
				if after := checkpoints(t, f.st); after != before {
					t.Fatalf("the running log signed after the attack: %q, were %q", after, before)
				}
				if _, err := f.verify(t); !audit.IsTampered(err) {
					t.Fatalf("verify after the attack: %v", err)
				}
			})
		}
	}
}

// waitSigned waits until the store holds a checkpoint of size n.
func waitSigned(t *testing.T, st store.Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp, err := st.LatestCheckpoint(context.Background())
		if err == nil && cp.Size >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size %d signed: %+v %v", n, cp, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplacedSigningKeyRefused replaces only audit.key: the log must not
// sign checkpoints that audit.pub does not check.
func TestReplacedSigningKeyRefused(t *testing.T) {
	f := open(t, testenv.Stores()[0], audit.Options{})
	appendN(t, f.log, 3)
	f.log.Close(context.Background())
	skey, _, err := note.GenerateKey(rand.Reader, audit.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f.keys+"/audit.key", []byte(skey+"\n"), 0o600)
	before := checkpoints(t, f.st)
	l := f.openLog(t, audit.Options{})
	appendN(t, l, 3)
	l.Close(context.Background())
	if err := l.Err(); !audit.IsTampered(err) || !strings.Contains(err.Error(), "does not match the verifier key") {
		t.Fatalf("log with a replaced audit.key: Err() = %v", err)
	}
	if after := checkpoints(t, f.st); after != before {
		t.Fatalf("signed with a replaced key: %q, were %q", after, before)
	}
}

// TestOpenRefusesOldUnsignedEvents: without a checkpoint file, a log whose
// checkpoints were deleted looks like a new log, except that its events span
// far longer than a running log leaves events unsigned. The next log must
// not sign them, and verify fails them.
func TestOpenRefusesOldUnsignedEvents(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			var mu sync.Mutex
			now := time.Now().Add(-time.Hour)
			clock := func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(time.Minute)
				return now
			}
			f := open(t, kind, audit.Options{Clock: clock, CheckpointFile: noCheckpointFile})
			appendN(t, f.log, 10)
			f.log.Close(context.Background())
			db, rebind := testenv.RawDB(t, f.spec, f.dir)
			attacker{t, f, db, rebind}.exec(`DELETE FROM audit_checkpoints`)

			_, v, _ := audit.LoadOrCreateKeys(f.keys)
			if _, err := audit.Verify(context.Background(), f.st, v, audit.VerifyOptions{}); !audit.IsTampered(err) || !strings.Contains(err.Error(), "no signed checkpoint covers") {
				t.Fatalf("verify of old events without checkpoints: %v", err)
			}
			l := f.openLog(t, audit.Options{CheckpointFile: noCheckpointFile})
			l.Close(context.Background())
			if err := l.Err(); !audit.IsTampered(err) || !strings.Contains(err.Error(), "never signed") {
				t.Fatalf("log over old unsigned events: Err() = %v", err)
			}
			if cps := checkpoints(t, f.st); cps != "" {
				t.Fatalf("signed old unsigned events: %q", cps)
			}
		})
	}
}

// TestUnsignedGrace: a live log always has a few events not signed yet,
// which must not read as tampering; the same events an hour later, still
// unsigned, do.
func TestUnsignedGrace(t *testing.T) {
	f := open(t, testenv.Stores()[0], audit.Options{CheckpointEvery: 1000, CheckpointInterval: time.Hour})
	appendN(t, f.log, 5)
	rep, err := f.verify(t)
	if err != nil || rep.Unsigned != 5 || rep.Checkpoints != 0 {
		t.Fatalf("verify of a fresh log before its first checkpoint: %+v %v", rep, err)
	}
	_, v, _ := audit.LoadOrCreateKeys(f.keys)
	later := audit.VerifyOptions{CheckpointFiles: []string{f.cpFile}, Now: func() time.Time { return time.Now().Add(time.Hour) }}
	if _, err := audit.Verify(context.Background(), f.st, v, later); !audit.IsTampered(err) {
		t.Fatalf("verify of events left unsigned for an hour: %v", err)
	}
	f.log.Close(context.Background())
	if rep, err := audit.Verify(context.Background(), f.st, v, later); err != nil || rep.Unsigned != 0 || rep.External == 0 {
		t.Fatalf("verify an hour after the log closed (all signed): %+v %v", rep, err)
	}
}
