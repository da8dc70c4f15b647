package audit_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// export writes the log as `gatehouse audit export --format jsonl` does.
func export(t *testing.T, st store.Store, path string, keep func(i int64, body []byte) []byte) {
	t.Helper()
	var buf bytes.Buffer
	err := st.ScanAudit(context.Background(), 0, func(r store.AuditRecord) error {
		if b := keep(r.Index, r.Body); b != nil {
			buf.Write(b)
			buf.WriteByte('\n')
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyExport checks an export offline, against the checkpoint file
// alone: intact, a shorter copy taken earlier, and doctored copies.
func TestVerifyExport(t *testing.T) {
	f := open(t, testenv.Stores()[0], audit.Options{CheckpointEvery: 10})
	appendN(t, f.log, 30)
	f.log.Close(context.Background())
	_, v, _ := audit.LoadOrCreateKeys(f.keys)
	offline := audit.VerifyOptions{CheckpointFiles: []string{f.cpFile}, Export: true}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	same := func(_ int64, b []byte) []byte { return b }
	tests := []struct {
		name     string
		keep     func(int64, []byte) []byte
		tampered bool
	}{
		{"intact", same, false},
		{"taken before the last events", func(i int64, b []byte) []byte {
			if i >= 25 {
				return nil
			}
			return b
		}, false},
		{"an event edited", func(i int64, b []byte) []byte {
			if i == 7 {
				return bytes.Replace(b, []byte(`"allow"`), []byte(`"deny"`), 1)
			}
			return b
		}, true},
		{"an event dropped", func(i int64, b []byte) []byte {
			if i == 7 {
				return nil
			}
			return b
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export(t, f.st, path, tt.keep)
			rep, err := audit.Verify(context.Background(), audit.ExportFile(path), v, offline)
			if tt.tampered != audit.IsTampered(err) || (!tt.tampered && err != nil) {
				t.Fatalf("verify export: %+v %v; want tampered=%v", rep, err, tt.tampered)
			}
			if !tt.tampered && rep.Covered == 0 {
				t.Fatalf("export verified against no checkpoint: %+v", rep)
			}
		})
	}
}

// TestCheckpointFileTornRecord: a crash in the middle of writing the
// checkpoint file leaves a partial record; the next process's records still
// read, and verification skips the partial one and says so.
func TestCheckpointFileTornRecord(t *testing.T) {
	f := open(t, testenv.Stores()[0], audit.Options{})
	appendN(t, f.log, 3)
	f.log.Close(context.Background())
	raw, err := os.ReadFile(f.cpFile)
	if err != nil || !bytes.HasSuffix(raw, []byte("\n\n")) {
		t.Fatalf("checkpoint file %q: %v", raw, err)
	}
	last := raw[bytes.LastIndex(raw[:len(raw)-1], []byte("\n"+audit.Origin+"\n"))+1:]
	fh, _ := os.OpenFile(f.cpFile, os.O_WRONLY|os.O_APPEND, 0)
	fh.Write(last[:len(last)-20]) // torn in the middle of the signature
	fh.Close()
	l := f.openLog(t, audit.Options{})
	appendN(t, l, 3)
	l.Close(context.Background())
	if err := l.Err(); err != nil {
		t.Fatalf("log after a torn checkpoint record: %v", err)
	}
	_, v, _ := audit.LoadOrCreateKeys(f.keys)
	heads, torn, err := audit.ReadCheckpointFile(f.cpFile, v)
	if err != nil || torn != 1 || len(heads) < 2 || heads[len(heads)-1].Size != 6 {
		t.Fatalf("read after a torn record: %d heads (%+v), %d torn, %v", len(heads), heads, torn, err)
	}
	if rep, err := f.verify(t); err != nil || rep.Torn != 1 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// witness is a minimal witness as docs/audit.md describes one: it appends
// every note POSTed to it to a file, which is then a checkpoint file. It
// fails its first failures requests, and hangs while hang is set.
type witness struct {
	t        *testing.T
	path     string
	mu       sync.Mutex
	failures int
	hang     bool
	got      int
}

func (w *witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hang {
		w.mu.Unlock()
		<-r.Context().Done()
		w.mu.Lock()
		return
	}
	if err != nil || r.Method != http.MethodPost || !strings.HasPrefix(string(body), audit.Origin+"\n") {
		http.Error(rw, "not a checkpoint", http.StatusBadRequest)
		return
	}
	if w.failures > 0 {
		w.failures--
		http.Error(rw, "busy", http.StatusServiceUnavailable)
		return
	}
	fh, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		w.t.Error(err)
		return
	}
	fh.Write(append(body, '\n'))
	fh.Close()
	w.got++
}

func (w *witness) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got
}

// TestWitness: checkpoints reach the witness even when it refuses at first;
// its copy checks as a checkpoint file; and a witness that hangs holds up
// neither appends nor, for long, Close.
func TestWitness(t *testing.T) {
	w := &witness{t: t, path: filepath.Join(t.TempDir(), "witness.log"), failures: 2}
	srv := httptest.NewServer(w)
	defer srv.Close()
	logs := &testenv.Buffer{}
	f := open(t, testenv.Stores()[0], audit.Options{CheckpointEvery: 5, CheckpointInterval: 20 * time.Millisecond, WitnessURL: srv.URL + "/add?token=s3cret",
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	appendN(t, f.log, 20)
	deadline := time.Now().Add(15 * time.Second)
	for w.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the witness never got a checkpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.mu.Lock()
	w.hang = true
	w.mu.Unlock()
	start := time.Now()
	appendN(t, f.log, 50)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("50 appends took %s with a hanging witness", took)
	}
	start = time.Now()
	f.log.Close(context.Background())
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %s with a hanging witness", took)
	}
	_, v, _ := audit.LoadOrCreateKeys(f.keys)
	rep, err := audit.Verify(context.Background(), f.st, v, audit.VerifyOptions{CheckpointFiles: []string{f.cpFile, w.path}})
	if err != nil || rep.External < 2 {
		t.Fatalf("verify with the witness's copy: %+v %v", rep, err)
	}
	if l := logs.String(); !strings.Contains(l, "witness did not take") || strings.Contains(l, "s3cret") {
		t.Fatalf("witness failures not logged, or logged with the URL's secret:\n%s", l)
	}
}
