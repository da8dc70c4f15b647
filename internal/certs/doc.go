// Package certs provides the gateway's TLS serving certificate: the one the
// config names, or a self-signed one generated on first start in the data
// directory. Core layer: it imports nothing from Gatehouse.
package certs
