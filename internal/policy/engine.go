package policy

import (
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Engine holds the active policy set for a directory and swaps in a new one
// when the directory changes and the new files load cleanly. Decide is safe
// for concurrent use and never waits for a reload.
type Engine struct {
	dir    string
	schema *compiledSchema // parsed once: it is built in, so it never changes
	active atomic.Pointer[Set]

	mu sync.Mutex // one reload at a time; guards tried
	// tried is the hash of the contents last loaded, good or bad, so a bad
	// change is reported once, not on every poll.
	tried [sha256.Size]byte
}

// ReloadResult reports one reload attempt, for the caller to log and audit.
type ReloadResult struct {
	Dir      string
	Policies int // policies in the active set after the attempt
	Files    int // files in the active set after the attempt
	// Err is nil when the new files are active. Otherwise the files were
	// refused (a *LoadError names each problem) or could not be read, and
	// the previous set stays active.
	Err error
}

// NewEngine loads dir. It fails if the directory cannot be read or its
// policies do not load; an empty directory loads as no policies, which denies
// everything.
func NewEngine(dir string) (*Engine, error) {
	cs, err := compileSchema()
	if err != nil {
		return nil, err
	}
	c, err := readDir(os.DirFS(dir), dir)
	if err != nil {
		return nil, err
	}
	s, err := compileSet(cs, c)
	if err != nil {
		return nil, err
	}
	e := &Engine{dir: dir, schema: cs, tried: c.hash}
	e.active.Store(s)
	return e, nil
}

// Decide evaluates r against the active set.
func (e *Engine) Decide(r Request) Decision {
	return e.active.Load().Decide(r)
}

// Set returns the active set, e.g. for Evaluate or to list policies.
func (e *Engine) Set() *Set {
	return e.active.Load()
}

// Reload reads the directory now and activates it if it loads, whether or not
// it changed (for SIGHUP or an API call).
func (e *Engine) Reload() ReloadResult {
	res, _ := e.reload(true)
	return res
}

// Watch polls the directory every interval until ctx is done, reloading when
// the files' contents change and reporting each attempt to onReload (which
// may be nil). Polling a hash of the contents, rather than watching for
// events, needs no dependency, sees edits within one mtime tick, and works
// through the symlink swaps of Kubernetes ConfigMap mounts. Run it in its
// own goroutine.
func (e *Engine) Watch(ctx context.Context, interval time.Duration, onReload func(ReloadResult)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if res, changed := e.reload(false); changed && onReload != nil {
			onReload(res)
		}
	}
}

// reload loads the directory if force is set or its contents changed since
// the last attempt, and reports whether it attempted anything.
func (e *Engine) reload(force bool) (ReloadResult, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res := ReloadResult{Dir: e.dir}
	c, err := readDir(os.DirFS(e.dir), e.dir)
	if err != nil {
		// Report an unreadable directory once, until it reads again.
		h := sha256.Sum256([]byte(err.Error()))
		if !force && h == e.tried {
			return res, false
		}
		e.tried = h
		return e.result(err), true
	}
	if !force && c.hash == e.tried {
		return res, false
	}
	e.tried = c.hash
	s, err := compileSet(e.schema, c)
	if err != nil {
		return e.result(err), true
	}
	e.active.Store(s)
	return e.result(nil), true
}

func (e *Engine) result(err error) ReloadResult {
	s := e.active.Load()
	return ReloadResult{Dir: e.dir, Policies: s.Len(), Files: s.Files(), Err: err}
}
