// Package acceptloop is the accept loop every listener of the gateway runs:
// accept until the context ends, back off on temporary errors, hand each
// connection to a goroutine tracked by a WaitGroup. Core layer: it imports
// nothing from Gatehouse.
package acceptloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Serve accepts on ln until ctx ends, calling handle for each connection in
// its own goroutine counted in wg. When ctx ends it closes ln, waits for wg
// and returns nil; any other accept error is returned (after waiting),
// prefixed with what.
func Serve(ctx context.Context, ln net.Listener, wg *sync.WaitGroup, what string, handle func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = max(5*time.Millisecond, min(2*delay, time.Second))
				time.Sleep(delay)
				continue
			}
			wg.Wait()
			return fmt.Errorf("%s: %w", what, err)
		}
		delay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle(c)
		}()
	}
}
