package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/spf13/cobra"
)

func newSessionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "Recorded sessions"}
	var n int
	var asJSON bool
	var filter recordFilter
	list := &cobra.Command{
		Use:   "list",
		Short: "List recorded sessions, newest first (of an agent, a human, a connection, a time range)",
		Example: `  gatehouse sessions list
  gatehouse sessions list --agent report-bot --connection pg --since 24h`,
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
				all, err := svc.ListSessions(ctx, want)
				if err != nil {
					return classify(err)
				}
				var ss []store.RecSession
				for _, s := range all {
					if len(ss) < n && filter.match(s.Principal, s.OnBehalfOf, s.Connection, s.Start) {
						ss = append(ss, s)
					}
				}
				if asJSON {
					return jsonLines(g.stdout, ss)
				}
				fmt.Fprintf(g.stdout, "%-24s %-20s %-9s %-10s %-28s %-22s %5s  %s\n", "SESSION", "STARTED", "PROTOCOL", "CONNECTION", "PRINCIPAL", "ON BEHALF OF", "STMTS", "END")
				for _, s := range ss {
					end := "active"
					if !s.End.IsZero() {
						end = s.EndReason
					}
					fmt.Fprintf(g.stdout, "%-24s %-20s %-9s %-10s %-28s %-22s %5d  %s\n", s.ID, s.Start.Local().Format("2006-01-02 15:04:05"),
						s.Protocol, s.Connection, s.Principal, s.OnBehalfOf, s.Statements, end)
				}
				return nil
			})
		},
	}
	list.Flags().IntVarP(&n, "lines", "n", 50, "number of sessions")
	list.Flags().BoolVar(&asJSON, "json", false, "print sessions as JSON lines")
	filter.flags(list, "sessions", 10000)
	cmd.AddCommand(list)
	return cmd
}

func newReplayCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replay SESSION_ID",
		Short: "Show a recorded session's statements in order, with timing, decision and rows",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				st, err := svc.SessionStatements(ctx, args[0])
				if err != nil {
					return classify(err)
				}
				if asJSON {
					return jsonLines(g.stdout, st)
				}
				var t0 time.Time
				for i, s := range st {
					if i == 0 {
						t0 = s.Time
					}
					fmt.Fprintf(g.stdout, "+%-9s %-5s %9s %6d rows  %s\n", s.Time.Sub(t0).Round(time.Millisecond), s.Decision, s.Duration.Round(time.Microsecond), s.Rows, printable(s.Statement))
					if len(s.Params) > 0 {
						fmt.Fprintf(g.stdout, "           params: %s\n", printable(strings.Join(s.Params, ", ")))
					}
					if s.Decision == "deny" && s.Reason != "" {
						fmt.Fprintf(g.stdout, "           %s\n", printable(s.Reason))
					}
					if s.Error != "" {
						fmt.Fprintf(g.stdout, "           error: %s\n", printable(s.Error))
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print statements as JSON lines")
	return cmd
}
