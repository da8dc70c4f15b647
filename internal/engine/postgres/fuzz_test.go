package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzFrontendFrames feeds arbitrary bytes to the message framer and the
// decoders the frontend applies to client messages: nothing may panic, and
// no body may exceed the limit.
func FuzzFrontendFrames(f *testing.F) {
	bind, _ := (&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", ParameterFormatCodes: []int16{0, 1},
		Parameters: [][]byte{[]byte("x"), nil}, ResultFormatCodes: []int16{1}}).Encode(nil)
	parse, _ := (&pgproto3.Parse{Name: "s", Query: "SELECT $1"}).Encode(nil)
	query, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	f.Add(append(append(bind, parse...), query...))
	f.Add([]byte{'Q', 0, 0, 0, 3})
	f.Add([]byte{'B', 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 16
		fr := newFrameReader(bytes.NewReader(data), max)
		for {
			typ, body, err := fr.next()
			if err != nil {
				return
			}
			if len(body) > max {
				t.Fatalf("body of %d bytes passed a %d limit", len(body), max)
			}
			switch typ {
			case 'B':
				if b, err := parseBind(body); err == nil {
					(&session{e: &Engine{opts: Options{Recorder: nopRecorder{}}}}).bindParams(b)
				}
			case 'Q', 'P':
				cstring(body)
			}
		}
	})
}

// FuzzBackendRow feeds arbitrary DataRow, ErrorResponse and notification
// bodies through the masking code.
func FuzzBackendRow(f *testing.F) {
	row := []byte{0, 2}
	row = binary.BigEndian.AppendUint32(row, 5)
	row = append(row, "hello"...)
	row = binary.BigEndian.AppendUint32(row, 0xffffffff)
	f.Add(row, uint8(2))
	f.Add([]byte{0, 1, 0, 0, 0, 9, 'a'}, uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, ncols uint8) {
		p := &rowPlan{cols: make([]colPlan, ncols)}
		out, err := p.maskRow(nil, body)
		if err == nil && len(out) < 2 {
			t.Fatal("accepted a row shorter than its header")
		}
		errorCode(body)
		commandRows(body)
		textRow(body, int(ncols))
	})
}

// FuzzStartup drives the startup exchange with arbitrary client bytes: it
// must end (error or startup message) without panicking or hanging.
func FuzzStartup(f *testing.F) {
	sm, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "pg", "database": "x"}}).Encode(nil)
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	gss, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	cancel, _ := (&pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{1, 2, 3, 4}}).Encode(nil)
	f.Add(sm)
	f.Add(append(gss, sm...))
	f.Add(append(ssl, sm...))
	f.Add(cancel)
	f.Add([]byte{0, 0, 0, 8, 0, 3, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		e := New(Options{})
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		go func() {
			client.Write(data)
			client.Close()
		}()
		go io.Copy(io.Discard, client)
		server.SetDeadline(time.Now().Add(2 * time.Second))
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.startup(context.Background(), server)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("startup did not end")
		}
	})
}

type nopRecorder struct{}

func (nopRecorder) SessionStarted(store.RecSession)        {}
func (nopRecorder) SessionEnded(string, time.Time, string) {}
func (nopRecorder) Statement(store.RecStatement)           {}
