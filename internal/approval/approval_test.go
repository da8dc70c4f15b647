package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
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

// op is a held DDL statement by agent bot for alice; text tells them apart.
func op(text string) approval.Operation {
	return approval.Operation{Principal: `Agent::"bot"`, OnBehalfOf: "alice", Connection: "pg", Database: "app",
		Action: "sql:ddl", Text: text}
}

func spec(text string) approval.HoldSpec {
	return approval.HoldSpec{Operation: op(text), Subject: "bot", Summary: "ALTER TABLE t ADD COLUMN x int",
		Policy: "scope-ddl", Group: "admins", Required: 2}
}

// human is a User reviewer in groups.
func human(id string, groups ...string) approval.Reviewer {
	return approval.Reviewer{ID: id, Type: "User", Groups: groups}
}

var (
	bob   = human("bob", "admins")
	carol = human("carol", "admins")
)

func TestLifecycleOnBothStores(t *testing.T) {
	for _, kind := range testenv.Stores() {
		t.Run(kind.Name, func(t *testing.T) {
			spec0, dir := kind.Spec(t)
			st := testenv.OpenStore(t, spec0, dir)
			clk := &clock{t: time.Now()}
			svc := approval.New(approval.Options{Store: st, Timeout: time.Minute, Now: clk.now, Poll: 10 * time.Millisecond})
			ctx := context.Background()

			a, err := svc.RequestOperation(ctx, spec("ALTER TABLE t ADD COLUMN x int"))
			if err != nil {
				t.Fatal(err)
			}
			again, _ := svc.RequestOperation(ctx, spec("ALTER TABLE t ADD COLUMN x int"))
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
			found, err := svc.FindApproved(ctx, op("ALTER TABLE t ADD COLUMN x int"))
			if err != nil || found == nil {
				t.Fatalf("find approved: %v", err)
			}
			if other, _ := svc.FindApproved(ctx, op("ALTER TABLE t ADD COLUMN y int")); other != nil {
				t.Fatal("an approval matched another operation")
			}
			if err := svc.Use(ctx, found); err != nil {
				t.Fatal(err)
			}
			if err := svc.Use(ctx, found); err == nil {
				t.Fatal("a single-use approval was used twice")
			}

			// Expiry.
			b, _ := svc.RequestOperation(ctx, spec("ALTER TABLE t ADD COLUMN z int"))
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
	a, _ := svc.RequestOperation(ctx, spec("ALTER TABLE t ADD COLUMN x int"))
	for _, tc := range []struct {
		name string
		r    approval.Reviewer
		want error
	}{
		{"the agent itself", approval.Reviewer{ID: "bot", Type: "Agent", Groups: []string{"admins"}}, approval.ErrSelfApproval},
		{"the human it acts for", human("alice", "admins"), approval.ErrSelfApproval},
		{"another agent acting for the same human", approval.Reviewer{ID: "helper", Type: "Agent", OnBehalfOf: "alice", Groups: []string{"admins"}}, approval.ErrSelfApproval},
		{"not in the group", human("dave", "devs"), approval.ErrNotReviewer},
		{"an agent in the group", approval.Reviewer{ID: "ci", Type: "Agent", Groups: []string{"admins"}}, approval.ErrNotReviewer},
		{"no principal type", approval.Reviewer{ID: "erin", Groups: []string{"admins"}}, approval.ErrNotReviewer},
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
	s := spec("ALTER TABLE t ADD COLUMN x int")
	s.Required = 1
	a, _ := svc.RequestOperation(ctx, s)
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

// slackText sends a to a Slack-format hook and returns the message text.
func slackText(t *testing.T, gatewayURL string, a *approval.Approval) string {
	t.Helper()
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer srv.Close()
	n := &approval.Notifier{Hooks: []approval.Webhook{{URL: srv.URL, Format: "slack"}}, GatewayURL: gatewayURL}
	n.Send(a)
	var msg struct{ Text string }
	select {
	case b := <-got:
		json.Unmarshal([]byte(b), &msg)
	case <-time.After(5 * time.Second):
		t.Fatal("no slack message")
	}
	return msg.Text
}

func TestSlackMessage(t *testing.T) {
	text := slackText(t, "https://gw.example", &approval.Approval{ID: "apr_1", Kind: approval.KindStatement, Principal: `Agent::"bot"`, OnBehalfOf: "alice",
		Connection: "pg", Statement: "DROP INDEX i", Policy: "scope-ddl", Group: "admins", Required: 1})
	msg := struct{ Text string }{text}
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

// TestFingerprintCoversEveryField: an approval binds every field of the
// operation; two operations that differ in any one never share a
// fingerprint (a text and a binary parameter with the same bytes are
// different values).
func TestFingerprintCoversEveryField(t *testing.T) {
	base := approval.Operation{Connection: "pg", Database: "app", Action: "sql:update", Principal: `Agent::"bot"`, OnBehalfOf: "alice",
		Text: "UPDATE t SET a = $1 WHERE id = $2", Params: []approval.Param{{Format: "text", Value: []byte("1")}, {Format: "text", Type: "23", Value: []byte("7")}}}
	variants := map[string]func(o *approval.Operation){
		"connection":            func(o *approval.Operation) { o.Connection = "pg2" },
		"database":              func(o *approval.Operation) { o.Database = "other" },
		"action":                func(o *approval.Operation) { o.Action = "sql:delete" },
		"principal":             func(o *approval.Operation) { o.Principal = `Agent::"bot2"` },
		"principal type":        func(o *approval.Operation) { o.Principal = `User::"bot"` },
		"human":                 func(o *approval.Operation) { o.OnBehalfOf = "bob" },
		"no human":              func(o *approval.Operation) { o.OnBehalfOf = "" },
		"text literal":          func(o *approval.Operation) { o.Text = "UPDATE t SET a = $1 WHERE id = $2 OR true" },
		"parameter value":       func(o *approval.Operation) { o.Params[0].Value = []byte("2") },
		"parameter format":      func(o *approval.Operation) { o.Params[0].Format = "binary" },
		"parameter type":        func(o *approval.Operation) { o.Params[0].Type = "25" },
		"parameter null":        func(o *approval.Operation) { o.Params[0] = approval.Param{Format: "text", Null: true} },
		"empty parameter":       func(o *approval.Operation) { o.Params[0].Value = nil },
		"parameters swapped":    func(o *approval.Operation) { o.Params[0], o.Params[1] = o.Params[1], o.Params[0] },
		"one parameter fewer":   func(o *approval.Operation) { o.Params = o.Params[:1] },
		"one parameter more":    func(o *approval.Operation) { o.Params = append(o.Params, approval.Param{Format: "text"}) },
		"field boundary moved":  func(o *approval.Operation) { o.Database, o.Connection = "papp", "" },
		"value moved into type": func(o *approval.Operation) { o.Params[0].Type, o.Params[0].Value = "1", nil },
	}
	seen := map[string]string{base.Fingerprint(): "base"}
	for name, change := range variants {
		o := base
		o.Params = append([]approval.Param(nil), base.Params...)
		change(&o)
		fp := o.Fingerprint()
		if other, ok := seen[fp]; ok {
			t.Errorf("%s: same fingerprint as %s", name, other)
		}
		seen[fp] = name
	}
	if base.Fingerprint() != base.Fingerprint() {
		t.Error("the fingerprint is not stable")
	}
}

// TestOperationShownExactly: what reviewers read is the exact text and
// every parameter, and it survives the store.
func TestOperationShownExactly(t *testing.T) {
	st := testenv.OpenStore(t, "sqlite", t.TempDir())
	svc := approval.New(approval.Options{Store: st})
	ctx := context.Background()
	sp := spec(`CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM t'`)
	sp.Summary = `CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $1`
	sp.Operation.Params = []approval.Param{{Format: "text", Value: []byte("it's")}, {Format: "binary", Type: "23", Value: []byte{0, 0, 0, 7}}, {Format: "text", Null: true}}
	a, err := svc.RequestOperation(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Operation == nil || got.Operation.Fingerprint() != a.Fingerprint || got.Fingerprint != sp.Operation.Fingerprint() {
		t.Fatalf("stored operation %+v does not match its fingerprint", got.Operation)
	}
	shown := got.Operation.Describe()
	for _, want := range []string{`AS 'DELETE FROM t'`, `$1 = "it's" (text)`, `$2 = \x00000007 (binary, type 23)`, `$3 = NULL (text)`} {
		if !strings.Contains(shown, want) {
			t.Errorf("reviewers read %q, which lacks %q", shown, want)
		}
	}
}

// TestBoundToPrincipalAndHuman: an approval for (bot, alice) is used by
// nobody else, its reuse window included.
func TestBoundToPrincipalAndHuman(t *testing.T) {
	st := testenv.OpenStore(t, "sqlite", t.TempDir())
	svc := approval.New(approval.Options{Store: st})
	ctx := context.Background()
	sp := spec("ALTER TABLE t ADD COLUMN x int")
	sp.Required, sp.Window = 1, time.Hour
	a, _ := svc.RequestOperation(ctx, sp)
	if _, err := svc.Approve(ctx, a.ID, bob, ""); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(o *approval.Operation){
		"same agent, another human": func(o *approval.Operation) { o.OnBehalfOf = "bob" },
		"same agent, no human":      func(o *approval.Operation) { o.OnBehalfOf = "" },
		"another agent, same human": func(o *approval.Operation) { o.Principal = `Agent::"bot2"` },
		"another database":          func(o *approval.Operation) { o.Database = "other" },
	} {
		o := sp.Operation
		change(&o)
		if found, err := svc.FindApproved(ctx, o); err != nil || found != nil {
			t.Errorf("%s: found %v (%v)", name, found, err)
		}
		if other, _ := svc.RequestOperation(ctx, approval.HoldSpec{Operation: o, Group: "admins"}); other == nil || other.ID == a.ID {
			t.Errorf("%s: the pending request is not its own", name)
		}
	}
	for range 2 { // within the window, repeats by the same pair
		found, err := svc.FindApproved(ctx, sp.Operation)
		if err != nil || found == nil || found.ID != a.ID {
			t.Fatalf("the same pair within the window: %v %v", found, err)
		}
		if err := svc.Use(ctx, found); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWhoDecidesAndSees: with the default rule, humans in the reviewer
// group decide; they, the requester and the human it acted for see it;
// agents decide nothing whatever their groups; a CLI administrator does
// all. An Authorizer replaces the rule, but never allows self-approval.
func TestWhoDecidesAndSees(t *testing.T) {
	st := testenv.OpenStore(t, "sqlite", t.TempDir())
	ctx := context.Background()
	requester := approval.Reviewer{ID: "bot", Type: "Agent", OnBehalfOf: "alice"}
	cases := []struct {
		name         string
		r            approval.Reviewer
		sees, decide bool
	}{
		{"reviewer", bob, true, true},
		{"CLI administrator", approval.Reviewer{ID: "cli:root@gw", Admin: true}, true, true},
		{"the requesting agent", requester, true, false},
		{"the requesting agent for another human", approval.Reviewer{ID: "bot", Type: "Agent", OnBehalfOf: "mallory"}, false, false},
		{"the human it acted for", human("alice"), true, false},
		{"an agent in the group", approval.Reviewer{ID: "ci", Type: "Agent", Groups: []string{"admins"}}, false, false},
		{"an agent acting for a reviewer", approval.Reviewer{ID: "ci", Type: "Agent", OnBehalfOf: "bob", Groups: []string{"admins"}}, false, false},
		{"an unrelated agent", approval.Reviewer{ID: "nosy", Type: "Agent"}, false, false},
		{"a human outside the group", human("dave", "devs"), false, false},
	}
	svc := approval.New(approval.Options{Store: st})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := svc.RequestOperation(ctx, spec("ALTER TABLE t ADD COLUMN "+strings.ReplaceAll(tc.name, " ", "_")+" int"))
			list, err := svc.ListFor(ctx, tc.r, "")
			if err != nil {
				t.Fatal(err)
			}
			listed := slices.ContainsFunc(list, func(x *approval.Approval) bool { return x.ID == a.ID })
			_, gerr := svc.GetFor(ctx, tc.r, a.ID)
			if listed != tc.sees || (gerr == nil) != tc.sees {
				t.Errorf("sees: listed %v, get %v; want %v", listed, gerr, tc.sees)
			}
			if !tc.sees && !errors.Is(gerr, approval.ErrNotVisible) {
				t.Errorf("get: %v, want ErrNotVisible", gerr)
			}
			got, err := svc.Deny(ctx, a.ID, tc.r, "no")
			if (err == nil) != tc.decide {
				t.Errorf("decide: %v, want %v", err, tc.decide)
			}
			if err != nil && got != nil {
				t.Errorf("a refused reviewer was shown the approval: %+v", got)
			}
		})
	}

	// A policy may let agents review; nobody reviews their own request.
	agents := approval.New(approval.Options{Store: st, Authorize: func(context.Context, approval.Reviewer, string, *approval.Approval) error { return nil }})
	a, _ := agents.RequestOperation(ctx, spec("ALTER TABLE t ADD COLUMN by_agent int"))
	if _, err := agents.Approve(ctx, a.ID, requester, ""); !errors.Is(err, approval.ErrSelfApproval) {
		t.Fatalf("self approval under an allow-all policy: %v", err)
	}
	if _, err := agents.Approve(ctx, a.ID, human("alice"), ""); !errors.Is(err, approval.ErrSelfApproval) {
		t.Fatalf("approval by the human acted for under an allow-all policy: %v", err)
	}
	sp := spec("ALTER TABLE t ADD COLUMN by_agent2 int")
	a, _ = agents.RequestOperation(ctx, sp)
	helper := approval.Reviewer{ID: "reviewer-bot", Type: "Agent", OnBehalfOf: "bob"}
	if _, err := agents.Approve(ctx, a.ID, helper, ""); err != nil {
		t.Fatalf("an agent a policy allows: %v", err)
	}
	// bob, through his agent, has reviewed: bob himself does not count twice.
	if _, err := agents.Approve(ctx, a.ID, human("bob", "admins"), ""); !errors.Is(err, approval.ErrBadRequest) {
		t.Fatalf("the same human twice: %v", err)
	}
	refuse := approval.New(approval.Options{Store: st, Authorize: func(context.Context, approval.Reviewer, string, *approval.Approval) error {
		return errors.New(`denied by policy "nobody"`)
	}})
	a, _ = refuse.RequestOperation(ctx, spec("ALTER TABLE t ADD COLUMN refused int"))
	if _, err := refuse.Approve(ctx, a.ID, bob, ""); !errors.Is(err, approval.ErrNotReviewer) || !strings.Contains(err.Error(), `"nobody"`) {
		t.Fatalf("a reviewer the policy refuses: %v", err)
	}
	if _, err := refuse.Approve(ctx, a.ID, approval.Reviewer{ID: "cli:root@gw", Admin: true}, ""); err != nil {
		t.Fatalf("the CLI administrator is not asked about: %v", err)
	}
}

// TestAuditHasNoLiterals: audit events name the normalised statement and
// the approval id, never the exact text, a parameter value or the
// operation's fingerprint (which a short literal could be recovered from).
func TestAuditHasNoLiterals(t *testing.T) {
	dir := t.TempDir()
	st := testenv.OpenStore(t, "sqlite", dir)
	signer, verifier, err := audit.LoadOrCreateKeys(dir + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(context.Background(), audit.Options{Store: st, Signer: signer, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	svc := approval.New(approval.Options{Store: st, Audit: log})
	ctx := context.Background()
	sp := spec("UPDATE cards SET pan = '4111111111111111' WHERE id = $1")
	sp.Summary, sp.Required = "UPDATE cards SET pan = $1 WHERE id = $2", 1
	sp.Operation.Params = []approval.Param{{Format: "text", Value: []byte("98765")}}
	a, _ := svc.RequestOperation(ctx, sp)
	if _, err := svc.Approve(ctx, a.ID, approval.Reviewer{ID: "ci", Type: "Agent", Groups: []string{"admins"}}, ""); err == nil {
		t.Fatal("an agent approved")
	}
	if _, err := svc.Approve(ctx, a.ID, bob, ""); err != nil {
		t.Fatal(err)
	}
	found, _ := svc.FindApproved(ctx, sp.Operation)
	if err := svc.Use(ctx, found); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	err = st.ScanAudit(ctx, 0, func(r store.AuditRecord) error {
		body := string(r.Body)
		for _, secret := range []string{"4111111111111111", "98765", a.Fingerprint} {
			if strings.Contains(body, secret) {
				t.Errorf("audit event carries %q: %s", secret, body)
			}
		}
		var ev struct{ Kind string }
		json.Unmarshal(r.Body, &ev)
		kinds = append(kinds, ev.Kind)
		if ev.Kind != "" && !strings.Contains(body, a.ID) {
			t.Errorf("audit event does not name the approval: %s", body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"approval.requested", "approval.refused", "approval.approved", "approval.used"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("no %s event among %v", want, kinds)
		}
	}
}

// TestSlackShowsExactOperation: the Slack message shows reviewers the exact
// text and parameters, and requester-controlled text can neither end the
// code block (to pose as Gatehouse's own lines) nor mention or link.
func TestSlackShowsExactOperation(t *testing.T) {
	text := "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM t' -- ```\nPolicy: harmless <!channel> <https://evil.example|docs>"
	msg := struct{ Text string }{slackText(t, "", &approval.Approval{ID: "apr_3", Kind: approval.KindStatement, Principal: `Agent::"bot"`, Connection: "pg",
		Statement: "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $1", Group: "admins", Required: 1,
		Operation: &approval.Operation{Action: "sql:ddl", Text: text, Params: []approval.Param{{Format: "text", Value: []byte("v1")}}}})}
	if !strings.Contains(msg.Text, "AS 'DELETE FROM t'") || !strings.Contains(msg.Text, `$1 = "v1" (text)`) {
		t.Errorf("slack text does not show the exact operation:\n%s", msg.Text)
	}
	if strings.Count(msg.Text, "```") != 2 || strings.Contains(msg.Text, "<!channel>") || strings.Contains(msg.Text, "<https://evil") {
		t.Errorf("requester text is live in the slack message:\n%s", msg.Text)
	}
}
