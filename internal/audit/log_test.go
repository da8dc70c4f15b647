package audit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv("GATEHOUSE_AUDIT_CHILD") == "1" {
		os.Exit(childAppender())
	}
	os.Exit(m.Run())
}

type fixture struct {
	spec, dir string
	st        store.Store
	log       *audit.Log
	keys      string
	// cpFile is the log's checkpoint file outside the store.
	cpFile string
}

func open(t *testing.T, kind testenv.StoreKind, opts audit.Options) *fixture {
	t.Helper()
	spec, dir := kind.Spec(t)
	f := &fixture{spec: spec, dir: dir, keys: dir + "/keys", cpFile: dir + "/audit-checkpoints.log"}
	f.st = testenv.OpenStore(t, spec, dir)
	f.log = f.openLog(t, opts)
	return f
}

// openLog opens another log over the fixture's store, keys and checkpoint
// file, as the next gateway or admin command on the host would.
func (f *fixture) openLog(t *testing.T, opts audit.Options) *audit.Log {
	t.Helper()
	signer, verifier, err := audit.LoadOrCreateKeys(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Signer, opts.Verifier = f.st, signer, verifier
	switch opts.CheckpointFile {
	case "":
		opts.CheckpointFile = f.cpFile
	case noCheckpointFile:
		opts.CheckpointFile = ""
	}
	l, err := audit.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// noCheckpointFile as Options.CheckpointFile makes openLog open a log
// without a checkpoint file.
const noCheckpointFile = "\x00none"

// verify runs audit verify as `gatehouse audit verify` does on the host:
// the key in the keys directory and the checkpoint file.
func (f *fixture) verify(t *testing.T) (audit.Report, error) {
	t.Helper()
	_, v, err := audit.LoadOrCreateKeys(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Verify(context.Background(), f.st, v, audit.VerifyOptions{CheckpointFiles: []string{f.cpFile}})
}

func appendN(t *testing.T, l *audit.Log, n int) []audit.Event {
	t.Helper()
	out := make([]audit.Event, n)
	for i := range n {
		ev, err := l.Append(context.Background(), audit.Event{Kind: audit.KindDecision, Principal: `Agent::"a"`, Action: "sql:select", Decision: "allow", Reason: fmt.Sprintf("event %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ev
	}
	return out
}

func TestAppendVerifyProve(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			f := open(t, kind, audit.Options{CheckpointEvery: 7})
			evs := appendN(t, f.log, 50)
			if err := f.log.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			rep, err := f.verify(t)
			if err != nil {
				t.Fatalf("verify intact log: %v", err)
			}
			if rep.Events != 50 || rep.Covered != 50 {
				t.Fatalf("report = %+v, want 50 events all covered", rep)
			}
			for i, ev := range evs {
				if ev.Index != int64(i) {
					t.Fatalf("event %d got index %d", i, ev.Index)
				}
			}
			_, v, _ := audit.LoadOrCreateKeys(f.keys)
			for _, i := range []int{0, 1, 31, 49} {
				p, err := audit.Prove(context.Background(), f.st, evs[i].ID)
				if err != nil {
					t.Fatalf("prove %d: %v", i, err)
				}
				if err := audit.CheckProof(p, v); err != nil {
					t.Fatalf("check proof %d: %v", i, err)
				}
				p.Body = []byte(strings.Replace(string(p.Body), "allow", "deny", 1))
				if err := audit.CheckProof(p, v); err == nil {
					t.Fatalf("proof of an altered event %d verified", i)
				}
			}
		})
	}
}

// TestTamperDetected changes the real stored rows the way someone with write
// access to the SQLite file or the PostgreSQL table could, and checks that
// verification names the first bad index.
func TestTamperDetected(t *testing.T) {
	cases := []struct {
		name      string
		tamper    []string // statements, '?' placeholders get args
		args      [][]any
		wantIndex int64
		wantWhat  string
	}{
		{
			name:      "edited event",
			tamper:    []string{`UPDATE audit_events SET body = ? WHERE idx = 5`},
			args:      [][]any{nil}, // filled below
			wantIndex: 5, wantWhat: "content changed",
		},
		{
			name:      "deleted event",
			tamper:    []string{`DELETE FROM audit_events WHERE idx = 5`},
			args:      [][]any{nil},
			wantIndex: 5, wantWhat: "missing",
		},
		{
			name: "swapped events",
			tamper: []string{
				`UPDATE audit_events SET idx = -1 WHERE idx = 4`,
				`UPDATE audit_events SET idx = 4 WHERE idx = 5`,
				`UPDATE audit_events SET idx = 5 WHERE idx = -1`,
			},
			args:      [][]any{nil, nil, nil},
			wantIndex: 4, wantWhat: "reordered",
		},
		{
			name: "truncated below checkpoint",
			tamper: []string{
				`DELETE FROM audit_events WHERE idx >= 17`,
				`UPDATE audit_head SET size = 17`,
			},
			args:      [][]any{nil, nil},
			wantIndex: 17, wantWhat: "truncated",
		},
	}
	for _, kind := range testenv.Stores() {
		for _, tc := range cases {
			t.Run(kind.Name+"/"+tc.name, func(t *testing.T) {
				f := open(t, kind, audit.Options{CheckpointEvery: 10})
				appendN(t, f.log, 20)
				if err := f.log.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				if _, err := f.verify(t); err != nil {
					t.Fatalf("intact log fails: %v", err)
				}
				db, rebind := testenv.RawDB(t, f.spec, f.dir)
				for i, q := range tc.tamper {
					args := tc.args[i]
					if strings.Contains(q, "SET body") {
						var body []byte
						if err := db.QueryRow(`SELECT body FROM audit_events WHERE idx = 5`).Scan(&body); err != nil {
							t.Fatal(err)
						}
						args = []any{[]byte(strings.Replace(string(body), `"allow"`, `"deny"`, 1))}
					}
					if _, err := db.Exec(rebind(q), args...); err != nil {
						t.Fatalf("tamper %q: %v", q, err)
					}
				}
				_, err := f.verify(t)
				var te *audit.TamperError
				if !errors.As(err, &te) {
					t.Fatalf("verify after %s: err = %v, want a TamperError", tc.name, err)
				}
				if te.Index != tc.wantIndex || !strings.Contains(te.What, tc.wantWhat) {
					t.Fatalf("verify after %s: %v; want index %d and %q", tc.name, te, tc.wantIndex, tc.wantWhat)
				}
			})
		}
	}
}

// TestEditedLeafHashToo covers an attacker who edits an event and also
// recomputes its stored leaf hash: the next event's link gives it away.
func TestEditedLeafHashToo(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			f := open(t, kind, audit.Options{CheckpointEvery: 100})
			appendN(t, f.log, 10)
			f.log.Close(context.Background())
			db, rebind := testenv.RawDB(t, f.spec, f.dir)
			var body []byte
			if err := db.QueryRow(`SELECT body FROM audit_events WHERE idx = 3`).Scan(&body); err != nil {
				t.Fatal(err)
			}
			body = []byte(strings.Replace(string(body), `"allow"`, `"deny"`, 1))
			if _, err := db.Exec(rebind(`UPDATE audit_events SET body = ?, leaf_hash = ? WHERE idx = 3`), body, leafHash(body)); err != nil {
				t.Fatal(err)
			}
			_, err := f.verify(t)
			var te *audit.TamperError
			if !errors.As(err, &te) || te.Index != 3 {
				t.Fatalf("verify = %v, want tamper at index 3", err)
			}
		})
	}
}

func TestTwoWritersShareOneStore(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			f := open(t, kind, audit.Options{CheckpointEvery: 50})
			signer, verifier, _ := audit.LoadOrCreateKeys(f.keys)
			st2 := testenv.OpenStore(t, f.spec, f.dir)
			l2, err := audit.Open(context.Background(), audit.Options{Store: st2, Signer: signer, Verifier: verifier, CheckpointEvery: 50, CheckpointFile: f.cpFile})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for _, l := range []*audit.Log{f.log, l2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					appendN(t, l, 300)
				}()
			}
			wg.Wait()
			l2.Close(context.Background())
			f.log.Close(context.Background())
			rep, err := f.verify(t)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Events != 600 {
				t.Fatalf("events = %d, want 600", rep.Events)
			}
		})
	}
}

// childAppender runs in a child process: it appends events from several
// goroutines and prints "ack ID" for each one Append acknowledged.
func childAppender() int {
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv("GATEHOUSE_AUDIT_SPEC"), os.Getenv("GATEHOUSE_AUDIT_DIR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir := os.Getenv("GATEHOUSE_AUDIT_DIR")
	signer, verifier, err := audit.LoadOrCreateKeys(dir + "/keys")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := audit.Open(ctx, audit.Options{Store: st, Signer: signer, Verifier: verifier, CheckpointEvery: 500, CheckpointFile: dir + "/audit-checkpoints.log"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				ev, err := l.Append(ctx, audit.Event{Kind: audit.KindDecision, Reason: fmt.Sprintf("g%d-%d", g, i)})
				if err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %s\n", ev.ID)
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestKill9Durability kills a process that is streaming events and checks
// that every acknowledged event is in the store and the log verifies.
func TestKill9Durability(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			spec, dir := kind.Spec(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "GATEHOUSE_AUDIT_CHILD=1", "GATEHOUSE_AUDIT_SPEC="+spec, "GATEHOUSE_AUDIT_DIR="+dir)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var acked []string
			sc := bufio.NewScanner(out)
			deadline := time.Now().Add(60 * time.Second)
			for sc.Scan() {
				id, ok := strings.CutPrefix(sc.Text(), "ack ")
				if ok {
					acked = append(acked, id)
				}
				if len(acked) == 3000 || time.Now().After(deadline) {
					break
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// Acks already written to the pipe before the kill still count.
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
					acked = append(acked, id)
				}
			}
			cmd.Wait()
			if len(acked) < 3000 {
				t.Fatalf("child acknowledged only %d events", len(acked))
			}
			st := testenv.OpenStore(t, spec, dir)
			for _, id := range acked {
				if _, err := st.AuditByID(context.Background(), id); err != nil {
					t.Fatalf("acknowledged event %s lost after kill -9: %v", id, err)
				}
			}
			signer, v, err := audit.LoadOrCreateKeys(dir + "/keys")
			if err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(context.Background(), st, v, audit.VerifyOptions{CheckpointFiles: []string{dir + "/audit-checkpoints.log"}})
			if err != nil {
				t.Fatalf("verify after kill -9: %v", err)
			}
			// The next process over the store signs the tail the killed one
			// left unsigned: it extends the last checkpoint, and it is fresh.
			l, err := audit.Open(context.Background(), audit.Options{Store: st, Signer: signer, Verifier: v, CheckpointFile: dir + "/audit-checkpoints.log"})
			if err != nil {
				t.Fatal(err)
			}
			l.Close(context.Background())
			if err := l.Err(); err != nil {
				t.Fatalf("the log reopened after kill -9 refuses to sign: %v", err)
			}
			if rep, err = audit.Verify(context.Background(), st, v, audit.VerifyOptions{CheckpointFiles: []string{dir + "/audit-checkpoints.log"}}); err != nil || rep.Unsigned != 0 {
				t.Fatalf("verify after reopening: %+v %v", rep, err)
			}
			t.Logf("%d acknowledged, %d stored, %d under a checkpoint", len(acked), rep.Events, rep.Covered)
		})
	}
}

// TestLingerGathersCommits checks that with Linger events from many callers
// are committed in a few transactions, all durable and in a verifiable log.
func TestLingerGathersCommits(t *testing.T) {
	var mu sync.Mutex
	commits, events := 0, 0
	f := open(t, testenv.Stores()[0], audit.Options{Linger: 20 * time.Millisecond, OnCommit: func(n int, _, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			commits++
			events += n
		}
	}})
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				if _, err := f.log.Append(context.Background(), audit.Event{Kind: audit.KindDecision, Reason: fmt.Sprintf("%d-%d", g, i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	f.log.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if events != 200 || commits > 40 {
		t.Fatalf("%d events in %d commits; want 200 in few commits", events, commits)
	}
	if rep, err := f.verify(t); err != nil || rep.Events != 200 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestVerifyWhileAppending verifies a log that keeps growing, as `audit
// verify` does against a live gateway: appends committed during the scan
// must not read as tampering.
func TestVerifyWhileAppending(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			f := open(t, kind, audit.Options{CheckpointEvery: 5})
			appendN(t, f.log, 20)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := f.log.Append(context.Background(), audit.Event{Kind: audit.KindDecision}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			for range 30 {
				if _, err := f.verify(t); err != nil {
					close(stop)
					<-done
					t.Fatalf("verify of a growing log: %v", err)
				}
			}
			close(stop)
			<-done
		})
	}
}
