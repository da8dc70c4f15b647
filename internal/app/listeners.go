package app

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/gatehouse-dev/gatehouse/internal/acceptloop"
	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// listen opens the named listener with an accept loop that rides out
// transient errors (out of descriptors), counts them, and reports its
// health to readiness.
func (g *Gateway) listen(name, addr string) (net.Listener, error) {
	open := g.Listen
	if open == nil {
		open = net.Listen
	}
	ln, err := open("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := acceptloop.Wrap(ln, acceptloop.Options{Name: name, Logger: g.Logger, OnError: func(class string) {
		g.Metrics.AcceptErrors.WithLabelValues(name, class).Inc()
	}})
	g.listenersMu.Lock()
	g.listeners = append(g.listeners, l)
	g.listenersMu.Unlock()
	return l, nil
}

// ready reports whether the gateway can serve: the store answers, the audit
// log signs, and every listener accepts. Each failure names what failed; details stay in the
// log, since /readyz answers anyone.
func (g *Gateway) ready(ctx context.Context) error {
	var errs []error
	// For good once the audit log refuses to sign: the stored log is not
	// the one this node signed.
	if err := g.Audit.Err(); err != nil {
		g.Logger.Warn("readiness: audit log refuses to sign", "err", err)
		errs = append(errs, errors.New("audit: log tampered, signing refused"))
	}
	if _, err := g.Store.AuditSize(ctx); err != nil {
		g.Logger.Warn("readiness: store unreachable", "err", err)
		errs = append(errs, errors.New("store: unreachable"))
	}
	g.listenersMu.Lock()
	listeners := g.listeners
	g.listenersMu.Unlock()
	for _, l := range listeners {
		errs = append(errs, l.Err())
	}
	return errors.Join(errs...)
}

func unauthenticatedLimits(cfg *config.Config) acceptloop.Limits {
	return acceptloop.Limits{Total: cfg.Limits.Unauthenticated, PerSource: cfg.Limits.UnauthenticatedPerSource}
}

// warnDescriptorBudget warns when the caps allow more connections than the
// process may open descriptors: then a flood ends in EMFILE (ridden out,
// but every listener stalls) rather than in the caps' clean refusals. A
// session costs about three descriptors in process (the client, the
// in-process agent's upstream connection, a catalog connection for column
// masking), an unauthenticated connection one per listener.
func (g *Gateway) warnDescriptorBudget() {
	limit, ok := openFileLimit()
	if !ok {
		return
	}
	l := g.Config.Limits
	g.listenersMu.Lock()
	listeners := uint64(len(g.listeners))
	g.listenersMu.Unlock()
	need := uint64(l.Sessions)*3 + uint64(l.Unauthenticated)*listeners + 256
	if need > limit {
		g.Logger.Warn("the open-file limit is below what limits.* allow; raise it (ulimit -n, LimitNOFILE=) or lower the limits",
			"rlimit_nofile", limit, "needed", need, "limits", fmt.Sprintf("%+v", l))
	}
}
