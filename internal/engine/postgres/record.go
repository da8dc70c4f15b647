package postgres

import (
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Recorder receives session recordings; recording.Recorder implements it.
type Recorder interface {
	SessionStarted(store.RecSession)
	SessionEnded(id string, at time.Time, reason string)
	Statement(store.RecStatement)
}

// stmtRecord accumulates one statement's recording between the frontend
// (which sees it leave) and the backend (which sees it finish).
type stmtRecord struct {
	store.RecStatement
	start time.Time
}

func (s *session) newRecord(a *sqlguard.Analysis, v gateway.Verdict) *stmtRecord {
	if s.e.opts.Recorder == nil {
		return nil
	}
	s.fe.seq++
	r := &stmtRecord{start: time.Now()}
	r.Session, r.Seq, r.Time = s.gs.ID, int64(s.fe.seq), r.start.UTC()
	r.Statement, r.Fingerprint, r.Class = a.Normalized, a.Fingerprint, string(a.Class)
	r.Decision, r.Reason = "deny", v.Reason
	if v.Allow {
		r.Decision = "allow"
	}
	return r
}

// newExecRecord records one execution of a prepared statement, with the
// portal's (masked) parameters.
func (s *session) newExecRecord(a *sqlguard.Analysis, params []string) *stmtRecord {
	r := s.newRecord(a, gateway.Verdict{Allow: true})
	if r != nil {
		r.Params = params
	}
	return r
}

// finish sends a statement's recording once its response is complete.
func (s *session) finish(x *expect, errText string) {
	if x.rec == nil || s.e.opts.Recorder == nil {
		return
	}
	r := x.rec
	x.rec = nil
	r.Duration = time.Since(r.start)
	if x.deny != nil && x.deny.code != "" {
		// The upstream failed the substitute (42601, quoting the
		// marker); the client got the denial's code, and so does the
		// recording.
		r.Error = x.deny.code
	}
	if errText != "" && r.Error == "" {
		r.Error = errText
	}
	s.e.opts.Recorder.Statement(r.RecStatement)
}

// maxRecordedParam bounds how much of one parameter a recording keeps.
const maxRecordedParam = 256

// bindParams renders a Bind's parameter values for the recording, masked
// with the detectors whatever the principal may see: recordings are read by
// other people. Binary values are summarised.
func (s *session) bindParams(b bindMsg) []string {
	if s.e.opts.Recorder == nil {
		return nil
	}
	out := make([]string, len(b.params))
	for i, v := range b.params {
		format := int16(0)
		switch {
		case len(b.paramFormats) == 1:
			format = b.paramFormats[0]
		case i < len(b.paramFormats):
			format = b.paramFormats[i]
		}
		switch {
		case v == nil:
			out[i] = "NULL"
		case format != 0:
			out[i] = fmt.Sprintf("<binary %d bytes>", len(v))
		default:
			if len(v) > maxRecordedParam {
				v = v[:maxRecordedParam]
			}
			if s.e.opts.Masker != nil {
				v = s.e.opts.Masker.Mask(nil, v)
			}
			out[i] = string(v)
		}
	}
	return out
}
