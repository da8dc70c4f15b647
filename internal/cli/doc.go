// Package cli is the gatehouse command line: subcommands and flags, turned
// into a config and handed to app. It is the top layer; nothing imports it
// but cmd/gatehouse.
package cli
