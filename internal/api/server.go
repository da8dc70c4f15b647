package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Server is the HTTP API.
type Server struct {
	Admin    admin.Service
	Identity *identity.Service
	// Audit records authentication failures on the API.
	Audit   *audit.Log
	Metrics http.Handler
	// MetricsToken, if set, is required as "Authorization: Bearer TOKEN"
	// on /metrics (metrics.token): the metrics name connections, agents
	// and the pace of traffic.
	MetricsToken string
	// Ready reports whether the gateway can serve: the store answers and
	// every listener accepts. Its error, one line per failing part, is
	// the 503's body, so it must name parts, not carry details.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	// WithActor, if set, records the authenticated caller in the request
	// context so the audit events of admin operations name who did them.
	WithActor func(ctx context.Context, actor string) context.Context
	// Mount serves more routes on the API listener (pattern → handler):
	// engines that speak HTTP themselves, such as MCP's /mcp.
	Mount map[string]http.Handler
}

// metricsAuth requires MetricsToken, when set, as a bearer token.
func (s *Server) metricsAuth(h http.Handler) http.Handler {
	if s.MetricsToken == "" {
		return h
	}
	want := []byte("Bearer " + s.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse metrics"`)
			http.Error(w, "metrics: the bearer token configured as metrics.token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// maxBody bounds request bodies: nothing the API accepts is larger.
const maxBody = 1 << 20

// Handler builds the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.metricsAuth(s.Metrics))
	}
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(s.Identity.JWKS())
	})
	mux.Handle("POST /v1/token", s.Identity.ExchangeHandler())
	for pattern, h := range s.Mount {
		mux.Handle(pattern, h)
	}

	mux.HandleFunc("POST /v1/tokens", s.admin(s.issueToken))
	mux.HandleFunc("POST /v1/tokens/inspect", s.admin(s.inspectToken))
	mux.HandleFunc("POST /v1/tokens/{id}/revoke", s.admin(s.revokeToken))
	mux.HandleFunc("POST /v1/keys/rotate", s.admin(s.rotateKeys))
	mux.HandleFunc("GET /v1/audit/events", s.admin(s.tailAudit))
	mux.HandleFunc("GET /v1/audit/export", s.admin(s.exportAudit))
	mux.HandleFunc("GET /v1/audit/verify", s.admin(s.verifyAudit))
	mux.HandleFunc("GET /v1/audit/events/{id}/proof", s.admin(s.proveEvent))
	mux.HandleFunc("POST /v1/policy/test", s.admin(s.testPolicy))
	mux.HandleFunc("GET /v1/sessions", s.admin(s.listSessions))
	mux.HandleFunc("GET /v1/sessions/{id}", s.admin(s.sessionStatements))
	s.approvalRoutes(mux)
	return http.MaxBytesHandler(mux, maxBody)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n"+err.Error()+"\n")
			return
		}
	}
	io.WriteString(w, "ready\n")
}

// admin wraps a handler with bearer-token authentication requiring the
// admin scope; every refusal is audited.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return s.authed(true, h)
}

// authed wraps a handler with bearer-token authentication, requiring the
// admin scope when adminOnly; the caller is recorded in the request context.
func (s *Server) authed(adminOnly bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			writeError(w, http.StatusUnauthorized, "a bearer token with the admin scope is required")
			return
		}
		c, err := s.Identity.Verify(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			s.auditFailure(r, "", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid token: "+err.Error())
			return
		}
		if adminOnly && !c.HasScope(identity.ScopeAdmin) {
			s.auditFailure(r, c.PrincipalUID(), "token lacks the admin scope")
			writeError(w, http.StatusForbidden, "the admin scope is required")
			return
		}
		if s.WithActor != nil {
			r = r.WithContext(s.WithActor(r.Context(), "api:"+c.PrincipalUID()))
		}
		caller := admin.Caller{ID: c.Subject, Principal: c.PrincipalUID(), OnBehalfOf: c.Actor, Groups: c.Groups, Connections: c.Connections}
		for _, sc := range c.Scopes {
			caller.Scopes = append(caller.Scopes, string(sc))
		}
		r = r.WithContext(admin.WithCaller(r.Context(), caller))
		h(w, r)
	}
}

func (s *Server) auditFailure(r *http.Request, principal, reason string) {
	if s.Audit == nil {
		return
	}
	_, err := s.Audit.Enqueue(r.Context(), audit.Event{Kind: audit.KindAuthFailure, Principal: principal, Source: r.RemoteAddr,
		Action: "api:" + r.Method + " " + r.URL.Path, Decision: "deny", Reason: reason})
	if err != nil && s.Logger != nil {
		s.Logger.Error("audit of API auth failure failed", "err", err)
	}
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	var b admin.IssueBody
	if !decode(w, r, &b) {
		return
	}
	req, err := b.Request()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tok, c, err := s.Admin.IssueToken(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, admin.IssueReply{Token: tok, Claims: admin.ViewClaims(c)})
}

func (s *Server) inspectToken(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Token string `json:"token"`
	}
	if !decode(w, r, &b) {
		return
	}
	c, err := s.Admin.InspectToken(r.Context(), b.Token)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, admin.ViewClaims(c))
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !decode(w, r, &b) {
		return
	}
	if err := s.Admin.RevokeToken(r.Context(), r.PathValue("id"), b.Reason); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"revoked": r.PathValue("id")})
}

func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request) {
	kid, err := s.Admin.RotateKeys(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
}

func (s *Server) tailAudit(w http.ResponseWriter, r *http.Request) {
	n := 20
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 || n > 100000 {
			writeError(w, http.StatusBadRequest, "n must be between 1 and 100000")
			return
		}
	}
	evs, err := s.Admin.TailAudit(r.Context(), n)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, evs)
}

func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jsonl")
	if err := s.Admin.ExportAudit(r.Context(), w); err != nil && s.Logger != nil {
		s.Logger.Error("audit export failed mid-stream", "err", err)
	}
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	rep, err := s.Admin.VerifyAudit(r.Context())
	out := admin.VerifyReply{OK: err == nil, Events: rep.Events, Checkpoints: rep.Checkpoints, Covered: rep.Covered}
	var te *audit.TamperError
	switch {
	case errors.As(err, &te):
		out.Problem = te.Error()
		if te.Index >= 0 {
			out.BadIndex = &te.Index
		}
	case err != nil:
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) proveEvent(w http.ResponseWriter, r *http.Request) {
	p, err := s.Admin.ProveEvent(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) testPolicy(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Principal string          `json:"principal"`
		Action    string          `json:"action"`
		Resource  string          `json:"resource"`
		Context   json.RawMessage `json:"context,omitempty"`
		Entities  json.RawMessage `json:"entities,omitempty"`
	}
	if !decode(w, r, &in) {
		return
	}
	d, err := s.Admin.TestPolicy(r.Context(), policy.TestInput{Principal: in.Principal, Action: in.Action, Resource: in.Resource, Context: string(in.Context), Entities: in.Entities})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, admin.ViewDecision(d))
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

// errorBody is every error's JSON shape.
type errorBody struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, admin.ErrBadInput), errors.Is(err, policy.ErrBadInput):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, admin.ErrDenied):
		writeError(w, http.StatusForbidden, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	n := 50
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			writeError(w, http.StatusBadRequest, "n must be a number")
			return
		}
	}
	out, err := s.Admin.ListSessions(r.Context(), n)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) sessionStatements(w http.ResponseWriter, r *http.Request) {
	out, err := s.Admin.SessionStatements(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
