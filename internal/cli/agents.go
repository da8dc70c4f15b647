package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/spf13/cobra"
)

func newAgentCmd(g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a network-resident agent that holds upstream credentials and dials out to the gateway",
		Long: `Run a network-resident agent from agent.yaml (--config, default ./agent.yaml).
On first start it exchanges enroll_token for a client certificate; then it keeps
one mTLS tunnel to each gateway node, reconnecting by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadAgent(path)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			level := slog.LevelInfo
			_ = level.UnmarshalText([]byte(cfg.Log.Level))
			return app.RunAgent(cmd.Context(), cfg, g.logger(level, cfg.Log.Format), Version)
		},
	}
	// The agent reads agent.yaml, not the gateway's config: its own
	// --config shadows the root's, so --help shows the default it uses.
	cmd.Flags().StringVar(&path, "config", config.DefaultAgentPath, "agent config file")
	return cmd
}

func newAgentsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "Enroll, list and revoke network-resident agents (on the gateway host)"}
	cmd.AddCommand(newAgentsEnrollCmd(g), newAgentsRevokeCmd(g), newAgentsListCmd(g))
	return cmd
}

// localCore opens the gateway's store and audit log on this host. Agent
// administration is not in the remote API yet.
func (g *globals) localCore(ctx context.Context) (*app.Core, context.Context, func(), error) {
	if g.gateway != "" {
		return nil, ctx, nil, withCode(exitBadInput, errors.New("agents commands run on the gateway host with --config; --gateway is not supported for them yet"))
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, ctx, nil, withCode(exitBadInput, err)
	}
	core, err := app.OpenCore(ctx, cfg, g.logger(slog.LevelWarn, "text"))
	if err != nil {
		return nil, ctx, nil, err
	}
	return core, app.WithActor(ctx, app.LocalActor()), func() { core.Close(context.Background()) }, nil
}

func newAgentsEnrollCmd(g *globals) *cobra.Command {
	var (
		name string
		ttl  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "enroll",
		Short: "Print a one-time enrollment token for an agent (and nothing else on stdout)",
		Example: `  TOKEN=$(gatehouse agents enroll --name dc1-agent)
  # on the agent's host:
  GATEHOUSE_ENROLL_TOKEN=$TOKEN gatehouse agent --config agent.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return withCode(exitBadInput, errors.New("--name is required"))
			}
			core, ctx, done, err := g.localCore(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			tok, exp, err := core.EnrollToken(ctx, name, ttl)
			if err != nil {
				if strings.Contains(err.Error(), "agent name") || strings.Contains(err.Error(), "--ttl") {
					return withCode(exitBadInput, err)
				}
				return err
			}
			fmt.Fprintln(g.stdout, tok)
			fmt.Fprintf(g.stderr, "enrollment token for agent %s, single use, expires %s\n", name, exp.Local().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the agent's name (as in its agent.yaml)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "token lifetime (default agents.enroll_ttl, 15m)")
	return cmd
}

func newAgentsRevokeCmd(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Cut an agent off: its tunnels close within a second and its certificate stops working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, ctx, done, err := g.localCore(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := core.RevokeAgent(ctx, args[0], reason); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return withCode(exitBadInput, fmt.Errorf("no enrolled agent named %q", args[0]))
				}
				return err
			}
			fmt.Fprintf(g.stderr, "revoked agent %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

// agentView is one row of `agents list`.
type agentView struct {
	store.Agent
	Status string `json:"status"`
}

func newAgentsListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List enrolled agents: status, version, connections served and last heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			core, ctx, done, err := g.localCore(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			agents, err := core.ListAgents(ctx)
			if err != nil {
				return err
			}
			now := time.Now()
			// Connected means a heartbeat within three intervals, on any
			// node sharing the store.
			fresh := 3 * core.Config.Agents.HeartbeatInterval()
			views := make([]agentView, len(agents))
			for i, a := range agents {
				v := agentView{Agent: a, Status: "offline"}
				switch {
				case a.Revoked():
					v.Status = "revoked"
				case a.LastSeen.IsZero():
					v.Status = "enrolled"
				case now.Sub(a.LastSeen) <= fresh:
					v.Status = "connected"
				}
				views[i] = v
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(views)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tVERSION\tCONNECTIONS\tLAST HEARTBEAT\tCERT EXPIRES")
			for _, v := range views {
				names := make([]string, len(v.Connections))
				for i, c := range v.Connections {
					names[i] = c.Name
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Status, dash(v.Version), dash(strings.Join(names, ",")),
					ago(now, v.LastSeen), when(v.CertExpires))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.RFC3339) + " (" + now.Sub(t).Round(time.Second).String() + " ago)"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}
