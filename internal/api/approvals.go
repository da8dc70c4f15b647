package api

import (
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
)

// approvalRoutes serves approvals to any authenticated caller; what the
// caller sees and may decide is policy's (approval:view, approval:decide:
// by the starter policies, humans in the reviewer group and the
// requester), not the admin scope. A list shows only the approvals the
// caller may see.
func (s *Server) approvalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/approvals", s.authed(false, func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		if status == "all" {
			status = ""
		}
		out, err := s.Admin.ListApprovals(r.Context(), status)
		s.reply(w, out, err)
	}))
	mux.HandleFunc("GET /v1/approvals/{id}", s.authed(false, func(w http.ResponseWriter, r *http.Request) {
		out, err := s.Admin.GetApproval(r.Context(), r.PathValue("id"))
		s.reply(w, out, err)
	}))
	review := func(approve bool) http.HandlerFunc {
		return s.authed(false, func(w http.ResponseWriter, r *http.Request) {
			var b struct {
				Reason string `json:"reason"`
			}
			if r.ContentLength != 0 && !decode(w, r, &b) {
				return
			}
			if approve {
				out, err := s.Admin.Approve(r.Context(), r.PathValue("id"), b.Reason)
				s.reply(w, out, err)
				return
			}
			out, err := s.Admin.Deny(r.Context(), r.PathValue("id"), b.Reason)
			s.reply(w, out, err)
		})
	}
	mux.HandleFunc("POST /v1/approvals/{id}/approve", review(true))
	mux.HandleFunc("POST /v1/approvals/{id}/deny", review(false))
	mux.HandleFunc("POST /v1/access", s.authed(false, func(w http.ResponseWriter, r *http.Request) {
		var b admin.AccessRequest
		if !decode(w, r, &b) {
			return
		}
		if b.For <= 0 || b.For > 24*time.Hour {
			writeError(w, http.StatusBadRequest, "for_ns must be a positive duration up to 24h")
			return
		}
		out, err := s.Admin.RequestAccess(r.Context(), b)
		s.reply(w, out, err)
	}))
	mux.HandleFunc("GET /v1/access", s.authed(false, func(w http.ResponseWriter, r *http.Request) {
		out, err := s.Admin.ListGrants(r.Context())
		s.reply(w, out, err)
	}))
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
