// Command gen writes the labeled corpus that TestCorpus scores the
// detectors against. It is deliberately independent of package mask: it
// computes check digits itself and labels every value it plants, so the
// corpus says what is true, not what the detectors happen to find.
//
//	go run ./testdata/gen -o testdata/corpus.jsonl   (from internal/mask)
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
)

type span struct {
	Detector string `json:"detector"`
	Offset   int    `json:"offset"`
	Length   int    `json:"length"`
}

type record struct {
	Class string `json:"class"`
	Text  string `json:"text"`
	Spans []span `json:"spans,omitempty"`
}

// val is a value to plant: det is its detector, or "" for a negative.
type val struct{ det, v string }

var (
	rng *rand.Rand
	out []record
)

func main() {
	path := flag.String("o", "testdata/corpus.jsonl", "output file")
	seed := flag.Uint64("seed", 20240601, "random seed")
	flag.Parse()
	rng = rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))

	genCards()
	genEmails()
	genSSNs()
	genPhones()
	genIBANs()
	genIPv4()
	genIPv6()
	genAWS()
	genGitHub()
	genSlack()
	genStripe()
	genGoogle()
	genJWT()
	genPEM()
	genMixed()
	genNegatives()

	f, err := os.Create(*path)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	pos, neg := 0, 0
	for _, r := range out {
		if err := enc.Encode(r); err != nil {
			log.Fatal(err)
		}
		pos += len(r.Spans)
		if len(r.Spans) == 0 {
			neg++
		}
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%d records, %d labeled values, %d negative records\n", len(out), pos, neg)
}

// fill replaces each "{}" in tmpl with the next value and records spans.
func fill(class, tmpl string, vals ...val) {
	var b strings.Builder
	var spans []span
	k := 0
	for {
		i := strings.Index(tmpl, "{}")
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		v := vals[k]
		k++
		if v.det != "" {
			spans = append(spans, span{v.det, b.Len(), len(v.v)})
		}
		b.WriteString(v.v)
		tmpl = tmpl[i+2:]
	}
	if k != len(vals) {
		log.Fatalf("template %q: %d values for %d slots", tmpl, len(vals), k)
	}
	out = append(out, record{Class: class, Text: b.String(), Spans: spans})
}

// contexts are the surroundings a single value is planted in; {k} is a
// field name that suits the value.
var contexts = []string{
	"{}",
	"{k}: {}",
	"{k}={} status=ok",
	`{"{k}": "{}", "id": 4821}`,
	"1042,{},2024-03-12,active",
	"Please update the record for {} before Friday.",
	"2024-05-01T12:00:03Z INFO lookup {k}={} took 12ms",
	"| 17 | {} | ok |",
	" 42 | {} | t",
	"<{k}>{}</{k}>",
	"'{}'",
	"({})",
	`- {k}: "{}"`,
	"{k}\t{}\t2024-03-12",
	"[{}]",
	"{} (verified)",
	"Customer wrote: my {k} is {}, thanks!",
	"INSERT INTO t VALUES (7, '{}', now());",
}

func plant(class, det, v string, keys ...string) {
	ctx := contexts[rng.IntN(len(contexts))]
	ctx = strings.ReplaceAll(ctx, "{k}", keys[rng.IntN(len(keys))])
	fill(class, ctx, val{det, v})
}

func pick[T any](xs ...T) T { return xs[rng.IntN(len(xs))] }

func digits(n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	return b.String()
}

func fromAlphabet(alpha string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alpha[rng.IntN(len(alpha))])
	}
	return b.String()
}

const (
	upper    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower    = "abcdefghijklmnopqrstuvwxyz"
	num      = "0123456789"
	alnum    = upper + lower + num
	b64      = alnum + "+/"
	b64url   = alnum + "-_"
	hexLower = "0123456789abcdef"
)

// ---- cards ----

func luhnDigit(body string) byte {
	sum := 0
	dbl := true
	for i := len(body) - 1; i >= 0; i-- {
		v := int(body[i] - '0')
		if dbl {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		dbl = !dbl
	}
	return byte('0' + (10-sum%10)%10)
}

func cardNumber(prefix string, length int) string {
	body := prefix + digits(length-len(prefix)-1)
	return body + string(luhnDigit(body))
}

type brand struct {
	name     string
	prefixes []string
	lengths  []int
}

var brands = []brand{
	{"visa", []string{"4"}, []int{16, 16, 16, 13, 19}},
	{"mastercard", []string{"51", "52", "53", "54", "55", "2221", "2300", "2500", "2720"}, []int{16}},
	{"amex", []string{"34", "37"}, []int{15}},
	{"discover", []string{"6011", "644", "645", "649", "65"}, []int{16, 19}},
	{"diners", []string{"36", "300", "305", "38"}, []int{14, 16}},
	{"jcb", []string{"3528", "3530", "3566", "3589"}, []int{16, 19}},
	{"unionpay", []string{"62", "6221", "6229"}, []int{16, 17, 18, 19}},
	{"maestro", []string{"5018", "5020", "5038", "6304", "6759", "6761"}, []int{13, 16, 19}},
	{"mir", []string{"2200", "2201", "2204"}, []int{16}},
}

// printed formats a card number the way the brand prints it.
func printed(n string, sep string) string {
	switch len(n) {
	case 15:
		return n[:4] + sep + n[4:10] + sep + n[10:]
	case 14:
		if rng.IntN(2) == 0 {
			return n[:4] + sep + n[4:10] + sep + n[10:]
		}
	}
	var parts []string
	for i := 0; i < len(n); i += 4 {
		parts = append(parts, n[i:min(i+4, len(n))])
	}
	return strings.Join(parts, sep)
}

func formatCard(n string) (string, string) {
	if len(n) == 17 || len(n) == 18 {
		return n, "plain" // no printed layout has these lengths
	}
	switch rng.IntN(4) {
	case 0, 1:
		return n, "plain"
	case 2:
		return printed(n, " "), "spaced"
	}
	return printed(n, "-"), "dashed"
}

var cardKeys = []string{"card", "card_number", "pan", "cc", "payment_card"}

func genCards() {
	for range 200 {
		b := brands[rng.IntN(len(brands))]
		n := cardNumber(pick(b.prefixes...), pick(b.lengths...))
		v, f := formatCard(n)
		plant("card/"+b.name+"-"+f, "card", v, cardKeys...)
	}
}

// ---- emails ----

var (
	firsts  = []string{"john", "jane", "maria", "wei", "olu", "priya", "lars", "sofia", "ahmed", "yuki", "carlos", "anna", "li", "fatima", "noah", "emma", "sean", "chloe", "raj", "ines"}
	lasts   = []string{"smith", "doe", "garcia", "chen", "okafor", "patel", "nilsson", "rossi", "hassan", "tanaka", "silva", "kowalski", "nguyen", "muller", "obrien", "dubois", "kim", "haddad"}
	domains = []string{"gmail.com", "yahoo.co.uk", "outlook.com", "example.org", "acme-corp.io", "mail.company.de",
		"uni.edu.au", "startup.dev", "shop.online", "post.cz", "hospital.nhs.uk", "gov.bc.ca", "firm.law",
		"studio.photography", "agency.consulting", "team.app", "research.ac.jp", "bank.com.br", "xn--mller-kva.de",
		"corp.example.com", "eu-west.mail.example.net", "icloud.com", "proton.me", "web.de", "orange.fr", "tech.ai"}
)

func emailAddr() (string, string) {
	f, l := pick(firsts...), pick(lasts...)
	var local string
	style := rng.IntN(8)
	switch style {
	case 0:
		local = f + "." + l
	case 1:
		local = f + l
	case 2:
		local = f[:1] + "." + l
	case 3:
		local = f + "_" + l
	case 4:
		local = f + "+" + pick("news", "billing", "test", "2024")
	case 5:
		local = f + "." + l + digits(2)
	case 6:
		local = f[:1] + l[:1] + digits(3)
	case 7:
		local = strings.ToUpper(f[:1]) + f[1:] + "." + strings.ToUpper(l[:1]) + l[1:]
	}
	return local + "@" + pick(domains...), fmt.Sprint("style", style)
}

func genEmails() {
	for range 200 {
		v, s := emailAddr()
		ctx := rng.IntN(10)
		switch ctx {
		case 0:
			fill("email/mailto", `<a href="mailto:{}">write to us</a>`, val{"email", v})
		case 1:
			fill("email/header", "From: "+capital(pick(firsts...))+" <{}>", val{"email", v})
		default:
			plant("email/"+s, "email", v, "email", "contact", "user", "reply_to")
		}
	}
}

// ---- SSNs ----

func ssn() string {
	area := 1 + rng.IntN(899)
	for area == 666 {
		area = 1 + rng.IntN(899)
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+rng.IntN(99), 1+rng.IntN(9999))
}

func genSSNs() {
	for range 120 {
		v := ssn()
		if rng.IntN(8) == 0 {
			v = strings.ReplaceAll(v, "-", " ")
		}
		plant("ssn", "ssn", v, "ssn", "social_security_number", "tax_id")
	}
}

// ---- phones ----

var areaCodes = []string{"212", "415", "312", "646", "713", "206", "617", "303", "702", "404", "305", "503", "619", "818", "972", "480", "512", "615", "704", "720", "800", "888"}

func exchange() string {
	for {
		x := fmt.Sprintf("%d%d%d", 2+rng.IntN(8), rng.IntN(10), rng.IntN(10))
		if x[1:] != "11" {
			return x
		}
	}
}

func phone() (string, string) {
	a, x, l := pick(areaCodes...), exchange(), digits(4)
	switch rng.IntN(24) {
	case 0:
		return "(" + a + ") " + x + "-" + l, "us-paren"
	case 1:
		return a + "-" + x + "-" + l, "us-dash"
	case 2:
		return a + "." + x + "." + l, "us-dot"
	case 3:
		return "+1 " + a + "-" + x + "-" + l, "e164-us"
	case 4:
		return "+1" + a + x + l, "e164-us-plain"
	case 5:
		return "1-" + a + "-" + x + "-" + l, "us-1-dash"
	case 6:
		return "+1 (" + a + ") " + x + "-" + l, "e164-us-paren"
	case 7:
		return pick("020 7946 ", "0161 496 ", "0113 496 ") + digits(4), "uk"
	case 8:
		return "07700 900" + digits(3), "uk-mobile"
	case 9:
		return "+44 " + pick("20 7946 "+digits(4), "7700 900"+digits(3), "161 496 "+digits(4)), "e164-uk"
	case 10:
		return "+44 (0)20 7946 " + digits(4), "e164-uk-trunk"
	case 11:
		return pick("030 ", "089 ", "040 ") + digits(6+rng.IntN(2)), "de"
	case 12:
		return pick("0151 ", "0170 ", "0160 ") + digits(8), "de-mobile"
	case 13:
		return "+49 " + pick("30 ", "89 ", "151 ") + digits(7+rng.IntN(2)), "e164-de"
	case 14:
		p := fmt.Sprintf("0%d %s %s %s %s", 1+rng.IntN(7), digits(2), digits(2), digits(2), digits(2))
		if rng.IntN(3) == 0 {
			p = strings.ReplaceAll(p, " ", ".")
		}
		return p, "fr"
	case 15:
		return fmt.Sprintf("+33 %d %s %s %s %s", 1+rng.IntN(7), digits(2), digits(2), digits(2), digits(2)), "e164-fr"
	case 16:
		return "(0" + pick("2", "3", "7", "8") + ") " + digits(4) + " " + digits(4), "au-paren"
	case 17:
		return "04" + digits(2) + " " + digits(3) + " " + digits(3), "au-mobile"
	case 18:
		return "+61 " + pick("2 "+digits(4)+" "+digits(4), "4"+digits(2)+" "+digits(3)+" "+digits(3)), "e164-au"
	case 19:
		return pick("03-", "06-") + digits(4) + "-" + digits(4), "jp"
	case 20:
		return pick("090-", "080-") + digits(4) + "-" + digits(4), "jp-mobile"
	case 21:
		return "+81 " + pick("3-", "90-") + digits(4) + "-" + digits(4), "e164-jp"
	case 22:
		return "+91 9" + digits(4) + " " + digits(5), "e164-in"
	}
	return "+" + pick("44"+"20"+digits(8), "4915"+digits(9), "336"+digits(8), "614"+digits(8), "8190"+digits(8),
		"919"+digits(9), "5511"+"9"+digits(8), "2782"+digits(7), "86138"+digits(8), "3465"+digits(7)), "e164-plain"
}

func genPhones() {
	for range 250 {
		v, s := phone()
		plant("phone/"+s, "phone", v, "phone", "mobile", "tel", "contact_number")
	}
}

// ---- IBANs ----

// bban layouts: n digits, a upper-case letters, c either.
var ibanFormats = map[string]string{
	"GB": "4a14n", "DE": "18n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n",
	"BE": "12n", "CH": "5n12c", "AT": "16n", "PL": "24n", "SE": "20n", "NO": "11n", "DK": "14n",
	"FI": "14n", "IE": "4a14n", "PT": "21n", "LU": "3n13c", "SA": "2n18c", "AE": "19n", "CZ": "20n",
	"HU": "24n", "RO": "4a16c", "GR": "7n16c", "TR": "5n1n16c", "BR": "23n1a1c", "MT": "4a5n18c",
}

func bban(layout string) string {
	var b strings.Builder
	n := 0
	for _, c := range layout {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
			continue
		}
		switch c {
		case 'n':
			b.WriteString(digits(n))
		case 'a':
			b.WriteString(fromAlphabet(upper, n))
		case 'c':
			b.WriteString(fromAlphabet(upper+num, n))
		}
		n = 0
	}
	return b.String()
}

func ibanCheck(cc, bb string) string {
	s := bb + cc + "00"
	var num strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			num.WriteString(fmt.Sprint(int(c-'A') + 10))
		} else {
			num.WriteRune(c)
		}
	}
	n, _ := new(big.Int).SetString(num.String(), 10)
	r := new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("%02d", 98-r)
}

func groups4(s string) string {
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:min(i+4, len(s))])
	}
	return strings.Join(parts, " ")
}

var ibanCountries = func() []string {
	var cs []string
	for c := range ibanFormats {
		cs = append(cs, c)
	}
	// map order is random; sort for a reproducible corpus
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			if cs[j] < cs[i] {
				cs[i], cs[j] = cs[j], cs[i]
			}
		}
	}
	return cs
}()

func iban() (string, string) {
	cc := pick(ibanCountries...)
	bb := bban(ibanFormats[cc])
	return cc + ibanCheck(cc, bb) + bb, cc
}

func genIBANs() {
	for range 150 {
		v, cc := iban()
		if rng.IntN(5) < 3 {
			v = groups4(v)
		}
		plant("iban/"+cc, "iban", v, "iban", "account", "beneficiary_iban")
	}
}

// ---- IP addresses ----

func ipv4() string {
	switch rng.IntN(4) {
	case 0:
		return fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
	case 1:
		return fmt.Sprintf("192.168.%d.%d", rng.IntN(256), 1+rng.IntN(254))
	}
	return fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), rng.IntN(256))
}

func genIPv4() {
	for range 120 {
		v := ipv4()
		switch rng.IntN(6) {
		case 0:
			fill("ipv4/port", "connect to {}:"+pick("5432", "8080", "443"), val{"ipv4", v})
		case 1:
			fill("ipv4/url", "GET http://{}:8080/healthz 200", val{"ipv4", v})
		case 2:
			fill("ipv4/cidr", "allow {}/24", val{"ipv4", v})
		default:
			plant("ipv4", "ipv4", v, "ip", "client_ip", "remote_addr", "host")
		}
	}
}

func ipv6() (string, string) {
	var a [16]byte
	for i := range a {
		a[i] = byte(rng.IntN(256))
	}
	switch rng.IntN(8) {
	case 0:
		return "::1", "loopback"
	case 1:
		copy(a[:8], []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0})
		return netip.AddrFrom16(a).String(), "link-local"
	case 2:
		copy(a[:4], []byte{0x20, 0x01, 0x0d, 0xb8})
		for i := 4; i < 14; i++ {
			a[i] = 0
		}
		return netip.AddrFrom16(a).String(), "doc"
	case 3:
		return netip.AddrFrom16(a).StringExpanded(), "full"
	case 4:
		return fmt.Sprintf("::ffff:%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), rng.IntN(256)), "mapped"
	case 5:
		return strings.ToUpper(netip.AddrFrom16(a).String()), "upper"
	case 6:
		a[2], a[3], a[4], a[5], a[6], a[7] = 0, 0, 0, 0, 0, 0
		return netip.AddrFrom16(a).String(), "compressed"
	}
	return netip.AddrFrom16(a).String(), "random"
}

func genIPv6() {
	for range 150 {
		v, s := ipv6()
		switch rng.IntN(5) {
		case 0:
			fill("ipv6/bracket-port", "listening on [{}]:443", val{"ipv6", v})
		case 1:
			fill("ipv6/url", "curl http://[{}]:8080/", val{"ipv6", v})
		default:
			plant("ipv6/"+s, "ipv6", v, "ip", "client_ip", "addr")
		}
	}
}

// ---- credentials ----

func awsKeyID() string {
	return pick("AKIA", "AKIA", "AKIA", "ASIA") + fromAlphabet(upper+"234567", 16)
}

func awsSecret() string { return fromAlphabet(b64, 40) }

func genAWS() {
	for range 100 {
		id := awsKeyID()
		switch rng.IntN(4) {
		case 0:
			fill("aws_access_key/ini", "[default]\naws_access_key_id = {}\nregion = eu-west-1", val{"aws_access_key", id})
		case 1:
			fill("aws_access_key/env", "export AWS_ACCESS_KEY_ID={}", val{"aws_access_key", id})
		default:
			plant("aws_access_key", "aws_access_key", id, "AccessKeyId", "access_key", "key_id")
		}
	}
	for range 100 {
		s := awsSecret()
		switch rng.IntN(8) {
		case 0:
			fill("aws_secret_key/ini", "aws_secret_access_key = {}", val{"aws_secret_key", s})
		case 1:
			fill("aws_secret_key/env", "AWS_SECRET_ACCESS_KEY={}", val{"aws_secret_key", s})
		case 2:
			fill("aws_secret_key/json", `{"AccessKeyId": "{}", "SecretAccessKey": "{}"}`, val{"aws_access_key", awsKeyID()}, val{"aws_secret_key", s})
		case 3:
			fill("aws_secret_key/yaml", "  secret_key: {}", val{"aws_secret_key", s})
		case 4:
			fill("aws_secret_key/csv", "User name,Access key ID,Secret access key\ndeploy,{},{}", val{"aws_access_key", awsKeyID()}, val{"aws_secret_key", s})
		case 5:
			fill("aws_secret_key/standalone", "the key is {} (rotate it)", val{"aws_secret_key", s})
		case 6:
			fill("aws_secret_key/standalone", "'{}'", val{"aws_secret_key", s})
		default:
			fill("aws_secret_key/cli", "aws configure set aws_secret_access_key {}", val{"aws_secret_key", s})
		}
	}
}

func genGitHub() {
	for range 100 {
		var v string
		if rng.IntN(4) == 0 {
			v = "github_pat_" + fromAlphabet(alnum, 22) + "_" + fromAlphabet(alnum, 59)
		} else {
			v = pick("ghp_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_") + fromAlphabet(alnum, 36)
		}
		switch rng.IntN(3) {
		case 0:
			fill("github_token/url", "git clone https://x-access-token:{}@github.com/acme/app.git", val{"github_token", v})
		case 1:
			fill("github_token/header", "Authorization: token {}", val{"github_token", v})
		default:
			plant("github_token", "github_token", v, "GITHUB_TOKEN", "token", "gh_token")
		}
	}
}

func genSlack() {
	for range 100 {
		var v string
		switch rng.IntN(3) {
		case 0:
			v = "xoxb-" + digits(12) + "-" + digits(13) + "-" + fromAlphabet(alnum, 24)
		case 1:
			v = "xoxp-" + digits(12) + "-" + digits(12) + "-" + digits(13) + "-" + fromAlphabet(hexLower, 32)
		default:
			v = "xapp-1-A" + fromAlphabet(upper+num, 10) + "-" + digits(13) + "-" + fromAlphabet(hexLower, 64)
		}
		plant("slack_token", "slack_token", v, "SLACK_BOT_TOKEN", "token", "slack")
	}
}

func genStripe() {
	for range 100 {
		var v string
		switch rng.IntN(4) {
		case 0:
			v = pick("sk_live_", "rk_live_", "sk_test_") + fromAlphabet(alnum, 24)
		case 1:
			v = "whsec_" + fromAlphabet(alnum, 32)
		default:
			v = pick("sk_live_", "rk_live_", "sk_test_", "rk_test_") + "51" + fromAlphabet(alnum, 97)
		}
		if rng.IntN(3) == 0 {
			fill("stripe_key/curl", "curl https://api.stripe.com/v1/charges -u {}:", val{"stripe_key", v})
		} else {
			plant("stripe_key", "stripe_key", v, "STRIPE_SECRET_KEY", "stripe_key", "webhook_secret")
		}
	}
}

func genGoogle() {
	for range 100 {
		var v string
		switch rng.IntN(4) {
		case 0, 1:
			v = "AIza" + fromAlphabet(b64url, 35)
		case 2:
			v = "ya29." + fromAlphabet(b64url, 100+rng.IntN(120))
		default:
			v = "GOCSPX-" + fromAlphabet(b64url, 28)
		}
		if rng.IntN(3) == 0 {
			fill("google_api_key/url", "https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key={}", val{"google_api_key", v})
		} else {
			plant("google_api_key", "google_api_key", v, "GOOGLE_API_KEY", "api_key", "access_token")
		}
	}
}

func b64u(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

func jwt() string {
	alg := pick("HS256", "RS256", "ES256", "PS384")
	h := fmt.Sprintf(`{"alg":"%s","typ":"JWT"}`, alg)
	if rng.IntN(2) == 0 {
		h = fmt.Sprintf(`{"alg":"%s","kid":"%s","typ":"JWT"}`, alg, fromAlphabet(hexLower, 16))
	}
	p := fmt.Sprintf(`{"sub":"%s","iat":%d,"exp":%d,"scope":"%s"}`, pick(firsts...)+digits(3), 1700000000+rng.IntN(9999999), 1710000000+rng.IntN(9999999), pick("read", "read write", "admin"))
	sig := map[string]int{"HS256": 32, "RS256": 256, "ES256": 64, "PS384": 384}[alg]
	return b64u(h) + "." + b64u(p) + "." + base64.RawURLEncoding.EncodeToString(randBytes(sig))
}

func genJWT() {
	for range 100 {
		v := jwt()
		switch rng.IntN(4) {
		case 0:
			fill("jwt/header", "Authorization: Bearer {}", val{"jwt", v})
		case 1:
			fill("jwt/cookie", "Set-Cookie: session={}; Path=/; HttpOnly", val{"jwt", v})
		default:
			plant("jwt", "jwt", v, "id_token", "access_token", "jwt")
		}
	}
}

func pemBlock(label string, n, width int, nl string) string {
	body := base64.StdEncoding.EncodeToString(randBytes(n))
	var b strings.Builder
	b.WriteString("-----BEGIN " + label + "-----" + nl)
	for i := 0; i < len(body); i += width {
		b.WriteString(body[i:min(i+width, len(body))] + nl)
	}
	b.WriteString("-----END " + label + "-----")
	return b.String()
}

func genPEM() {
	for range 100 {
		label := pick("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY")
		size := map[string]int{"RSA PRIVATE KEY": 1190, "PRIVATE KEY": 1216, "EC PRIVATE KEY": 121, "OPENSSH PRIVATE KEY": 400, "ENCRYPTED PRIVATE KEY": 1300, "DSA PRIVATE KEY": 445}[label]
		width := 64
		if label == "OPENSSH PRIVATE KEY" {
			width = 70
		}
		switch rng.IntN(4) {
		case 0:
			v := pemBlock(label, size, width, `\n`)
			fill("private_key/json", `{"type": "service_account", "private_key": "{}\n", "client_email": "svc@proj.iam.gserviceaccount.com"}`,
				val{"private_key", v})
			// the client email is planted too, and labelled
			r := &out[len(out)-1]
			at := strings.Index(r.Text, "svc@")
			r.Spans = append(r.Spans, span{"email", at, len("svc@proj.iam.gserviceaccount.com")})
		case 1:
			v := pemBlock(label, size, width, "\n")
			fill("private_key/file", "$ cat id_key\n{}\n$ ", val{"private_key", v})
		case 2:
			v := pemBlock(label, size, width, "\n")
			fill("private_key/log", "2024-05-01T12:00:03Z WARN config dump: tls_key={} loaded", val{"private_key", v})
		default:
			v := pemBlock(label, size, width, "\n")
			fill("private_key/plain", "{}", val{"private_key", v})
		}
	}
}

// genMixed plants several values in one realistic line.
func genMixed() {
	for range 60 {
		e, _ := emailAddr()
		p, _ := phone()
		c, _ := formatCard(cardNumber("4", 16))
		fill("mixed/customer", "customer name=Jane email={} phone={} card={} ip={} ts=2024-03-12T10:11:12Z",
			val{"email", e}, val{"phone", p}, val{"card", c}, val{"ipv4", ipv4()})
	}
	for range 40 {
		v, _ := iban()
		fill("mixed/payout", "payout 1,250.00 EUR to {} ref INV-2024-0042 ssn {}", val{"iban", groups4(v)}, val{"ssn", ssn()})
	}
}

func capital(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
