package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Report summarises a successful verification.
type Report struct {
	Events      int64 // events in the log
	Checkpoints int   // signed checkpoints checked
	Covered     int64 // events covered by the latest valid checkpoint
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

// Verify re-reads the whole log and checks, for every event, that it sits at
// the index it was written with, links to the leaf before it, and hashes to
// the stored leaf hash; and for every checkpoint, that its signature is valid
// and its root matches the tree recomputed from the events. The first
// problem found is returned as a *TamperError.
func Verify(ctx context.Context, st store.Store, v note.Verifier) (Report, error) {
	var rep Report
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return rep, err
	}
	type signed struct {
		size int64
		root []byte
	}
	heads := make([]signed, 0, len(cps))
	for _, cp := range cps {
		size, root, err := OpenCheckpoint(cp.Note, v)
		if err != nil {
			return rep, &TamperError{Index: -1, What: fmt.Sprintf("checkpoint at size %d: %v", cp.Size, err)}
		}
		if size != cp.Size || !bytes.Equal(root, cp.Root) {
			return rep, &TamperError{Index: -1, What: fmt.Sprintf("checkpoint at size %d: stored size or root differs from the signed note", cp.Size)}
		}
		heads = append(heads, signed{size, root})
	}
	sort.Slice(heads, func(i, j int) bool { return heads[i].size < heads[j].size })
	next := 0 // next checkpoint to compare against
	rng := rangeFactory.NewEmptyRange(0)
	var prev []byte
	expect := int64(0)
	checkRoot := func() error {
		for next < len(heads) && heads[next].size == expect {
			root, err := rng.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, heads[next].root) {
				return &TamperError{Index: -1, What: fmt.Sprintf("tree root at size %d does not match its signed checkpoint: an event before index %d was changed", expect, expect)}
			}
			rep.Covered = expect
			rep.Checkpoints++
			next++
		}
		return nil
	}
	// The log keeps growing while it is verified (a live gateway): verify
	// the prefix the head recorded after the checkpoints were read, so
	// every checkpoint read is within it and later appends are not
	// mistaken for a head that disagrees with the rows.
	size, err := st.AuditSize(ctx)
	if err != nil {
		return rep, err
	}
	err = st.ScanAudit(ctx, 0, func(r store.AuditRecord) error {
		if err := checkRoot(); err != nil {
			return err
		}
		if r.Index >= size {
			return errStopScan
		}
		if r.Index != expect {
			return &TamperError{Index: expect, What: fmt.Sprintf("event missing (next stored event has index %d)", r.Index)}
		}
		link, ok := fastLink(r.Body)
		if !ok {
			if err := json.Unmarshal(r.Body, &link); err != nil {
				return &TamperError{Index: expect, What: "event body is not a valid event"}
			}
		}
		if link.Index != expect {
			return &TamperError{Index: expect, What: fmt.Sprintf("event was written at index %d: events were reordered", link.Index)}
		}
		if link.Prev != hex.EncodeToString(prev) {
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
		return rep, &TamperError{Index: expect, What: fmt.Sprintf("log truncated: it ends at %d events but a checkpoint was signed at size %d", expect, heads[len(heads)-1].size)}
	}
	if size != expect {
		return rep, &TamperError{Index: min(size, expect), What: fmt.Sprintf("log head records %d events but %d are stored", size, expect)}
	}
	return rep, nil
}

// IsTampered reports whether err is a verification failure rather than an
// error reading the store.
func IsTampered(err error) bool {
	var te *TamperError
	return errors.As(err, &te)
}

// fastLink reads index and prev from a body in the layout the log writes
// ({"id":"…","index":N,"prev":"…",…}) without a full JSON decode, which
// dominates verification time otherwise. Anything else takes the slow path;
// the leaf hash covers every byte either way.
func fastLink(b []byte) (leafLink, bool) {
	var l leafLink
	rest, ok := bytes.CutPrefix(b, []byte(`{"id":"`))
	if !ok {
		return l, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return l, false
	}
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`","index":`))
	if !ok {
		return l, false
	}
	n, digits := int64(0), 0
	for digits < len(rest) && digits < 18 && rest[digits] >= '0' && rest[digits] <= '9' {
		n = n*10 + int64(rest[digits]-'0')
		digits++
	}
	if digits == 0 {
		return l, false
	}
	rest, ok = bytes.CutPrefix(rest[digits:], []byte(`,"prev":"`))
	if !ok {
		return l, false
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return l, false
	}
	l.Index, l.Prev = n, string(rest[:j])
	return l, true
}
