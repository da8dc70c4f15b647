// Package tunnel carries the gateway's dials to network-resident agents:
// one outbound mTLS connection per agent per gateway node, multiplexed with
// yamux into a control stream (hello, heartbeats, certificate renewal) and
// one stream per upstream session. It owns the agent CA, enrollment, the
// gateway-side Registry (an agent.Dialer that routes to whichever agents
// serve a connection) and the agent-side Client loop, which `gatehouse up`
// also runs over an in-memory connection.
//
// Core layer: it imports agent, config and store, never audit (events go
// out through a callback), an engine, gateway, app or cli.
package tunnel
