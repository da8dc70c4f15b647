package acceptloop

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits cap the connections of one listener that have not authenticated
// yet. Zero means no cap.
type Limits struct {
	Total     int
	PerSource int
}

// The limits a LimitError names.
const (
	LimitTotal     = "total"
	LimitPerSource = "per_source"
)

// LimitError is why a Gate refused a connection. Its text is safe to show
// the client.
type LimitError struct {
	Limit string // LimitTotal or LimitPerSource
	Max   int
}

func (e *LimitError) Error() string {
	if e.Limit == LimitPerSource {
		return fmt.Sprintf("too many connections from this address awaiting authentication (limit %d per source)", e.Max)
	}
	return fmt.Sprintf("too many connections awaiting authentication (limit %d in total)", e.Max)
}

// refusalQuiet ends a burst of refusals for logging: the first refusal
// after this long without one is logged, the rest are only counted.
const refusalQuiet = 10 * time.Second

// Gate counts a listener's unauthenticated connections, in total and per
// source (an IPv4 address, or an IPv6 /64: one host can hold a whole /64),
// and refuses those over its Limits. Serve admits each accepted connection
// before handing it off, so idle connections that never authenticate
// cannot take every file descriptor. A nil *Gate admits everything.
type Gate struct {
	Limits
	// Name names the listener in logs.
	Name   string
	Logger *slog.Logger
	// Refuse tells a refused connection why before it is closed (the
	// PostgreSQL engine sends a FATAL). It runs in the connection's own
	// goroutine and must not wait on the client for long: a short write
	// deadline, no read. Nil closes without a word.
	Refuse func(c net.Conn, err *LimitError)
	// OnRefuse is called for each refusal with the limit, for a metric.
	OnRefuse func(limit string)

	mu        sync.Mutex
	n         int
	by        map[netip.Prefix]int
	refusedAt time.Time
}

// Admit takes a slot for a connection from addr. release frees it; it may
// be called more than once.
func (g *Gate) Admit(addr net.Addr) (release func(), err error) {
	if g == nil || (g.Total <= 0 && g.PerSource <= 0) {
		return func() {}, nil
	}
	key := sourceKey(addr)
	now := time.Now()
	g.mu.Lock()
	var refused *LimitError
	switch {
	case g.PerSource > 0 && g.by[key] >= g.PerSource:
		refused = &LimitError{Limit: LimitPerSource, Max: g.PerSource}
	case g.Total > 0 && g.n >= g.Total:
		refused = &LimitError{Limit: LimitTotal, Max: g.Total}
	}
	if refused != nil {
		first := now.Sub(g.refusedAt) > refusalQuiet
		g.refusedAt = now
		g.mu.Unlock()
		if g.OnRefuse != nil {
			g.OnRefuse(refused.Limit)
		}
		if first && g.Logger != nil {
			g.Logger.Warn("refusing unauthenticated connections over the limit (logged once per burst)", "listener", g.Name, "limit", refused.Limit, "max", refused.Max, "source", addr.String())
		}
		return nil, refused
	}
	if g.by == nil {
		g.by = map[netip.Prefix]int{}
	}
	g.n++
	g.by[key]++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.n--
			if g.by[key]--; g.by[key] <= 0 {
				delete(g.by, key)
			}
			g.mu.Unlock()
		})
	}, nil
}

// Open is the number of admitted connections not yet released (0 for a
// gate without caps, which counts nothing).
func (g *Gate) Open() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// refuse tells c why (Refuse) and closes it.
func (g *Gate) refuse(c net.Conn, err error) {
	defer c.Close()
	var le *LimitError
	if g.Refuse != nil && errors.As(err, &le) {
		g.Refuse(c, le)
	}
}

// sourceKey is the per-source bucket of addr: the IPv4 address or the
// IPv6 /64. Addresses it cannot read share one bucket.
func sourceKey(addr net.Addr) netip.Prefix {
	var ip netip.Addr
	if a, ok := addr.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(a.IP)
	} else if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
