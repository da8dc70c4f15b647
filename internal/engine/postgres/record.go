package postgres

import (
	"encoding/binary"
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
	if errText != "" && r.Error == "" {
		r.Error = errText
	}
	s.e.opts.Recorder.Statement(r.RecStatement)
}

// maxRecordedParam bounds how much of one parameter a recording keeps.
const maxRecordedParam = 256

// bindParams reads a Bind's parameter values for the recording, masked with
// the detectors whatever the principal may see: recordings are read by
// other people. Binary values are summarised.
func (s *session) bindParams(body []byte) []string {
	if s.e.opts.Recorder == nil {
		return nil
	}
	b := body
	for range 2 {
		i := indexZero(b)
		if i < 0 {
			return nil
		}
		b = b[i+1:]
	}
	nf, b, err := readInt16(b)
	if err != nil || nf < 0 || len(b) < 2*int(nf) {
		return nil
	}
	formats := b[:2*int(nf)]
	b = b[2*int(nf):]
	np, b, err := readInt16(b)
	if err != nil || np < 0 {
		return nil
	}
	out := make([]string, 0, np)
	for i := range int(np) {
		if len(b) < 4 {
			return nil
		}
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if l == -1 {
			out = append(out, "NULL")
			continue
		}
		if l < 0 || int(l) > len(b) {
			return nil
		}
		v := b[:l]
		b = b[l:]
		format := int16(0)
		switch {
		case nf == 1:
			format = int16(binary.BigEndian.Uint16(formats))
		case int(nf) > i:
			format = int16(binary.BigEndian.Uint16(formats[2*i:]))
		}
		if format != 0 {
			out = append(out, fmt.Sprintf("<binary %d bytes>", len(v)))
			continue
		}
		if len(v) > maxRecordedParam {
			v = v[:maxRecordedParam]
		}
		if s.e.opts.Masker != nil {
			v = s.e.opts.Masker.Mask(nil, v)
		}
		out = append(out, string(v))
	}
	return out
}
