package app

import (
	"fmt"
	"log/slog"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newApprovals builds the approval service and its webhook notifier;
// authorize decides who reviews and sees approvals.
func newApprovals(cfg *config.Config, st store.Store, log *audit.Log, logger *slog.Logger, authorize approval.Authorizer) (*approval.Service, error) {
	n := &approval.Notifier{GatewayURL: cfg.Approvals.PublicURL, Logger: logger}
	if n.GatewayURL == "" && cfg.Listen.API != "" {
		n.GatewayURL = "http://" + cfg.Listen.API
	}
	for i, w := range cfg.Approvals.Webhooks {
		h := approval.Webhook{URL: w.URL, Format: w.Format}
		if w.Secret != "" {
			secret, err := w.Secret.Resolve()
			if err != nil {
				return nil, fmt.Errorf("approvals.webhooks[%d].secret: %w", i, err)
			}
			h.Secret = []byte(secret)
		}
		n.Hooks = append(n.Hooks, h)
	}
	return approval.New(approval.Options{Store: st, Audit: log, Timeout: cfg.Approvals.Timeout, Notifier: n, Authorize: authorize, Logger: logger}), nil
}
