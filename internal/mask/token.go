package mask

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
)

// Deterministic tokens. The seed of a token is HMAC-SHA256 under the
// deployment key over the detector and the value in a normal form (a card
// number's digits, an email in lower case), so the same value written two
// ways gets one token and tokens join and group like the values they
// replace. Output bytes beyond the seed come from SHA-256(seed || counter).
// Tokens keep the value's format where that is practical: digits stay
// digits, letters stay letters of the same case, separators stay; a card
// token always fails the Luhn check and an SSN token has area 9xx, so a
// token is never mistaken for (or charged as) a real value.

// MinKeyLen is the shortest deployment key New accepts when a rule uses
// the token strategy.
const MinKeyLen = 16

type macState struct {
	mac  hash.Hash
	hdr  [2]byte
	norm [128]byte
	sum  [sha256.Size]byte
}

func newMacPool(key []byte) *sync.Pool {
	k := bytes.Clone(key)
	return &sync.Pool{New: func() any {
		return &macState{mac: hmac.New(sha256.New, k)}
	}}
}

// keystream yields pseudo-random bytes from a seed.
type keystream struct {
	in  [sha256.Size + 4]byte
	blk [sha256.Size]byte
	n   int
	ctr uint32
}

func (k *keystream) init(seed *[sha256.Size]byte) {
	copy(k.in[:], seed[:])
	k.n = len(k.blk)
	k.ctr = 0
}

// next is small enough to inline; refill is not.
func (k *keystream) next() byte {
	if k.n >= len(k.blk) {
		k.refill()
	}
	b := k.blk[k.n&(len(k.blk)-1)]
	k.n++
	return b
}

func (k *keystream) refill() {
	binary.BigEndian.PutUint32(k.in[sha256.Size:], k.ctr)
	k.blk = sha256.Sum256(k.in[:])
	k.ctr++
	k.n = 0
}

// char maps one byte of a value to a byte of the same class.
func (k *keystream) char(c byte) byte {
	switch {
	case isDigit(c):
		return '0' + k.next()%10
	case isUpper(c):
		return 'A' + k.next()%26
	case c >= 'a' && c <= 'z':
		return 'a' + k.next()%26
	}
	return c
}

// seed computes the token seed of v for detector d; attempt separates the
// retries made when a token would contain its value.
func (sh *shared) seed(out *[sha256.Size]byte, d Detector, v []byte, attempt byte) {
	st := sh.macs.Get().(*macState)
	st.mac.Reset()
	st.hdr = [2]byte{byte(d), attempt}
	st.mac.Write(st.hdr[:])
	st.mac.Write(normalize(st.norm[:0], d, v))
	st.mac.Sum(st.sum[:0])
	*out = st.sum
	sh.macs.Put(st)
}

// normalize returns the form of v whose equality means "same value". It
// appends to buf (which has room for short values) and falls back to v.
func normalize(buf []byte, d Detector, v []byte) []byte {
	switch d {
	case Card, SSN, Phone:
		for _, c := range v {
			if isDigit(c) && len(buf) < cap(buf) {
				buf = append(buf, c)
			}
		}
		return buf
	case IBAN:
		for _, c := range v {
			if c != ' ' && len(buf) < cap(buf) {
				buf = append(buf, c)
			}
		}
		return buf
	case Email:
		if len(v) > cap(buf) {
			return v
		}
		for _, c := range v {
			if isUpper(c) {
				c += 'a' - 'A'
			}
			buf = append(buf, c)
		}
		return buf
	}
	return v
}

// token appends the token for v.
func (sh *shared) token(dst []byte, d Detector, v []byte) []byte {
	start := len(dst)
	if sh.macs == nil {
		return append(dst, sh.label(d)...) // New refuses this; be safe anyway
	}
	// A token must never contain its value. A real value of the
	// detector's kind never hits the retries; a short column value given
	// a format hint can (an IPv6 token always contains "fd"), so fall back
	// to the generic class-preserving form, then to hex digits, which a
	// value with no letter or digit cannot contain.
	for attempt := byte(0); attempt < 12; attempt++ {
		kind := d
		if attempt >= 4 {
			kind = 0
		}
		dst = sh.tokenOnce(dst[:start], kind, v, attempt)
		if !bytes.Contains(dst[start:], v) {
			return dst
		}
	}
	var seed [sha256.Size]byte
	sh.seed(&seed, d, v, 0xff)
	const hexd = "0123456789abcdef"
	dst = dst[:start]
	for _, b := range seed[:8] {
		dst = append(dst, hexd[b>>4], hexd[b&15])
	}
	return dst
}

const base32 = "abcdefghijklmnopqrstuvwxyz234567"

func (sh *shared) tokenOnce(dst []byte, d Detector, v []byte, attempt byte) []byte {
	var seed [sha256.Size]byte
	sh.seed(&seed, d, v, attempt)
	var ks keystream
	ks.init(&seed)
	switch d {
	case Card:
		start := len(dst)
		for _, c := range v {
			dst = append(dst, ks.char(c))
		}
		if luhnText(dst[start:]) {
			// Bump the last digit: exactly one check digit passes.
			for k := len(dst) - 1; k >= start; k-- {
				if isDigit(dst[k]) {
					dst[k] = '0' + (dst[k]-'0'+1)%10
					break
				}
			}
		}
		return dst
	case SSN:
		first := true
		for _, c := range v {
			c = ks.char(c)
			if first && isDigit(c) {
				c, first = '9', false // area 9xx is never issued
			}
			dst = append(dst, c)
		}
		return dst
	case IBAN:
		if len(v) < 4 {
			break
		}
		dst = append(dst, v[0], v[1], '0', '0') // check digits 00 never validate
		for _, c := range v[4:] {
			dst = append(dst, ks.char(c))
		}
		return dst
	case Email:
		at := bytes.LastIndexByte(v, '@')
		if at < 0 {
			break
		}
		for k := 0; k < 12; k++ {
			dst = append(dst, base32[ks.next()%32])
		}
		dst = append(dst, '@')
		var dseed [sha256.Size]byte
		sh.seed(&dseed, Email, v[at+1:], attempt) // the domain alone, so addresses still group by domain
		for k := 0; k < 8; k++ {
			dst = append(dst, base32[dseed[k]%32])
		}
		return append(dst, ".invalid"...)
	case IPv4:
		for k := 0; k < 4; k++ {
			if k > 0 {
				dst = append(dst, '.')
			}
			dst = appendUint(dst, int(ks.next()))
		}
		return dst
	case IPv6:
		// fd00::/8 is the unique-local range: the token is never a
		// routable address.
		const hexd = "0123456789abcdef"
		dst = append(dst, 'f', 'd')
		for k := 0; k < 14; k++ {
			switch k {
			case 2, 6:
				dst = append(dst, ':')
			case 10:
				dst = append(dst, ':', ':')
			}
			dst = append(dst, hexd[ks.next()%16])
		}
		return dst
	case PrivateKey:
		// Keeping a key body's shape is of no use and costs a hash block
		// per 32 bytes: one line of base64 stands for it.
		h, f := pemArmour(v)
		if h == 0 {
			break
		}
		dst = append(dst, v[:h]...)
		dst = append(dst, '\n')
		dst = appendB64(dst, &ks, 32)
		if f < len(v) {
			dst = append(dst, '\n')
			dst = append(dst, v[f:]...)
		}
		return dst
	case JWT:
		// Three base64url segments of 10 (32 bytes, the default bound):
		// the shape of a JWT, but not one (no "eyJ").
		for k := 0; k < 3; k++ {
			if k > 0 {
				dst = append(dst, '.')
			}
			dst = appendB64(dst, &ks, 10)
		}
		return dst
	case AWSAccessKey, GitHubToken, SlackToken, StripeKey, GoogleAPIKey:
		p := secretPrefix(d, v)
		dst = append(dst, v[:p]...)
		for _, c := range v[p:] {
			dst = append(dst, ks.char(c))
		}
		return dst
	}
	for _, c := range v {
		dst = append(dst, ks.char(c))
	}
	return dst
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func appendB64(dst []byte, ks *keystream, n int) []byte {
	for k := 0; k < n; k++ {
		dst = append(dst, b64url[ks.next()&63])
	}
	return dst
}

func appendUint(dst []byte, v int) []byte {
	if v >= 100 {
		dst = append(dst, byte('0'+v/100))
	}
	if v >= 10 {
		dst = append(dst, byte('0'+v/10%10))
	}
	return append(dst, byte('0'+v%10))
}
