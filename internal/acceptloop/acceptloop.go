package acceptloop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Back-off between failed accepts, and how a burst of failures is judged.
const (
	minDelay = 5 * time.Millisecond
	maxDelay = time.Second
	// quietAfter ends a burst: an error after this long without one starts
	// a new burst (and a new log line). It is well above maxDelay, so a
	// listener that keeps failing stays in one burst.
	quietAfter = 3 * time.Second
	// DefaultFailingAfter is how long accept must keep failing before Err
	// calls the listener failing (Options.FailingAfter).
	DefaultFailingAfter = 3 * time.Second
)

// Options describe a listener to its accept loop. The zero value logs and
// counts nothing.
type Options struct {
	// Name names the listener in logs and readiness errors ("postgres").
	Name   string
	Logger *slog.Logger
	// OnError is called for each failed accept with its class (see Class),
	// so the gateway can count them in a metric.
	OnError func(class string)
	// FailingAfter is how long accept must keep failing before Err reports
	// it (default DefaultFailingAfter): a single EMFILE is not an outage.
	FailingAfter time.Duration
}

// Listener is a net.Listener whose Accept rides out transient errors: it
// backs off (5 ms doubling to 1 s) and tries again, and returns an error only
// once the listener is closed. Running out of file descriptors is the
// common case: the process recovers when connections close, and a loop
// that exited on the first EMFILE would leave the port dead for good.
type Listener struct {
	net.Listener
	o    Options
	done chan struct{}
	once sync.Once

	mu         sync.Mutex
	closed     bool // Close was called, or the socket was closed under us
	burstStart time.Time
	lastErr    time.Time
	burstErrs  int
	lastClass  string
}

// Wrap returns ln with Accept made robust. A *Listener is returned as it
// is (its own options stand).
func Wrap(ln net.Listener, o Options) *Listener {
	if l, ok := ln.(*Listener); ok {
		return l
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FailingAfter <= 0 {
		o.FailingAfter = DefaultFailingAfter
	}
	if o.Name == "" {
		o.Name = ln.Addr().String()
	}
	return &Listener{Listener: ln, o: o, done: make(chan struct{})}
}

// Accept waits for the next connection. It returns an error only when the
// listener has been closed.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			l.accepted()
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) || l.isClosed() {
			l.markClosed()
			return nil, err
		}
		l.failed(err)
		delay = max(minDelay, min(2*delay, maxDelay))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
		}
	}
}

// Close closes the listener; a pending back-off ends at once.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.done)
	})
	return l.Listener.Close()
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// markClosed records a close that did not come through Close (the socket
// was closed by someone else): the listener is dead and says so.
func (l *Listener) markClosed() {
	l.mu.Lock()
	was := l.closed
	l.closed = true
	l.mu.Unlock()
	if !was {
		l.o.Logger.Error("listener closed; it no longer accepts connections", "listener", l.o.Name)
	}
}

func (l *Listener) accepted() {
	l.mu.Lock()
	if l.burstStart.IsZero() {
		l.mu.Unlock()
		return
	}
	start, n := l.burstStart, l.burstErrs
	l.burstStart, l.burstErrs = time.Time{}, 0
	l.mu.Unlock()
	l.o.Logger.Info("accept recovered", "listener", l.o.Name, "errors", n, "after", time.Since(start).Round(time.Millisecond))
}

// failed records one accept error; only the first of a burst is logged.
func (l *Listener) failed(err error) {
	class := Class(err)
	now := time.Now()
	l.mu.Lock()
	first := l.burstStart.IsZero() || now.Sub(l.lastErr) > quietAfter
	if first {
		l.burstStart, l.burstErrs = now, 0
	}
	l.burstErrs++
	l.lastErr, l.lastClass = now, class
	l.mu.Unlock()
	if l.o.OnError != nil {
		l.o.OnError(class)
	}
	if first {
		l.o.Logger.Warn("accept failing; backing off and retrying (logged once per burst)", "listener", l.o.Name, "class", class, "err", err)
	}
}

// Err reports whether the listener serves: nil while it does, an error
// naming it once it is closed or its accepts have failed for longer than
// Options.FailingAfter without a success in between. A listener whose
// Accept simply waits (no client) is healthy: a burst ends when no error
// has come for a few seconds, so readiness recovers without a client.
func (l *Listener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%s listener: stopped", l.o.Name)
	}
	now := time.Now()
	if !l.burstStart.IsZero() && now.Sub(l.lastErr) <= quietAfter && now.Sub(l.burstStart) >= l.o.FailingAfter {
		return fmt.Errorf("%s listener: accept failing for %s (%d errors, %s)", l.o.Name, now.Sub(l.burstStart).Round(time.Second), l.burstErrs, l.lastClass)
	}
	return nil
}

// Class names an accept error for metrics: emfile, enfile, enobufs,
// enomem, econnaborted, timeout or other.
func Class(err error) string {
	for _, e := range []struct {
		errno syscall.Errno
		name  string
	}{
		{syscall.EMFILE, "emfile"}, {syscall.ENFILE, "enfile"}, {syscall.ENOBUFS, "enobufs"},
		{syscall.ENOMEM, "enomem"}, {syscall.ECONNABORTED, "econnaborted"},
	} {
		if errors.Is(err, e.errno) {
			return e.name
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

// Serve accepts on ln until ctx ends, calling handle for each connection in
// its own goroutine counted in wg. handle's authenticated frees the
// connection's slot in gate: call it once the client has proved who it is
// (Serve calls it again when handle returns; extra calls do nothing). A
// connection over gate's caps is refused (Gate.Refuse, in its own
// goroutine) and closed; the loop never waits on it. gate may be nil.
//
// Transient accept errors are retried (see Listener); Serve returns only
// when ctx ends (after closing ln and waiting for wg: nil) or when ln is
// closed by someone else (after waiting for wg: the error, prefixed with
// what). ln may be a *Listener from Wrap, whose options then apply.
func Serve(ctx context.Context, ln net.Listener, wg *sync.WaitGroup, what string, gate *Gate, handle func(c net.Conn, authenticated func())) error {
	l := Wrap(ln, Options{Name: what})
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		release, err := gate.Admit(c.RemoteAddr())
		wg.Add(1)
		if err != nil {
			go func() {
				defer wg.Done()
				gate.refuse(c, err)
			}()
			continue
		}
		go func() {
			defer wg.Done()
			defer release()
			handle(c, release)
		}()
	}
}
