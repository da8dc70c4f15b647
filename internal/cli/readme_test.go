package cli

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/spf13/cobra"
)

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	lang  string
	lines []string
}

// readmeSection returns the fenced blocks under the README heading.
func readmeSection(t *testing.T, heading string) []readmeBlock {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(raw), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var out []readmeBlock
	var cur *readmeBlock
	for _, line := range strings.Split(sec, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.TrimPrefix(line, "```")}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
	}
	return out
}

// shellCommand is one command of a sh block and the output its "#   "
// comment lines promise.
type shellCommand struct {
	text   string
	expect []string
}

// shellCommands splits a sh block into commands: continued lines (a
// trailing backslash, an open single quote) join the command, and "#   "
// lines after it are what its output must contain.
func shellCommands(lines []string) []shellCommand {
	var out []shellCommand
	var acc []string
	for _, line := range lines {
		if len(acc) == 0 {
			if exp, ok := strings.CutPrefix(line, "#   "); ok && len(out) > 0 {
				out[len(out)-1].expect = append(out[len(out)-1].expect, strings.TrimSpace(exp))
				continue
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
		}
		acc = append(acc, line)
		joined := strings.Join(acc, "\n")
		if strings.HasSuffix(line, "\\") || strings.Count(joined, "'")%2 == 1 {
			continue
		}
		out = append(out, shellCommand{text: joined})
		acc = nil
	}
	return out
}

// TestReadmeFirstSession runs README.md's "A first session" as a new user
// would, against a real PostgreSQL: it builds the binary, lets `up` write
// the starter config and policies, adds the connection the README shows,
// restarts `up` and runs every command of the session in one shell,
// checking each exits 0 (or fails where the README shows an ERROR) and
// prints what the README's "#   " lines say. Only what this machine needs
// is changed in the text: the gateway's ports, and the upstream's address,
// database and user.
func TestReadmeFirstSession(t *testing.T) {
	testenv.PostgresAdminURL(t) // skips without the test PostgreSQL
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	blocks := readmeSection(t, "## A first session")
	if len(blocks) != 3 || blocks[0].lang != "sh" || blocks[1].lang != "yaml" || blocks[2].lang != "sh" {
		t.Fatalf("the section's blocks changed shape (sh, yaml, sh): %+v", blocks)
	}
	dir := t.TempDir()
	root, _ := filepath.Abs("../..")

	// Block 1: build, and the first `up`, which writes the starter.
	build, up := blocks[0].lines[0], blocks[0].lines[1]
	if build != "go build -o gatehouse ./cmd/gatehouse" || !strings.HasPrefix(up, "./gatehouse up &") {
		t.Fatalf("block 1 changed: %q", blocks[0].lines)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "gatehouse"), "./cmd/gatehouse")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	first := startGatehouse(t, dir, nil)
	waitFor(t, 60*time.Second, "up to write gatehouse.yaml and ./policies", func() bool {
		_, e1 := os.Stat(filepath.Join(dir, "gatehouse.yaml"))
		_, e2 := os.Stat(filepath.Join(dir, "policies", "scopes.cedar"))
		return e1 == nil && e2 == nil
	})
	first.stop()

	// The yaml block, as the user writes it, with this machine's upstream.
	upstream := testenv.NewUpstream(t, "gh_readme_", "")
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	conn := strings.Join(blocks[1].lines, "\n") + "\n"
	for old, new := range map[string]string{"address: 127.0.0.1:5432": "address: " + upstream.Addr + "\n    tls_mode: disable",
		"database: app": "database: " + upstream.DB, "user: app": "user: " + upstream.Role} {
		if !strings.Contains(conn, old) {
			t.Fatalf("the yaml block has no %q", old)
		}
		conn = strings.Replace(conn, old, new, 1)
	}
	cfg, n := regexp.MustCompile(`(?s)\nconnections:\n.*$`).ReplaceAllString(string(raw), "\n"+conn), 0
	api, pg := freePort(t), freePort(t)
	for old, new := range map[string]string{"api: 127.0.0.1:8080": "api: " + api, "postgres: 127.0.0.1:15432": "postgres: " + pg} {
		if strings.Contains(cfg, old) {
			n++
		}
		cfg = strings.Replace(cfg, old, new, 1)
	}
	if n != 2 {
		t.Fatalf("the starter's listen addresses changed:\n%s", cfg)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'a@example.com')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// The restart, with the password in up's environment.
	second := startGatehouse(t, dir, []string{"PG_PASSWORD=" + upstream.Password})
	defer second.stop()
	waitFor(t, 60*time.Second, "the restarted gateway to be ready", func() bool {
		resp, err := http.Get("http://" + api + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// Block 2, in one shell, each command's output kept apart.
	_, pgPort, _ := net.SplitHostPort(pg)
	cmds := shellCommands(blocks[2].lines)
	var script strings.Builder
	script.WriteString("set -u\n")
	for i, c := range cmds {
		text := strings.NewReplacer("port=15432", "port="+pgPort, "dbname=app", "dbname="+upstream.DB).Replace(c.text)
		fmt.Fprintf(&script, "{ %s\n} > %s/out.%d 2>&1; echo $? > %s/rc.%d\n", text, dir, i, dir, i)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = dir
	sh.Env = append(os.Environ(), "PATH="+filepath.Dir(psql)+":"+os.Getenv("PATH"), "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("the session's shell: %v\n%s", err, out)
	}
	for i, c := range cmds {
		out, _ := os.ReadFile(fmt.Sprintf("%s/out.%d", dir, i))
		rcText, _ := os.ReadFile(fmt.Sprintf("%s/rc.%d", dir, i))
		rc, _ := strconv.Atoi(strings.TrimSpace(string(rcText)))
		failing := len(c.expect) > 0 && strings.HasPrefix(c.expect[0], "ERROR")
		if (rc != 0) != failing {
			t.Errorf("README command exited %d:\n%s\noutput:\n%s", rc, c.text, out)
			continue
		}
		rest := string(out)
		for _, want := range c.expect {
			i := strings.Index(rest, want)
			if i < 0 {
				t.Errorf("README command:\n%s\npromises %q, but printed:\n%s", c.text, want, out)
				break
			}
			rest = rest[i+len(want):]
		}
	}
}

type gatehouseProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan error
	out  *testenv.Buffer
	once sync.Once
}

// startGatehouse runs ./gatehouse up in dir, as README.md's `./gatehouse up &`.
func startGatehouse(t *testing.T, dir string, env []string) *gatehouseProc {
	t.Helper()
	p := &gatehouseProc{t: t, cmd: exec.Command("./gatehouse", "up"), done: make(chan error, 1), out: &testenv.Buffer{}}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(p.stop)
	return p
}

// stop interrupts up, as Ctrl-C would, and waits for it.
func (p *gatehouseProc) stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
			p.t.Errorf("gatehouse up did not stop on SIGINT:\n%s", p.out.String())
		}
	})
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// gatehouseInvocation finds "gatehouse ..." (or ./gatehouse, go run
// ./cmd/gatehouse) in a line of documentation.
var gatehouseInvocation = regexp.MustCompile(`(?:^|[\s($|` + "`" + `])(?:\./|go run \./cmd/)?gatehouse((?:\s+[^|` + "`" + `#;&)]+)*)`)

// TestDocsCommandsExist: every gatehouse command line in README.md and
// docs/*.md (code blocks and the command tables) names a command that
// exists, with flags it has, so a renamed command or flag cannot leave
// the docs behind. TestReadmeFirstSession runs the README's session too.
func TestDocsCommandsExist(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inBlock, shell := false, false
		for n, line := range strings.Split(string(raw), "\n") {
			if lang, ok := strings.CutPrefix(line, "```"); ok {
				inBlock = !inBlock
				shell = inBlock && (lang == "" || lang == "sh" || lang == "bash" || lang == "console")
				continue
			}
			// Command tables and shell blocks; prose mentions are not
			// commands, nor is the binary's name in `go build -o`.
			if !shell && !strings.HasPrefix(line, "| `gatehouse ") || strings.HasPrefix(strings.TrimSpace(line), "go build") {
				continue
			}
			for _, m := range gatehouseInvocation.FindAllStringSubmatch(line, -1) {
				args := docArgs(m[1])
				if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "--help" && args[0] != "--version" && args[0] != "--config" && args[0] != "--gateway" {
					continue // "gatehouse" as a word, or a path like gatehouse.yaml
				}
				if msg := checkCommand(args); msg != "" {
					t.Errorf("%s:%d: %s\n  %s", filepath.Base(f), n+1, msg, strings.TrimSpace(line))
				}
				checked++
			}
		}
	}
	if checked < 40 {
		t.Fatalf("checked only %d command lines: the extraction is broken", checked)
	}
}

// docArgs splits a documented command line into words, dropping the
// notation around placeholders ([--flag X], A|B, …) and quotes.
func docArgs(s string) []string {
	s = strings.NewReplacer("[", " ", "]", " ", "…", " ", "\\", " ").Replace(s)
	var out []string
	var cur strings.Builder
	quote := rune(0)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote = r
		case r == ' ' || r == '\t':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// checkCommand walks the real command tree with args and says what does
// not exist, or "".
func checkCommand(args []string) string {
	root := newRootForDocs()
	c := root
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			break
		}
		sub, _, err := c.Find([]string{a})
		if err != nil || sub == c {
			break // a positional argument
		}
		c = sub
	}
	if c == root && i < len(args) && !strings.HasPrefix(args[i], "-") {
		return fmt.Sprintf("no command %q", args[i])
	}
	for _, a := range args[i:] {
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var ok bool
		if strings.HasPrefix(a, "--") {
			ok = c.Flags().Lookup(name) != nil || c.PersistentFlags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil || name == "help"
		} else {
			ok = c.Flags().ShorthandLookup(name) != nil || c.PersistentFlags().ShorthandLookup(name) != nil || c.InheritedFlags().ShorthandLookup(name) != nil || name == "h"
		}
		if !ok {
			return fmt.Sprintf("%q has no flag %s", c.CommandPath(), a)
		}
	}
	return ""
}

func newRootForDocs() *cobra.Command {
	return newRoot(&globals{stdout: io.Discard, stderr: io.Discard})
}

func TestCheckCommand(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
	}{
		{"token issue --agent a --connection pg --scope read --ttl 15m", true},
		{"audit tail -n 5 --agent report-bot --since 1h", true},
		{"--config agent.yaml agent", true},
		{"token issue --agnet a", false},
		{"tokens issue", false},
		{"policy test --principal 'Agent::\"a\"' --entities x.json", true},
	}
	for _, tt := range tests {
		if msg := checkCommand(docArgs(tt.line)); (msg == "") != tt.ok {
			t.Errorf("%q: %q", tt.line, msg)
		}
	}
}
