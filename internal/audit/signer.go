package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// head is a tree head the writer asks the signer to sign. root is nil when
// the log refuses to sign (the writer no longer keeps the tree).
type head struct {
	size int64
	root []byte
	at   time.Time
}

// trusted is the newest checkpoint the signer trusts: one it signed itself,
// or, just after Open, the newest it could verify in the checkpoint file or
// the store. The next checkpoint must extend it.
type trusted struct {
	rng  *compact.Range // the tree's compact range [0, size)
	root []byte
	time time.Time
	from string // where it came from, for messages
}

func (t *trusted) size() int64 {
	if t.rng == nil {
		return 0
	}
	return int64(t.rng.End())
}

// candidate is a verified checkpoint Open checks the stored tree against.
type candidate struct {
	Head
	from string
}

// openTrust rebuilds the tree from the store and checks it against the
// newest checkpoints in the checkpoint file and the store: the stored tree
// must extend each, and events left unsigned must not span longer than a
// running node would leave them. A check that fails makes the log refuse to
// sign; only a store that cannot be read is an error.
func (l *Log) openTrust(ctx context.Context) error {
	l.trust = trusted{rng: rangeFactory.NewEmptyRange(0), from: "the empty log"}
	if err := checkKeys(l.opts.Signer, l.opts.Verifier); err != nil {
		l.refuse(err)
	}
	cands, err := l.candidates(ctx)
	if err != nil && !IsTampered(err) {
		return err
	}
	if err != nil {
		l.refuse(err)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Size < cands[j].Size })
	var newest int64
	if len(cands) > 0 {
		newest = cands[len(cands)-1].Size
	}
	captured := map[int64]*compact.Range{}
	var firstUnsigned, lastTime time.Time
	err = l.catchUp(ctx, func(r store.AuditRecord) {
		for _, c := range cands {
			if c.Size == r.Index+1 {
				captured[c.Size] = copyRange(l.rng)
			}
		}
		if r.Index == newest {
			firstUnsigned = r.Time
		}
		lastTime = r.Time
	})
	if err != nil && !IsTampered(err) {
		return fmt.Errorf("audit open: %w", err)
	}
	if err != nil {
		l.refuse(err)
	}
	if l.Err() != nil {
		return nil
	}
	size := int64(l.rng.End())
	for _, c := range cands {
		if c.Size > size {
			l.refuse(&TamperError{Index: size, What: fmt.Sprintf("log truncated: the store holds %d events but %s was signed at size %d", size, c.from, c.Size)})
			return nil
		}
		rng := captured[c.Size]
		root, err := rng.GetRootHash(nil)
		if err != nil {
			return fmt.Errorf("audit open: %w", err)
		}
		if !bytes.Equal(root, c.Root) {
			l.refuse(&TamperError{Index: -1, What: fmt.Sprintf("the stored log does not extend %s (size %d): an event before index %d was changed, removed or reordered", c.from, c.Size, c.Size)})
			return nil
		}
		l.trust = trusted{rng: rng, root: c.Root, time: c.Time, from: c.from}
	}
	if size > newest && lastTime.Sub(firstUnsigned) > l.opts.UnsignedGrace {
		l.refuse(&TamperError{Index: newest, What: fmt.Sprintf("events %d to %d were never signed, and they span %s, longer than a running log leaves events unsigned (%s): the checkpoints over them were deleted, or the log was rewritten; this node will not sign them", newest, size-1, lastTime.Sub(firstUnsigned).Round(time.Second), l.opts.UnsignedGrace)})
	}
	return nil
}

// candidates returns the newest verified checkpoints of the checkpoint file
// (its first and its last) and of the store. The file is read first: each of
// its checkpoints was stored before it was written, so the store then holds
// it too even while another process keeps appending.
func (l *Log) candidates(ctx context.Context) ([]candidate, error) {
	var cands []candidate
	var fileNewest int64
	if l.opts.CheckpointFile != "" {
		first, last, err := fileEnds(l.opts.CheckpointFile, l.opts.Verifier)
		if err != nil {
			return nil, err
		}
		if last != nil && last.Refused != "" {
			return nil, &TamperError{Index: -1, What: fmt.Sprintf("%s ends with a refusal notice: a node refused to sign at %s, because %s", l.opts.CheckpointFile, last.Time.Format(time.RFC3339), last.Refused)}
		}
		if first != nil && first.Refused == "" {
			cands = append(cands, candidate{*first, fmt.Sprintf("the first checkpoint in %s", l.opts.CheckpointFile)})
		}
		if last != nil {
			cands = append(cands, candidate{*last, fmt.Sprintf("the last checkpoint in %s", l.opts.CheckpointFile)})
			fileNewest = last.Size
		}
	}
	cp, err := l.opts.Store.LatestCheckpoint(ctx)
	if errors.Is(err, store.ErrNotFound) {
		cp, err = store.Checkpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit open: %w", err)
	}
	if cp.Size < fileNewest {
		what := fmt.Sprintf("the store's newest checkpoint (size %d) is older than the newest in %s (size %d): checkpoints were deleted from the store", cp.Size, l.opts.CheckpointFile, fileNewest)
		if cp.Note == nil {
			what = fmt.Sprintf("the store holds no checkpoint, but %s has one at size %d: checkpoints were deleted from the store", l.opts.CheckpointFile, fileNewest)
		}
		return cands, &TamperError{Index: -1, What: what}
	}
	if cp.Note != nil {
		h, err := OpenCheckpoint(cp.Note, l.opts.Verifier)
		if err != nil {
			return cands, &TamperError{Index: -1, What: fmt.Sprintf("the store's newest checkpoint (size %d): %v", cp.Size, err)}
		}
		if h.Size != cp.Size || !bytes.Equal(h.Root, cp.Root) {
			return cands, &TamperError{Index: -1, What: fmt.Sprintf("the store's newest checkpoint (size %d): stored size or root differs from the signed note", cp.Size)}
		}
		cands = append(cands, candidate{h, "the store's newest checkpoint"})
	}
	return cands, nil
}

// checkKeys makes sure the signing key and the verifier key are one pair, so
// a replaced audit.key cannot sign checkpoints audit.pub does not check.
func checkKeys(s note.Signer, v note.Verifier) error {
	msg, err := note.Sign(&note.Note{Text: "gatehouse audit key check\n"}, s)
	if err == nil {
		_, err = note.Open(msg, note.VerifierList(v))
	}
	if err != nil {
		return &TamperError{Index: -1, What: fmt.Sprintf("the checkpoint signing key (%s+%08x) does not match the verifier key %s: a key file was replaced", s.Name(), s.KeyHash(), KeyID(v))}
	}
	return nil
}

func copyRange(r *compact.Range) *compact.Range {
	hashes := make([][]byte, len(r.Hashes()))
	copy(hashes, r.Hashes())
	c, err := rangeFactory.NewRange(r.Begin(), r.End(), hashes)
	if err != nil {
		panic("audit: copy of a valid compact range failed: " + err.Error())
	}
	return c
}

// signer signs the heads the writer sends until the channel closes.
func (l *Log) signer() {
	defer close(l.signerDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	for h := range l.heads {
		l.sign(ctx, h)
	}
}

// sign signs h if the stored tree extends the trusted checkpoint: the
// stored leaves since it, with the trusted tree, must give a consistency
// proof from the trusted root to h's root (the tree this node appended). So
// a node never signs a tree someone rewrote under it, nor one it read from a
// store that no longer extends its last checkpoint.
func (l *Log) sign(ctx context.Context, h head) {
	if err := l.Err(); err != nil {
		l.observeCheckpoint("refused")
		l.opts.Logger.Error("audit checkpoint refused: the stored log is not the log this node signed", "size", h.size, "err", err)
		return
	}
	t := &l.trust
	m := t.size()
	if h.size <= m {
		return
	}
	leaves, err := l.opts.Store.AuditLeaves(ctx, m, h.size)
	if err != nil {
		l.observeCheckpoint("error")
		l.opts.Logger.Error("audit checkpoint failed", "size", h.size, "err", err)
		return
	}
	if int64(len(leaves)) != h.size-m {
		l.refuse(&TamperError{Index: m + int64(len(leaves)), What: fmt.Sprintf("the store holds %d events after %s (size %d), but this node appended %d: events were removed", len(leaves), t.from, m, h.size-m)})
		return
	}
	tail := rangeFactory.NewEmptyRange(uint64(m))
	for _, leaf := range leaves {
		if err := tail.Append(leaf, nil); err != nil {
			l.opts.Logger.Error("audit checkpoint failed", "size", h.size, "err", err)
			return
		}
	}
	if err := checkExtension(t.rng, t.root, tail, h.root); err != nil {
		if errors.Is(err, errNotExtension) {
			l.refuse(&TamperError{Index: -1, What: fmt.Sprintf("the stored log of %d events is not the one this node appended on top of %s (size %d): %v", h.size, t.from, m, err)})
			return
		}
		l.opts.Logger.Error("audit checkpoint failed", "size", h.size, "err", err)
		return
	}
	msg, err := SignCheckpoint(l.opts.Signer, h.size, h.root, h.at)
	if err == nil {
		err = l.opts.Store.PutCheckpoint(ctx, store.Checkpoint{Size: h.size, Root: h.root, Time: h.at.UTC(), Note: msg})
	}
	if err != nil {
		l.observeCheckpoint("error")
		l.opts.Logger.Error("audit checkpoint failed", "size", h.size, "err", err)
		return
	}
	merged := copyRange(t.rng)
	if err := merged.AppendRange(tail, nil); err != nil {
		l.opts.Logger.Error("audit checkpoint: extend trusted tree", "err", err)
		return
	}
	*t = trusted{rng: merged, root: h.root, time: h.at, from: "this node's checkpoint"}
	l.signed.Store(h.size)
	l.observeCheckpoint("signed")
	if l.ext != nil {
		l.ext.offer(msg)
	}
}
