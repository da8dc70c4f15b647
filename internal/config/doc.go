// Package config reads and checks gatehouse.yaml and agent.yaml, resolves
// secret references (env:NAME, file:PATH) without ever logging their values,
// and writes the commented starter config. It is a core package: it may use
// the configuration types of other core packages but no engine, gateway,
// api, cli or app package.
package config
