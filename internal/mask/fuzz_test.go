package mask

import (
	"bytes"
	"fmt"
	"testing"
)

// fuzzMaskers covers every strategy, the default bound and a small one, and
// a custom detector.
func fuzzMaskers(t testing.TB) []*Masker {
	var ms []*Masker
	for _, y := range []string{
		"detectors: {default: redact}",
		"detectors: {default: token}",
		"detectors: {default: null}",
		"detectors: {default: partial}",
		"max_replacement: 5\ndetectors: {default: redact, card: token, email: partial}",
		"detectors: {default: redact}\ncustom: [{name: ticket, pattern: 'T-(?P<value>[0-9]{3,8})', strategy: token}, {name: acct, pattern: '[0-9]{12,19}', validator: luhn}]",
	} {
		ms = append(ms, maskerWith(t, y))
	}
	return ms
}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"", "4111 1111 1111 1111", "jane.doe@example.com", "123-45-6789", "+44 (0)20 7946 0958",
		"GB82 WEST 1234 5698 7654 32", "10.0.0.1:80 ::1 [fe80::1]:443 ::ffff:1.2.3.4",
		"AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"ghp_16C7e42F292c6912E7710c838347Ae178B4a xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
		"-----BEGIN PRIVATE KEY-----\nMIIE", "T-12345 acct 4111111111111111", "::", "a@b", "+", "(", "-----",
	} {
		f.Add([]byte(s))
	}
}

// FuzzMask: Find and Mask never panic; findings are ordered, disjoint and
// in range; Mask is exactly the input with each finding replaced; a
// replacement stays within max(len(value), MaxReplacement) bytes; and under
// redact, token and null no replacement contains the value it replaces.
func FuzzMask(f *testing.F) {
	fuzzSeeds(f)
	ms := fuzzMaskers(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for k, m := range ms {
			fs := m.Find(data, nil)
			last := 0
			for _, fd := range fs {
				if fd.Start < last || fd.End <= fd.Start || fd.End > len(data) || fd.Detector == 0 {
					t.Fatalf("masker %d: bad finding %+v after %d in %q", k, fd, last, data)
				}
				last = fd.End
			}
			out := m.Mask(nil, data)
			var want []byte
			last = 0
			for _, fd := range fs {
				st := m.Strategy(fd.Detector)
				v := data[fd.Start:fd.End]
				r := m.replace(nil, fd.Detector, st, v)
				if len(r) > max(len(v), m.sh.maxRepl) {
					t.Fatalf("masker %d: replacement of %d bytes for a %d-byte %s value exceeds the bound %d", k, len(r), len(v), fd.Detector, m.sh.maxRepl)
				}
				if (st == Redact || st == Token || st == Null) && bytes.Contains(r, v) {
					t.Fatalf("masker %d: %s replacement %q contains the value %q", k, st, r, v)
				}
				want = append(want, data[last:fd.Start]...)
				want = append(want, r...)
				last = fd.End
			}
			want = append(want, data[last:]...)
			if !bytes.Equal(out, want) {
				t.Fatalf("masker %d: Mask(%q) = %q, want %q", k, data, out, want)
			}
			if got := m.MaskFindings(nil, data, fs); !bytes.Equal(got, out) {
				t.Fatalf("masker %d: MaskFindings differs from Mask", k)
			}
			if len(out) > len(data)+len(fs)*m.sh.maxRepl {
				t.Fatalf("masker %d: output %d bytes for %d input bytes and %d findings", k, len(out), len(data), len(fs))
			}
		}
	})
}

// FuzzStream: masking through a Writer in arbitrary pieces, with chunks
// small enough to cut the input many times, gives what one Mask call gives.
func FuzzStream(f *testing.F) {
	fuzzSeeds(f)
	m := defaultMasker(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		piece := 1 + int(data[0])%97
		var out bytes.Buffer
		w := m.NewWriter(&out)
		// The margin must exceed the longest value that contains white
		// space (a printed IBAN, 42 bytes) for the stream to be exact.
		w.c.chunk, w.c.margin = 64, 64
		for in := data; len(in) > 0; {
			n := min(piece, len(in))
			if _, err := w.Write(in[:n]); err != nil {
				t.Fatal(err)
			}
			in = in[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if want := m.Mask(nil, data); !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("stream(%q) = %q, want %q", data, out.Bytes(), want)
		}
	})
}

// FuzzColumn: whole-value strategies accept any bytes, with any detector
// as the format hint.
func FuzzColumn(f *testing.F) {
	f.Add([]byte("jane@example.com"), byte(Email), byte(Token))
	f.Add([]byte("4111111111111111"), byte(Card), byte(Partial))
	f.Add([]byte(""), byte(0), byte(Redact))
	f.Add([]byte("-----BEGIN"), byte(PrivateKey), byte(Partial))
	m := maskerWith(f, "detectors: {default: redact}")
	f.Fuzz(func(t *testing.T, v []byte, det, st byte) {
		d := Detector(det % byte(numBuiltin))
		s := Strategy(1 + st%5)
		r := ColumnRule{m: m, st: s, det: d}
		out, null := r.Apply(nil, v)
		if null != (s == Null) {
			t.Fatalf("null = %v for %s", null, s)
		}
		if len(out) > max(len(v), m.sh.maxRepl) {
			t.Fatalf("%s/%s: %d bytes for a %d-byte value", d, s, len(out), len(v))
		}
		// A redaction label is fixed text, so only tokens are checked for
		// containing the value.
		if s == Token && len(v) > 0 && bytes.Contains(out, v) {
			t.Fatalf("%s/%s: %q contains %q", d, s, out, v)
		}
		_ = fmt.Sprint(d)
	})
}
