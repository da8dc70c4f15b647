// Package acceptloop is the accept loop every listener of the gateway runs:
// accept until the context ends or the listener is closed, ride out
// transient accept errors (EMFILE, ENFILE, ECONNABORTED, ...) with back-off,
// report whether the listener is healthy, cap connections that have not
// authenticated yet (Gate), and hand each connection to a goroutine tracked
// by a WaitGroup. Core layer: it imports nothing from Gatehouse.
package acceptloop
