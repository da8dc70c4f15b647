// Package gatewaytest runs a whole gateway in the test process, for the
// engines' integration tests. Only _test.go files import it.
package gatewaytest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// Start builds and runs a gateway from cfg and waits until it serves. The
// returned stop shuts it down (once; later calls return the first result)
// and reports how it stopped.
func Start(t testing.TB, cfg *config.Config) (*app.Gateway, func() error) {
	t.Helper()
	return StartWith(t, cfg, nil)
}

// StartWith is Start with a hook that sees the gateway after it is built
// and before it runs (to set Gateway.Listen, for instance).
func StartWith(t testing.TB, cfg *config.Config, before func(*app.Gateway)) (*app.Gateway, func() error) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := app.NewGateway(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("gateway: %v", err)
	}
	if before != nil {
		before(gw)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx, func(*app.Gateway) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("gateway did not start: %v", err)
	}
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = context.DeadlineExceeded
			}
		})
		return stopErr
	}
	return gw, stop
}
