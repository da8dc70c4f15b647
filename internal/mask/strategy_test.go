package mask

import (
	"bytes"
	"strings"
	"testing"
)

var testKey = []byte("test-deployment-key-0123456789")

func maskerWith(t testing.TB, yaml string) *Masker {
	t.Helper()
	r, err := ParseRules([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(r, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRedact(t *testing.T) {
	m := defaultMasker(t)
	got := string(m.Mask(nil, []byte("mail jane@example.com, card 4111 1111 1111 1111, ip ::1.")))
	want := "mail [REDACTED:EMAIL], card [REDACTED:CARD], ip [REDACTED:IPV6]."
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestPartial(t *testing.T) {
	m := maskerWith(t, "detectors: {default: partial}")
	tests := []struct{ name, in, want string }{
		{"card", "4111 1111 1111 1111", "**** **** **** 1111"},
		{"card plain", "4111111111111111", "************1111"},
		{"email", "jane.doe@example.com", "***@example.com"},
		{"ssn", "123-45-6789", "***-**-6789"},
		{"phone", "+1 415-555-2671", "+* ***-***-2671"},
		{"iban", "GB82 WEST 1234 5698 7654 32", "**** **** **** **** **54 32"},
		{"ipv4", "192.168.10.20", "192.168.*.*"},
		{"ipv6", "2001:db8:85a3:0:0:8a2e:370:7334", "2001:db8:85a3:*"},
		{"ipv6 compressed", "fe80::1", "fe80:*"},
		{"ipv6 loopback", "::1", "::*"},
		{"github", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_********"},
		{"stripe", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_********"},
		{"slack", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-********"},
		{"aws key id", "AKIAIOSFODNN7EXAMPLE", "AKIA********"},
		{"pem", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----\n********\n-----END EC PRIVATE KEY-----"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(m.Mask(nil, []byte(tc.in))); got != tc.want {
				t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	m := maskerWith(t, "detectors: {default: token}")
	tok := func(s string) string { return string(m.Mask(nil, []byte(s))) }
	tests := []struct {
		name, in string
		check    func(t *testing.T, out string)
	}{
		{"card keeps format and fails luhn", "4111 1111 1111 1111", func(t *testing.T, out string) {
			if len(out) != 19 || out[4] != ' ' || luhnText([]byte(out)) {
				t.Errorf("token %q: want 4-4-4-4 digits failing Luhn", out)
			}
			if found(m, out) != nil {
				t.Errorf("token %q is detected as a card again", out)
			}
		}},
		{"card spacing does not change the token", "4111 1111 1111 1111", func(t *testing.T, out string) {
			if plain := tok("4111111111111111"); strings.ReplaceAll(out, " ", "") != plain {
				t.Errorf("spaced %q and plain %q tokens differ", out, plain)
			}
		}},
		{"ssn area 9xx", "123-45-6789", func(t *testing.T, out string) {
			if len(out) != 11 || out[0] != '9' || out[3] != '-' {
				t.Errorf("token %q: want 9xx-xx-xxxx", out)
			}
		}},
		{"email groups by domain", "Jane.Doe@Example.com", func(t *testing.T, out string) {
			other := tok("john@example.com")
			if !strings.HasSuffix(out, ".invalid") || out[strings.IndexByte(out, '@'):] != other[strings.IndexByte(other, '@'):] {
				t.Errorf("tokens %q and %q: want the same domain token", out, other)
			}
			if out != tok("jane.doe@example.com") {
				t.Errorf("email tokens are case-sensitive")
			}
		}},
		{"iban check digits 00", "GB82 WEST 1234 5698 7654 32", func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "GB00 ") || len(out) != len("GB82 WEST 1234 5698 7654 32") {
				t.Errorf("token %q: want GB00 and the same layout", out)
			}
		}},
		{"ipv4 dotted quad", "10.1.2.3", func(t *testing.T, out string) {
			if !validIPv4([]byte(out)) {
				t.Errorf("token %q is not a dotted quad", out)
			}
		}},
		{"ipv6 unique local", "2001:db8::1", func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "fd") || !validIPv6([]byte(out)) {
				t.Errorf("token %q: want an fd00::/8 address", out)
			}
		}},
		{"jwt keeps the dotted shape", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", func(t *testing.T, out string) {
			if len(out) != 32 || strings.Count(out, ".") != 2 || found(m, out) != nil {
				t.Errorf("token %q: want three 10-byte segments, not a JWT", out)
			}
		}},
		{"pem keeps the armour", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----", func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "-----BEGIN EC PRIVATE KEY-----\n") || !strings.HasSuffix(out, "\n-----END EC PRIVATE KEY-----") {
				t.Errorf("token %q", out)
			}
		}},
		{"github keeps prefix", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "ghp_") || len(out) != 40 || strings.Contains(out, "16C7e42F") {
				t.Errorf("token %q", out)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := tok(tc.in)
			if out == tc.in || strings.Contains(out, tc.in) {
				t.Fatalf("token %q contains the value", out)
			}
			if again := tok(tc.in); again != out {
				t.Fatalf("token not deterministic: %q then %q", out, again)
			}
			tc.check(t, out)
		})
	}

	other, err := New(&Rules{Detectors: map[string]DetectorRule{"default": {Strategy: "token"}}}, []byte("another-deployment-key-000"))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := tok("jane@example.com"), string(other.Mask(nil, []byte("jane@example.com"))); a == b {
		t.Errorf("two keys gave the same token %q", a)
	}
}

func TestNullRemovesValue(t *testing.T) {
	m := maskerWith(t, "detectors: {default: null}")
	if got := string(m.Mask(nil, []byte("a jane@example.com b"))); got != "a  b" {
		t.Errorf("got %q", got)
	}
}

func TestClearLeavesValue(t *testing.T) {
	m := maskerWith(t, "detectors: {default: redact, email: clear}")
	in := "a jane@example.com b 10.0.0.1"
	if got := string(m.Mask(nil, []byte(in))); got != "a jane@example.com b [REDACTED:IPV4]" {
		t.Errorf("got %q", got)
	}
	if fs := m.Find([]byte(in), nil); len(fs) != 2 {
		t.Errorf("Find reports clear values too: got %d findings, want 2", len(fs))
	}
}

func TestMaxReplacement(t *testing.T) {
	m := maskerWith(t, "max_replacement: 4\ndetectors: {default: redact}")
	// "::1" is 3 bytes; "[REDACTED:IPV6]" would be 15.
	got := m.Mask(nil, []byte("::1"))
	if len(got) > 4 || bytes.Contains(got, []byte("::1")) {
		t.Errorf("got %q, want at most 4 bytes", got)
	}
}

func TestMaskAppends(t *testing.T) {
	m := defaultMasker(t)
	dst := []byte("prefix:")
	got := m.Mask(dst, []byte("ip 10.0.0.1"))
	if string(got) != "prefix:ip [REDACTED:IPV4]" {
		t.Errorf("got %q", got)
	}
}
