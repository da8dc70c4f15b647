package audit_test

import "github.com/transparency-dev/merkle/rfc6962"

func leafHash(b []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(b) }
