package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/transparency-dev/merkle/rfc6962"
)

// maxExportLine bounds one event in an export file.
const maxExportLine = 16 << 20

// ExportFile reads a file written by `gatehouse audit export --format
// jsonl` as a Source for Verify (with VerifyOptions.Export): each line is one
// event's exact leaf bytes, in index order. It holds no checkpoints; check
// it against a checkpoint file. The file is read twice, so it must not
// change meanwhile.
func ExportFile(path string) Source { return exportFile(path) }

type exportFile string

func (p exportFile) AuditSize(ctx context.Context) (int64, error) {
	var n int64
	err := p.lines(func([]byte) error { n++; return nil })
	return n, err
}

func (p exportFile) ScanAudit(ctx context.Context, from int64, fn func(store.AuditRecord) error) error {
	var i int64
	return p.lines(func(line []byte) error {
		defer func() { i++ }()
		if i < from {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		body := bytes.Clone(line)
		return fn(store.AuditRecord{Index: i, Body: body, LeafHash: rfc6962.DefaultHasher.HashLeaf(body)})
	})
}

func (p exportFile) Checkpoints(context.Context) ([]store.Checkpoint, error) { return nil, nil }

func (p exportFile) lines(fn func([]byte) error) error {
	f, err := os.Open(string(p))
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("audit export %s: %w", string(p), err)
	}
	return nil
}
