// Package app builds a running Gatehouse from its config, in one place: the
// store, audit log, identity, policy engine, metrics, admin service and the
// listeners. Nothing registers itself; a reader sees every part here. It
// sits at the top, under cli, and may import any package but cli.
package app
