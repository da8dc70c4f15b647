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

// IsLiteral reports whether the secret is written in the config itself.
func (s Secret) IsLiteral() bool {
	return s != "" && !strings.HasPrefix(string(s), "env:") && !strings.HasPrefix(string(s), "file:")
}

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
	default:
		return string(s), nil
	}
}
