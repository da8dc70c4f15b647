package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"
)

// A checkpoint file is the log's copy of its checkpoints outside the store:
// signed notes, one after another, each followed by a blank line (so the
// file is also what a witness that appends every body it is sent would
// keep). A record runs from its origin line to the next one. A record that
// does not end in a blank line, or is not a note at all, was torn by a crash
// mid-write: it is counted and skipped. A complete note whose signature fails
// is tampering.

// maxRecord bounds one record; a checkpoint note is about 200 bytes.
const maxRecord = 64 << 10

var originLine = []byte("\n" + Origin + "\n")

// splitRecords is a bufio.SplitFunc cutting a checkpoint file into records.
func splitRecords(data []byte, atEOF bool) (int, []byte, error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.Index(data[1:], originLine); i >= 0 {
		end := i + 2 // just after the newline that ends the previous record
		return end, data[:end], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// openRecord checks one record. It returns ok=false for a torn record.
func openRecord(rec []byte, v note.Verifier) (h Head, ok bool, err error) {
	if !bytes.HasSuffix(rec, []byte("\n\n")) || !bytes.HasPrefix(rec, originLine[1:]) {
		return Head{}, false, nil
	}
	msg := rec[:len(bytes.TrimRight(rec, "\n"))+1] // the note ends with its last signature line
	h, err = OpenCheckpoint(msg, v)
	if errors.Is(err, errMalformedCheckpoint) {
		return Head{}, false, nil
	}
	return h, err == nil, err
}

// scanRecords calls fn with each complete checkpoint in r (named name), in
// file order, and returns how many torn records it skipped. A record whose
// signature fails is a *TamperError.
func scanRecords(name string, r io.Reader, v note.Verifier, fn func(h Head)) (torn int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxRecord)
	sc.Split(splitRecords)
	for n := 1; sc.Scan(); n++ {
		h, ok, err := openRecord(sc.Bytes(), v)
		if err != nil {
			return torn, &TamperError{Index: -1, What: fmt.Sprintf("checkpoint file %s, record %d: %v", name, n, err)}
		}
		if !ok {
			torn++
			continue
		}
		fn(h)
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return torn, &TamperError{Index: -1, What: fmt.Sprintf("checkpoint file %s: a record longer than %d bytes is not a checkpoint", name, maxRecord)}
	} else if err != nil {
		return torn, fmt.Errorf("checkpoint file %s: %w", name, err)
	}
	return torn, nil
}

// ReadCheckpointFile returns every checkpoint in the file at path, checked
// under v. A missing file holds none.
func ReadCheckpointFile(path string, v note.Verifier) (heads []Head, torn int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("checkpoint file: %w", err)
	}
	defer f.Close()
	torn, err = scanRecords(path, f, v, func(h Head) { heads = append(heads, h) })
	return heads, torn, err
}

// fileEnds returns the first and the last complete checkpoint of the file at
// path, reading only a few records at each end, so opening the log stays
// cheap however long the file has grown. Both are nil for a missing or
// empty file.
func fileEnds(path string, v note.Verifier) (first, last *Head, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint file: %w", err)
	}
	// pick checks the records of the chunk at off in the given order and
	// returns the first complete one.
	pick := func(off int64, backwards bool) (*Head, error) {
		buf := make([]byte, min(st.Size()-off, endChunk))
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("checkpoint file: %w", err)
		}
		if off > 0 {
			// Start at the first record that begins inside the chunk.
			i := bytes.Index(buf, originLine)
			if i < 0 {
				return nil, nil
			}
			buf = buf[i+1:]
		}
		var recs [][]byte
		for len(buf) > 0 {
			n, rec, _ := splitRecords(buf, true)
			recs, buf = append(recs, rec), buf[n:]
		}
		for i := range recs {
			if backwards {
				i = len(recs) - 1 - i
			}
			h, ok, err := openRecord(recs[i], v)
			if err != nil {
				return nil, &TamperError{Index: -1, What: fmt.Sprintf("checkpoint file %s: %v", path, err)}
			}
			if ok {
				return &h, nil
			}
		}
		return nil, nil
	}
	if first, err = pick(0, false); err != nil {
		return nil, nil, err
	}
	if last, err = pick(max(0, st.Size()-endChunk), true); err != nil {
		return nil, nil, err
	}
	return first, last, nil
}

// endChunk is how much of each end of a checkpoint file fileEnds reads.
const endChunk = 8 << 10

// checkpointFile appends signed notes to the file, creating it on first use.
// One goroutine (the exporter) owns it.
type checkpointFile struct {
	path string
	f    *os.File
}

// append writes notes (each a signed checkpoint) and syncs the file.
func (c *checkpointFile) append(notes ...[]byte) error {
	var buf []byte
	if c.f == nil {
		if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
			return fmt.Errorf("checkpoint file: %w", err)
		}
		f, err := os.OpenFile(c.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("checkpoint file: %w", err)
		}
		// After a torn write the file ends mid-line: start the next record
		// on a line of its own, so only the torn one is lost.
		if st, err := f.Stat(); err == nil && st.Size() > 0 {
			last := make([]byte, 1)
			if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
				buf = append(buf, '\n')
			}
		}
		c.f = f
	}
	for _, n := range notes {
		buf = append(append(buf, n...), '\n')
	}
	if _, err := c.f.Write(buf); err != nil {
		return fmt.Errorf("checkpoint file: %w", err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("checkpoint file: %w", err)
	}
	return nil
}

func (c *checkpointFile) close() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
