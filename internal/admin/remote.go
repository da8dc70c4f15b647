package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Remote performs admin operations through a gateway's REST API with an
// admin token, for administrators who are not on the gateway host.
type Remote struct {
	Base   string // e.g. https://gatehouse.example:8080
	Token  string
	Client *http.Client
}

var _ Service = (*Remote)(nil)

// ErrRemote is an error reported by the gateway; its text follows.
var ErrRemote = errors.New("gateway")

func (r *Remote) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(r.Base, "/")+path, body)
	if err != nil {
		return fmt.Errorf("gateway request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("gateway request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e errorReply
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		switch resp.StatusCode {
		case http.StatusBadRequest:
			return fmt.Errorf("%w: %s", ErrBadInput, e.Error)
		case http.StatusForbidden, http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", ErrDenied, e.Error)
		}
		return fmt.Errorf("%w: %s", ErrRemote, e.Error)
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("gateway reply: %w", err)
		}
	}
	return nil
}

type errorReply struct {
	Error string `json:"error"`
}

func (r *Remote) IssueToken(ctx context.Context, req identity.IssueRequest) (string, identity.Claims, error) {
	b := IssueBody{Kind: string(req.Kind), Subject: req.Subject, Actor: req.Actor, Email: req.Email, Groups: req.Groups, Connections: req.Connections}
	for _, s := range req.Scopes {
		b.Scopes = append(b.Scopes, string(s))
	}
	if req.TTL > 0 {
		b.TTL = req.TTL.String()
	}
	var out IssueReply
	if err := r.do(ctx, http.MethodPost, "/v1/tokens", b, &out); err != nil {
		return "", identity.Claims{}, err
	}
	return out.Token, out.Claims.Claims(), nil
}

func (r *Remote) InspectToken(ctx context.Context, token string) (identity.Claims, error) {
	var out ClaimsView
	if err := r.do(ctx, http.MethodPost, "/v1/tokens/inspect", map[string]string{"token": token}, &out); err != nil {
		return identity.Claims{}, err
	}
	return out.Claims(), nil
}

func (r *Remote) RevokeToken(ctx context.Context, jti, reason string) error {
	return r.do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(jti)+"/revoke", map[string]string{"reason": reason}, nil)
}

func (r *Remote) RotateKeys(ctx context.Context) (string, error) {
	var out struct {
		KID string `json:"kid"`
	}
	err := r.do(ctx, http.MethodPost, "/v1/keys/rotate", nil, &out)
	return out.KID, err
}

func (r *Remote) VerifyAudit(ctx context.Context) (audit.Report, error) {
	var out VerifyReply
	if err := r.do(ctx, http.MethodGet, "/v1/audit/verify", nil, &out); err != nil {
		return audit.Report{}, err
	}
	rep := audit.Report{Events: out.Events, Checkpoints: out.Checkpoints, Covered: out.Covered}
	if !out.OK {
		idx := int64(-1)
		if out.BadIndex != nil {
			idx = *out.BadIndex
		}
		return rep, &audit.TamperError{Index: idx, What: strings.TrimPrefix(out.Problem, "audit log tampered: ")}
	}
	return rep, nil
}

func (r *Remote) TailAudit(ctx context.Context, n int) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := r.do(ctx, http.MethodGet, "/v1/audit/events?n="+strconv.Itoa(n), nil, &out)
	return out, err
}

func (r *Remote) ExportAudit(ctx context.Context, w io.Writer) error {
	return r.do(ctx, http.MethodGet, "/v1/audit/export", nil, w)
}

func (r *Remote) ProveEvent(ctx context.Context, id string) (audit.InclusionProof, error) {
	var out audit.InclusionProof
	err := r.do(ctx, http.MethodGet, "/v1/audit/events/"+url.PathEscape(id)+"/proof", nil, &out)
	return out, err
}

func (r *Remote) TestPolicy(ctx context.Context, in policy.TestInput) (policy.Decision, error) {
	body := map[string]any{"principal": in.Principal, "action": in.Action, "resource": in.Resource}
	if in.Context != "" {
		body["context"] = json.RawMessage(in.Context)
	}
	if len(in.Entities) > 0 {
		body["entities"] = json.RawMessage(in.Entities)
	}
	var out DecisionView
	if err := r.do(ctx, http.MethodPost, "/v1/policy/test", body, &out); err != nil {
		return policy.Decision{}, err
	}
	d := policy.Decision{Allow: out.Decision == "allow"}
	for _, p := range out.Policies {
		d.Policies = append(d.Policies, policy.PolicyInfo{ID: p.ID, Effect: policy.Effect(p.Effect), File: p.File, Line: p.Line, Annotations: p.Annotations})
	}
	for _, e := range out.Errors {
		d.Errors = append(d.Errors, policy.EvalError{Msg: e})
	}
	return d, nil
}

func (r *Remote) ListSessions(ctx context.Context, limit int) ([]store.RecSession, error) {
	var out []store.RecSession
	err := r.do(ctx, http.MethodGet, "/v1/sessions?n="+strconv.Itoa(limit), nil, &out)
	return out, err
}

func (r *Remote) SessionStatements(ctx context.Context, id string) ([]store.RecStatement, error) {
	var out []store.RecStatement
	err := r.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &out)
	return out, err
}
