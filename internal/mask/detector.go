package mask

import "strings"

// Detector names a kind of sensitive value. Built-in detectors have fixed
// values; custom detectors from the rules are numbered from CustomBase.
type Detector uint8

// Built-in detectors.
const (
	Card Detector = iota + 1
	Email
	SSN
	Phone
	IBAN
	IPv4
	IPv6
	AWSAccessKey
	AWSSecretKey
	GitHubToken
	SlackToken
	StripeKey
	GoogleAPIKey
	JWT
	PrivateKey

	numBuiltin = iota + 1 // one past the last built-in
)

// CustomBase is the Detector of the first custom detector in the rules.
const CustomBase Detector = 64

// maxCustom bounds custom detectors so a scan keeps their state on the stack.
const maxCustom = 32

var builtinNames = [numBuiltin]string{
	Card:         "card",
	Email:        "email",
	SSN:          "ssn",
	Phone:        "phone",
	IBAN:         "iban",
	IPv4:         "ipv4",
	IPv6:         "ipv6",
	AWSAccessKey: "aws_access_key",
	AWSSecretKey: "aws_secret_key",
	GitHubToken:  "github_token",
	SlackToken:   "slack_token",
	StripeKey:    "stripe_key",
	GoogleAPIKey: "google_api_key",
	JWT:          "jwt",
	PrivateKey:   "private_key",
}

// String returns the rule-file name of a built-in detector ("card",
// "aws_secret_key"); custom detectors are named by Masker.DetectorName.
func (d Detector) String() string {
	if d > 0 && d < numBuiltin {
		return builtinNames[d]
	}
	if d >= CustomBase {
		return "custom"
	}
	return "unknown"
}

// Builtin lists the built-in detectors in a stable order.
func Builtin() []Detector {
	out := make([]Detector, 0, numBuiltin-1)
	for d := Detector(1); d < numBuiltin; d++ {
		out = append(out, d)
	}
	return out
}

// ParseDetector returns the built-in detector with the given rule-file name.
func ParseDetector(name string) (Detector, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for d := Detector(1); d < numBuiltin; d++ {
		if builtinNames[d] == name {
			return d, true
		}
	}
	return 0, false
}

// Finding is one sensitive value: src[Start:End] was recognised by Detector.
type Finding struct {
	Start, End int
	Detector   Detector
}

// Len is the length of the value in bytes.
func (f Finding) Len() int { return f.End - f.Start }
