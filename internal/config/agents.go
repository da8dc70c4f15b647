package config

import (
	"errors"
	"fmt"
	"time"
)

// Agents tunes the gateway's side of agent tunnels (the `agents:` key of
// gatehouse.yaml). Zero values mean the defaults below.
type Agents struct {
	// Heartbeat is how often agents send a heartbeat; a tunnel that misses
	// three is closed.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// CertTTL is the lifetime of agent client certificates; agents renew
	// after two thirds of it.
	CertTTL time.Duration `yaml:"cert_ttl"`
	// EnrollTTL is the default lifetime of enrollment tokens.
	EnrollTTL time.Duration `yaml:"enroll_ttl"`
	// DialWait is how long a new session waits for an agent serving its
	// connection to (re)connect before failing.
	DialWait time.Duration `yaml:"dial_wait"`
}

// Agent tunnel defaults.
const (
	DefaultAgentHeartbeat = 5 * time.Second
	DefaultAgentCertTTL   = 24 * time.Hour
	DefaultEnrollTTL      = 15 * time.Minute
	DefaultAgentDialWait  = 5 * time.Second
)

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// HeartbeatInterval is Heartbeat or its default.
func (a Agents) HeartbeatInterval() time.Duration {
	return orDefault(a.Heartbeat, DefaultAgentHeartbeat)
}

// CertLifetime is CertTTL or its default.
func (a Agents) CertLifetime() time.Duration { return orDefault(a.CertTTL, DefaultAgentCertTTL) }

// EnrollLifetime is EnrollTTL or its default.
func (a Agents) EnrollLifetime() time.Duration { return orDefault(a.EnrollTTL, DefaultEnrollTTL) }

// DialWaitTime is DialWait or its default.
func (a Agents) DialWaitTime() time.Duration { return orDefault(a.DialWait, DefaultAgentDialWait) }

func (a Agents) validate() error {
	var errs []error
	if a.Heartbeat < 0 || (a.Heartbeat > 0 && a.Heartbeat < 100*time.Millisecond) {
		errs = append(errs, fmt.Errorf("agents.heartbeat: %s is below 100ms", a.Heartbeat))
	}
	if a.CertTTL < 0 || (a.CertTTL > 0 && a.CertTTL < time.Second) {
		errs = append(errs, fmt.Errorf("agents.cert_ttl: %s is below 1s", a.CertTTL))
	}
	if a.EnrollTTL < 0 || a.EnrollTTL > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("agents.enroll_ttl: %s is not between 0 and 7 days", a.EnrollTTL))
	}
	if a.DialWait < 0 {
		errs = append(errs, errors.New("agents.dial_wait: must not be negative"))
	}
	return errors.Join(errs...)
}
