package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func spec(fp string) approval.StatementSpec {
	return approval.StatementSpec{Principal: `Agent::"bot"`, Subject: "bot", OnBehalfOf: "alice", Connection: "pg",
		Statement: "ALTER TABLE t ADD COLUMN x int", Fingerprint: fp, Policy: "scope-ddl", Group: "admins", Required: 2}
}

var (
	bob   = approval.Reviewer{ID: "bob", Groups: []string{"admins"}}
	carol = approval.Reviewer{ID: "carol", Groups: []string{"admins"}}
)

func TestLifecycleOnBothStores(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			spec0, dir := kind.Spec(t)
			st := testenv.OpenStore(t, spec0, dir)
			clk := &clock{t: time.Now()}
			svc := approval.New(approval.Options{Store: st, Timeout: time.Minute, Now: clk.now, Poll: 10 * time.Millisecond})
			ctx := context.Background()

			a, err := svc.RequestStatement(ctx, spec("fp1"))
			if err != nil {
				t.Fatal(err)
			}
			again, _ := svc.RequestStatement(ctx, spec("fp1"))
			if again.ID != a.ID {
				t.Fatal("a retried statement opened a second approval")
			}
			// A restarted gateway (a new service on the same store) sees it.
			svc2 := approval.New(approval.Options{Store: testenv.OpenStore(t, spec0, dir), Timeout: time.Minute, Now: clk.now})
			if got, err := svc2.Get(ctx, a.ID); err != nil || got.Status != approval.Pending {
				t.Fatalf("after restart: %+v %v", got, err)
			}
			// Two of admins are needed; the same reviewer twice counts once.
			if got, err := svc.Approve(ctx, a.ID, bob, ""); err != nil || got.Status != approval.Pending {
				t.Fatalf("first approval: %+v %v", got, err)
			}
			if _, err := svc.Approve(ctx, a.ID, bob, ""); err == nil {
				t.Fatal("bob approved twice")
			}
			if got, err := svc2.Approve(ctx, a.ID, carol, "ok"); err != nil || got.Status != approval.Approved {
				t.Fatalf("second approval: %+v %v", got, err)
			}
			found, err := svc.FindApproved(ctx, `Agent::"bot"`, "fp1")
			if err != nil || found == nil {
				t.Fatalf("find approved: %v", err)
			}
			if other, _ := svc.FindApproved(ctx, `Agent::"bot"`, "fp2"); other != nil {
				t.Fatal("an approval matched another fingerprint")
			}
			if err := svc.Use(ctx, found); err != nil {
				t.Fatal(err)
			}
			if err := svc.Use(ctx, found); err == nil {
				t.Fatal("a single-use approval was used twice")
			}

			// Expiry.
			b, _ := svc.RequestStatement(ctx, spec("fp3"))
			clk.add(2 * time.Minute)
			if got, _ := svc.Get(ctx, b.ID); got.Status != approval.Expired {
				t.Fatalf("status after timeout = %s", got.Status)
			}
			if _, err := svc.Approve(ctx, b.ID, bob, ""); !errors.Is(err, approval.ErrNotPending) {
				t.Fatalf("approving an expired request: %v", err)
			}
		})
	}
}

func TestReviewRules(t *testing.T) {
	st := testenv.OpenStore(t, "sqlite", t.TempDir())
	svc := approval.New(approval.Options{Store: st})
	ctx := context.Background()
	a, _ := svc.RequestStatement(ctx, spec("fp"))
	for _, tc := range []struct {
		name string
		r    approval.Reviewer
		want error
	}{
		{"the agent itself", approval.Reviewer{ID: "bot", Groups: []string{"admins"}}, approval.ErrSelfApproval},
		{"the human it acts for", approval.Reviewer{ID: "alice", Groups: []string{"admins"}}, approval.ErrSelfApproval},
		{"not in the group", approval.Reviewer{ID: "dave", Groups: []string{"devs"}}, approval.ErrNotReviewer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.Approve(ctx, a.ID, tc.r, ""); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// A CLI administrator counts as a member of every group.
	if got, err := svc.Deny(ctx, a.ID, approval.Reviewer{ID: "cli:root@host", Admin: true}, "no"); err != nil || got.Status != approval.Denied {
		t.Fatalf("admin deny: %+v %v", got, err)
	}
}

func TestWaitSeesDecisionFromAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	st := testenv.OpenStore(t, "sqlite", dir)
	svc := approval.New(approval.Options{Store: st, Poll: 20 * time.Millisecond})
	other := approval.New(approval.Options{Store: testenv.OpenStore(t, "sqlite", dir)})
	ctx := context.Background()
	s := spec("fp")
	s.Required = 1
	a, _ := svc.RequestStatement(ctx, s)
	go func() {
		time.Sleep(100 * time.Millisecond)
		other.Approve(ctx, a.ID, bob, "")
	}()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := svc.Wait(wctx, a.ID)
	if err != nil || got.Status != approval.Approved {
		t.Fatalf("wait: %+v %v", got, err)
	}
}

func TestSlackMessage(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer srv.Close()
	n := &approval.Notifier{Hooks: []approval.Webhook{{URL: srv.URL, Format: "slack"}}, GatewayURL: "https://gw.example"}
	n.Send(&approval.Approval{ID: "apr_1", Kind: approval.KindStatement, Principal: `Agent::"bot"`, OnBehalfOf: "alice",
		Connection: "pg", Statement: "DROP INDEX i", Policy: "scope-ddl", Group: "admins", Required: 1})
	var msg struct{ Text string }
	select {
	case b := <-got:
		json.Unmarshal([]byte(b), &msg)
	case <-time.After(5 * time.Second):
		t.Fatal("no slack message")
	}
	for _, want := range []string{"DROP INDEX i", `Agent::"bot"`, "alice", "scope-ddl", "gatehouse approvals approve apr_1", "gatehouse approvals deny apr_1", "https://gw.example/v1/approvals/apr_1/approve"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("slack text lacks %q:\n%s", want, msg.Text)
		}
	}
}

func TestWebhookRetries(t *testing.T) {
	var mu sync.Mutex
	tries := 0
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if tries < 3 {
			http.Error(w, "busy", 503)
			return
		}
		close(done)
	}))
	defer srv.Close()
	n := &approval.Notifier{Hooks: []approval.Webhook{{URL: srv.URL, Secret: []byte("s")}}, Backoff: 10 * time.Millisecond}
	n.Send(&approval.Approval{ID: "apr_2"})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("webhook not delivered after retries (%d tries)", tries)
	}
}

func TestImports(t *testing.T) {
	testenv.ForbidImports(t, "approval", append(testenv.AboveCore, "identity", "policy", "config")...)
}
