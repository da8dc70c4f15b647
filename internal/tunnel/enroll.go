package tunnel

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// An enrollment token is "ghe1.ID.SECRET.PIN": ID finds the stored row,
// SECRET (256 random bits) proves possession and is stored only as its
// SHA-256, and PIN is the CA fingerprint the new agent checks the gateway
// against before it has any certificate (as kubeadm's discovery hash).
const tokenPrefix = "ghe1."

// NewEnrollToken makes a token for the agent name, valid for ttl, and the
// row to store for it.
func NewEnrollToken(name string, ca *CA, now time.Time, ttl time.Duration) (string, store.EnrollToken) {
	var id [8]byte
	var secret [32]byte
	rand.Read(id[:])
	rand.Read(secret[:])
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	rec := store.EnrollToken{ID: hex.EncodeToString(id[:]), Name: name, Hash: hashSecret(sec), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	return tokenPrefix + rec.ID + "." + sec + "." + ca.Pin(), rec
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// parseToken splits a token into its id, secret and CA pin.
func parseToken(tok string) (id, secret, pin string, err error) {
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 4 || parts[0]+"." != tokenPrefix || len(parts[1]) != 16 || len(parts[2]) < 32 || len(parts[3]) != 64 {
		return "", "", "", errors.New("malformed enrollment token (want ghe1.ID.SECRET.PIN from `gatehouse agents enroll`)")
	}
	return parts[1], parts[2], parts[3], nil
}

// Identity is an agent's credentials on disk: agent.pem (its certificate
// and private key, mode 0600, replaced atomically on renewal) and ca.crt
// (the gateway CA it trusts).
type Identity struct {
	Dir string
}

const (
	identityFile = "agent.pem"
	identityCA   = "ca.crt"
)

// ErrNotEnrolled is returned by Load when the agent has no certificate.
var ErrNotEnrolled = errors.New("agent is not enrolled")

// Load reads the certificate, key and trusted CA.
func (id Identity) Load() (*tls.Certificate, *x509.CertPool, error) {
	raw, err := os.ReadFile(filepath.Join(id.Dir, identityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, nil, fmt.Errorf("agent identity: %w", err)
	}
	cert, err := tls.X509KeyPair(raw, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("agent identity %s: %w", filepath.Join(id.Dir, identityFile), err)
	}
	caPEM, err := os.ReadFile(filepath.Join(id.Dir, identityCA))
	if err != nil {
		return nil, nil, fmt.Errorf("agent identity: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("agent identity: %s holds no certificate", filepath.Join(id.Dir, identityCA))
	}
	return &cert, pool, nil
}

func (id Identity) save(key *ecdsa.PrivateKey, certDER, caDER []byte) error {
	if err := os.MkdirAll(id.Dir, 0o700); err != nil {
		return fmt.Errorf("agent identity: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("agent identity: %w", err)
	}
	body := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...)
	if caDER != nil {
		if err := writeFileAtomic(filepath.Join(id.Dir, identityCA), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
			return fmt.Errorf("agent identity: %w", err)
		}
	}
	if err := writeFileAtomic(filepath.Join(id.Dir, identityFile), body, 0o600); err != nil {
		return fmt.Errorf("agent identity: %w", err)
	}
	return nil
}

// newCSR makes a fresh key and a request for a certificate naming name.
func newCSR(name string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, err
	}
	return key, csr, nil
}

// EnrollError is the gateway's refusal of an enrollment; retrying with the
// same token cannot succeed.
type EnrollError struct{ Msg string }

func (e *EnrollError) Error() string { return "enrollment refused: " + e.Msg }

// Enroll exchanges a one-time token for a client certificate from the
// gateway at addr and saves it in id. The gateway is checked against the
// CA pin in the token.
func Enroll(ctx context.Context, addr, name, token string, id Identity) error {
	tid, secret, pin, err := parseToken(token)
	if err != nil {
		return &EnrollError{Msg: err.Error()}
	}
	var caDER []byte
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is checked against the pinned CA below instead of
		// the system roots and a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates[1:] {
				if pinOf(c.Raw) == pin {
					pool := x509.NewCertPool()
					pool.AddCert(c)
					caDER = c.Raw
					return verifyGateway(cs, pool)
				}
			}
			return errors.New("the gateway's CA does not match the enrollment token's pin")
		},
	}
	d := tls.Dialer{Config: cfg}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second) // TCP and TLS handshake
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("enroll at %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	key, csr, err := newCSR(name)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	if err := writeFrame(c, enrollRequest{Name: name, Token: tid + "." + secret, CSR: csr}); err != nil {
		return fmt.Errorf("enroll at %s: %w", addr, err)
	}
	var resp enrollResponse
	if err := readFrame(c, &resp); err != nil {
		return fmt.Errorf("enroll at %s: %w", addr, err)
	}
	if resp.Error != "" {
		return &EnrollError{Msg: resp.Error}
	}
	cert, err := x509.ParseCertificate(resp.Cert)
	if err != nil {
		return fmt.Errorf("enroll: issued certificate: %w", err)
	}
	if got, _, err := agentIdentity(cert); err != nil || got != name {
		return fmt.Errorf("enroll: the gateway issued a certificate for %q, not %q", got, name)
	}
	return id.save(key, resp.Cert, caDER)
}
