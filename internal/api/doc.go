// Package api serves Gatehouse's HTTP surface: the REST admin API (/v1/...),
// RFC 8693 token exchange (/v1/token), the JWKS, /metrics, /healthz and
// /readyz. It sits beside the protocol engines: it imports core packages
// and admin, never an engine, cli or app.
package api
