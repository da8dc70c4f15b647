package audit

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Origin is the first line of every checkpoint: it names the log.
const Origin = "gatehouse audit log"

// checkpointText is the body of a checkpoint in the transparency-log
// checkpoint layout: origin, tree size, base64 root, then an extension line
// with the signing time.
func checkpointText(size int64, root []byte, t time.Time) string {
	return fmt.Sprintf("%s\n%d\n%s\ntime %s\n", Origin, size, base64.StdEncoding.EncodeToString(root), t.UTC().Format(time.RFC3339Nano))
}

// SignCheckpoint signs the tree head.
func SignCheckpoint(s note.Signer, size int64, root []byte, t time.Time) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: checkpointText(size, root, t)}, s)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint and returns its size and root.
func OpenCheckpoint(msg []byte, v note.Verifier) (int64, []byte, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 3 || lines[0] != Origin {
		return 0, nil, fmt.Errorf("checkpoint: not a %q checkpoint", Origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return 0, nil, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return 0, nil, fmt.Errorf("checkpoint: bad root hash")
	}
	return size, root, nil
}
