// Package testenv gives tests the real services they run against: a fresh
// PostgreSQL database on the private server that scripts/test.sh starts, and
// both store implementations. Only _test.go files import it.
package testenv
