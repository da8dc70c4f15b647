package tunnel

import (
	"encoding/binary"
	"net"
)

// frameJoiner sends a small yamux data frame's header and body in one
// write. yamux writes them separately; on TLS that is two records and two
// system calls per protocol message, which dominates the tunnel's cost for
// small messages. Only yamux's send loop writes to the connection, so no
// lock is needed. The layout is the yamux spec's 12-byte header: version,
// type (0 = data), flags, stream id, length.
type frameJoiner struct {
	net.Conn
	hdr  [12]byte
	held bool
	buf  []byte
}

// maxJoin bounds the bodies copied to join them; a larger body is written
// on its own, where one more system call is noise.
const maxJoin = 32 << 10

func (j *frameJoiner) Write(b []byte) (int, error) {
	if j.held {
		j.held = false
		j.buf = append(append(j.buf[:0], j.hdr[:]...), b...)
		n, err := j.Conn.Write(j.buf)
		return max(0, n-len(j.hdr)), err
	}
	if len(b) == len(j.hdr) && b[0] == 0 && b[1] == 0 {
		if n := binary.BigEndian.Uint32(b[8:12]); n > 0 && n <= maxJoin {
			copy(j.hdr[:], b)
			j.held = true
			return len(b), nil
		}
	}
	return j.Conn.Write(b)
}
