package audit

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// KeyName is the signer name in checkpoint notes.
const KeyName = "gatehouse-audit"

// Key file names inside the keys directory.
const (
	signerFile   = "audit.key"
	verifierFile = "audit.pub"
)

// LoadOrCreateKeys returns the checkpoint signer and verifier kept in dir,
// creating an Ed25519 key pair (mode 0600) on first use.
func LoadOrCreateKeys(dir string) (note.Signer, note.Verifier, error) {
	skeyPath := filepath.Join(dir, signerFile)
	raw, err := os.ReadFile(skeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("audit keys: %w", err)
		}
		skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
		if err != nil {
			return nil, nil, fmt.Errorf("audit keys: generate: %w", err)
		}
		if err := writeExclusive(skeyPath, skey+"\n", 0o600); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, verifierFile), []byte(vkey+"\n"), 0o644); err != nil {
			return nil, nil, fmt.Errorf("audit keys: %w", err)
		}
		raw = []byte(skey)
	} else if err != nil {
		return nil, nil, fmt.Errorf("audit keys: %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, nil, fmt.Errorf("audit keys: signer key in %s is invalid", skeyPath)
	}
	verifier, err := LoadVerifier(filepath.Join(dir, verifierFile))
	if err != nil {
		return nil, nil, err
	}
	return signer, verifier, nil
}

// LoadVerifier reads a checkpoint verifier key (the audit.pub file) so that
// checkpoints and proofs can be checked away from the gateway.
func LoadVerifier(path string) (note.Verifier, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("audit verifier key %s: %w", path, err)
	}
	return v, nil
}

// writeExclusive creates path with perm, failing if another process won the
// race to create it first.
func writeExclusive(path, content string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("audit keys: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("audit keys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit keys: %w", err)
	}
	return f.Close()
}
