package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// InclusionProof proves that one event is in the tree signed by a
// checkpoint. It is self-contained: with the verifier key it can be checked
// offline by CheckProof (`gatehouse audit verify-proof`).
type InclusionProof struct {
	// Body is the exact leaf bytes (base64 in JSON); Event repeats them as
	// JSON for people to read and is not used by CheckProof, because JSON
	// re-indentation would change the bytes.
	Body       []byte          `json:"body"`
	Event      json.RawMessage `json:"event"`
	Index      int64           `json:"index"`
	TreeSize   int64           `json:"tree_size"`
	Hashes     [][]byte        `json:"proof"`
	Checkpoint string          `json:"checkpoint"`
}

// Prove builds an inclusion proof for event id against the latest
// checkpoint. An event newer than the latest checkpoint cannot be proven
// until the next checkpoint is signed.
func Prove(ctx context.Context, st store.Store, id string) (InclusionProof, error) {
	rec, err := st.AuditByID(ctx, id)
	if err != nil {
		return InclusionProof{}, err
	}
	cp, err := st.LatestCheckpoint(ctx)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove: %w", err)
	}
	if rec.Index >= cp.Size {
		return InclusionProof{}, fmt.Errorf("prove: event %s (index %d) is newer than the latest checkpoint (size %d); try again after the next checkpoint", id, rec.Index, cp.Size)
	}
	leaves := make([][]byte, 0, cp.Size)
	err = st.ScanAudit(ctx, 0, func(r store.AuditRecord) error {
		if r.Index >= cp.Size {
			return errStopScan
		}
		leaves = append(leaves, r.LeafHash)
		return nil
	})
	if err != nil && err != errStopScan {
		return InclusionProof{}, fmt.Errorf("prove: %w", err)
	}
	if int64(len(leaves)) != cp.Size {
		return InclusionProof{}, fmt.Errorf("prove: log has %d events below checkpoint size %d; run `gatehouse audit verify`", len(leaves), cp.Size)
	}
	nodes, err := proof.Inclusion(uint64(rec.Index), uint64(cp.Size))
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove: %w", err)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		begin, end := id.Coverage()
		// A proof node is a perfect subtree, whose hash is the root of a tree
		// holding just its leaves.
		r := rangeFactory.NewEmptyRange(0)
		for _, h := range leaves[begin:end] {
			if err := r.Append(h, nil); err != nil {
				return InclusionProof{}, err
			}
		}
		var err error
		if hashes[i], err = r.GetRootHash(nil); err != nil {
			return InclusionProof{}, err
		}
	}
	hashes, err = nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove: %w", err)
	}
	return InclusionProof{Body: rec.Body, Event: rec.Body, Index: rec.Index, TreeSize: cp.Size, Hashes: hashes, Checkpoint: string(cp.Note)}, nil
}

var errStopScan = fmt.Errorf("stop scan")

// CheckProof verifies p offline: the checkpoint's signature under v, and the
// event's inclusion in the tree the checkpoint signs.
func CheckProof(p InclusionProof, v note.Verifier) error {
	h, err := OpenCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		return err
	}
	size, root := h.Size, h.Root
	if size != p.TreeSize {
		return fmt.Errorf("proof: tree size %d differs from the checkpoint's %d", p.TreeSize, size)
	}
	var link leafLink
	if err := json.Unmarshal(p.Body, &link); err != nil || link.Index != p.Index {
		return fmt.Errorf("proof: event does not carry index %d", p.Index)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(p.Body)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.Index), uint64(size), leaf, p.Hashes, root); err != nil {
		return fmt.Errorf("proof: %w", err)
	}
	return nil
}
