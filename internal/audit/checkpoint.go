package audit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Origin is the first line of every checkpoint: it names the log.
const Origin = "gatehouse audit log"

// Head is a checkpoint whose signature was checked: the tree size and root
// that the key named by Signer signed at Time.
type Head struct {
	Size int64
	Root []byte
	Time time.Time
	// Signer names the signing key as sumdb notes do, "name+keyhash"
	// (gatehouse-audit+1a2b3c4d), so a report says who signed.
	Signer string
	// Refused, when set, makes this a refusal notice rather than a
	// checkpoint: a node found the stored log was not the one it signed,
	// and says why. Size and Root are then zero.
	Refused string
}

// refusedLine is the second line of a refusal notice, where a checkpoint
// has its tree size.
const refusedLine = "refused"

// SignRefusal signs a refusal notice: the log's origin, "refused", the time
// and the reason on one line. The checkpoint file keeps it, so a node that
// found the store rewritten under it leaves a trace the store cannot erase,
// and the next node to open the log refuses too.
func SignRefusal(s note.Signer, reason string, t time.Time) ([]byte, error) {
	reason = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, reason)
	msg, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%s\ntime %s\n%s\n", Origin, refusedLine, t.UTC().Format(time.RFC3339Nano), reason)}, s)
	if err != nil {
		return nil, fmt.Errorf("sign refusal: %w", err)
	}
	return msg, nil
}

// checkpointText is the body of a checkpoint in the transparency-log
// checkpoint layout: origin, tree size, base64 root, then an extension line
// with the signing time.
func checkpointText(size int64, root []byte, t time.Time) string {
	return fmt.Sprintf("%s\n%d\n%s\ntime %s\n", Origin, size, base64.StdEncoding.EncodeToString(root), t.UTC().Format(time.RFC3339Nano))
}

// SignCheckpoint signs the tree head. The note's signature line names the
// signing key, so a verifier knows which key signed.
func SignCheckpoint(s note.Signer, size int64, root []byte, t time.Time) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: checkpointText(size, root, t)}, s)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// errMalformedCheckpoint marks a note that is not a checkpoint at all (a
// record torn by a crash mid-write), as opposed to one whose signature fails.
var errMalformedCheckpoint = errors.New("malformed checkpoint note")

// OpenCheckpoint verifies a signed checkpoint under v and returns its head.
// A note signed by another key says which key signed it, so a replaced
// signing key is named as such.
func OpenCheckpoint(msg []byte, v note.Verifier) (Head, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unknown *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unknown):
			return Head{}, fmt.Errorf("checkpoint signature: signed by %s, not by the verifier key %s", sigNames(unknown.Note.UnverifiedSigs), KeyID(v))
		case errors.As(err, &invalid):
			return Head{}, fmt.Errorf("checkpoint signature: invalid signature by %s+%08x", invalid.Name, invalid.Hash)
		}
		return Head{}, fmt.Errorf("%w: %v", errMalformedCheckpoint, err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != Origin {
		return Head{}, fmt.Errorf("checkpoint: not a %q checkpoint", Origin)
	}
	if lines[1] == refusedLine {
		h := Head{Signer: sigNames(n.Sigs), Refused: strings.Join(lines[3:], " ")}
		h.Time, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(lines[2], "time "))
		if h.Refused == "" {
			h.Refused = "no reason given"
		}
		return h, nil
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return Head{}, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return Head{}, fmt.Errorf("checkpoint: bad root hash")
	}
	h := Head{Size: size, Root: root, Signer: sigNames(n.Sigs)}
	for _, l := range lines[3:] {
		if ts, ok := strings.CutPrefix(l, "time "); ok {
			h.Time, _ = time.Parse(time.RFC3339Nano, ts)
		}
	}
	return h, nil
}

// KeyID names a verifier key as "name+keyhash".
func KeyID(v note.Verifier) string { return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()) }

func sigNames(sigs []note.Signature) string {
	names := make([]string, len(sigs))
	for i, s := range sigs {
		names[i] = fmt.Sprintf("%s+%08x", s.Name, s.Hash)
	}
	return strings.Join(names, ", ")
}
