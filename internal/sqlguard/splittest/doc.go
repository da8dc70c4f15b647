// Package splittest generates multi-statement SQL texts that mix every
// PostgreSQL quoting form, and runs texts over the simple query protocol
// counting the server's own statement split, for the property tests of
// issue 10: the server splits a text into statements exactly as the
// analysis (sqlguard) does whenever the gateway forwards it.
//
// Only _test.go files import it. It imports no Gatehouse package
// (deps_test.go checks), so both sqlguard's tests and the engines' can use it.
package splittest
