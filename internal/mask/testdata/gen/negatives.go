package main

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Hard negatives: values that look like the ones we mask and are not.
// Every record here must produce no finding at all.

var negKeys = []string{"id", "ref", "serial", "version", "ts", "value", "order", "build", "checksum"}

func neg(class, v string) { plant("neg/"+class, "", v, negKeys...) }

func genNegatives() {
	// Card-shaped numbers that fail Luhn, with real issuer prefixes and
	// lengths and the usual print layouts.
	for range 120 {
		b := brands[rng.IntN(len(brands))]
		n := cardNumber(pick(b.prefixes...), pick(b.lengths...))
		last := n[len(n)-1]
		n = n[:len(n)-1] + string('0'+(last-'0'+1+byte(rng.IntN(9)))%10)
		v, f := formatCard(n)
		neg("card-luhn-fail-"+f, v)
	}
	// Luhn-valid numbers with no issuer behind them.
	for range 60 {
		n := cardNumber(pick("1", "0", "7", "99", "80"), 16)
		v, f := formatCard(n)
		neg("card-no-issuer-"+f, v)
	}
	// Luhn-valid numbers with an issuer prefix but a length it never uses.
	for range 40 {
		n := pick(cardNumber(pick("34", "37"), 16), cardNumber("4", pick(14, 15, 17, 18)), cardNumber("51", pick(15, 17)))
		neg("card-wrong-length", n)
	}
	// Timestamps and epoch values.
	for range 80 {
		switch rng.IntN(6) {
		case 0:
			neg("epoch-s", fmt.Sprint(1600000000+rng.IntN(200000000)))
		case 1:
			neg("epoch-ms", fmt.Sprint(1600000000000+rng.Int64N(200000000000)))
		case 2:
			neg("epoch-us", fmt.Sprint(1600000000000000+rng.Int64N(200000000000000)))
		case 3:
			neg("epoch-ns", fmt.Sprint(1600000000000000000+rng.Int64N(200000000000000000)))
		case 4:
			neg("iso-time", fmt.Sprintf("2024-%02d-%02dT%02d:%02d:%02d.%03dZ", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000)))
		default:
			neg("log-time", fmt.Sprintf("2024-%02d-%02d %02d:%02d:%02d,%03d", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000)))
		}
	}
	// Order ids, invoice numbers, tracking numbers.
	for range 80 {
		switch rng.IntN(8) {
		case 0:
			neg("order-id", fmt.Sprintf("ORD-%d-%06d", 2020+rng.IntN(6), rng.IntN(1000000)))
		case 1:
			neg("order-id", "#"+fmt.Sprint(100000000+rng.IntN(900000000)))
		case 2:
			neg("invoice", fmt.Sprintf("INV-%d-%02d-%04d", 2020+rng.IntN(6), 1+rng.IntN(12), rng.IntN(10000)))
		case 3:
			neg("ups", "1Z"+fromAlphabet(upper+num, 6)+digits(10))
		case 4:
			neg("usps", "9400"+digits(18))
		case 5:
			neg("fedex", digits(12))
		case 6:
			neg("order-id", fmt.Sprintf("PO-%05d-%s", rng.IntN(100000), fromAlphabet(upper, 1)))
		default:
			neg("order-id", fmt.Sprint(9000000000000000000+rng.Int64N(100000000000000000)))
		}
	}
	// Version strings.
	for range 60 {
		a, b, c, d := rng.IntN(20), rng.IntN(30), rng.IntN(50), rng.IntN(300)
		switch rng.IntN(7) {
		case 0:
			neg("semver", fmt.Sprintf("%d.%d.%d", a, b, c))
		case 1:
			neg("version-v4", fmt.Sprintf("v%d.%d.%d.%d", a, b, c, d))
		case 2:
			neg("semver-pre", fmt.Sprintf("%d.%d.%d-rc.%d", a, b, c, 1+rng.IntN(5)))
		case 3:
			neg("version-5", fmt.Sprintf("%d.%d.%d.%d.%d", a, b, c, d, rng.IntN(99)))
		case 4:
			neg("debian", fmt.Sprintf("%d.%d.%d-1+deb%du%d", a, b, c, 10+rng.IntN(3), 1+rng.IntN(5)))
		case 5:
			neg("oid", fmt.Sprintf("1.3.6.1.4.1.%d.%d.%d", rng.IntN(60000), rng.IntN(20), rng.IntN(20)))
		default:
			neg("go-version", fmt.Sprintf("go1.%d.%d", 18+rng.IntN(9), rng.IntN(12)))
		}
	}
	// UUIDs.
	for range 80 {
		u := randBytes(16)
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		h := fmt.Sprintf("%x", u)
		v := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		if rng.IntN(4) == 0 {
			v = strings.ToUpper(v)
		}
		neg("uuid", v)
	}
	// Hex digests.
	for range 80 {
		switch rng.IntN(5) {
		case 0:
			neg("md5", fromAlphabet(hexLower, 32))
		case 1:
			neg("sha1", fromAlphabet(hexLower, 40))
		case 2:
			neg("sha256", fromAlphabet(hexLower, 64))
		case 3:
			neg("git-short", fromAlphabet(hexLower, 7+rng.IntN(6)))
		default:
			neg("sha1-upper", strings.ToUpper(fromAlphabet(hexLower, 40)))
		}
	}
	// Phone-like serials and numbers that break numbering-plan rules.
	for range 120 {
		switch rng.IntN(12) {
		case 0:
			neg("serial", fmt.Sprintf("SN %s-%s-%s", digits(4), digits(4), digits(4)))
		case 1:
			neg("serial", fmt.Sprintf("S/N: %s-%s-%s", digits(4), digits(3), digits(3)))
		case 2:
			neg("part-number", fmt.Sprintf("%s-%s-%s", digits(3), digits(4), digits(3)))
		case 3:
			neg("zip4", fmt.Sprintf("%05d-%04d", rng.IntN(100000), rng.IntN(10000)))
		case 4:
			neg("isbn13", fmt.Sprintf("978-%d-%s-%s-%d", rng.IntN(10), digits(2), digits(6), rng.IntN(10)))
		case 5:
			neg("isbn10", fmt.Sprintf("0-%s-%s-%d", digits(3), digits(5), rng.IntN(10)))
		case 6:
			neg("nanp-bad-area", fmt.Sprintf("%d%s-%s-%s", rng.IntN(2), digits(2), exchange(), digits(4)))
		case 7:
			neg("nanp-bad-area", fmt.Sprintf("(%d%s) %s-%s", rng.IntN(2), digits(2), exchange(), digits(4)))
		case 8:
			neg("nanp-bad-exchange", fmt.Sprintf("%s-%d%s-%s", pick(areaCodes...), rng.IntN(2), digits(2), digits(4)))
		case 9:
			neg("nanp-n11", fmt.Sprintf("%d11-%s-%s", 2+rng.IntN(8), exchange(), digits(4)))
		case 10:
			neg("local-7", fmt.Sprintf("%s-%s", exchange(), digits(4)))
		default:
			neg("serial", fmt.Sprintf("%s-%s-%s-%s", digits(2), digits(4), digits(4), digits(2)))
		}
	}
	// Dates, times, durations.
	for range 60 {
		switch rng.IntN(6) {
		case 0:
			neg("date-iso", fmt.Sprintf("20%02d-%02d-%02d", rng.IntN(30), 1+rng.IntN(12), 1+rng.IntN(28)))
		case 1:
			neg("date-eu", fmt.Sprintf("%02d.%02d.20%02d", 1+rng.IntN(28), 1+rng.IntN(12), rng.IntN(30)))
		case 2:
			neg("date-us", fmt.Sprintf("%02d/%02d/20%02d", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(30)))
		case 3:
			neg("time", fmt.Sprintf("%02d:%02d:%02d", rng.IntN(24), rng.IntN(60), rng.IntN(60)))
		case 4:
			neg("duration", fmt.Sprintf("%02d:%02d:%02d.%03d", rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000)))
		default:
			neg("date-time", fmt.Sprintf("20%02d-%02d-%02d %02d:%02d", rng.IntN(30), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60)))
		}
	}
	// Money, measurements, coordinates, big integers.
	for range 60 {
		switch rng.IntN(6) {
		case 0:
			neg("money", fmt.Sprintf("$%d,%03d,%03d.%02d", 1+rng.IntN(999), rng.IntN(1000), rng.IntN(1000), rng.IntN(100)))
		case 1:
			neg("decimal", fmt.Sprintf("3.%s", digits(15)))
		case 2:
			neg("coords", fmt.Sprintf("%d.%s, -%d.%s", rng.IntN(90), digits(4), rng.IntN(180), digits(4)))
		case 3:
			neg("uint64", fmt.Sprint(rng.Uint64()|1<<63))
		case 4:
			neg("scientific", fmt.Sprintf("%d.%se+%d", 1+rng.IntN(9), digits(6), 10+rng.IntN(20)))
		default:
			neg("thousands", fmt.Sprintf("%d %03d %03d", 1+rng.IntN(999), rng.IntN(1000), rng.IntN(1000)))
		}
	}
	// SSN-shaped values the SSA never issues, or in other layouts.
	for range 80 {
		g, s := 1+rng.IntN(99), 1+rng.IntN(9999)
		switch rng.IntN(8) {
		case 0:
			neg("ssn-area-000", fmt.Sprintf("000-%02d-%04d", g, s))
		case 1:
			neg("ssn-area-666", fmt.Sprintf("666-%02d-%04d", g, s))
		case 2:
			neg("ssn-area-9xx", fmt.Sprintf("9%02d-%02d-%04d", rng.IntN(100), g, s))
		case 3:
			neg("ssn-group-00", fmt.Sprintf("%03d-00-%04d", 1+rng.IntN(665), s))
		case 4:
			neg("ssn-serial-0000", fmt.Sprintf("%03d-%02d-0000", 1+rng.IntN(665), g))
		case 5:
			neg("ssn-layout", fmt.Sprintf("%02d-%03d-%04d", rng.IntN(100), rng.IntN(1000), s))
		case 6:
			neg("ssn-layout", fmt.Sprintf("%03d-%03d-%03d", rng.IntN(1000), rng.IntN(1000), rng.IntN(1000)))
		default:
			neg("ssn-layout", fmt.Sprintf("%03d-%02d-%05d", 1+rng.IntN(665), g, rng.IntN(100000)))
		}
	}
	// IBAN-shaped values with a wrong check, length or country.
	for range 60 {
		v, _ := iban()
		switch rng.IntN(4) {
		case 0:
			c := fmt.Sprintf("%02d", (int(v[2]-'0')*10+int(v[3]-'0')+1+rng.IntN(90))%97+2)
			v = v[:2] + c + v[4:]
			neg("iban-bad-check", pick(v, groups4(v)))
		case 1:
			neg("iban-bad-length", v+digits(1))
		case 2:
			neg("iban-bad-length", v[:len(v)-1])
		default:
			neg("iban-bad-country", pick("XX", "ZZ", "QQ", "UK")+v[2:])
		}
	}
	// Dotted quads that are not addresses.
	for range 60 {
		switch rng.IntN(6) {
		case 0:
			neg("ipv4-octet", fmt.Sprintf("%d.%d.%d.%d", 256+rng.IntN(700), rng.IntN(256), rng.IntN(256), rng.IntN(256)))
		case 1:
			neg("ipv4-3", fmt.Sprintf("%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256)))
		case 2:
			neg("ipv4-leading-zero", fmt.Sprintf("0%d.0%d.0%d.0%d", rng.IntN(10), rng.IntN(10), rng.IntN(10), rng.IntN(10)))
		case 3:
			neg("ipv4-5", fmt.Sprintf("%d.%d.%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256)))
		case 4:
			neg("ipv4-version", fmt.Sprintf("v%d.%d.%d.%d", rng.IntN(10), rng.IntN(10), rng.IntN(10), rng.IntN(100)))
		default:
			neg("ipv4-suffix", fmt.Sprintf("%d.%d.%d.%dms", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256)))
		}
	}
	// Colon-separated hex that is not IPv6.
	for range 60 {
		mac := fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256))
		switch rng.IntN(8) {
		case 0:
			neg("mac", mac)
		case 1:
			neg("mac-lower", strings.ToLower(mac))
		case 2:
			neg("cpp-scope", pick("std::vector<int>", "std::string", "boost::asio::ip", "Foo::Bar::baz()", "::operator new", "Data::Dumper"))
		case 3:
			neg("ipv6-9-groups", strings.Repeat(fmt.Sprintf("%x:", 1+rng.IntN(0xfff)), 8)+"1")
		case 4:
			neg("ipv6-long-group", fmt.Sprintf("2001:db8:%05x::1", 0x10000+rng.IntN(0xeffff)))
		case 5:
			neg("ipv6-two-double", fmt.Sprintf("%x::%x::%x", 1+rng.IntN(0xfff), rng.IntN(0xfff), rng.IntN(0xfff)))
		case 6:
			neg("ratio", fmt.Sprintf("%d:%d:%d", rng.IntN(100), rng.IntN(100), rng.IntN(100)))
		default:
			neg("hex-pairs", fmt.Sprintf("de:ad:be:ef:%02x", rng.IntN(256)))
		}
	}
	// Things with '@' that are not addresses.
	for range 80 {
		switch rng.IntN(12) {
		case 0:
			neg("email-no-tld", pick(firsts...)+"@localhost")
		case 1:
			neg("email-asset", pick("icon", "logo", "avatar", "hero")+"@"+pick("2x", "3x")+"."+pick("png", "jpg", "webp", "svg"))
		case 2:
			neg("email-handle", "@"+pick(firsts...)+pick(lasts...))
		case 3:
			neg("email-no-dot", pick(firsts...)+"@"+pick(lasts...))
		case 4:
			neg("email-short-tld", pick(firsts...)+"@example."+pick("c", "x", "1"))
		case 5:
			neg("npm-scope", "@"+pick("babel", "types", "angular")+"/"+pick("core", "node", "cli")+"@"+fmt.Sprintf("%d.%d.%d", rng.IntN(20), rng.IntN(20), rng.IntN(20)))
		case 6:
			neg("docker-digest", "nginx@sha256:"+fromAlphabet(hexLower, 64))
		case 7:
			neg("annotation", pick("@Override", "@Deprecated", "@pytest.fixture", "@media screen"))
		case 8:
			neg("email-bad-label", pick(firsts...)+"@-"+pick(lasts...)+".com")
		case 9:
			neg("email-numeric-tld", pick(firsts...)+"@host."+digits(3))
		case 10:
			neg("cron", pick("@daily", "@hourly", "@reboot"))
		default:
			neg("email-obfuscated", pick(firsts...)+" at example dot com")
		}
	}
	// Credential-shaped strings that are not credentials.
	for range 100 {
		switch rng.IntN(14) {
		case 0:
			neg("aws-id-short", "AKIA"+fromAlphabet(upper+"234567", 15))
		case 1:
			neg("aws-id-long", "AKIA"+fromAlphabet(upper+"234567", 17))
		case 2:
			neg("aws-id-lower", "AKIA"+fromAlphabet(lower, 16))
		case 3:
			neg("github-short", pick("ghp_", "gho_")+fromAlphabet(alnum, 20))
		case 4:
			neg("stripe-short", pick("sk_live_", "sk_test_")+fromAlphabet(alnum, 10))
		case 5:
			neg("stripe-publishable", "pk_live_"+fromAlphabet(alnum, 24))
		case 6:
			neg("slack-short", "xoxb-"+digits(6))
		case 7:
			neg("google-short", "AIza"+fromAlphabet(b64url, 20))
		case 8:
			neg("jwt-one-part", b64u(`{"alg":"HS256","typ":"JWT"}`))
		case 9:
			neg("jwt-two-parts", b64u(`{"alg":"HS256","typ":"JWT"}`)+"."+b64u(`{"sub":"x"}`))
		case 10:
			neg("pem-certificate", pemBlock("CERTIFICATE", 900, 64, "\n"))
		case 11:
			neg("pem-public", pemBlock(pick("PUBLIC KEY", "RSA PUBLIC KEY"), 294, 64, "\n"))
		case 12:
			neg("pem-prose", "paste the BEGIN PRIVATE KEY block into the vault")
		default:
			neg("pem-csr", pemBlock("CERTIFICATE REQUEST", 600, 64, "\n"))
		}
	}
	// 40-character strings that are not AWS secret keys, and other base64.
	for range 80 {
		switch rng.IntN(8) {
		case 0:
			neg("b64-39", fromAlphabet(b64, 39))
		case 1:
			neg("b64-41", fromAlphabet(b64, 41))
		case 2:
			neg("b64-padded", base64.StdEncoding.EncodeToString(randBytes(31)))
		case 3:
			neg("lower-40", fromAlphabet(lower+num, 40))
		case 4:
			neg("upper-40", fromAlphabet(upper+num, 40))
		case 5:
			neg("camel-40", camel40())
		case 6:
			neg("path-40", path40())
		default:
			neg("b64url-40", fromAlphabet(b64url, 38)+pick("-", "_")+fromAlphabet(b64url, 1))
		}
	}
	// Prose with numbers.
	prose := []string{
		"Room 101 is on the 3rd floor; the meeting starts at 10:30.",
		"Flight UA 857 departs from gate 42 at 11:45 and lands at 06:10.",
		"We shipped 1,204 orders in Q3, up 12.5% from 1,070 in Q2.",
		"Call me at noon or after 5 pm, whichever works.",
		"The build took 4m32s and produced 3 artifacts (12.4 MB).",
		"Version 2.3.1 fixed 17 bugs reported between 2024-01-02 and 2024-02-14.",
		"Heap: 512MiB used of 2048MiB, GC pause p99 1.2ms, 3 goroutines blocked.",
		"Pi is roughly 3.14159265358979 and e is 2.718281828459045.",
		"Listen on :8080 and :9090, proxy to upstream:5432.",
		"Error 0x80070005 (access denied) at offset 0x1F4A.",
		"See RFC 6962 section 2.1 and ISO 8601 for the formats used.",
		"Temperature 21.5C, humidity 40%, pressure 1013.25 hPa at 07:00.",
	}
	for range 80 {
		neg("prose", pick(prose...))
	}
}

func camel40() string {
	words := []string{"Abstract", "Singleton", "Proxy", "Factory", "Bean", "Helper", "Manager", "Service", "Handler", "Config", "Request", "Response", "Builder", "Adapter", "Visitor", "Impl"}
	var b strings.Builder
	for b.Len() < 38 {
		b.WriteString(pick(words...))
	}
	s := b.String()[:38] + digits(2)
	return s
}

func path40() string {
	segs := []string{"Users", "Alice", "Library", "Caches", "Build", "Logs", "var", "lib", "docker", "overlay2", "home", "deploy", "Releases", "v2"}
	var b strings.Builder
	for b.Len() < 40 {
		b.WriteString("/" + pick(segs...))
	}
	s := b.String()[:39]
	return s + digits(1)
}
