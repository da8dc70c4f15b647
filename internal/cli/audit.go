package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read, verify and prove the tamper-evident audit log"}

	var (
		pinnedKey  string
		extraCPs   []string
		exportFile string
	)
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every event and signed checkpoint; exit 0 if intact, 1 naming the first bad index",
		Long: `Check every event and signed checkpoint; exit 0 if intact, 1 naming the first bad index.

Besides the store's own checkpoints, verify checks those in the checkpoint file
(audit.checkpoint_file) and in each --checkpoints file (a witness's copy): each
must be in the store and extended by the stored log. Events left unsigned for
longer than audit.unsigned_grace fail. --key checks under a copy of audit.pub
kept away from the gateway; --export checks an export offline, without the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			report := func(rep audit.Report, err error) error {
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, verifySummary(rep, time.Since(start)))
				return nil
			}
			if exportFile == "" && pinnedKey == "" && len(extraCPs) == 0 {
				return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
					return report(svc.VerifyAudit(ctx))
				})
			}
			if g.gateway != "" {
				return withCode(exitBadInput, errors.New("--key, --checkpoints and --export verify on this host; they do not go with --gateway"))
			}
			v, err := g.auditVerifier(pinnedKey)
			if err != nil {
				return err
			}
			cfg, cfgErr := g.loadConfig()
			var opts audit.VerifyOptions
			if cfgErr == nil {
				opts = app.AuditVerifyOptions(cfg)
			}
			opts.CheckpointFiles = append(opts.CheckpointFiles, extraCPs...)
			if exportFile != "" {
				// Offline: the export and the checkpoint files, no store.
				if _, err := os.Stat(exportFile); err != nil {
					return withCode(exitBadInput, err)
				}
				if len(opts.CheckpointFiles) == 0 {
					return withCode(exitBadInput, errors.New("--export needs a checkpoint file to check the events against: --checkpoints FILE"))
				}
				opts.Export = true
				return report(audit.Verify(cmd.Context(), audit.ExportFile(exportFile), v, opts))
			}
			core, ctx, done, err := g.localCore(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			return report(core.Admin.VerifyAuditWith(ctx, v, opts))
		},
	}
	verify.Flags().StringVar(&pinnedKey, "key", "", "verifier key file (default: audit.pub in the gateway's keys directory)")
	verify.Flags().StringArrayVar(&extraCPs, "checkpoints", nil, "a checkpoint file to check too, such as a witness's copy (repeatable)")
	verify.Flags().StringVar(&exportFile, "export", "", "verify this `audit export` file offline instead of the store")

	var n int
	var asJSON bool
	var filter recordFilter
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the last events (of an agent, a human, a connection, a time range)",
		Example: `  gatehouse audit tail -n 5
  gatehouse audit tail --agent report-bot --since 1h
  gatehouse audit tail --human alice@example.com --connection pg --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := filter.parse(time.Now()); err != nil {
				return withCode(exitBadInput, err)
			}
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				want := n
				if filter.active() {
					want = max(n, filter.scan)
				}
				evs, err := svc.TailAudit(ctx, want)
				if err != nil {
					return classify(err)
				}
				type line struct {
					raw json.RawMessage
					ev  audit.Event
				}
				var out []line
				for _, raw := range evs {
					var e audit.Event
					if err := json.Unmarshal(raw, &e); err != nil {
						return fmt.Errorf("audit tail: %w", err)
					}
					if filter.match(e.Principal, e.OnBehalfOf, e.Connection, e.Time) {
						out = append(out, line{raw, e})
					}
				}
				if len(out) > n {
					out = out[len(out)-n:]
				}
				for _, l := range out {
					if asJSON {
						fmt.Fprintln(g.stdout, string(l.raw))
					} else {
						fmt.Fprintln(g.stdout, formatEvent(l.ev))
					}
				}
				return nil
			})
		},
	}
	tail.Flags().IntVarP(&n, "lines", "n", 20, "number of events")
	tail.Flags().BoolVar(&asJSON, "json", false, "print events as JSON lines")
	filter.flags(tail, "events", 100000)

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
			v, err := g.auditVerifier(keyPath)
			if err != nil {
				return err
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

// auditVerifier loads the audit verifier key at path, by default audit.pub
// in the configured gateway's keys directory.
func (g *globals) auditVerifier(path string) (note.Verifier, error) {
	if path == "" {
		cfg, err := g.loadConfig()
		if err != nil {
			return nil, withCode(exitBadInput, fmt.Errorf("--key PATH to audit.pub is needed: %w", err))
		}
		path = filepath.Join(cfg.KeysDir(), "audit.pub")
	}
	v, err := audit.LoadVerifier(path)
	if err != nil {
		return nil, withCode(exitBadInput, err)
	}
	return v, nil
}

// verifySummary is the line `audit verify` prints for an intact log.
func verifySummary(rep audit.Report, took time.Duration) string {
	s := fmt.Sprintf("audit log intact: %d events, %d signed checkpoints in the store", rep.Events, rep.Checkpoints)
	if rep.External > 0 {
		s += fmt.Sprintf(" and %d in checkpoint files", rep.External)
	}
	s += fmt.Sprintf(", %d events under the latest checkpoint", rep.Covered)
	if rep.Unsigned > 0 {
		s += fmt.Sprintf(", %d newer not signed yet (oldest %s ago)", rep.Unsigned, rep.UnsignedAge.Round(time.Second))
	}
	if rep.Unproven > 0 {
		s += fmt.Sprintf(", the last %d covered by a later checkpoint that needs the events after them", rep.Unproven)
	}
	if len(rep.Signers) > 0 {
		s += ", signed by " + strings.Join(rep.Signers, ", ")
	}
	if rep.Torn > 0 {
		s += fmt.Sprintf(", %d torn records skipped in checkpoint files", rep.Torn)
	}
	return s + fmt.Sprintf(" (%s)", took.Round(time.Millisecond))
}

func formatEvent(e audit.Event) string {
	s := fmt.Sprintf("%6d %s %-15s", e.Index, e.Time.Format(time.RFC3339), e.Kind)
	for _, kv := range [][2]string{{"principal", e.Principal}, {"on_behalf_of", e.OnBehalfOf}, {"connection", e.Connection},
		{"action", e.Action}, {"resource", e.Resource}, {"decision", e.Decision}, {"statement", e.Details["statement"]},
		{"token", e.TokenID}, {"reason", e.Reason}} {
		if kv[1] != "" {
			s += fmt.Sprintf(" %s=%q", kv[0], kv[1])
		}
	}
	s += " id=" + e.ID
	return s
}
