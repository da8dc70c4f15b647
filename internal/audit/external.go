package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// exporter copies signed checkpoints out of the store: to the checkpoint
// file and to the witness, each by its own goroutine that takes only the
// newest checkpoint, so a slow disk or a witness that is down holds up
// neither the writer, nor the signer, nor each other.
type exporter struct {
	outlets []*outlet
}

// outlet delivers checkpoints to one place outside the store.
type outlet struct {
	target  string // "file" or "witness", for metrics
	deliver func(ctx context.Context, note []byte) error
	every   time.Duration // at most one delivery per interval
	// finalWait bounds the delivery at Close (0: none; -1: skip it).
	finalWait time.Duration
	closeFn   func() error // run when the outlet stops

	in      chan []byte   // the newest signed checkpoint not yet taken
	refusal chan []byte   // a refusal notice, delivered at once
	quit    chan struct{} // closed at Close: cuts a delivery in flight short
	done    chan struct{}
}

const (
	// witnessTimeout bounds one delivery to the witness.
	witnessTimeout = 10 * time.Second
	// witnessFinalWait bounds the last delivery at Close, so an admin
	// command does not hang on a witness that is down.
	witnessFinalWait = 2 * time.Second
)

func newExporter(opts Options) *exporter {
	observe := opts.OnExternal
	if observe == nil {
		observe = func(string, error) {}
	}
	e := &exporter{}
	add := func(o *outlet) {
		inner := o.deliver
		o.deliver = func(ctx context.Context, note []byte) error {
			err := inner(ctx, note)
			observe(o.target, err)
			return err
		}
		o.every, o.in, o.refusal = opts.CheckpointInterval, make(chan []byte, 1), make(chan []byte, 1)
		o.quit, o.done = make(chan struct{}), make(chan struct{})
		e.outlets = append(e.outlets, o)
		go o.run()
	}
	if opts.CheckpointFile != "" {
		cf := &checkpointFile{path: opts.CheckpointFile}
		add(&outlet{target: "file", closeFn: cf.close, deliver: func(_ context.Context, note []byte) error {
			err := cf.append(note)
			if err != nil {
				opts.Logger.Error("audit checkpoint file write failed; will retry with the newest checkpoint", "path", cf.path, "err", err)
			}
			return err
		}})
	}
	if opts.WitnessURL != "" {
		w := &witnessClient{url: opts.WitnessURL, client: opts.HTTPClient, logger: opts.Logger}
		if w.client == nil {
			w.client = &http.Client{}
		}
		if u, err := url.Parse(opts.WitnessURL); err == nil {
			w.host = u.Host
		}
		add(&outlet{target: "witness", deliver: w.post, finalWait: witnessFinalWait})
	}
	return e
}

// offer hands the outlets a newly signed checkpoint.
func (e *exporter) offer(note []byte) {
	for _, o := range e.outlets {
		sendNewest(o.in, note)
	}
}

// refuse hands the outlets the log's refusal notice; there is only one.
func (e *exporter) refuse(note []byte) {
	for _, o := range e.outlets {
		select {
		case o.refusal <- note:
		default:
		}
	}
}

// close delivers what is pending (to the witness only if the log is not
// aborting) and stops the outlets.
func (e *exporter) close(aborting bool) {
	for _, o := range e.outlets {
		if aborting && o.finalWait > 0 {
			o.finalWait = -1
		}
		close(o.quit)
		close(o.in)
	}
	for _, o := range e.outlets {
		<-o.done
	}
}

// run delivers each offered checkpoint, at most once per interval; a failed
// delivery is retried with backoff, always with the newest checkpoint.
func (o *outlet) run() {
	defer close(o.done)
	if o.closeFn != nil {
		defer o.closeFn()
	}
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-o.quit
		cancel()
	}()
	var pending []byte
	var due time.Time
	backoff := time.Second
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wake := timer.C
		if pending == nil {
			wake = nil
		} else {
			timer.Reset(time.Until(due))
		}
		select {
		case n, ok := <-o.in:
			if !ok {
				select {
				case n := <-o.refusal:
					pending = n
				default:
				}
				o.final(pending)
				return
			}
			pending = n
		case n := <-o.refusal:
			// Not held back by the interval: it may be the only trace.
			pending, due = n, time.Time{}
		case <-wake:
		}
		if now := time.Now(); pending != nil && !now.Before(due) {
			ctx, cancel := context.WithTimeout(base, witnessTimeout)
			err := o.deliver(ctx, pending)
			cancel()
			if err != nil {
				due = now.Add(backoff)
				backoff = min(2*backoff, time.Minute)
			} else {
				pending, due, backoff = nil, now.Add(o.every), time.Second
			}
		}
	}
}

// final delivers what is pending at Close.
func (o *outlet) final(pending []byte) {
	if pending == nil || o.finalWait < 0 {
		return
	}
	ctx := context.Background()
	if o.finalWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.finalWait)
		defer cancel()
	}
	o.deliver(ctx, pending)
}

// witnessClient posts checkpoints to a witness.
type witnessClient struct {
	url    string
	host   string // the witness's host, for logs: the URL may carry a secret
	client *http.Client
	logger *slog.Logger
}

// post sends the signed note to the witness: POST, the note as a text body.
// Any 2xx answer means the witness has it.
func (w *witnessClient) post(ctx context.Context, note []byte) error {
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(note))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := w.client.Do(req)
		if err != nil {
			// Drop the error's copy of the URL.
			if ue, ok := err.(*url.Error); ok {
				return ue.Err
			}
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("witness answered %s", resp.Status)
		}
		return nil
	}()
	if err != nil {
		w.logger.Warn("audit witness did not take the checkpoint; will retry with the newest", "witness", w.host, "err", err)
	}
	return err
}
