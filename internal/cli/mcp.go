package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	mcpengine "github.com/gatehouse-dev/gatehouse/internal/engine/mcp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"
)

// defaultGatewayURL is the API listener of a gateway started with
// `gatehouse up` on this machine.
const defaultGatewayURL = "http://127.0.0.1:8080"

func newMCPCmd(g *globals) *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve MCP on stdin/stdout, relayed to a gateway's /mcp with your token (for agent frameworks that spawn MCP servers)",
		Long: `Serve MCP on stdin/stdout for an agent framework that spawns MCP servers
(AutoGen's StdioServerParams, Claude Desktop, any MCP client). Every message is
relayed to the gateway's Streamable HTTP endpoint with the Gatehouse token, so
the tools, policy, approvals, masking and audit are the gateway's.

The token comes from --token-file (read again for every request, so a token
refreshed on disk is used without a restart), --token, or $GATEHOUSE_TOKEN.
Nothing but MCP is written to stdout; diagnostics go to stderr.`,
		Example: `  GATEHOUSE_TOKEN=$(gatehouse token issue --agent report-bot --connection pg --scope read) gatehouse mcp
  gatehouse mcp --gateway https://gatehouse.example.com --token-file /run/secrets/gatehouse-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base := g.gateway
			if base == "" {
				base = defaultGatewayURL
			}
			endpoint, err := mcpEndpoint(base)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			token, err := tokenSource(g.token, tokenFile)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			b := &mcpengine.Bridge{Endpoint: endpoint, Token: token, Logger: g.logger(slog.LevelWarn, "text")}
			local := &mcp.IOTransport{Reader: io.NopCloser(cmd.InOrStdin()), Writer: nopWriteCloser{g.stdout}}
			if err := b.Run(cmd.Context(), local); err != nil {
				return fmt.Errorf("mcp: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token, read for every request (default: --token or $GATEHOUSE_TOKEN)")
	return cmd
}

// mcpEndpoint is the /mcp URL of a gateway given by its API base URL (or
// by the /mcp URL itself).
func mcpEndpoint(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--gateway %q: want the gateway's API URL, e.g. %s", base, defaultGatewayURL)
	}
	if !strings.HasSuffix(u.Path, "/mcp") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/mcp"
	}
	return u.String(), nil
}

// tokenSource returns the token for each request.
func tokenSource(flag, file string) (func() (string, error), error) {
	if file != "" {
		read := func() (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", err
			}
			tok := strings.TrimSpace(string(b))
			if tok == "" {
				return "", fmt.Errorf("%s is empty", file)
			}
			return tok, nil
		}
		if _, err := read(); err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		return read, nil
	}
	tok := strings.TrimSpace(flag)
	if tok == "" {
		tok = strings.TrimSpace(os.Getenv("GATEHOUSE_TOKEN"))
	}
	if tok == "" {
		return nil, errors.New("a Gatehouse token is required: set $GATEHOUSE_TOKEN (or --token, --token-file)")
	}
	return func() (string, error) { return tok, nil }, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
