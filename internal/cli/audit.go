package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/spf13/cobra"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read, verify and prove the tamper-evident audit log"}

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every event and signed checkpoint; exit 0 if intact, 1 naming the first bad index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				start := time.Now()
				rep, err := svc.VerifyAudit(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "audit log intact: %d events, %d signed checkpoints, %d events under the latest checkpoint (%s)\n",
					rep.Events, rep.Checkpoints, rep.Covered, time.Since(start).Round(time.Millisecond))
				return nil
			})
		},
	}

	var n int
	var asJSON bool
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the last events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				evs, err := svc.TailAudit(ctx, n)
				if err != nil {
					return classify(err)
				}
				for _, raw := range evs {
					if asJSON {
						fmt.Fprintln(g.stdout, string(raw))
						continue
					}
					var e audit.Event
					if err := json.Unmarshal(raw, &e); err != nil {
						return fmt.Errorf("audit tail: %w", err)
					}
					fmt.Fprintln(g.stdout, formatEvent(e))
				}
				return nil
			})
		},
	}
	tail.Flags().IntVarP(&n, "lines", "n", 20, "number of events")
	tail.Flags().BoolVar(&asJSON, "json", false, "print events as JSON lines")

	var format string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write every event to stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" {
				return withCode(exitBadInput, fmt.Errorf("--format %q: only jsonl is supported", format))
			}
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				return svc.ExportAudit(ctx, g.stdout)
			})
		},
	}
	export.Flags().StringVar(&format, "format", "jsonl", "output format (jsonl)")

	prove := &cobra.Command{
		Use:   "prove EVENT_ID",
		Short: "Print an inclusion proof of an event against the latest signed checkpoint (check it with verify-proof)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				p, err := svc.ProveEvent(ctx, args[0])
				if err != nil {
					return classify(err)
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			})
		},
	}

	var keyPath string
	verifyProof := &cobra.Command{
		Use:   "verify-proof FILE",
		Short: "Check an inclusion proof offline against the audit verifier key (audit.pub)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				cfg, err := g.loadConfig()
				if err != nil {
					return withCode(exitBadInput, fmt.Errorf("--key PATH to audit.pub is needed: %w", err))
				}
				keyPath = filepath.Join(cfg.KeysDir(), "audit.pub")
			}
			v, err := audit.LoadVerifier(keyPath)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return withCode(exitBadInput, err)
			}
			var p audit.InclusionProof
			if err := json.Unmarshal(raw, &p); err != nil {
				return withCode(exitBadInput, fmt.Errorf("proof file: %w", err))
			}
			if err := audit.CheckProof(p, v); err != nil {
				return errors.New("proof does not verify: " + err.Error())
			}
			fmt.Fprintf(g.stdout, "proof verified: event %d is in the signed tree of size %d\n", p.Index, p.TreeSize)
			return nil
		},
	}
	verifyProof.Flags().StringVar(&keyPath, "key", "", "verifier key file (default: audit.pub in the gateway's keys directory)")

	cmd.AddCommand(verify, tail, export, prove, verifyProof)
	return cmd
}

func formatEvent(e audit.Event) string {
	s := fmt.Sprintf("%6d %s %-15s", e.Index, e.Time.Format(time.RFC3339), e.Kind)
	for _, kv := range [][2]string{{"principal", e.Principal}, {"on_behalf_of", e.OnBehalfOf}, {"action", e.Action},
		{"resource", e.Resource}, {"decision", e.Decision}, {"token", e.TokenID}, {"reason", e.Reason}} {
		if kv[1] != "" {
			s += fmt.Sprintf(" %s=%q", kv[0], kv[1])
		}
	}
	s += " id=" + e.ID
	return s
}
