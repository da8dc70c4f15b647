package postgres

import (
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes Gatehouse sends (PostgreSQL docs, Appendix A).
const (
	codeInsufficientPrivilege = "42501"
	codeInvalidPassword       = "28P01"
	codeInvalidAuthorization  = "28000"
	codeProtocolViolation     = "08P01"
	codeConnectionFailure     = "08006"
	codeCannotConnectNow      = "57P03"
	codeProgramLimitExceeded  = "54000"
	codeFeatureNotSupported   = "0A000"
	codeAdminShutdown         = "57P01"
)

// errorMessage encodes an ErrorResponse body (without the type byte and
// length) for severity ERROR or FATAL.
func errorMessage(severity, code, msg, detail, hint string) []byte {
	e := &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity, Code: code, Message: msg, Detail: detail, Hint: hint}
	b, err := e.Encode(nil)
	if err != nil {
		// Only over-long strings fail; fall back to a fixed message.
		b, _ = (&pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity, Code: code, Message: "gatehouse: error"}).Encode(nil)
	}
	return b[5:] // the body: callers frame it
}

// noticeMessage encodes a NoticeResponse body.
func noticeMessage(msg, detail string) []byte {
	b, _ := (&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "00000", Message: msg, Detail: detail}).Encode(nil)
	return b[5:]
}

// dialFatal is what the client is told when the upstream dial failed, and
// counts the failure by reason. The agent's DialError says what may be
// shown (the upstream's own answer with its SQLSTATE, or which
// connection's credential or agent is missing); anything else gets the
// old generic FATAL, its cause staying in the gateway log.
func (e *Engine) dialFatal(connection string, err error) *fatal {
	f := &fatal{code: codeConnectionFailure, msg: fmt.Sprintf("gatehouse: cannot connect to %s upstream", connection),
		hint: "the upstream refused or is unreachable; see the gateway log"}
	reason := agent.ReasonOther
	var de *agent.DialError
	if errors.As(err, &de) {
		reason = de.Reason
		if de.Message != "" {
			f = &fatal{code: de.Code, msg: de.Message, hint: de.Hint}
			if f.code == "" {
				f.code = codeConnectionFailure
			}
		}
	}
	if p := e.opts.Pipeline; p != nil && p.Metrics != nil {
		p.Metrics.UpstreamDialFailures.WithLabelValues("postgres", connection, reason).Inc()
	}
	return f
}
