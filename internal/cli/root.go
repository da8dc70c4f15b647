package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1
	exitBadInput = 2
	exitDenied   = 3
)

// exitError carries a specific exit code out of a command.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &codeError{code: code, err: err} }

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// globals are the flags every admin command shares.
type globals struct {
	configPath string
	gateway    string
	token      string
	stdout     io.Writer
	stderr     io.Writer
}

// Main runs the CLI with args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string) int {
	// GATEHOUSE_CPUPROFILE=FILE profiles the whole run, for benchmarks.
	if path := os.Getenv("GATEHOUSE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() {
				pprof.StopCPUProfile()
				f.Close()
			}()
		}
	}
	return run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// newRoot builds the command tree around g.
func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Identity-aware gateway that governs what AI agents do to your infrastructure",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", config.DefaultPath, "gateway config file (admin commands on the gateway host)")
	pf.StringVar(&g.gateway, "gateway", "", "gateway API URL, for admin commands run elsewhere (needs an admin token)")
	pf.StringVar(&g.token, "token", "", "admin token for --gateway (default $GATEHOUSE_TOKEN)")
	root.AddCommand(
		newUpCmd(g), newGatewayCmd(g), newAgentCmd(g), newAgentsCmd(g),
		newTokenCmd(g), newKeysCmd(g), newPolicyCmd(g), newAuditCmd(g),
		newSessionsCmd(g), newReplayCmd(g), newApprovalsCmd(g), newAccessCmd(g), newMCPCmd(g),
		newMaskCmd(),
	)
	// Flag and argument errors are usage errors.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return withCode(exitBadInput, err) })
	return root
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		if ce.code != exitDenied || ce.err.Error() != "" {
			fmt.Fprintln(stderr, "gatehouse:", ce.err)
		}
		return ce.code
	}
	fmt.Fprintln(stderr, "gatehouse:", err)
	if strings.HasPrefix(err.Error(), "unknown command") || strings.Contains(err.Error(), "accepts ") || strings.Contains(err.Error(), "required flag") {
		return exitBadInput
	}
	return exitError
}

// loadConfig reads the config named by --config.
func (g *globals) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no config at %s: run `%s up` to create one, or pass --config", g.configPath, selfCommand(os.Args[0]))
	}
	return cfg, err
}

// withAdmin runs fn with this invocation's admin service and releases it.
func (g *globals) withAdmin(cmd *cobra.Command, fn func(ctx context.Context, svc admin.Service) error) error {
	svc, ctx, done, err := g.adminService(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	return fn(ctx, svc)
}

// adminService returns the remote API when --gateway is given, else the
// gateway's data on this host. The returned func releases it.
func (g *globals) adminService(ctx context.Context) (admin.Service, context.Context, func(), error) {
	if g.gateway != "" {
		tok := g.token
		if tok == "" {
			tok = os.Getenv("GATEHOUSE_TOKEN")
		}
		if tok == "" {
			return nil, ctx, nil, withCode(exitBadInput, errors.New("--gateway needs an admin token: --token or $GATEHOUSE_TOKEN"))
		}
		return &admin.Remote{Base: g.gateway, Token: tok}, ctx, func() {}, nil
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, ctx, nil, withCode(exitBadInput, err)
	}
	core, err := app.OpenCore(ctx, cfg, g.logger(slog.LevelWarn, "text"))
	if err != nil {
		return nil, ctx, nil, err
	}
	ctx = admin.WithCaller(app.WithActor(ctx, app.LocalActor()), admin.Caller{ID: app.LocalActor(), Admin: true})
	return core.Admin, ctx, func() { core.Close(context.Background()) }, nil
}

func (g *globals) logger(level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(g.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(g.stderr, opts))
}

// classify maps an admin error to an exit code.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, admin.ErrBadInput), errors.Is(err, policy.ErrBadInput):
		return withCode(exitBadInput, err)
	}
	return err
}

// jsonLines prints one JSON object per line.
func jsonLines[T any](w io.Writer, xs []T) error {
	enc := json.NewEncoder(w)
	for _, x := range xs {
		if err := enc.Encode(x); err != nil {
			return err
		}
	}
	return nil
}
