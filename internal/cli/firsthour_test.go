package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestFirstHourCLI runs, as a new user would, the commands issue 12 found
// misleading, and checks each now says what happened.
func TestFirstHourCLI(t *testing.T) {
	dir := t.TempDir()
	startUp(t, dir)
	g := gatehouse{t, dir}

	t.Run("token for an unknown connection is refused", func(t *testing.T) {
		r := g.run("token", "issue", "--agent", "a", "--connection", "warehouse", "--scope", "read")
		if r.code != exitBadInput || !strings.Contains(r.stderr, `no connection matches --connection "warehouse" (this gateway knows: gatehouse, pg)`) || r.stdout != "" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := g.run("token", "issue", "--agent", "a", "--connection", "p*", "--scope", "read"); r.code != 0 {
			t.Fatalf("a pattern matching pg: exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("inspect of an expired token exits 1", func(t *testing.T) {
		tok := strings.TrimSpace(g.ok("token", "issue", "--agent", "a", "--connection", "pg", "--scope", "read", "--ttl", "1s"))
		time.Sleep(2100 * time.Millisecond) // past exp, within the 30 s clock skew Verify allows
		r := g.run("token", "inspect", tok)
		if r.code != exitError || !strings.Contains(r.stderr, "token expired at") || !strings.Contains(r.stdout, `"sub": "a"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("agent --help names agent.yaml", func(t *testing.T) {
		out := g.ok("agent", "--help")
		if !strings.Contains(out, `--config string   agent config file (default "agent.yaml")`) || strings.Contains(out, "gatehouse.yaml") {
			t.Fatalf("agent --help:\n%s", out)
		}
	})

	t.Run("gateway without its policy directory names it", func(t *testing.T) {
		cfg, _ := os.ReadFile(filepath.Join(dir, "gatehouse.yaml"))
		other := t.TempDir()
		missing := filepath.Join(other, "no-policies")
		s := strings.Replace(string(cfg), "policies: ./policies", "policies: "+missing, 1)
		s = strings.Replace(s, "data_dir: ./.gatehouse", "data_dir: "+filepath.Join(other, "data"), 1)
		os.WriteFile(filepath.Join(other, "gatehouse.yaml"), []byte(s), 0o644)
		r := gatehouse{t, other}.run("gateway")
		if r.code == 0 || !strings.Contains(r.stderr, "policy directory "+missing+": no such file or directory; create it") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
}

// TestApprovalJSONOmitsZeroTimes: a pending approval has no decision time;
// `approvals show` printed "decided": "0001-01-01T00:00:00Z".
func TestApprovalJSONOmitsZeroTimes(t *testing.T) {
	b, err := json.Marshal(approval.Approval{ID: "ap1", Status: approval.Pending, Created: time.Now(), Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("0001-01-01")) || bytes.Contains(b, []byte(`"decided"`)) {
		t.Fatalf("pending approval JSON: %s", b)
	}
}

// TestSelfCommand: the hints `up` prints name a command that works where
// the user is: after `go run` the binary is in a build cache directory.
func TestSelfCommand(t *testing.T) {
	tests := []struct{ arg0, want string }{
		{"/tmp/go-build1234/b001/exe/gatehouse", "go run ./cmd/gatehouse"},
		{"./gatehouse", "./gatehouse"},
		{"gatehouse", "gatehouse"},
		{"/nowhere/bin/gatehouse", "/nowhere/bin/gatehouse"},
	}
	for _, tt := range tests {
		if got := selfCommand(tt.arg0); got != tt.want {
			t.Errorf("selfCommand(%q) = %q, want %q", tt.arg0, got, tt.want)
		}
	}
}

// TestRecordFilter: `audit tail` and `sessions list` select by agent,
// human (a user principal or the human an agent acts for), connection and
// time.
func TestRecordFilter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	type rec struct {
		principal, onBehalf, conn string
		at                        time.Time
	}
	bot := rec{`Agent::"report-bot"`, "alice@example.com", "pg", now.Add(-30 * time.Minute)}
	alice := rec{`User::"alice@example.com"`, "", "warehouse", now.Add(-3 * time.Hour)}
	other := rec{`Agent::"ci"`, "bob@example.com", "pg", now.Add(-time.Minute)}
	tests := []struct {
		name   string
		filter recordFilter
		want   []rec
	}{
		{"none", recordFilter{}, []rec{bot, alice, other}},
		{"agent", recordFilter{agent: "report-bot"}, []rec{bot}},
		{"human as actor or principal", recordFilter{human: "alice@example.com"}, []rec{bot, alice}},
		{"connection", recordFilter{connection: "pg"}, []rec{bot, other}},
		{"since a duration", recordFilter{since: "1h"}, []rec{bot, other}},
		{"until a time", recordFilter{until: "2026-11-01T11:00:00Z"}, []rec{alice}},
		{"combined", recordFilter{connection: "pg", human: "bob@example.com", since: "2h"}, []rec{other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.filter
			f.scan, f.maxScan = 10, 10
			if err := f.parse(now); err != nil {
				t.Fatal(err)
			}
			var got []rec
			for _, r := range []rec{bot, alice, other} {
				if f.match(r.principal, r.onBehalf, r.conn, r.at) {
					got = append(got, r)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	if err := (&recordFilter{since: "yesterday", scan: 1, maxScan: 1}).parse(now); err == nil {
		t.Fatal("--since yesterday parsed")
	}
}

// TestAuditTailShowsStatementAndFilters: the text form names the statement
// a decision was about, and --agent selects one agent's events.
func TestAuditTailShowsStatementAndFilters(t *testing.T) {
	line := formatEvent(audit.Event{Index: 7, Kind: audit.KindDecision, Principal: `Agent::"a"`, Connection: "pg", Action: "sql:delete",
		Decision: "deny", Details: map[string]string{"statement": "DELETE FROM users WHERE id = $1"}})
	if !strings.Contains(line, `statement="DELETE FROM users WHERE id = $1"`) || !strings.Contains(line, `connection="pg"`) {
		t.Fatalf("text form: %s", line)
	}

	dir := t.TempDir()
	startUp(t, dir)
	g := gatehouse{t, dir}
	g.ok("token", "issue", "--agent", "one", "--on-behalf-of", "alice@example.com", "--connection", "pg", "--scope", "read")
	g.ok("token", "issue", "--agent", "two", "--on-behalf-of", "bob@example.com", "--connection", "pg", "--scope", "read")
	out := g.ok("audit", "tail", "--agent", "one")
	if !strings.Contains(out, `principal="Agent::\"one\""`) || strings.Contains(out, `Agent::\"two\"`) {
		t.Fatalf("audit tail --agent one:\n%s", out)
	}
	if out := g.ok("audit", "tail", "--human", "bob@example.com", "--since", "1h"); !strings.Contains(out, `Agent::\"two\"`) || strings.Contains(out, `Agent::\"one\"`) {
		t.Fatalf("audit tail --human bob:\n%s", out)
	}
	if out := g.ok("audit", "tail", "--until", "1h"); strings.Contains(out, "token.issue") {
		t.Fatalf("audit tail --until 1h (ago) shows new events:\n%s", out)
	}
}
