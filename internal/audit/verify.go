package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Report summarises a successful verification.
type Report struct {
	Events      int64 // events in the log
	Checkpoints int   // the store's signed checkpoints checked
	External    int   // checkpoints from checkpoint files checked
	Covered     int64 // events covered by the newest checkpoint
	// Unsigned counts events after the newest checkpoint, the oldest of
	// which was written UnsignedAge ago. A live log always has a few.
	Unsigned    int64
	UnsignedAge time.Duration
	// Unproven counts events at the end of an export that a later
	// checkpoint covers, but that cannot be checked without the events
	// after them.
	Unproven int64
	// Torn counts partial records skipped in checkpoint files (a crash
	// while one was written).
	Torn int
	// Signers names the keys that signed the checkpoints, "name+keyhash".
	Signers []string
}

// TamperError names the first place where the log is not what was signed.
type TamperError struct {
	Index int64 // first bad event index, or -1 when only a checkpoint can say
	What  string
}

func (e *TamperError) Error() string {
	if e.Index < 0 {
		return "audit log tampered: " + e.What
	}
	return fmt.Sprintf("audit log tampered at index %d: %s", e.Index, e.What)
}

// leafLink is the part of an event body that chains it into the log.
type leafLink struct {
	Index int64  `json:"index"`
	Prev  string `json:"prev"`
}

// Source is what Verify reads: a store.Store, or an export (ExportFile).
type Source interface {
	// AuditSize is the number of events the log's head records.
	AuditSize(ctx context.Context) (int64, error)
	ScanAudit(ctx context.Context, from int64, fn func(store.AuditRecord) error) error
	Checkpoints(ctx context.Context) ([]store.Checkpoint, error)
}

// VerifyOptions are what Verify checks beyond the source itself.
type VerifyOptions struct {
	// CheckpointFiles are copies of the checkpoints kept outside the store:
	// the log's checkpoint_file, a witness's copy. Each checkpoint in them
	// must verify, be in the store, and be extended by the stored tree, so
	// deleting the store's checkpoints, or truncating or rewriting the log,
	// shows.
	CheckpointFiles []string
	// UnsignedGrace is how long an event may stay outside every signed
	// checkpoint (DefaultUnsignedGrace of 10s when zero). Older unsigned
	// events fail verification: their checkpoints were deleted, or nothing
	// ever signed them.
	UnsignedGrace time.Duration
	// Export says the source is an export: a copy of the log's first events
	// without checkpoints of its own. Checkpoints beyond its end are not a
	// truncation, and there are no stored checkpoints to compare the files
	// with.
	Export bool
	// Now is the current time (time.Now).
	Now func() time.Time
}

// signedAt is one checkpoint Verify compares the tree with.
type signedAt struct {
	size  int64
	root  []byte
	from  string
	store bool // the source holds it (otherwise only a checkpoint file)
}

// Verify re-reads the whole log and checks, for every event, that it sits at
// the index it was written with, links to the leaf before it, and hashes to
// the stored leaf hash; for every checkpoint, in the store and in the
// checkpoint files, that its signature is valid and its root matches the
// tree recomputed from the events; that every checkpoint of the files is in
// the store; and that no event has been left unsigned longer than the grace.
// The first problem found is returned as a *TamperError.
func Verify(ctx context.Context, src Source, v note.Verifier, opts VerifyOptions) (Report, error) {
	var rep Report
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	grace := opts.UnsignedGrace
	if grace <= 0 {
		grace = DefaultUnsignedGrace(10 * time.Second)
	}
	signers := map[string]bool{}
	// The files first: each of their checkpoints was stored before it was
	// written, so a live log's store holds them all when read after.
	var external []signedAt
	for _, path := range opts.CheckpointFiles {
		heads, torn, err := ReadCheckpointFile(path, v)
		if err != nil {
			return rep, err
		}
		rep.Torn += torn
		for _, h := range heads {
			if h.Refused != "" {
				return rep, &TamperError{Index: -1, What: fmt.Sprintf("%s holds a refusal notice: a node refused to sign at %s, because %s", path, h.Time.Format(time.RFC3339), h.Refused)}
			}
			external = append(external, signedAt{size: h.Size, root: h.Root, from: "the checkpoint in " + path})
			signers[h.Signer] = true
		}
	}
	cps, err := src.Checkpoints(ctx)
	if err != nil {
		return rep, err
	}
	bySize := map[int64]signedAt{}
	for _, cp := range cps {
		h, err := OpenCheckpoint(cp.Note, v)
		if err != nil {
			return rep, &TamperError{Index: -1, What: fmt.Sprintf("checkpoint at size %d: %v", cp.Size, err)}
		}
		if h.Size != cp.Size || !bytes.Equal(h.Root, cp.Root) {
			return rep, &TamperError{Index: -1, What: fmt.Sprintf("checkpoint at size %d: stored size or root differs from the signed note", cp.Size)}
		}
		bySize[h.Size] = signedAt{size: h.Size, root: h.Root, from: "the store's checkpoint", store: true}
		signers[h.Signer] = true
	}
	for _, e := range external {
		s, ok := bySize[e.size]
		switch {
		case ok && !bytes.Equal(s.root, e.root):
			return rep, &TamperError{Index: -1, What: fmt.Sprintf("the store's checkpoint at size %d differs from %s: the log was forked", e.size, e.from)}
		case !ok && !opts.Export:
			return rep, &TamperError{Index: -1, What: fmt.Sprintf("%s at size %d is missing from the store: checkpoints were deleted from the store", e.from, e.size)}
		case !ok:
			bySize[e.size] = e
		}
		rep.External++
	}
	// The log keeps growing while it is verified (a live gateway): verify
	// the prefix the head recorded after the checkpoints were read, so
	// every checkpoint read is within it and later appends are not
	// mistaken for a head that disagrees with the rows.
	size, err := src.AuditSize(ctx)
	if err != nil {
		return rep, err
	}
	heads := make([]signedAt, 0, len(bySize))
	beyond := false // an export ends before a checkpoint
	for _, h := range bySize {
		if opts.Export && h.size > size {
			beyond = true
			continue
		}
		heads = append(heads, h)
	}
	sort.Slice(heads, func(i, j int) bool { return heads[i].size < heads[j].size })
	newest := int64(0) // the newest checkpoint the log can be checked against
	for _, h := range heads {
		if h.size <= size {
			newest = h.size
		}
	}
	next := 0 // next checkpoint to compare against
	rng := rangeFactory.NewEmptyRange(0)
	var prev, firstUnsigned []byte
	var hexBuf [64]byte
	expect := int64(0)
	checkRoot := func() error {
		for next < len(heads) && heads[next].size == expect {
			root, err := rng.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, heads[next].root) {
				return &TamperError{Index: -1, What: fmt.Sprintf("tree root at size %d does not match %s: an event before index %d was changed", expect, heads[next].from, expect)}
			}
			rep.Covered = expect
			if heads[next].store {
				rep.Checkpoints++
			}
			next++
		}
		return nil
	}
	err = src.ScanAudit(ctx, 0, func(r store.AuditRecord) error {
		if err := checkRoot(); err != nil {
			return err
		}
		if r.Index >= size {
			return errStopScan
		}
		if r.Index != expect {
			return &TamperError{Index: expect, What: fmt.Sprintf("event missing (next stored event has index %d)", r.Index)}
		}
		index, link, ok := linkOf(r.Body)
		if !ok {
			return &TamperError{Index: expect, What: "event body is not a valid event"}
		}
		if index != expect {
			return &TamperError{Index: expect, What: fmt.Sprintf("event was written at index %d: events were reordered", index)}
		}
		if !linksTo(link, prev, &hexBuf) {
			if expect > 0 {
				return &TamperError{Index: expect - 1, What: fmt.Sprintf("event changed or replaced: the link from event %d does not match it", expect)}
			}
			return &TamperError{Index: 0, What: "first event links to a predecessor"}
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(r.Body)
		if !bytes.Equal(leaf, r.LeafHash) {
			return &TamperError{Index: expect, What: "event content changed: it no longer hashes to its leaf"}
		}
		if err := rng.Append(leaf, nil); err != nil {
			return err
		}
		if expect == newest {
			firstUnsigned = r.Body
		}
		prev = leaf
		expect++
		return nil
	})
	if err != nil && err != errStopScan {
		return rep, err
	}
	if err := checkRoot(); err != nil {
		return rep, err
	}
	rep.Events = expect
	if next < len(heads) {
		return rep, &TamperError{Index: expect, What: fmt.Sprintf("log truncated: it ends at %d events but %s was signed at size %d", expect, heads[len(heads)-1].from, heads[len(heads)-1].size)}
	}
	if size != expect {
		return rep, &TamperError{Index: min(size, expect), What: fmt.Sprintf("log head records %d events but %d are stored", size, expect)}
	}
	for s := range signers {
		rep.Signers = append(rep.Signers, s)
	}
	sort.Strings(rep.Signers)
	if rep.Covered == expect {
		return rep, nil
	}
	if beyond {
		// A later checkpoint covers the export's last events; only the
		// events after them could prove it.
		rep.Unproven = expect - rep.Covered
		return rep, nil
	}
	rep.Unsigned = expect - rep.Covered
	var t struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(firstUnsigned, &t); err != nil {
		return rep, &TamperError{Index: rep.Covered, What: "event body is not a valid event"}
	}
	rep.UnsignedAge = now().Sub(t.Time)
	if rep.UnsignedAge > grace {
		what := fmt.Sprintf("events %d to %d are not covered by any signed checkpoint", rep.Covered, expect-1)
		if len(heads) == 0 {
			what = fmt.Sprintf("no signed checkpoint covers any of the log's %d events", expect)
		}
		return rep, &TamperError{Index: rep.Covered, What: fmt.Sprintf("%s, and the oldest was written %s ago, more than the %s a live log leaves an event unsigned: the checkpoints were deleted or the log was rewritten (or a gateway crashed and has not run since)",
			what, rep.UnsignedAge.Round(time.Second), grace)}
	}
	return rep, nil
}

// IsTampered reports whether err is a verification failure rather than an
// error reading the store.
func IsTampered(err error) bool {
	var te *TamperError
	return errors.As(err, &te)
}

// linkOf returns the index and the prev link an event body carries. The
// layout the log writes ({"id":"…","index":N,"prev":"…",…}) is read without
// a JSON decode or an allocation, which otherwise dominate verification and
// opening the log; anything else takes the slow path. The leaf hash covers
// every byte either way.
func linkOf(b []byte) (index int64, prev []byte, ok bool) {
	if index, prev, ok = fastLink(b); ok {
		return index, prev, true
	}
	var l leafLink
	if json.Unmarshal(b, &l) != nil {
		return 0, nil, false
	}
	return l.Index, []byte(l.Prev), true
}

// fastLink is linkOf for the log's own layout.
func fastLink(b []byte) (int64, []byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"id":"`))
	if !ok {
		return 0, nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return 0, nil, false
	}
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`","index":`))
	if !ok {
		return 0, nil, false
	}
	n, digits := int64(0), 0
	for digits < len(rest) && digits < 18 && rest[digits] >= '0' && rest[digits] <= '9' {
		n = n*10 + int64(rest[digits]-'0')
		digits++
	}
	if digits == 0 {
		return 0, nil, false
	}
	rest, ok = bytes.CutPrefix(rest[digits:], []byte(`,"prev":"`))
	if !ok {
		return 0, nil, false
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, nil, false
	}
	return n, rest[:j], true
}

// linksTo reports whether prev, a body's hex link, names leaf; buf is
// scratch space, so the check allocates nothing.
func linksTo(prev, leaf []byte, buf *[64]byte) bool {
	if len(leaf) > len(buf)/2 {
		return false
	}
	n := hex.Encode(buf[:], leaf)
	return bytes.Equal(prev, buf[:n])
}
