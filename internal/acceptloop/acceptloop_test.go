package acceptloop

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestServeHandlesUntilCancelledThenWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var handled, finished atomic.Int32
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, &wg, "test", func(c net.Conn) {
			handled.Add(1)
			<-release
			c.Close()
			finished.Add(1)
		})
	}()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
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
