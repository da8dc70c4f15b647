// Package metrics defines Gatehouse's Prometheus metrics on a registry of
// its own (no global registry), served at /metrics. Core layer: it imports
// no other Gatehouse package.
package metrics
