package mask

import (
	"bytes"
	"errors"
	"io"
	"slices"
)

// Streams are masked in chunks without holding the whole input. A chunk
// ends at a white-space byte at least streamMargin bytes before the end of
// what has arrived, and outside every finding. Values that contain no white
// space cannot cross such a cut; those that do (printed cards, phones,
// IBANs, PEM blocks) are short, or for PEM blocks found (and so not cut)
// even while unterminated, because the margin holds them whole. The bytes
// just before the cut stay as context for the next chunk, so a stream is
// masked exactly as the same bytes would be in one call.
//
// A chunk with no white space for streamMax bytes is cut anyway; a private
// key block cut that way stays masked until its END line.

const (
	streamChunk   = 64 << 10
	streamMargin  = 1 << 10
	streamContext = 64
	streamMax     = 1 << 20
)

type chunker struct {
	m     *Masker
	buf   []byte // buf[:ctx] is context already handled
	ctx   int
	base  int64 // stream offset of buf[ctx]
	fs    []Finding
	inPEM bool
	// wait is the buffer length before which a step that found no cut is
	// not retried: without it, tiny writes to a long line would rescan the
	// whole buffer on every write.
	wait int

	chunk, margin, max int
}

func newChunker(m *Masker) chunker {
	return chunker{m: m, chunk: streamChunk, margin: streamMargin, max: streamMax}
}

func (c *chunker) pending() int { return len(c.buf) - c.ctx }

// ready reports whether enough is buffered to try a step.
func (c *chunker) ready() bool { return c.pending() >= c.chunk && len(c.buf) >= c.wait }

// step finds values in buf[ctx:] and chooses where this chunk ends. It
// returns the findings before the cut (offsets into buf), or ok=false
// when it needs more input first.
func (c *chunker) step(final bool) (fs []Finding, cut int, ok bool) {
	fs, cut, ok = c.step1(final)
	if ok {
		c.wait = 0
	} else {
		c.wait = len(c.buf) + max(c.chunk, len(c.buf)/2)
	}
	return fs, cut, ok
}

func (c *chunker) step1(final bool) (fs []Finding, cut int, ok bool) {
	buf, start := c.buf, c.ctx
	fs = c.fs[:0]
	defer func() {
		if cap(fs) > cap(c.fs) {
			c.fs = fs[:0] // keep the larger buffer for the next chunk
		}
	}()
	pemDone := -1 // end of a key block continued from the last chunk
	if c.inPEM {
		e := pemContinue(buf, start)
		if e < 0 {
			if !final && len(buf)-start < c.max {
				return nil, 0, false
			}
			end := len(buf)
			if !final && end-64 > start {
				end -= 64 // an END line may be arriving
			}
			return append(fs, Finding{start, end, PrivateKey}), end, true
		}
		fs = append(fs, Finding{start, e, PrivateKey})
		start, pemDone = e, e
	}
	fs = c.m.findFrom(buf, start, fs)
	if final {
		c.inPEM = false
		return fs, len(buf), true
	}
	limit := len(buf) - c.margin
	// The nearest white space before limit that is outside every finding.
	k := len(fs) - 1
	for p := limit; p > start; p-- {
		for k >= 0 && fs[k].Start > p {
			k--
		}
		if k >= 0 && p < fs[k].End {
			p = fs[k].Start
			continue
		}
		if class[buf[p]]&cSpace != 0 {
			c.inPEM = false
			return cutAt(fs, p), p, true
		}
	}
	if pemDone >= 0 {
		// Right after a finding is as safe a cut as white space.
		c.inPEM = false
		return cutAt(fs, pemDone), pemDone, true
	}
	if len(buf)-start < c.max {
		return nil, 0, false
	}
	// Forced: no white space in streamMax bytes.
	cut = max(limit, start+1)
	for _, f := range fs {
		if f.Start < cut && cut < f.End {
			switch {
			case f.Detector == PrivateKey && f.End == len(buf):
				c.inPEM = true
				cut = len(buf)
			case f.Start > start:
				cut = f.Start
			default:
				cut = f.End
			}
			break
		}
	}
	return cutAt(fs, cut), cut, true
}

func cutAt(fs []Finding, cut int) []Finding {
	for k, f := range fs {
		if f.End > cut {
			return fs[:k]
		}
	}
	return fs
}

// pemContinue finds the end of the first "-----END <label>-----" line of a
// private key at or after start, or returns -1.
func pemContinue(buf []byte, start int) int {
	for k := start; ; {
		j := bytes.Index(buf[k:], pemEnd)
		if j < 0 {
			return -1
		}
		j += k + len(pemEnd)
		l := bytes.Index(buf[j:min(len(buf), j+48)], []byte("-----"))
		if l >= 0 && privateLabel(buf[j:j+l]) {
			return j + l + 5
		}
		k = j
	}
}

// fill reads once from r into the free end of buf.
func (c *chunker) fill(r io.Reader) (int, error) {
	if cap(c.buf)-len(c.buf) < c.chunk/2 {
		c.buf = slices.Grow(c.buf, c.chunk)
	}
	n, err := r.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	return n, err
}

// advance drops what is before cut, keeping streamContext bytes of context.
func (c *chunker) advance(cut int) {
	c.base += int64(cut - c.ctx)
	keep := min(streamContext, cut)
	drop := cut - keep
	n := copy(c.buf, c.buf[drop:])
	c.buf = c.buf[:n]
	c.ctx = keep
}

var (
	_ io.WriteCloser = (*Writer)(nil)
	_ io.ReaderFrom  = (*Writer)(nil)
)

// Writer masks everything written to it and writes the result to an
// underlying writer, in chunks. Close flushes the rest; it does not close
// the underlying writer.
type Writer struct {
	c   chunker
	w   io.Writer
	out []byte
	err error
}

// NewWriter returns a Writer that masks into w.
func (m *Masker) NewWriter(w io.Writer) *Writer {
	return &Writer{c: newChunker(m), w: w}
}

// Write buffers p and writes out every chunk that is complete.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.c.buf = append(w.c.buf, p...)
	for w.c.ready() && w.err == nil {
		if !w.flush(false) {
			break
		}
	}
	return len(p), w.err
}

// ReadFrom masks everything r yields, reading straight into the Writer's
// buffer. It does not Close the Writer.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for w.err == nil {
		n, err := w.c.fill(r)
		total += int64(n)
		for w.c.ready() && w.err == nil {
			if !w.flush(false) {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, w.err
}

// Close masks and writes what is still buffered.
func (w *Writer) Close() error {
	if w.err == nil {
		w.flush(true)
	}
	if w.err == nil {
		w.err = errClosed
		return nil
	}
	if w.err == errClosed {
		return nil
	}
	return w.err
}

var errClosed = errors.New("mask: write to closed Writer")

func (w *Writer) flush(final bool) bool {
	fs, cut, ok := w.c.step(final)
	if !ok {
		return false
	}
	w.out = w.c.m.maskRange(w.out[:0], w.c.buf, w.c.ctx, cut, fs)
	if _, err := w.w.Write(w.out); err != nil {
		w.err = err
		return false
	}
	w.c.advance(cut)
	return true
}

// maskRange is MaskFindings over src[from:to].
func (m *Masker) maskRange(dst, src []byte, from, to int, fs []Finding) []byte {
	last := from
	for _, f := range fs {
		st := m.strat[f.Detector]
		if f.Detector == PrivateKey && st == off {
			st = Redact // a continued key block is masked whatever the rules say
		}
		if st == Clear || st == off || f.Start < last || f.End > to {
			continue
		}
		dst = append(dst, src[last:f.Start]...)
		dst = m.replace(dst, f.Detector, st, src[f.Start:f.End])
		last = f.End
	}
	return append(dst, src[last:to]...)
}

// FindReader reads r to the end and calls fn for every value found, with
// Start and End as offsets in the stream. It stops at the first error from
// r or fn.
func (m *Masker) FindReader(r io.Reader, fn func(Finding) error) error {
	c := newChunker(m)
	return c.run(r, fn)
}

func (c *chunker) run(r io.Reader, fn func(Finding) error) error {
	emit := func(final bool) (bool, error) {
		fs, cut, ok := c.step(final)
		if !ok {
			return false, nil
		}
		shift := c.base - int64(c.ctx)
		for _, f := range fs {
			f.Start += int(shift)
			f.End += int(shift)
			if err := fn(f); err != nil {
				return false, err
			}
		}
		c.advance(cut)
		return true, nil
	}
	for {
		_, err := c.fill(r)
		for c.ready() {
			ok, ferr := emit(false)
			if ferr != nil {
				return ferr
			}
			if !ok {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			_, ferr := emit(true)
			return ferr
		}
		if err != nil {
			return err
		}
	}
}
