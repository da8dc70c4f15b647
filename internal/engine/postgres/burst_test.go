package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestBurstIsNeverRefused reproduces issue 12's first finding: a client
// library's test suite, run through the gateway with a permit-all policy
// and masking off, got `cannot open the session: the audit log is
// unavailable` (57P03) on many tests, because a burst filled the audit
// queue and Enqueue refused events (ErrBackpressure) instead of slowing the
// producers down. Here 64 pgbench clients open a new session for every
// transaction (-C) for 15 s while one pgx client sends a pipeline of 10,000
// statements. No session and no statement may be refused, and afterwards
// every session's connect decision, start and end is in a log that verifies.
//
// BURST_SECONDS overrides the 15 s (a longer soak by hand).
func TestBurstIsNeverRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("burst: 15 s of load")
	}
	seconds := 15
	if s, err := strconv.Atoi(os.Getenv("BURST_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	// A small audit queue, so the burst fills it on any machine and the
	// producers' waiting (backpressure) is what the test exercises.
	h := newHarness(t, harnessOpts{
		extraPolicy: "@id(\"permit-all\")\npermit(principal, action, resource);\n",
		extraConfig: "masking: {enabled: false}\n",
		auditExtra:  ", queue_size: 64",
	})
	if out, err := exec.Command("pgbench", "-i", "-s", "1", "-q", h.upstream).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v: %s", err, out)
	}
	tok := h.token("burst", "write")

	var wg sync.WaitGroup
	var benchOut []byte
	var benchErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		// -C: a new connection, so a new gateway session, per transaction.
		benchOut, benchErr = exec.Command("pgbench", "-n", "-C", "-c", "64", "-j", "4", "-T", strconv.Itoa(seconds),
			"-S", "-M", "extended", h.dsn(tok)).CombinedOutput()
	}()

	const pipelined = 10_000
	var pipeErr error
	var pipeRows int
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipeRows, pipeErr = runPipeline(h.dsn(tok), pipelined)
	}()
	wg.Wait()

	if benchErr != nil {
		t.Fatalf("pgbench: %v\n%s", benchErr, benchOut)
	}
	out := string(benchOut)
	processed := regexp.MustCompile(`number of transactions actually processed: (\d+)`).FindStringSubmatch(out)
	if processed == nil || strings.Contains(out, "FATAL") || strings.Contains(out, "ERROR") {
		t.Fatalf("pgbench reported errors:\n%s", out)
	}
	if m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(out); m != nil && m[1] != "0" {
		t.Fatalf("pgbench: %s failed transactions:\n%s", m[1], out)
	}
	if pipeErr != nil {
		t.Errorf("pipeline of %d statements: %v", pipelined, pipeErr)
	} else if pipeRows != pipelined {
		t.Errorf("pipeline returned %d results, want %d", pipeRows, pipelined)
	}
	sessions, _ := strconv.Atoi(processed[1])
	waits := counterValue(t, h.gw.Metrics.AuditQueueWaits.WithLabelValues("queued"))
	refusals := counterValue(t, h.gw.Metrics.AuditQueueWaits.WithLabelValues("refused"))
	t.Logf("pgbench: %d sessions in %d s; %v audit events waited for room in the queue", sessions, seconds, waits)
	if waits == 0 || refusals != 0 {
		t.Errorf("audit queue waits: %v queued, %v refused; want the burst to have filled the queue and nothing refused", waits, refusals)
	}

	// Every event is in a log that verifies once the gateway has stopped
	// and signed its final checkpoint.
	counts, rep, err := stoppedAudit(t, h)
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if counts["session.start"] < sessions || counts["session.end"] != counts["session.start"] || counts["connect.allow"] < counts["session.start"] {
		t.Fatalf("audit log (%d events) has %v for %d pgbench sessions: session events were lost", rep.Events, counts, sessions)
	}
	if counts["decision.deny"] != 0 || counts["decision.error"] != 0 {
		t.Fatalf("audit log has refusals: %v", counts)
	}
}

// runPipeline sends n SELECTs in one pgx batch (one pipeline: every
// Parse/Bind/Execute before the first Sync is read back) and counts the
// results.
func runPipeline(dsn string, n int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer c.Close(ctx)
	b := &pgx.Batch{}
	for i := range n {
		b.Queue("SELECT abalance FROM pgbench_accounts WHERE aid = $1", i%100_000+1)
	}
	br := c.SendBatch(ctx, b)
	got := 0
	for i := range n {
		var v int
		if err := br.QueryRow().Scan(&v); err != nil {
			br.Close()
			return got, fmt.Errorf("statement %d: %w", i, err)
		}
		got++
	}
	return got, br.Close()
}

// stoppedAudit stops the gateway (its final checkpoint covers every event),
// verifies its log as `audit verify` on the host does, and counts the
// events by kind, connect decisions by outcome, and other refused
// decisions.
func stoppedAudit(t *testing.T, h *harness) (map[string]int, audit.Report, error) {
	t.Helper()
	if err := h.stop(); err != nil {
		t.Fatalf("gateway stop: %v", err)
	}
	ctx := context.Background()
	cfg := h.gw.Config
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, verifier, err := audit.LoadOrCreateKeys(cfg.KeysDir())
	if err != nil {
		t.Fatal(err)
	}
	rep, verr := audit.Verify(ctx, st, verifier, app.AuditVerifyOptions(cfg))
	counts := map[string]int{}
	err = st.ScanAudit(ctx, 0, func(r store.AuditRecord) error {
		var ev audit.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return err
		}
		counts[ev.Kind]++
		switch {
		case ev.Kind == audit.KindDecision && ev.Action == "connect":
			counts["connect."+ev.Decision]++
		case ev.Kind == audit.KindDecision && ev.Decision != "allow":
			counts["decision."+ev.Decision]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts, rep, verr
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
