package mask

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// writeAll writes in to a Writer in pieces of the given size, with the
// chunker shrunk so that a modest input crosses many chunk boundaries.
func writeAll(t *testing.T, m *Masker, in []byte, piece, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w := m.NewWriter(&out)
	w.c.chunk, w.c.margin = chunk, 256
	for len(in) > 0 {
		n := min(piece, len(in))
		if _, err := w.Write(in[:n]); err != nil {
			t.Fatal(err)
		}
		in = in[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestWriterMatchesMask(t *testing.T) {
	m := defaultMasker(t)
	in := benchInputs()["pii-dense"][:256<<10]
	want := m.Mask(nil, in)
	for _, tc := range []struct {
		name         string
		piece, chunk int
	}{
		{"default chunk", 4096, streamChunk},
		{"small chunks", 1000, 512},
		{"tiny writes", 7, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := writeAll(t, m, in, tc.piece, tc.chunk); !bytes.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Fatalf("stream differs from Mask at byte %d:\n got %q\nwant %q", i, got[i:min(len(got), i+80)], want[i:min(len(want), i+80)])
			}
		})
	}
}

func TestFindReaderOffsets(t *testing.T) {
	m := defaultMasker(t)
	in := benchInputs()["pii-dense"][:256<<10]
	want := m.Find(in, nil)
	c := newChunker(m)
	c.chunk, c.margin = 700, 256
	var got []Finding
	err := c.run(iotest.HalfReader(bytes.NewReader(in)), func(f Finding) error {
		got = append(got, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d findings, want %d", len(got), len(want))
	}
	// The public entry point with default sizes.
	got = got[:0]
	if err := m.FindReader(bytes.NewReader(in), func(f Finding) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("FindReader: got %d findings, want %d", len(got), len(want))
	}
}

func TestFindReaderStopsOnError(t *testing.T) {
	m := defaultMasker(t)
	stop := io.ErrShortBuffer
	err := m.FindReader(strings.NewReader("a@b.co c@d.co"), func(Finding) error { return stop })
	if err != stop {
		t.Fatalf("err = %v", err)
	}
	err = m.FindReader(iotest.ErrReader(io.ErrUnexpectedEOF), func(Finding) error { return nil })
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v", err)
	}
}

// A private key longer than the stream's pending limit is cut, and what
// follows the cut stays masked up to the END line.
func TestWriterLongPrivateKeyFailsClosed(t *testing.T) {
	m := defaultMasker(t)
	body := strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 400) // 12800 bytes, no white space
	in := "before -----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY----- after\n"
	var out bytes.Buffer
	w := m.NewWriter(&out)
	w.c.chunk, w.c.margin, w.c.max = 512, 256, 2048
	for k := 0; k < len(in); k += 100 {
		if _, err := w.Write([]byte(in[k:min(len(in), k+100)])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Contains(got, "MIIEvQ") || !strings.HasPrefix(got, "before ") || !strings.HasSuffix(got, " after\n") {
		t.Fatalf("got %q", got)
	}
}

func TestWriterAfterClose(t *testing.T) {
	m := defaultMasker(t)
	var out bytes.Buffer
	w := m.NewWriter(&out)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestWriterReadFrom(t *testing.T) {
	m := defaultMasker(t)
	in := benchInputs()["pii-dense"][:200<<10]
	var out bytes.Buffer
	w := m.NewWriter(&out)
	w.c.chunk = 1000
	n, err := w.ReadFrom(iotest.HalfReader(bytes.NewReader(in)))
	if err != nil || n != int64(len(in)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), m.Mask(nil, in)) {
		t.Fatal("ReadFrom output differs from Mask")
	}
}

// One-byte writes of a long line with no white space must not rescan the
// whole buffer on every write.
func TestWriterTinyWritesLongLine(t *testing.T) {
	m := defaultMasker(t)
	line := bytes.Repeat([]byte("abcdefghij"), 300<<10/10)
	var out bytes.Buffer
	w := m.NewWriter(&out)
	start := time.Now()
	for k := range line {
		if _, err := w.Write(line[k : k+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), line) {
		t.Fatal("output differs")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
