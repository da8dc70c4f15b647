package config

import (
	"errors"
	"fmt"
	"time"
)

// Limits cap what clients can hold on the gateway (the `limits:` key), so
// a flood of connections or sessions degrades one client, not the gateway.
// Zero values mean the defaults below; docs/configuration.md explains how
// to size them against the process's file-descriptor limit.
type Limits struct {
	// HandshakeTimeout bounds a wire connection from accept until its token
	// has been read (TLS handshake, startup packet, password message).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// Unauthenticated caps each listener's connections that have not yet
	// authenticated; UnauthenticatedPerSource caps them per client address
	// (IPv4 address or IPv6 /64).
	Unauthenticated          int `yaml:"unauthenticated"`
	UnauthenticatedPerSource int `yaml:"unauthenticated_per_source"`
	// Sessions caps authenticated sessions on the gateway (wire clients
	// and the MCP tools' SQL sessions together); SessionsPerPrincipal caps
	// those of one principal (one agent or user).
	Sessions             int `yaml:"sessions"`
	SessionsPerPrincipal int `yaml:"sessions_per_principal"`
}

// Limit defaults.
const (
	DefaultHandshakeTimeout         = 10 * time.Second
	DefaultUnauthenticated          = 1000
	DefaultUnauthenticatedPerSource = 100
	DefaultSessions                 = 1000
	DefaultSessionsPerPrincipal     = 100
)

// applyDefaults fills unset limits; a per-source or per-principal default
// never exceeds the total it sits under, so setting only a total works.
func (l *Limits) applyDefaults() {
	setDefault(&l.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&l.Unauthenticated, DefaultUnauthenticated)
	setDefault(&l.UnauthenticatedPerSource, min(DefaultUnauthenticatedPerSource, max(l.Unauthenticated, 1)))
	setDefault(&l.Sessions, DefaultSessions)
	setDefault(&l.SessionsPerPrincipal, min(DefaultSessionsPerPrincipal, max(l.Sessions, 1)))
}

func (l Limits) validate() error {
	var errs []error
	if l.HandshakeTimeout < 100*time.Millisecond || l.HandshakeTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("limits.handshake_timeout: %s is not between 100ms and 5m", l.HandshakeTimeout))
	}
	if l.Unauthenticated < 1 || l.UnauthenticatedPerSource < 1 || l.Sessions < 1 || l.SessionsPerPrincipal < 1 {
		errs = append(errs, errors.New("limits: unauthenticated, unauthenticated_per_source, sessions and sessions_per_principal must be at least 1"))
	}
	if l.UnauthenticatedPerSource > l.Unauthenticated {
		errs = append(errs, fmt.Errorf("limits.unauthenticated_per_source (%d) is above limits.unauthenticated (%d)", l.UnauthenticatedPerSource, l.Unauthenticated))
	}
	if l.SessionsPerPrincipal > l.Sessions {
		errs = append(errs, fmt.Errorf("limits.sessions_per_principal (%d) is above limits.sessions (%d)", l.SessionsPerPrincipal, l.Sessions))
	}
	return errors.Join(errs...)
}
