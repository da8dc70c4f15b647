package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"

	"gopkg.in/yaml.v3"
)

// AgentConfig is agent.yaml: the connector that runs next to the targets.
type AgentConfig struct {
	Name string `yaml:"name"`
	// Gateway is the gateway's agent listener (listen.agents there).
	Gateway string `yaml:"gateway"`
	// Gateways lists further gateway nodes; the agent keeps one tunnel to
	// each. The nodes must share the store and the agent CA.
	Gateways []string `yaml:"gateways"`
	// EnrollToken is read only when the agent has no certificate yet.
	EnrollToken Secret `yaml:"enroll_token"`
	// DataDir holds the agent's key, certificate and the gateway CA.
	DataDir     string       `yaml:"data_dir"`
	Log         Log          `yaml:"log"`
	Connections []Connection `yaml:"connections"`

	path string
}

// DefaultAgentPath is where `gatehouse agent` looks without --config.
const DefaultAgentPath = "agent.yaml"

// LoadAgent reads and checks an agent config.
func LoadAgent(path string) (*AgentConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	return ParseAgent(raw, path)
}

// ParseAgent decodes an agent config read from path (used to resolve
// relative paths).
func ParseAgent(raw []byte, path string) (*AgentConfig, error) {
	var a AgentConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("agent config %s: %w", path, syntaxHint(explainUnknownKeys(err, reflect.TypeOf(a))))
	}
	a.path = path
	var errs []error
	if a.Name == "" || !validAgentName(a.Name) {
		errs = append(errs, fmt.Errorf("name: %q must be 1-64 letters, digits, '.', '_' or '-'", a.Name))
	}
	if a.Gateway == "" && len(a.Gateways) == 0 {
		errs = append(errs, errors.New("gateway is required (host:port of the gateway's listen.agents)"))
	}
	for _, g := range a.GatewayAddrs() {
		if _, _, err := net.SplitHostPort(g); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %q is not host:port", g))
		}
	}
	if a.Log.Level == "" {
		a.Log.Level = "info"
	}
	if a.Log.Format == "" {
		a.Log.Format = "json"
	}
	// Connections share the gateway config's shape and checks.
	c := Config{Connections: a.Connections, path: path, Log: a.Log}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	a.Connections = c.Connections
	if len(a.Connections) == 0 {
		errs = append(errs, errors.New("connections: the agent serves none"))
	}
	if a.DataDir == "" {
		a.DataDir = "agent-data"
	}
	a.DataDir = resolvePath(filepath.Dir(path), a.DataDir)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return &a, nil
}

// GatewayAddrs lists every gateway node the agent keeps a tunnel to.
func (a *AgentConfig) GatewayAddrs() []string {
	var out []string
	if a.Gateway != "" {
		out = append(out, a.Gateway)
	}
	for _, g := range a.Gateways {
		if g != a.Gateway {
			out = append(out, g)
		}
	}
	return out
}

// LiteralSecrets names connections whose password is written in the file.
func (a *AgentConfig) LiteralSecrets() []string {
	return (&Config{Connections: a.Connections}).LiteralSecrets()
}

// validAgentName keeps names safe in a certificate subject, a log line and
// a file name.
func validAgentName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// ValidAgentName reports whether s may name an agent.
func ValidAgentName(s string) bool { return s != "" && validAgentName(s) }
