package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret is a reference to a credential: "env:NAME", "file:PATH", or a
// literal (accepted with a warning). Its String and marshalled forms never
// reveal a literal value.
type Secret string

// managerSchemes are reserved for secret managers. They are references,
// not literals, and resolve only where a resolver for them is plugged in
// (agent.SecretResolver); none is built yet.
var managerSchemes = []string{"vault:", "aws-sm:", "gcp-sm:", "azure-kv:"}

// Scheme returns the reference's scheme ("env", "file", "vault", ...), or
// "" for a literal.
func (s Secret) Scheme() string {
	for _, p := range append([]string{"env:", "file:"}, managerSchemes...) {
		if strings.HasPrefix(string(s), p) {
			return strings.TrimSuffix(p, ":")
		}
	}
	return ""
}

// IsLiteral reports whether the secret is written in the config itself.
func (s Secret) IsLiteral() bool {
	return s != "" && s.Scheme() == ""
}

// ErrSecretScheme is returned for a secret-manager reference that no
// resolver handles.
var ErrSecretScheme = errors.New("secret manager is not supported yet")

// String describes the reference without its value.
func (s Secret) String() string {
	switch {
	case s == "":
		return ""
	case s.IsLiteral():
		return "[literal secret]"
	default:
		return string(s)
	}
}

// MarshalYAML keeps literals out of any config dump.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// ErrSecretUnset is returned when a referenced variable or file is empty.
var ErrSecretUnset = errors.New("secret is empty")

// Resolve reads the secret's value. Errors name the reference, never a value.
func (s Secret) Resolve() (string, error) {
	switch {
	case strings.HasPrefix(string(s), "env:"):
		name := strings.TrimPrefix(string(s), "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s: %w", name, ErrSecretUnset)
		}
		return v, nil
	case strings.HasPrefix(string(s), "file:"):
		path := strings.TrimPrefix(string(s), "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("secret file %s: %w", path, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s: %w", path, ErrSecretUnset)
		}
		return v, nil
	case s.Scheme() != "":
		return "", fmt.Errorf("%s: %w", s.Scheme(), ErrSecretScheme)
	default:
		return string(s), nil
	}
}
