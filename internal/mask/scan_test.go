package mask

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// found renders findings as "detector:value" for compact expectations.
func found(m *Masker, in string) []string {
	var out []string
	for _, f := range m.Find([]byte(in), nil) {
		out = append(out, fmt.Sprintf("%s:%s", m.DetectorName(f.Detector), in[f.Start:f.End]))
	}
	return out
}

func defaultMasker(t testing.TB) *Masker {
	t.Helper()
	m, err := New(DefaultRules(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDetectors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// cards
		{"visa plain", "pan=4111111111111111;", []string{"card:4111111111111111"}},
		{"visa spaced", "card 4111 1111 1111 1111 ok", []string{"card:4111 1111 1111 1111"}},
		{"mastercard dashed", "5555-5555-5555-4444", []string{"card:5555-5555-5555-4444"}},
		{"mastercard 2-series", "2223003122003222", []string{"card:2223003122003222"}},
		{"amex 4-6-5", "3782 822463 10005", []string{"card:3782 822463 10005"}},
		{"diners 4-6-4", "3056 930902 5904", []string{"card:3056 930902 5904"}},
		{"card then expiry", "4111 1111 1111 1111 12/27", []string{"card:4111 1111 1111 1111"}},
		{"card in csv", "42,4111111111111111,USD", []string{"card:4111111111111111"}},
		{"card in parens", "(4111 1111 1111 1111)", []string{"card:4111 1111 1111 1111"}},
		{"19-digit layout read whole", "4111 1111 1111 1111 123", nil},
		{"card then another value", "4111 1111 1111 1111 123-45-6789", []string{"card:4111 1111 1111 1111", "ssn:123-45-6789"}},
		{"card then a date", "4111 1111 1111 1111 2024-01-15", []string{"card:4111 1111 1111 1111"}},
		{"20-digit serial", "4111 1111 1111 1111 1111", nil},
		{"19-digit card", "4000 0000 0000 0000 006", []string{"card:4000 0000 0000 0000 006"}},
		{"luhn fail", "4111 1111 1111 1112", nil},
		{"no issuer", "1234567812345670", nil},
		{"amex wrong length", "3782822463100051", nil},
		{"decimal fraction", "0.4111111111111111", nil},
		{"inside word", "id4111111111111111", nil},
		{"followed by letters", "4111111111111111x", nil},
		{"epoch ms", "1700000000000", nil},
		// emails
		{"email", "write to john.doe+tag@example.co.uk.", []string{"email:john.doe+tag@example.co.uk"}},
		{"email mailto", "mailto:a.b@c.io", []string{"email:a.b@c.io"}},
		{"email angle", "Jane <jane@acme-corp.dev>", []string{"email:jane@acme-corp.dev"}},
		{"email punycode tld", "x@example.xn--p1ai", []string{"email:x@example.xn--p1ai"}},
		{"email retina asset", "icon@2x.png", nil},
		{"email no tld", "root@localhost", nil},
		{"email handle", "ping @alice please", nil},
		{"email double dot", "a..b@example.com", nil},
		{"email bad label", "a@-x.com", nil},
		{"docker digest", "nginx@sha256:abc123", nil},
		// SSNs
		{"ssn", "ssn: 123-45-6789", []string{"ssn:123-45-6789"}},
		{"ssn spaced", "123 45 6789", []string{"ssn:123 45 6789"}},
		{"ssn area 000", "000-12-3456", nil},
		{"ssn area 666", "666-12-3456", nil},
		{"ssn area 9xx", "912-12-3456", nil},
		{"ssn group 00", "123-00-4567", nil},
		{"ssn serial 0000", "123-45-0000", nil},
		{"ssn longer serial", "123-45-67890", nil},
		{"ssn continued", "123-45-6789-1", nil},
		// phones
		{"e164 plain", "+14155552671", []string{"phone:+14155552671"}},
		{"e164 us", "tel +1 415-555-2671.", []string{"phone:+1 415-555-2671"}},
		{"e164 uk trunk", "+44 (0)20 7946 0958", []string{"phone:+44 (0)20 7946 0958"}},
		{"e164 fr", "+33 1 23 45 67 89", []string{"phone:+33 1 23 45 67 89"}},
		{"e164 unassigned country code", "+83 123 456 789", nil},
		{"nanp paren", "(415) 555-2671", []string{"phone:(415) 555-2671"}},
		{"nanp dots", "415.555.2671", []string{"phone:415.555.2671"}},
		{"nanp country 1", "1-800-555-0199", []string{"phone:1-800-555-0199"}},
		{"nanp country 1 paren", "1 (212) 555-0123", []string{"phone:1 (212) 555-0123"}},
		{"nanp area starts 1", "123-456-7890", nil},
		{"nanp exchange starts 1", "415-155-2671", nil},
		{"nanp n11", "911-555-1234", nil},
		{"uk national", "020 7946 0958", []string{"phone:020 7946 0958"}},
		{"de mobile", "0151 23456789", []string{"phone:0151 23456789"}},
		{"fr national", "01 23 45 67 89", []string{"phone:01 23 45 67 89"}},
		{"au paren", "(02) 9876 5432", []string{"phone:(02) 9876 5432"}},
		{"jp dashed", "03-1234-5678", []string{"phone:03-1234-5678"}},
		{"jp mobile", "090-1234-5678", []string{"phone:090-1234-5678"}},
		{"dashed serial too long", "SN 0712-5060-7054", nil},
		{"dashed serial too short", "06-003-2080", nil},
		{"zip plus 4", "04416-7717", nil},
		{"seven digits", "555-1234", nil},
		{"bare ten digits", "4155552671", nil},
		{"space run tail", "12 020 7946 0958", nil},
		// IBANs
		{"iban printed", "GB82 WEST 1234 5698 7654 32", []string{"iban:GB82 WEST 1234 5698 7654 32"}},
		{"iban compact", "DE89370400440532013000", []string{"iban:DE89370400440532013000"}},
		{"iban bad check", "GB83 WEST 1234 5698 7654 32", nil},
		{"iban bad length", "DE8937040044053201300", nil},
		{"iban lower case", "gb82west12345698765432", nil},
		// IPv4
		{"ipv4", "from 10.0.0.1:5432", []string{"ipv4:10.0.0.1"}},
		{"ipv4 cidr", "10.0.0.0/8", []string{"ipv4:10.0.0.0"}},
		{"ipv4 sentence", "host is 192.168.1.20.", []string{"ipv4:192.168.1.20"}},
		{"ipv4 octet too big", "192.168.1.256", nil},
		{"ipv4 leading zero", "10.01.0.1", nil},
		{"ipv4 five parts", "1.2.3.4.5", nil},
		{"ipv4 version", "v1.2.3.4", nil},
		{"ipv4 unit", "1.2.3.4ms", nil},
		// IPv6
		{"ipv6 loopback", "::1", []string{"ipv6:::1"}},
		{"ipv6 full", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", []string{"ipv6:2001:0db8:85a3:0000:0000:8a2e:0370:7334"}},
		{"ipv6 bracket port", "[2001:db8::1]:443", []string{"ipv6:2001:db8::1"}},
		{"ipv6 mapped", "::ffff:192.0.2.128", []string{"ipv6:::ffff:192.0.2.128"}},
		{"ipv6 label", "addr:fe80::1ff:fe23:4567:890a", []string{"ipv6:fe80::1ff:fe23:4567:890a"}},
		{"ipv6 upper", "FE80::1", []string{"ipv6:FE80::1"}},
		{"mac", "00:1A:2B:3C:4D:5E", nil},
		{"time", "12:30:45", nil},
		{"scope operator", "std::vector and Foo::Bar", nil},
		{"bare double colon", "a :: b", nil},
		{"two double colons", "1::2::3", nil},
		// credentials
		{"aws key id", "AKIAIOSFODNN7EXAMPLE", []string{"aws_access_key:AKIAIOSFODNN7EXAMPLE"}},
		{"aws key id short", "AKIAIOSFODNN7EXAMPL", nil},
		{"aws secret named", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", []string{"aws_secret_key:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{"aws secret standalone", "key 7g2Hq9LmP4xR8vT1wK6yN3bF5sD0jZcVaXeQuIo+", []string{"aws_secret_key:7g2Hq9LmP4xR8vT1wK6yN3bF5sD0jZcVaXeQuIo+"}},
		{"sha1 is not a secret", "da39a3ee5e6b4b0d3255bfef95601890afd80709", nil},
		{"camel case is not a secret", "AbstractSingletonProxyFactoryBeanHelper1", nil},
		{"short-word camel case", "BeanImplBuilderFactoryServiceRequestAb33", nil},
		{"path is not a secret", "/Build/overlay2/docker/Library/Library/0", nil},
		{"github classic", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", []string{"github_token:ghp_16C7e42F292c6912E7710c838347Ae178B4a"}},
		{"github fine grained", "github_pat_11ABCDEFG0123456789abc_" + strings.Repeat("aB3", 20), []string{"github_token:github_pat_11ABCDEFG0123456789abc_" + strings.Repeat("aB3", 20)}},
		{"github short", "ghp_abc123", nil},
		{"slack bot", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", []string{"slack_token:xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"}},
		{"slack short", "xoxb-123", nil},
		{"stripe", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", []string{"stripe_key:sk_live_4eC39HqLyjWDarjtT1zdp7dc"}},
		{"stripe publishable", "pk_live_4eC39HqLyjWDarjtT1zdp7dc", nil},
		{"google api key", "key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe&x", []string{"google_api_key:AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"}},
		{"google client secret", "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", []string{"google_api_key: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"}},
		{"google oauth", "ya29.a0AfH6SMBx3kq_5TtQ-8uQ0ZyW4fJ", []string{"google_api_key:ya29.a0AfH6SMBx3kq_5TtQ-8uQ0ZyW4fJ"}},
		{"jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", []string{"jwt:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}},
		{"jwt two parts", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0", nil},
		{"pem", "k=-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\nnext", []string{"private_key:-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----"}},
		{"pem unterminated", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\nBgkqhkiG9w0B. after", []string{"private_key:-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\nBgkqhkiG9w0B"}},
		{"pem certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", nil},
		// clean text
		{"log line", "2024-01-15T10:23:45.123Z INFO uuid=550e8400-e29b-41d4-a716-446655440000 took 12.5ms v1.2.3", nil},
		{"prose", "Room 101, flight UA 857 at 10:30; version 2.3.1 shipped 1,204 orders.", nil},
		{"empty", "", nil},
	}
	m := defaultMasker(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := found(m, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("Find(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestValidators(t *testing.T) {
	tests := []struct {
		name  string
		valid string
		in    string
		want  bool
	}{
		{"luhn ok", "luhn", "79927398713", true},
		{"luhn bad", "luhn", "79927398710", false},
		{"card ok", "card", "4111-1111-1111-1111", true},
		{"card luhn only", "card", "79927398713", false},
		{"iban ok", "iban", "gb82 west 1234 5698 7654 32", true},
		{"iban bad", "iban", "GB82WEST12345698765431", false},
		{"ssn ok", "ssn", "078-05-1120", true},
		{"ssn 666", "ssn", "666051120", false},
		{"ipv4 ok", "ipv4", "255.255.255.255", true},
		{"ipv4 bad", "ipv4", "255.255.255.256", false},
		{"ipv6 ok", "ipv6", "1:2:3:4:5:6:7:8", true},
		{"ipv6 nine groups", "ipv6", "1:2:3:4:5:6:7:8:9", false},
		{"ipv6 v4 tail", "ipv6", "64:ff9b::192.0.2.33", true},
		{"ipv6 v4 tail too late", "ipv6", "1:2:3:4:5:6:7:1.2.3.4", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := validators[tc.valid]([]byte(tc.in)); got != tc.want {
				t.Errorf("%s(%q) = %v, want %v", tc.valid, tc.in, got, tc.want)
			}
		})
	}
}

func TestDisabledDetectorConsumesItsValue(t *testing.T) {
	r, err := ParseRules([]byte("detectors: {default: redact, ipv6: off}"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The IPv4 tail of a mapped IPv6 address is not reported on its own.
	if got := found(m, "::ffff:192.0.2.128 and 10.0.0.1"); !slices.Equal(got, []string{"ipv4:10.0.0.1"}) {
		t.Errorf("got %q", got)
	}
}
