// Package agent is the network-resident connector: it holds the upstream
// credentials and performs the upstream authentication itself ("authenticated
// dial"), handing the gateway a connection that is already past
// authentication. The gateway's engines see only the Dialer interface, so
// the password never enters them. `gatehouse up` runs this same code in
// process. Core layer: it imports config and nothing above core.
package agent
