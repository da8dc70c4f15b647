package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// keyReloadMinInterval bounds how often an unknown kid makes us read the
	// key directory, so a flood of forged kids costs one read a second.
	keyReloadMinInterval = time.Second
	// keyPollInterval is how often Run reloads the key directory to pick up
	// a rotation done by another process (the CLI) for signing. Superseded
	// keys are kept this much longer, since a process may sign with one for
	// up to this long after the rotation.
	keyPollInterval = 30 * time.Second
	// kidTimeLayout is fixed-width, so kids sort by creation time and every
	// process agrees on which key is newest.
	kidTimeLayout = "20060102T150405.000000Z"
	keyFileSuffix = ".pem"
)

// signingKey is one Ed25519 key of the key directory.
type signingKey struct {
	kid     string
	created time.Time
	priv    ed25519.PrivateKey
	pub     ed25519.PublicKey
}

// keySet is an immutable snapshot, swapped whole so Verify reads it without
// locking.
type keySet struct {
	byKID  map[string]*signingKey
	active *signingKey // newest key: the one Issue signs with
	jwks   []byte
}

// keyring owns the key directory. Several processes (the gateway, the CLI)
// may write it; files are only ever added whole (rename) or removed once
// past their retention, so readers need no lock file.
type keyring struct {
	dir       string
	retention time.Duration // after a key is superseded
	now       func() time.Time
	log       *slog.Logger

	set atomic.Pointer[keySet]

	mu         sync.Mutex // serializes reloads and rotations
	lastReload time.Time
}

func newKeyring(dir string, retention time.Duration, now func() time.Time, log *slog.Logger) (*keyring, error) {
	k := &keyring{dir: dir, retention: retention + keyPollInterval, now: now, log: log}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity keys: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; private keys must
	// not be listable by others.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity keys: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(); err != nil {
		return nil, err
	}
	if k.set.Load().active == nil {
		if _, err := k.createLocked(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// active returns the key Issue signs with.
func (k *keyring) active() *signingKey { return k.set.Load().active }

// lookup finds a key by kid, reloading the directory (at most once per
// keyReloadMinInterval) when it is unknown, in case another process rotated.
func (k *keyring) lookup(kid string) (*signingKey, bool) {
	if key, ok := k.set.Load().byKID[kid]; ok {
		return key, true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// Another caller may have reloaded while we waited.
	if key, ok := k.set.Load().byKID[kid]; ok {
		return key, true
	}
	if k.now().Sub(k.lastReload) < keyReloadMinInterval {
		return nil, false
	}
	if err := k.reloadLocked(); err != nil {
		k.log.Warn("identity: reload key directory", "err", err)
	}
	key, ok := k.set.Load().byKID[kid]
	return key, ok
}

// reload re-reads the key directory.
func (k *keyring) reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked()
}

// rotate creates a new active key.
func (k *keyring) rotate() (*signingKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// Read first so the new kid sorts after keys other processes added.
	if err := k.reloadLocked(); err != nil {
		return nil, err
	}
	return k.createLocked()
}

func (k *keyring) createLocked() (*signingKey, error) {
	created := k.now().UTC().Truncate(time.Microsecond)
	// A kid must sort after every existing one or the new key would not be
	// the active one (a frozen test clock, or two rotations in one µs).
	if a := k.set.Load().active; a != nil && !created.After(a.created) {
		created = a.created.Add(time.Microsecond)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity keys: generate: %w", err)
	}
	var suffix [6]byte
	rand.Read(suffix[:])
	kid := created.Format(kidTimeLayout) + "-" + hex.EncodeToString(suffix[:])
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("identity keys: encode: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeFileAtomic(filepath.Join(k.dir, kid+keyFileSuffix), data); err != nil {
		return nil, fmt.Errorf("identity keys: write %s: %w", kid, err)
	}
	if err := k.reloadLocked(); err != nil {
		return nil, err
	}
	key, ok := k.set.Load().byKID[kid]
	if !ok {
		return nil, fmt.Errorf("identity keys: new key %s did not load", kid)
	}
	return key, nil
}

// reloadLocked reads every key file, drops (and deletes) keys superseded
// longer than the retention, and publishes a new snapshot.
func (k *keyring) reloadLocked() error {
	now := k.now()
	k.lastReload = now
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return fmt.Errorf("identity keys: %w", err)
	}
	var keys []*signingKey
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, keyFileSuffix) {
			continue // temp files of a writer, or foreign files
		}
		kid := strings.TrimSuffix(name, keyFileSuffix)
		created, ok := kidTime(kid)
		if !ok {
			continue
		}
		key, err := readKeyFile(filepath.Join(k.dir, name))
		if err != nil {
			// One bad file must not stop the gateway from verifying with the
			// others; it is loud in the log instead.
			k.log.Warn("identity: skipping key file", "file", name, "err", err)
			continue
		}
		key.kid, key.created = kid, created
		keys = append(keys, key)
	}
	// Newest first: keys[0] is active, keys[i] was superseded when
	// keys[i-1] was created.
	slices.SortFunc(keys, func(a, b *signingKey) int { return strings.Compare(b.kid, a.kid) })
	set := &keySet{byKID: make(map[string]*signingKey, len(keys))}
	kept := make([]*signingKey, 0, len(keys))
	for i, key := range keys {
		if i > 0 && now.Sub(keys[i-1].created) > k.retention {
			// Every token this key signed has expired.
			err := os.Remove(filepath.Join(k.dir, key.kid+keyFileSuffix))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				k.log.Warn("identity: pruning key", "kid", key.kid, "err", err)
			}
			continue
		}
		set.byKID[key.kid] = key
		kept = append(kept, key)
	}
	if len(kept) > 0 {
		set.active = kept[0]
	}
	set.jwks, err = buildJWKS(kept)
	if err != nil {
		return err
	}
	k.set.Store(set)
	return nil
}

func kidTime(kid string) (time.Time, bool) {
	ts, _, ok := strings.Cut(kid, "-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(kidTimeLayout, ts)
	return t, err == nil
}

func readKeyFile(path string) (*signingKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	// As OpenSSH does: a private key others can read is refused.
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("mode %v: must not be accessible by group or others", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PKCS#8 private key")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want Ed25519", parsed)
	}
	return &signingKey{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
}

// buildJWKS renders the public keys as an RFC 7517 JWK Set (RFC 8037 OKP).
func buildJWKS(keys []*signingKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       k.pub,
			KeyID:     k.kid,
			Algorithm: string(jose.EdDSA),
			Use:       "sig",
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("identity keys: jwks: %w", err)
	}
	return b, nil
}

// writeFileAtomic writes data to a 0600 temp file in the same directory,
// syncs it and renames it into place, so a concurrent reader never sees a
// half-written key.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // the key is in place; only durability of the rename is unsure
	}
	defer d.Close()
	d.Sync()
	return nil
}
