package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/spf13/cobra"
)

func newUpCmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the gateway with an in-process agent and the embedded store (writes a starter config if none)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wrote, err := config.WriteStarter(g.configPath)
			if err != nil {
				return err
			}
			if wrote {
				fmt.Fprintf(g.stderr, "wrote starter config %s\n", g.configPath)
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return withCode(exitBadInput, err)
			}
			if dataDir != "" {
				if cfg.DataDir, err = filepath.Abs(dataDir); err != nil {
					return err
				}
			}
			if err := writeStarterPolicies(cfg.Policies, g); err != nil {
				return err
			}
			return serve(cmd.Context(), g, cfg, true)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory (overrides data_dir in the config)")
	return cmd
}

func newGatewayCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "gateway",
		Short: "Run the gateway alone (agents connect to it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return withCode(exitBadInput, err)
			}
			return serve(cmd.Context(), g, cfg, false)
		},
	}
}

// writeStarterPolicies fills an absent or empty policy directory with the
// starter policies and schema.
func writeStarterPolicies(dir string, g *globals) error {
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > 0 {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("policies: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	if err := os.CopyFS(dir, policy.StarterFS()); err != nil {
		return fmt.Errorf("write starter policies: %w", err)
	}
	fmt.Fprintf(g.stderr, "wrote starter policies to %s\n", dir)
	return nil
}

func serve(ctx context.Context, g *globals, cfg *config.Config, up bool) error {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	logger := g.logger(level, cfg.Log.Format)
	gw, err := app.NewGateway(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return gw.Run(ctx, func(gw *app.Gateway) {
		if !up {
			return
		}
		fmt.Fprintf(g.stderr, "\nGatehouse is up.\n")
		for _, l := range gw.Listening {
			name, addr, _ := strings.Cut(l, " ")
			fmt.Fprintf(g.stderr, "  %-9s %s\n", name, addr)
		}
		fmt.Fprintf(g.stderr, "  data      %s\n  policies  %s (%d loaded)\n", cfg.DataDir, cfg.Policies, gw.Policy.Set().Len())
		if len(cfg.Connections) == 0 {
			fmt.Fprintf(g.stderr, "\nNo connections yet: add one under connections: in %s (see the example there) and restart.\n", cfg.Path())
		}
		fmt.Fprintf(g.stderr, "\nGet a token for an agent (in another terminal, same directory):\n")
		fmt.Fprintf(g.stderr, "  %s token issue --agent my-agent --on-behalf-of you@example.com --connection pg --scope read --ttl 15m\n\n", selfCommand(os.Args[0]))
	})
}

// selfCommand is how to run this program again from the same directory, for
// hints: after `go run` the binary sits in a temporary build directory
// that is gone when it exits, so the hint says `go run ./cmd/gatehouse`;
// a binary found on PATH is its base name; otherwise the path it was
// started by (./gatehouse).
func selfCommand(arg0 string) string {
	if strings.Contains(filepath.ToSlash(arg0), "/go-build") {
		return "go run ./cmd/gatehouse"
	}
	if !strings.ContainsRune(arg0, filepath.Separator) {
		return arg0
	}
	base := filepath.Base(arg0)
	if p, err := exec.LookPath(base); err == nil {
		if a, err1 := filepath.Abs(arg0); err1 == nil {
			if b, err2 := filepath.Abs(p); err2 == nil && a == b {
				return base
			}
		}
	}
	return arg0
}
