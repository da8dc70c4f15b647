package tunnel

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// CA is the gateway's internal certificate authority for agent tunnels. It
// signs the agent listener's serving certificate and agents' client
// certificates, and nothing else, so an agent pins it instead of checking
// a host name, and the gateway trusts exactly the agents it enrolled.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool

	mu     sync.Mutex
	server *tls.Certificate
}

// CA file names in its directory.
const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
)

// agentOU marks certificates issued to agents.
const agentOU = "gatehouse-agent"

// LoadOrCreateCA reads the CA in dir, creating it (key mode 0600) on first
// use. Several processes may race to create it; one wins and the others
// read its files.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		if err := createCA(dir); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	// The creator writes the key first and the certificate last; wait
	// briefly for a concurrent creator to finish.
	var certPEM []byte
	var err error
	for i := 0; i < 50; i++ {
		if certPEM, err = os.ReadFile(certPath); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("agent CA in %s: malformed PEM", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("agent CA certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("agent CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("agent CA key: not a signing key")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: signer, pool: pool}, nil
}

func createCA(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("agent CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("agent CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "Gatehouse agent CA", Organization: []string{"Gatehouse"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("agent CA: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("agent CA: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, caKeyFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("agent CA: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})); err != nil {
		f.Close()
		return fmt.Errorf("agent CA: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("agent CA: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, caCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic("tunnel: crypto/rand failed: " + err.Error())
	}
	return n
}

// Pin is the hex SHA-256 of the CA certificate; enrollment tokens carry it
// so a new agent can check the gateway before it has any certificate.
func (ca *CA) Pin() string { return pinOf(ca.cert.Raw) }

func pinOf(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// Cert is the CA certificate.
func (ca *CA) Cert() *x509.Certificate { return ca.cert }

// serverCertificate returns the agent listener's certificate, signed by
// the CA with the CA in its chain, minting a new one when the current one
// is past half its life.
func (ca *CA) serverCertificate(now time.Time) (*tls.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.server; c != nil && now.Before(c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)/2)) {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("agent listener certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: "gatehouse agent listener"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 30),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"gatehouse-agent-listener"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("agent listener certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("agent listener certificate: %w", err)
	}
	ca.server = &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
	return ca.server, nil
}

// signAgent issues a client certificate for the agent name at epoch, for
// the public key in a CSR the agent signed.
func (ca *CA) signAgent(csrDER []byte, name string, epoch int64, ttl time.Duration, now time.Time) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: name, OrganizationalUnit: []string{agentOU}, SerialNumber: strconv.FormatInt(epoch, 10)},
		NotBefore:    now.Add(-certBackdate),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign agent certificate: %w", err)
	}
	return der, nil
}

// certBackdate is how far before its issue an agent certificate's validity
// starts, for gateway nodes whose clocks run behind the one that signed.
const certBackdate = time.Minute

// renewAt is when an agent renews: two thirds into the lifetime it was
// issued with.
func renewAt(c *x509.Certificate) time.Time {
	issued := c.NotBefore.Add(certBackdate)
	return issued.Add(c.NotAfter.Sub(issued) * 2 / 3)
}

// agentIdentity reads the name and enrollment epoch from a verified agent
// certificate.
func agentIdentity(c *x509.Certificate) (name string, epoch int64, err error) {
	if len(c.Subject.OrganizationalUnit) != 1 || c.Subject.OrganizationalUnit[0] != agentOU || c.Subject.CommonName == "" {
		return "", 0, errors.New("not an agent certificate")
	}
	epoch, err = strconv.ParseInt(c.Subject.SerialNumber, 10, 64)
	if err != nil || epoch < 1 {
		return "", 0, errors.New("agent certificate without an enrollment epoch")
	}
	return c.Subject.CommonName, epoch, nil
}

// verifyGateway checks the gateway's chain against roots (the pinned or
// saved CA) without a host name: only the CA's serving certificates chain
// to it, and agent certificates lack the server-auth usage.
func verifyGateway(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("gateway sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("gateway certificate: %w", err)
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a
// reader sees the old or the new contents, never half of one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
