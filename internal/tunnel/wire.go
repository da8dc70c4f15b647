package tunnel

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/agent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Everything on a tunnel that is not relayed bytes is a frame: a 4-byte
// big-endian length, then that many bytes of JSON. Frames carry names,
// parameters and certificates, never result data (which follows a stream's
// response as raw bytes), so they are capped.
const maxFrame = 1 << 20

func writeFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tunnel frame: %w", err)
	}
	if len(body) > maxFrame {
		return fmt.Errorf("tunnel frame: %d bytes exceeds %d", len(body), maxFrame)
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	_, err = w.Write(append(buf, body...))
	return err
}

// readFrame reads exactly one frame, never past it, so the bytes that
// follow stay in r.
func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("tunnel frame: %d bytes exceeds %d", n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return unexpectedEOF(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("tunnel frame: %w", err)
	}
	return nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// welcome is the gateway's first frame on every tunnel connection, before
// yamux starts. An agent that gets Fatal stops instead of retrying.
type welcome struct {
	Error     string        `json:"error,omitempty"`
	Fatal     bool          `json:"fatal,omitempty"`
	Node      string        `json:"node,omitempty"`
	Heartbeat time.Duration `json:"heartbeat_ns,omitempty"`
}

// enrollRequest is the only frame an agent without a certificate may send.
type enrollRequest struct {
	Name  string `json:"name"`
	Token string `json:"token"` // id.secret, without the CA pin
	CSR   []byte `json:"csr"`   // PKCS #10, DER
}

type enrollResponse struct {
	Error string `json:"error,omitempty"`
	Cert  []byte `json:"cert,omitempty"` // DER
	CA    []byte `json:"ca,omitempty"`   // DER
}

// ConnInfo is what an agent tells the gateway about one connection it
// serves: never an address or a credential.
type ConnInfo = store.AgentConn

// Control frame types, on the first stream the agent opens.
const (
	ctrlHello     = "hello"     // agent → gateway, once
	ctrlHeartbeat = "heartbeat" // agent → gateway
	ctrlAck       = "ack"       // gateway → agent, answers hello and heartbeat
	ctrlRenew     = "renew"     // agent → gateway, with a CSR
	ctrlRenewed   = "renewed"   // gateway → agent, with a certificate or an error
	ctrlBye       = "bye"       // agent → gateway, when it shuts down cleanly
)

type control struct {
	Type        string     `json:"type"`
	Seq         int64      `json:"seq,omitempty"`
	Version     string     `json:"version,omitempty"`
	Connections []ConnInfo `json:"connections,omitempty"`
	CSR         []byte     `json:"csr,omitempty"`
	Cert        []byte     `json:"cert,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// Operations a gateway asks of an agent, one per stream.
const (
	opPostgresDial   = "postgres.dial"
	opPostgresCancel = "postgres.cancel"
)

type request struct {
	Op         string            `json:"op"`
	Connection string            `json:"connection"`
	Database   string            `json:"database,omitempty"`
	Runtime    map[string]string `json:"runtime,omitempty"`
	PID        uint32            `json:"pid,omitempty"`
	Secret     []byte            `json:"secret,omitempty"`
}

// Error codes an agent sends, so the gateway can rebuild sentinel errors.
const codeUnknownConnection = "unknown_connection"

// response answers a request. After a successful dial the stream carries
// the upstream's bytes.
type response struct {
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
	// Dial is what a failed dial may tell the client (agent.DialError),
	// from agents that send it.
	Dial   *dialFailure      `json:"dial,omitempty"`
	PID    uint32            `json:"pid,omitempty"`
	Secret []byte            `json:"secret,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	Tx     byte              `json:"tx,omitempty"`
}

// dialFailure carries an agent.DialError's client-facing parts; the cause
// travels as the response's Error.
type dialFailure struct {
	Reason   string `json:"reason"`
	SQLSTATE string `json:"sqlstate,omitempty"`
	Message  string `json:"message,omitempty"`
	Hint     string `json:"hint,omitempty"`
}

func (r response) err(agentName, connection string) error {
	var err error
	if r.Code == codeUnknownConnection {
		err = fmt.Errorf("agent %s: %w: %s", agentName, agent.ErrUnknownConnection, r.Error)
	} else {
		err = fmt.Errorf("agent %s: %s", agentName, r.Error)
	}
	if d := r.Dial; d != nil {
		return &agent.DialError{Connection: connection, Reason: d.Reason, Code: d.SQLSTATE, Message: d.Message, Hint: d.Hint, Err: err}
	}
	return err
}
