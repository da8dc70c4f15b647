package postgres

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// frameReader reads typed protocol messages (a type byte, an int32 length
// that counts itself, then the body) without decoding them, so messages the
// engine does not need to look at are relayed as bytes. The body returned
// by next is valid until the following call.
type frameReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 32<<10), max: max}
}

// errTooLarge is returned for a message whose length exceeds the limit.
type errTooLarge struct {
	typ       byte
	size, max int
}

func (e errTooLarge) Error() string {
	return fmt.Sprintf("message %q of %d bytes exceeds the limit of %d bytes", e.typ, e.size, e.max)
}

// next reads one message. Lengths are validated before anything is
// allocated: below 4 is malformed, above max is refused.
func (f *frameReader) next() (typ byte, body []byte, err error) {
	hdr, err := f.r.Peek(5)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ = hdr[0]
	n := int(int32(binary.BigEndian.Uint32(hdr[1:5])))
	if n < 4 {
		return typ, nil, fmt.Errorf("message %q has invalid length %d", typ, n)
	}
	if n-4 > f.max {
		return typ, nil, errTooLarge{typ, n - 4, f.max}
	}
	f.r.Discard(5)
	size := n - 4
	// Small bodies are served from the read buffer without a copy.
	if size <= f.r.Size() {
		b, err := f.r.Peek(size)
		if err != nil {
			return typ, nil, unexpected(err)
		}
		f.r.Discard(size)
		return typ, b, nil
	}
	if cap(f.buf) < size {
		f.buf = make([]byte, size)
	}
	f.buf = f.buf[:size]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		return typ, nil, unexpected(err)
	}
	body = f.buf
	// Do not keep a huge buffer alive after one huge message.
	if cap(f.buf) > 4<<20 {
		f.buf = nil
	}
	return typ, body, nil
}

// buffered reports whether another message may be read without blocking;
// writers flush when it is false, coalescing writes under load.
func (f *frameReader) buffered() bool { return f.r.Buffered() > 0 }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrame appends a typed message to dst.
func appendFrame(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(body)+4))
	return append(dst, body...)
}

// writeFrame writes a typed message.
func writeFrame(w *bufio.Writer, typ byte, body []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(body)+4))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// cstring reads a NUL-terminated string at the start of b.
func cstring(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}
