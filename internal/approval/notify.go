package approval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook is one notification target.
type Webhook struct {
	URL string
	// Format is "generic" (JSON body signed with Secret) or "slack"
	// (an incoming-webhook message).
	Format string
	// Secret signs generic payloads: header X-Gatehouse-Signature is
	// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), and
	// X-Gatehouse-Timestamp carries the timestamp.
	Secret []byte
}

// Notifier posts approval requests to webhooks, retrying with backoff, off
// the request path.
type Notifier struct {
	Hooks []Webhook
	// GatewayURL, when set, is shown in messages as where the API is.
	GatewayURL string
	Client     *http.Client
	Logger     *slog.Logger
	// Backoff is the first retry delay (default 1s); it doubles, 4 tries.
	Backoff time.Duration
}

// Payload is the generic webhook body.
type Payload struct {
	Event    string    `json:"event"`
	Approval *Approval `json:"approval"`
	Approve  string    `json:"approve_command"`
	Deny     string    `json:"deny_command"`
	API      string    `json:"api,omitempty"`
}

// Send notifies every hook in the background.
func (n *Notifier) Send(a *Approval) {
	for _, h := range n.Hooks {
		go n.deliver(h, a)
	}
}

func (n *Notifier) deliver(h Webhook, a *Approval) {
	body, err := n.body(h, a)
	if err != nil {
		n.log().Error("approval webhook: encode", "err", err)
		return
	}
	client := n.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	delay := n.Backoff
	if delay <= 0 {
		delay = time.Second
	}
	for try := 1; try <= 4; try++ {
		err = n.post(client, h, body)
		if err == nil {
			return
		}
		n.log().Warn("approval webhook failed", "approval", a.ID, "try", try, "err", err)
		time.Sleep(delay)
		delay *= 2
	}
	n.log().Error("approval webhook gave up", "approval", a.ID, "err", err)
}

func (n *Notifier) post(client *http.Client, h Webhook, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Format != "slack" && len(h.Secret) > 0 {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("X-Gatehouse-Timestamp", ts)
		req.Header.Set("X-Gatehouse-Signature", Sign(h.Secret, ts, body))
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Sign computes the X-Gatehouse-Signature value for a payload.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (n *Notifier) body(h Webhook, a *Approval) ([]byte, error) {
	approve := "gatehouse approvals approve " + a.ID
	deny := "gatehouse approvals deny " + a.ID + " --reason '...'"
	if h.Format == "slack" {
		// Reviewers read exactly what would run, literals and parameters
		// included; the normalised statement is for the audit log.
		what := "Statement: `" + slackText(a.Statement) + "`"
		if a.Operation != nil {
			what = "Operation (" + a.Operation.Action + "): ```" + slackText(a.Operation.Describe()) + "```"
			if a.Operation.Database != "" {
				what += "\nDatabase: " + a.Operation.Database
			}
		}
		if a.Kind == KindGrant {
			what = fmt.Sprintf("Access grant: role `%s` on `%s` for %s", a.Role, a.Connection, a.GrantFor)
		}
		text := fmt.Sprintf("*Gatehouse approval needed* (%s)\n%s\nPrincipal: %s", a.ID, what, a.Principal)
		if a.OnBehalfOf != "" {
			text += " on behalf of " + a.OnBehalfOf
		}
		text += fmt.Sprintf("\nConnection: %s\nPolicy: %s · reviewers: %s (%d needed)\nApprove: `%s`\nDeny: `%s`", a.Connection, a.Policy, a.Group, a.Required, approve, deny)
		if n.GatewayURL != "" {
			text += fmt.Sprintf("\nAPI: POST %s/v1/approvals/%s/approve", n.GatewayURL, a.ID)
		}
		return json.Marshal(map[string]string{"text": text})
	}
	p := Payload{Event: "approval.requested", Approval: a, Approve: approve, Deny: deny}
	if n.GatewayURL != "" {
		p.API = n.GatewayURL + "/v1/approvals/" + a.ID
	}
	return json.Marshal(p)
}

// maxSlackText bounds the operation text in a Slack message (Slack cuts
// messages at 40,000 characters); the rest is named, not dropped silently.
const maxSlackText = 3000

// slackText makes requester-controlled text inert in Slack's mrkdwn: <, >
// and & would form links and mentions (Slack's "Escaping text"), and a
// backtick would end the code block, so that text after it could pose as
// Gatehouse's own lines. Backticks become U+02CB, which looks alike.
func slackText(s string) string {
	if len(s) > maxSlackText {
		s = strings.ToValidUTF8(s[:maxSlackText], "") + fmt.Sprintf(" … (%d bytes in all; gatehouse approvals show prints everything)", len(s))
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\u02cb").Replace(s)
}

func (n *Notifier) log() *slog.Logger {
	if n.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Logger
}

// VerifySignature checks a generic webhook's signature, for receivers.
func VerifySignature(secret []byte, timestamp, signature string, body []byte) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}
