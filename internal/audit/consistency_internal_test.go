package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestConsistencyProofFromRanges checks the proofs built from two compact
// ranges against transparency-dev/merkle's verifier for every pair of sizes
// up to 70 and a few large ones, and that a changed leaf after the trusted
// tree, or in it, is not taken for an extension.
func TestConsistencyProofFromRanges(t *testing.T) {
	leaf := func(i uint64) []byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], i)
		h := sha256.Sum256(b[:])
		return rfc6962.DefaultHasher.HashLeaf(h[:])
	}
	build := func(begin, end uint64, changed int64) []byte {
		t.Helper()
		r := rangeFactory.NewEmptyRange(begin)
		for i := begin; i < end; i++ {
			h := leaf(i)
			if int64(i) == changed {
				h = leaf(i + 1000000)
			}
			if err := r.Append(h, nil); err != nil {
				t.Fatal(err)
			}
		}
		root, _ := r.GetRootHash(nil)
		return root
	}
	type pair struct{ m, n uint64 }
	var pairs []pair
	for n := uint64(1); n <= 70; n++ {
		for m := uint64(0); m <= n; m++ {
			pairs = append(pairs, pair{m, n})
		}
	}
	pairs = append(pairs, pair{1000, 1024}, pair{1023, 4097}, pair{4096, 10000}, pair{5555, 5556})
	for _, p := range pairs {
		old := rangeFactory.NewEmptyRange(0)
		tail := rangeFactory.NewEmptyRange(p.m)
		for i := uint64(0); i < p.n; i++ {
			r := old
			if i >= p.m {
				r = tail
			}
			r.Append(leaf(i), nil)
		}
		oldRoot := build(0, p.m, -1)
		newRoot := build(0, p.n, -1)
		if p.m > 0 {
			pr, err := consistencyProof(old, tail)
			if err != nil {
				t.Fatalf("%d→%d: %v", p.m, p.n, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, p.m, p.n, pr, oldRoot, newRoot); err != nil {
				t.Fatalf("%d→%d: proof from ranges does not verify: %v", p.m, p.n, err)
			}
		}
		if err := checkExtension(old, oldRoot, tail, newRoot); err != nil {
			t.Fatalf("%d→%d: %v", p.m, p.n, err)
		}
		if p.n > p.m {
			// The trusted tree of size m with a different last leaf: the
			// same leaves after it do not extend it.
			if p.m > 0 {
				if err := checkExtension(old, build(0, p.m, int64(p.m-1)), tail, newRoot); !errors.Is(err, errNotExtension) {
					t.Fatalf("%d→%d with a changed trusted leaf: %v", p.m, p.n, err)
				}
			}
			// A leaf after the trusted tree changed in the tree to sign.
			if err := checkExtension(old, oldRoot, tail, build(0, p.n, int64(p.n-1))); !errors.Is(err, errNotExtension) {
				t.Fatalf("%d→%d with a changed new leaf: %v", p.m, p.n, err)
			}
		}
	}
}
