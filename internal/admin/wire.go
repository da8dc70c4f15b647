package admin

import (
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// IssueBody is the JSON body of POST /v1/tokens.
type IssueBody struct {
	Kind        string   `json:"kind,omitempty"`
	Subject     string   `json:"sub"`
	Actor       string   `json:"act,omitempty"`
	Email       string   `json:"email,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	Connections []string `json:"connections,omitempty"`
	TTL         string   `json:"ttl,omitempty"`
}

// IssueReply is the answer to POST /v1/tokens.
type IssueReply struct {
	Token  string     `json:"token"`
	Claims ClaimsView `json:"claims"`
}

// Request converts the body to an identity request.
func (b IssueBody) Request() (identity.IssueRequest, error) {
	req := identity.IssueRequest{Kind: identity.Kind(b.Kind), Subject: b.Subject, Actor: b.Actor, Email: b.Email, Groups: b.Groups, Connections: b.Connections}
	if req.Kind == "" {
		req.Kind = identity.KindAgent
	}
	for _, sc := range b.Scopes {
		req.Scopes = append(req.Scopes, identity.Scope(sc))
	}
	if b.TTL != "" {
		d, err := time.ParseDuration(b.TTL)
		if err != nil {
			return req, fmt.Errorf("ttl: %q is not a duration like 15m", b.TTL)
		}
		req.TTL = d
	}
	return req, nil
}

// VerifyReply is the answer to GET /v1/audit/verify.
type VerifyReply struct {
	OK          bool   `json:"ok"`
	Events      int64  `json:"events"`
	Checkpoints int    `json:"checkpoints"`
	Covered     int64  `json:"covered"`
	BadIndex    *int64 `json:"bad_index,omitempty"`
	Problem     string `json:"problem,omitempty"`
}
