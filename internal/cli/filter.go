package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// recordFilter selects audit events and sessions by who, where and when:
// the flags --agent, --human, --connection, --since and --until of `audit
// tail` and `sessions list`.
type recordFilter struct {
	agent, human, connection string
	since, until             string
	scan                     int
	maxScan                  int // what the admin API serves at most

	from, to time.Time // parsed since and until
}

func (f *recordFilter) flags(cmd *cobra.Command, what string, maxScan int) {
	f.maxScan = maxScan
	fl := cmd.Flags()
	fl.StringVar(&f.agent, "agent", "", "only "+what+" of this agent (principal Agent::\"NAME\")")
	fl.StringVar(&f.human, "human", "", "only "+what+" of this human: a user principal, or the human an agent acts for")
	fl.StringVar(&f.connection, "connection", "", "only "+what+" on this connection")
	fl.StringVar(&f.since, "since", "", "only "+what+" at or after this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (1h)")
	fl.StringVar(&f.until, "until", "", "only "+what+" before this time (same forms as --since)")
	fl.IntVar(&f.scan, "scan", 10000, fmt.Sprintf("with a filter, how many of the newest %s to search (at most %d)", what, maxScan))
}

// active reports whether any filter is set.
func (f *recordFilter) active() bool {
	return f.agent != "" || f.human != "" || f.connection != "" || f.since != "" || f.until != ""
}

// parse checks the flags; now anchors durations.
func (f *recordFilter) parse(now time.Time) error {
	var err error
	if f.from, err = parseWhen(f.since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if f.to, err = parseWhen(f.until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if f.scan < 1 || f.scan > f.maxScan {
		return fmt.Errorf("--scan: %d is not between 1 and %d", f.scan, f.maxScan)
	}
	return nil
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration", s)
}

// match reports whether a record of principal, acting for onBehalfOf, on
// connection at t passes the filter.
func (f *recordFilter) match(principal, onBehalfOf, connection string, t time.Time) bool {
	if f.agent != "" && principal != "Agent::"+strconv.Quote(f.agent) {
		return false
	}
	if f.human != "" && onBehalfOf != f.human && principal != "User::"+strconv.Quote(f.human) {
		return false
	}
	if f.connection != "" && connection != f.connection {
		return false
	}
	if !f.from.IsZero() && t.Before(f.from) {
		return false
	}
	if !f.to.IsZero() && !t.Before(f.to) {
		return false
	}
	return true
}
