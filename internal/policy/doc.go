// Package policy decides, with Cedar policies, whether a principal may perform
// an action on a resource. It owns the schema, the starter policies, loading and
// validating a directory of *.cedar files, and reloading it when it changes.
//
// It sits in the core layer: it must not import an engine, the gateway, api,
// cli, app, identity or audit (imports_test.go checks). Engines describe a
// request with Request and never see a Cedar type.
package policy
