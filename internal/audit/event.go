package audit

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Event is one audited fact: a decision, a token issued or revoked, a key
// rotation, a policy reload, a statement. Index and Prev are set by the log.
// Secrets never go into an event: callers pass token ids, not tokens.
type Event struct {
	ID    string    `json:"id"`
	Index int64     `json:"index"`
	Prev  string    `json:"prev"`
	Time  time.Time `json:"time"`
	Kind  string    `json:"kind"`

	// Principal is the Cedar UID of who acted (Agent::"a" or User::"u");
	// OnBehalfOf names the human an agent acts for.
	Principal  string `json:"principal,omitempty"`
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	TokenID    string `json:"token_id,omitempty"`
	Session    string `json:"session,omitempty"`
	Source     string `json:"source,omitempty"`

	Action     string `json:"action,omitempty"`
	Resource   string `json:"resource,omitempty"`
	Connection string `json:"connection,omitempty"`

	Decision string   `json:"decision,omitempty"` // allow, deny, error
	Policies []string `json:"policies,omitempty"`
	Reason   string   `json:"reason,omitempty"`

	Details map[string]string `json:"details,omitempty"`
}

// Event kinds emitted by the foundation; engines add their own.
const (
	KindDecision      = "decision"
	KindTokenIssue    = "token.issue"
	KindTokenRevoke   = "token.revoke"
	KindTokenExchange = "token.exchange"
	KindAuthFailure   = "auth.failure"
	KindKeyRotate     = "key.rotate"
	KindPolicyReload  = "policy.reload"
	KindGatewayStart  = "gateway.start"
	KindGatewayStop   = "gateway.stop"
)

// NewID returns a random, time-ordered event id (48-bit millisecond time
// then 80 random bits, hex), so ids sort roughly by creation.
func NewID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic("audit: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
