package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"gopkg.in/yaml.v3"
)

// AgentConfig is agent.yaml: the connector that runs next to the targets.
type AgentConfig struct {
	Name        string       `yaml:"name"`
	Gateway     string       `yaml:"gateway"`
	EnrollToken Secret       `yaml:"enroll_token"`
	DataDir     string       `yaml:"data_dir"`
	Connections []Connection `yaml:"connections"`
}

// LoadAgent reads and checks an agent config.
func LoadAgent(path string) (*AgentConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	var a AgentConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	var errs []error
	if a.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if _, _, err := net.SplitHostPort(a.Gateway); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %q is not host:port", a.Gateway))
	}
	// Connections share the gateway config's shape and checks.
	c := Config{Connections: a.Connections, path: path}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	a.Connections = c.Connections
	if a.DataDir == "" {
		a.DataDir = "agent-data"
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return &a, nil
}
