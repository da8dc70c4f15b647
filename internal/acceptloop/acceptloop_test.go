package acceptloop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServeHandlesUntilCancelledThenWaits(t *testing.T) {
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var handled, finished atomic.Int32
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, &wg, "test", nil, func(c net.Conn, _ func()) {
			handled.Add(1)
			<-release
			c.Close()
			finished.Add(1)
		})
	}()
	for range 3 {
		dial(t, ln.Addr().String())
	}
	for handled.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
		t.Fatal("Serve returned before its connections finished")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil || finished.Load() != 3 {
		t.Fatalf("Serve = %v, finished %d", err, finished.Load())
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still open after cancel")
	}
}

// faulty injects accept errors in front of a real listener: the kernel's
// EMFILE is exercised for real by the PostgreSQL engine's subprocess test
// (TestAcceptSurvivesFDExhaustion); here the sequence is exact.
type faulty struct {
	net.Listener
	mu   sync.Mutex
	errs []error
	// always, when set, fails every Accept with it.
	always error
}

func (f *faulty) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.always != nil {
		err := f.always
		f.mu.Unlock()
		return nil, err
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func (f *faulty) set(always error) {
	f.mu.Lock()
	f.always = always
	f.mu.Unlock()
}

func opErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestAcceptRidesOutTransientErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		errs  []error
		class string
	}{
		{"EMFILE", []error{opErr(syscall.EMFILE), opErr(syscall.EMFILE), opErr(syscall.EMFILE), opErr(syscall.EMFILE), opErr(syscall.EMFILE)}, "emfile"},
		{"ENFILE", []error{opErr(syscall.ENFILE), opErr(syscall.ENFILE)}, "enfile"},
		{"ECONNABORTED", []error{opErr(syscall.ECONNABORTED)}, "econnaborted"},
		{"ENOBUFS", []error{opErr(syscall.ENOBUFS)}, "enobufs"},
		{"timeout", []error{timeoutErr{}}, "timeout"},
		{"unknown error", []error{errors.New("accept4: something odd")}, "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faulty{Listener: listen(t), errs: tc.errs}
			var logs testenv.Buffer
			var mu sync.Mutex
			classes := map[string]int{}
			l := Wrap(f, Options{Name: "pg", Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnError: func(c string) {
				mu.Lock()
				classes[c]++
				mu.Unlock()
			}})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			served := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				done <- Serve(ctx, l, &wg, "test", nil, func(c net.Conn, _ func()) {
					c.Close()
					served <- struct{}{}
				})
			}()
			dial(t, f.Addr().String())
			select {
			case <-served:
			case err := <-done:
				t.Fatalf("Serve returned on a transient error: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("connection not served after the errors")
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Serve after cancel = %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if classes[tc.class] != len(tc.errs) || len(classes) != 1 {
				t.Errorf("OnError classes = %v, want %d × %s", classes, len(tc.errs), tc.class)
			}
			out := logs.String()
			if n := strings.Count(out, "accept failing"); n != 1 {
				t.Errorf("logged %d 'accept failing' lines for one burst, want 1:\n%s", n, out)
			}
			if n := strings.Count(out, "accept recovered"); n != 1 {
				t.Errorf("logged %d 'accept recovered' lines, want 1:\n%s", n, out)
			}
		})
	}
}

func TestErrReportsPersistentFailureAndRecovers(t *testing.T) {
	f := &faulty{Listener: listen(t)}
	f.set(opErr(syscall.EMFILE))
	l := Wrap(f, Options{Name: "pg", FailingAfter: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	go Serve(ctx, l, &wg, "test", nil, func(c net.Conn, _ func()) { c.Close() })

	if err := l.Err(); err != nil {
		t.Fatalf("Err at once = %v; one failure is not an outage", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Err stayed nil while every accept failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := l.Err(); !strings.Contains(err.Error(), "pg listener: accept failing") || !strings.Contains(err.Error(), "emfile") {
		t.Fatalf("Err = %v", err)
	}
	// The descriptors come back and no client arrives: Accept just waits,
	// and readiness must recover without one.
	f.set(nil)
	deadline = time.Now().Add(quietAfter + 3*time.Second)
	for l.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Err still %v after the failures stopped", l.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeReturnsWhenListenerClosedUnderIt(t *testing.T) {
	ln := listen(t)
	l := Wrap(ln, Options{Name: "pg"})
	var wg sync.WaitGroup
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), l, &wg, "test", nil, func(c net.Conn, _ func()) { c.Close() })
	}()
	dial(t, ln.Addr().String())
	ln.Close() // the socket, not the wrapper: someone else closed it
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve kept going on a closed listener")
	}
	if err := l.Err(); err == nil || err.Error() != "pg listener: stopped" {
		t.Fatalf("Err = %v, want stopped", err)
	}
}

func TestGateAdmit(t *testing.T) {
	addr := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name   string
		limits Limits
		from   []string
		// want is "" for admitted, else the limit that refused.
		want []string
	}{
		{"per source", Limits{Total: 10, PerSource: 2},
			[]string{"10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3", "10.0.0.2:1"},
			[]string{"", "", LimitPerSource, ""}},
		{"total", Limits{Total: 3, PerSource: 3},
			[]string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"},
			[]string{"", "", "", LimitTotal}},
		{"IPv6 /64 is one source", Limits{Total: 10, PerSource: 2},
			[]string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::ffff]:1", "[2001:db8:1:2:aaaa::1]:1", "[2001:db8:1:3::1]:1"},
			[]string{"", "", LimitPerSource, ""}},
		{"IPv4-mapped IPv6 is the IPv4 address", Limits{Total: 10, PerSource: 1},
			[]string{"10.0.0.1:1", "[::ffff:10.0.0.1]:2"},
			[]string{"", LimitPerSource}},
		{"zero limits admit all", Limits{},
			[]string{"10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3"},
			[]string{"", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gate{Limits: tc.limits}
			for i, from := range tc.from {
				_, err := g.Admit(addr(from))
				var le *LimitError
				got := ""
				if errors.As(err, &le) {
					got = le.Limit
				} else if err != nil {
					t.Fatal(err)
				}
				if got != tc.want[i] {
					t.Errorf("connection %d from %s: refused by %q, want %q", i, from, got, tc.want[i])
				}
			}
		})
	}
}

func TestGateReleaseIsIdempotent(t *testing.T) {
	g := &Gate{Limits: Limits{Total: 2, PerSource: 2}}
	a := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}
	r1, _ := g.Admit(a)
	r2, _ := g.Admit(a)
	if _, err := g.Admit(a); err == nil {
		t.Fatal("third admitted over a cap of 2")
	}
	r1()
	r1()
	r1()
	if g.Open() != 1 {
		t.Fatalf("Open = %d after releasing one slot three times, want 1", g.Open())
	}
	r3, err := g.Admit(a)
	if err != nil {
		t.Fatalf("admit after a release: %v", err)
	}
	r2()
	r3()
	if g.Open() != 0 || len(g.by) != 0 {
		t.Fatalf("Open = %d, buckets %v after releasing all", g.Open(), g.by)
	}
}

// TestServeRefusesOverTheGate: connections over the cap are told why and
// closed at once, in their own goroutine, while the admitted ones keep
// their slots until they authenticate.
func TestServeRefusesOverTheGate(t *testing.T) {
	ln := listen(t)
	var refusals atomic.Int32
	gate := &Gate{Limits: Limits{Total: 10, PerSource: 2}, OnRefuse: func(string) { refusals.Add(1) },
		Refuse: func(c net.Conn, err *LimitError) {
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			io.WriteString(c, err.Error())
		}}
	authenticate := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	go Serve(ctx, ln, &wg, "test", gate, func(c net.Conn, authenticated func()) {
		defer c.Close()
		io.WriteString(c, "hello")
		<-authenticate
		authenticated()
		io.Copy(io.Discard, c)
	})
	read := func(c net.Conn) string {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 200)
		n, _ := io.ReadAtLeast(c, b, 5)
		return string(b[:n])
	}
	a, b := dial(t, ln.Addr().String()), dial(t, ln.Addr().String())
	if read(a) != "hello" || read(b) != "hello" {
		t.Fatal("admitted connections not served")
	}
	c := dial(t, ln.Addr().String())
	if got := read(c); got != "too many connections from this address awaiting authentication (limit 2 per source)" {
		t.Fatalf("over the cap: read %q", got)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("refused connection left open: %d, %v", n, err)
	}
	if refusals.Load() != 1 {
		t.Fatalf("OnRefuse called %d times, want 1", refusals.Load())
	}
	// Once they authenticate, the two stop counting: two more fit.
	close(authenticate)
	deadline := time.Now().Add(5 * time.Second)
	for gate.Open() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("gate still holds %d after authentication", gate.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 2 {
		if got := read(dial(t, ln.Addr().String())); got != "hello" {
			t.Fatalf("after authentication freed the slots: read %q", got)
		}
	}
}
