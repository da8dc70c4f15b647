package audit

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// consistencyProof builds the RFC 6962 consistency proof from the tree of
// old.End() leaves to the tree of tail.End() leaves, where old is the compact
// range [0, m) and tail the compact range [m, n). Every node such a proof
// needs is one of theirs: the left part of the proof lies in old's perfect
// subtrees and the right part in tail's.
func consistencyProof(old, tail *compact.Range) ([][]byte, error) {
	m, n := old.End(), tail.End()
	if old.Begin() != 0 || tail.Begin() != m {
		return nil, fmt.Errorf("consistency proof: ranges [%d, %d) and [%d, %d) do not meet", old.Begin(), m, tail.Begin(), n)
	}
	nodes, err := proof.Consistency(m, n)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	known := make(map[compact.NodeID][]byte, len(old.Hashes())+len(tail.Hashes()))
	for i, id := range compact.RangeNodes(0, m, nil) {
		known[id] = old.Hashes()[i]
	}
	for i, id := range compact.RangeNodes(m, n, nil) {
		known[id] = tail.Hashes()[i]
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, ok := known[id]
		if !ok {
			return nil, fmt.Errorf("consistency proof %d→%d: node %+v is in neither range", m, n, id)
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// errNotExtension is returned by checkExtension when the tree does not
// extend the trusted one.
var errNotExtension = errors.New("not an extension")

// checkExtension proves, with a consistency proof, that the tree of size n
// and root root, made of the trusted tree old (whose root is oldRoot) and
// the leaves of tail, extends the trusted tree: the trusted leaves are its
// first leaves, unchanged.
func checkExtension(old *compact.Range, oldRoot []byte, tail *compact.Range, root []byte) error {
	m, n := old.End(), tail.End()
	if m == 0 {
		// Every tree extends the empty one; check the root alone.
		got, err := tail.GetRootHash(nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, root) {
			return fmt.Errorf("%w: the stored leaves do not hash to the root of size %d", errNotExtension, n)
		}
		return nil
	}
	p, err := consistencyProof(old, tail)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, n, p, oldRoot, root); err != nil {
		return fmt.Errorf("%w: consistency proof %d→%d: %v", errNotExtension, m, n, err)
	}
	return nil
}
