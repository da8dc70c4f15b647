//go:build race

package tunnel_test

// Under -race the processes the end-to-end tests start are race-enabled
// too.
func init() { buildFlags = append(buildFlags, "-race") }
