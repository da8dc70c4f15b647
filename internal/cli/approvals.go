package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/spf13/cobra"
)

func newApprovalsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "approvals", Short: "Review statements held for a human's approval"}
	var status string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List approvals (pending by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				if status == "all" {
					status = ""
				}
				as, err := svc.ListApprovals(ctx, status)
				if err != nil {
					return classify(err)
				}
				if asJSON {
					return jsonLines(g.stdout, as)
				}
				fmt.Fprintf(g.stdout, "%-22s %-9s %-8s %-26s %-12s %-10s %s\n", "ID", "KIND", "STATUS", "PRINCIPAL", "CONNECTION", "REVIEWERS", "WHAT")
				for _, a := range as {
					fmt.Fprintf(g.stdout, "%-22s %-9s %-8s %-26s %-12s %-10s %s\n", a.ID, a.Kind, a.Status, a.Principal, a.Connection,
						fmt.Sprintf("%s %d/%d", a.Group, approvals(a), a.Required), what(a))
				}
				return nil
			})
		},
	}
	list.Flags().StringVar(&status, "status", approval.Pending, "pending, approved, denied, expired, used or all")
	list.Flags().BoolVar(&asJSON, "json", false, "print approvals as JSON lines")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one approval as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				a, err := svc.GetApproval(ctx, args[0])
				if err != nil {
					return classify(err)
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(a)
			})
		},
	}
	var reason string
	decide := func(approve bool) *cobra.Command {
		use, short := "approve ID", "Approve a held statement or access request"
		if !approve {
			use, short = "deny ID", "Deny a held statement or access request"
		}
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if !approve && reason == "" {
					return withCode(exitBadInput, errors.New("--reason is required to deny"))
				}
				return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
					var a *approval.Approval
					var err error
					if approve {
						a, err = svc.Approve(ctx, args[0], reason)
					} else {
						a, err = svc.Deny(ctx, args[0], reason)
					}
					if err != nil {
						if errors.Is(err, admin.ErrDenied) {
							return withCode(exitDenied, err)
						}
						return classify(err)
					}
					fmt.Fprintf(g.stdout, "%s: %s (%d of %d approvals)\n", a.ID, a.Status, approvals(a), a.Required)
					return nil
				})
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
		return c
	}
	cmd.AddCommand(list, show, decide(true), decide(false))
	return cmd
}

func approvals(a *approval.Approval) int {
	n := 0
	for _, r := range a.Reviews {
		if r.Approve {
			n++
		}
	}
	return n
}

// what is the list's WHAT column: for a held operation the exact text and
// parameters that would run (what the reviewer approves), not the
// normalised statement.
func what(a *approval.Approval) string {
	switch {
	case a.Kind == approval.KindGrant:
		return printable(fmt.Sprintf("role %s for %s: %s", a.Role, a.GrantFor, a.Reason))
	case a.Operation != nil:
		return printable(a.Operation.Describe())
	}
	return printable(a.Statement)
}

// printable escapes what a terminal would act on rather than show (control
// characters, escape sequences, bidirectional overrides): the text comes
// from the requester, and must not redraw what the reviewer reads.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError, !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func newAccessCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Just-in-time access grants"}
	var req admin.AccessRequest
	request := &cobra.Command{
		Use:   "request",
		Short: "Ask for a time-bound grant; once approved it appears to policy as context.grants",
		Example: `  gatehouse access request --connection pg --role write --for 1h --reason "fix ticket 123" --principal 'Agent::"bot"'
  gatehouse --gateway https://gw:8080 --token $TOKEN access request --connection pg --role write --for 1h --reason "..."`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Connection == "" || req.Role == "" || req.For <= 0 || req.Reason == "" {
				return withCode(exitBadInput, errors.New("--connection, --role, --for and --reason are required"))
			}
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				a, err := svc.RequestAccess(ctx, req)
				if err != nil {
					return classify(err)
				}
				fmt.Fprintf(g.stdout, "%s\n", a.ID)
				fmt.Fprintf(g.stderr, "requested: role %s on %s for %s; reviewers: %s (approve with `gatehouse approvals approve %s`)\n", a.Role, a.Connection, a.GrantFor, a.Group, a.ID)
				return nil
			})
		},
	}
	f := request.Flags()
	f.StringVar(&req.Connection, "connection", "", "connection")
	f.StringVar(&req.Role, "role", "", "role to grant (policies read it from context.grants)")
	f.DurationVar(&req.For, "for", 0, "how long the grant lasts once approved (at most 24h)")
	f.StringVar(&req.Reason, "reason", "", "why")
	f.StringVar(&req.Principal, "principal", "", `whose access (on the gateway host), e.g. 'Agent::"bot"'; default: the --token's principal`)

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List grants and when they expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				gs, err := svc.ListGrants(ctx)
				if err != nil {
					return classify(err)
				}
				if asJSON {
					return jsonLines(g.stdout, gs)
				}
				fmt.Fprintf(g.stdout, "%-22s %-8s %-26s %-12s %-10s %-20s %s\n", "ID", "STATUS", "PRINCIPAL", "CONNECTION", "ROLE", "EXPIRES", "REASON")
				for _, a := range gs {
					exp := "-"
					if a.Status == approval.Approved {
						exp = a.GrantExpires().Local().Format(time.DateTime)
					}
					// Every field but the id and times came from the requester.
					fmt.Fprintf(g.stdout, "%-22s %-8s %-26s %-12s %-10s %-20s %s\n", a.ID, a.Status, printable(a.Principal),
						printable(a.Connection), printable(a.Role), exp, printable(a.Reason))
				}
				return nil
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print grants as JSON lines")
	cmd.AddCommand(request, list)
	return cmd
}
