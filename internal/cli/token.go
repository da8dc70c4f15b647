package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/spf13/cobra"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Issue, inspect and revoke short-lived tokens"}
	cmd.AddCommand(newTokenIssueCmd(g), newTokenInspectCmd(g), newTokenRevokeCmd(g))
	return cmd
}

func newTokenIssueCmd(g *globals) *cobra.Command {
	var (
		agent, user, onBehalf, email string
		conns, scopes, groups        []string
		ttl                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue a token and print it (and nothing else) on stdout",
		Example: `  gatehouse token issue --agent report-bot --on-behalf-of alice@example.com --connection pg --scope read
  gatehouse token issue --user alice@example.com --group admins --scope admin --ttl 30m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := identity.IssueRequest{Kind: identity.KindAgent, Subject: agent, Actor: onBehalf, Connections: conns, TTL: ttl, Email: email, Groups: groups}
			switch {
			case agent != "" && user != "":
				return withCode(exitBadInput, errors.New("give --agent or --user, not both"))
			case user != "":
				req.Kind, req.Subject = identity.KindUser, user
				if onBehalf != "" {
					return withCode(exitBadInput, errors.New("--on-behalf-of is for agent tokens"))
				}
			case agent == "":
				return withCode(exitBadInput, errors.New("--agent NAME (or --user NAME) is required"))
			}
			for _, s := range scopes {
				for _, one := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
					req.Scopes = append(req.Scopes, identity.Scope(one))
				}
			}
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				tok, _, err := svc.IssueToken(ctx, req)
				if err != nil {
					return classify(err)
				}
				fmt.Fprintln(g.stdout, tok)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&agent, "agent", "", "agent name (the token's sub)")
	f.StringVar(&user, "user", "", "issue a user token for this human instead of an agent token")
	f.StringVar(&onBehalf, "on-behalf-of", "", "the human the agent acts for (act.sub)")
	f.StringVar(&email, "email", "", "user's email (user tokens)")
	f.StringSliceVar(&groups, "group", nil, "user's groups (user tokens; repeatable)")
	f.StringArrayVar(&conns, "connection", nil, "connection the token may use (repeatable; glob patterns allowed)")
	f.StringArrayVar(&scopes, "scope", nil, "scope: read, write, ddl or admin (repeatable)")
	f.DurationVar(&ttl, "ttl", 0, "lifetime (default identity.default_ttl, 15m; at most identity.max_ttl)")
	return cmd
}

func newTokenInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect TOKEN",
		Short: "Verify a token and print its claims as JSON (exit 1 if invalid, expired or revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				c, err := svc.InspectToken(ctx, strings.TrimSpace(args[0]))
				if err != nil {
					return fmt.Errorf("token is not valid: %w", err)
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(admin.ViewClaims(c)); err != nil {
					return err
				}
				// Verify accepts a token for the clock skew allowance past
				// its exp; a person inspecting it is told it has expired.
				if now := time.Now(); !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
					return fmt.Errorf("token expired at %s (%s ago); past exp the gateway takes it only for the clock skew allowance (identity.clock_skew)",
						c.ExpiresAt.UTC().Format(time.RFC3339), now.Sub(c.ExpiresAt).Round(time.Second))
				}
				return nil
			})
		},
	}
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by its id (jti); it is refused from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				if err := svc.RevokeToken(ctx, args[0], reason); err != nil {
					return classify(err)
				}
				fmt.Fprintf(g.stderr, "revoked %s\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage token signing keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Create a new signing key; tokens signed with older keys verify until they expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAdmin(cmd, func(ctx context.Context, svc admin.Service) error {
				kid, err := svc.RotateKeys(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, kid)
				return nil
			})
		},
	})
	return cmd
}
