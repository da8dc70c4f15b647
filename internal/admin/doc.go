// Package admin is what an administrator can do to a gateway: issue, inspect
// and revoke tokens, rotate keys, read, verify and prove the audit log, and
// test policies. One interface, two implementations: Local works on the
// gateway host over the store and data directory; Remote calls the REST API
// with an admin token. It sits above the core packages (identity, policy,
// audit, store) and below api, cli and app, none of which it imports.
package admin
