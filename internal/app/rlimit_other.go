//go:build !unix

package app

func openFileLimit() (uint64, bool) { return 0, false }
