package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// MCP tunes the MCP endpoint (/mcp on listen.api) and `gatehouse mcp`.
type MCP struct {
	// Disabled turns the /mcp endpoint off.
	Disabled bool `yaml:"disabled"`
	// PublicURL is the URL clients reach /mcp at, named in the protected
	// resource metadata (RFC 9728); empty: derived from each request.
	PublicURL string `yaml:"public_url"`
	// MaxRows is the query tool's row limit when the call gives none, and
	// MaxRowsLimit the most a call may ask for.
	MaxRows      int `yaml:"max_rows"`
	MaxRowsLimit int `yaml:"max_rows_limit"`
	// ApprovalWait is how long a call whose statement is held for approval
	// waits before it answers "pending"; a call's wait_seconds overrides it
	// up to ApprovalWaitLimit.
	ApprovalWait      time.Duration `yaml:"approval_wait"`
	ApprovalWaitLimit time.Duration `yaml:"approval_wait_limit"`
	// Hold bounds how long a held statement keeps waiting in the background
	// after its call answered "pending"; ResultTTL how long its result is
	// kept for approval_status once it finished.
	Hold      time.Duration `yaml:"hold"`
	ResultTTL time.Duration `yaml:"result_ttl"`
}

// MCP defaults.
const (
	DefaultMCPMaxRows           = 100
	DefaultMCPMaxRowsLimit      = 1000
	DefaultMCPApprovalWait      = 30 * time.Second
	DefaultMCPApprovalWaitLimit = 5 * time.Minute
	DefaultMCPHold              = time.Hour
	DefaultMCPResultTTL         = 15 * time.Minute
)

func (m *MCP) applyDefaults() {
	setDefault(&m.MaxRows, DefaultMCPMaxRows)
	setDefault(&m.MaxRowsLimit, DefaultMCPMaxRowsLimit)
	setDefault(&m.ApprovalWait, DefaultMCPApprovalWait)
	setDefault(&m.ApprovalWaitLimit, DefaultMCPApprovalWaitLimit)
	setDefault(&m.Hold, DefaultMCPHold)
	setDefault(&m.ResultTTL, DefaultMCPResultTTL)
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// reservedConnection is the name the gateway gives itself as a connection
// (gateway.GatehouseConnection; config may not import gateway).
const reservedConnection = "gatehouse"

func (m *MCP) validate(c *Config) []error {
	var errs []error
	if m.MaxRows < 1 || m.MaxRowsLimit < m.MaxRows {
		errs = append(errs, fmt.Errorf("mcp: max_rows (%d) must be at least 1 and at most max_rows_limit (%d)", m.MaxRows, m.MaxRowsLimit))
	}
	if m.ApprovalWait < 0 || m.ApprovalWaitLimit < m.ApprovalWait || m.Hold < 0 || m.ResultTTL < 0 {
		errs = append(errs, errors.New("mcp: approval_wait, approval_wait_limit, hold and result_ttl must be positive, approval_wait at most approval_wait_limit"))
	}
	if m.PublicURL != "" {
		if u, err := url.Parse(m.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("mcp.public_url: %q is not an http(s) URL", m.PublicURL))
		}
	}
	for i, conn := range c.Connections {
		if conn.Name == reservedConnection {
			errs = append(errs, fmt.Errorf("connections[%d]: the name %q is reserved for Gatehouse itself", i, conn.Name))
		}
	}
	return errs
}
