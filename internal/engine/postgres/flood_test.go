//go:build linux

package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// floodChildEnv makes the test binary the gateway side of
// TestAcceptSurvivesFDExhaustion: a gateway whose descriptor limit is
// lowered so that a flood of idle connections runs it out (EMFILE).
const floodChildEnv = "GATEHOUSE_TEST_FLOOD_CHILD"

// floodHeadroom is how many descriptors the child may open beyond those
// it has when it lowers its limit: fewer than the flood, enough for the
// session that proves recovery.
const floodHeadroom = 48

// TestAcceptSurvivesFDExhaustion reproduces the attack review's finding:
// idle, unauthenticated TCP connections exhaust the gateway's descriptors
// and accept4 fails with EMFILE. On main the PostgreSQL accept loop exited
// on that error, the port stayed dead after the flood closed, and /readyz
// kept answering 200. Now /readyz names the failing listener during the
// flood, and once the flood closes it answers 200 again and a real pgx
// client connects and queries through the gateway.
//
// The gateway runs in a child process (this test binary re-executed) so
// that its RLIMIT_NOFILE can be lowered without touching this process,
// which holds the flood's client ends. The caps on unauthenticated
// connections are raised out of the way: they would otherwise refuse the
// flood before it reaches the limit, which is their job
// (TestUnauthenticatedCapPerSource).
func TestAcceptSurvivesFDExhaustion(t *testing.T) {
	if os.Getenv(floodChildEnv) == "1" {
		floodChild(t)
		return
	}
	testenv.PostgresAdminURL(t) // the child needs the test PostgreSQL: skip as it would
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptSurvivesFDExhaustion$", "-test.count=1")
	cmd.Env = append(os.Environ(), floodChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var childOut testenv.Buffer
	cmd.Stderr = &childOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var stopOnce sync.Once
	stopChild := func() error {
		var err error
		stopOnce.Do(func() {
			stdin.Close()
			select {
			case err = <-exited:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				err = fmt.Errorf("child did not exit: %w", <-exited)
			}
		})
		return err
	}
	t.Cleanup(func() { stopChild() })

	lines := bufio.NewScanner(stdout)
	var pgAddr, apiAddr, dsn string
	found := make(chan bool, 1)
	go func() {
		for lines.Scan() {
			if f := strings.Fields(lines.Text()); len(f) == 4 && f[0] == "FLOODCHILD" {
				pgAddr, apiAddr, dsn = f[1], f[2], f[3]
				found <- true
				break
			}
			childOut.Write(append(lines.Bytes(), '\n'))
		}
		close(found)
		io.Copy(&childOut, stdout)
		exited <- cmd.Wait()
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("child gateway did not start:\n%s", childOut.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("child gateway did not start in time:\n%s", childOut.String())
	}

	// A probe opened before the flood: under EMFILE the API listener
	// cannot accept a new connection either, but a kept-alive one is
	// served.
	probe, err := net.DialTimeout("tcp", apiAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	pr := bufio.NewReader(probe)
	get := func(path string) (int, string) {
		t.Helper()
		probe.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(probe, "GET %s HTTP/1.1\r\nHost: gatehouse\r\n\r\n", path)
		resp, err := http.ReadResponse(pr, nil)
		if err != nil {
			t.Fatalf("GET %s on the probe connection: %v\nchild:\n%s", path, err, childOut.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("before the flood: /readyz = %d %q", code, body)
	}

	// The flood: idle connections that never send a byte, far more than
	// the child has descriptors for. The kernel completes their handshakes
	// into the listen backlog whether or not the gateway can accept them.
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 4 * floodHeadroom {
		c, err := net.DialTimeout("tcp", pgAddr, 2*time.Second)
		if err != nil {
			break
		}
		flood = append(flood, c)
	}
	if len(flood) <= floodHeadroom {
		t.Fatalf("flood opened only %d connections", len(flood))
	}
	waitReady := func(wantCode int, wantBody string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get("/readyz")
			if code == wantCode && strings.Contains(body, wantBody) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz = %d %q, want %d with %q\nchild:\n%s", code, body, wantCode, wantBody, childOut.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitReady(http.StatusServiceUnavailable, "postgres listener: accept failing")

	for _, c := range flood {
		c.Close()
	}
	flood = nil
	waitReady(http.StatusOK, "ready")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect after the flood: %v\nchild:\n%s", err, childOut.String())
	}
	var name string
	if err := c.QueryRow(ctx, "SELECT name FROM users WHERE id = 7").Scan(&name); err != nil || name != "user7" {
		t.Fatalf("query after the flood: %q, %v", name, err)
	}
	c.Close(ctx)
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `gatehouse_accept_errors_total{class="emfile",listener="postgres"}`) {
		t.Fatalf("/metrics = %d without the postgres EMFILE count:\n%.2000s", code, body)
	}
	probe.Close()
	if err := stopChild(); err != nil {
		t.Fatalf("child: %v\n%s", err, childOut.String())
	}
}

// floodChild runs the gateway for TestAcceptSurvivesFDExhaustion, prints
// its addresses and a DSN, and serves until its stdin closes.
func floodChild(t *testing.T) {
	h := newHarness(t, harnessOpts{extraConfig: "limits: {unauthenticated: 100000, unauthenticated_per_source: 100000, handshake_timeout: 5m}\n"})
	seed(h)
	dsn := h.dsn(h.token("flood", "read"))
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = uint64(len(fds) + floodHeadroom)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("FLOODCHILD %s %s %s\n", h.pgAddr, h.gw.Config.Listen.API, dsn)
	io.Copy(io.Discard, os.Stdin)
}
