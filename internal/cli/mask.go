package cli

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/gatehouse-dev/gatehouse/internal/mask"
	"github.com/spf13/cobra"
)

// maskKeyEnv names the environment variable holding the deployment key for
// the token strategy, so tokens match the gateway's.
const maskKeyEnv = "GATEHOUSE_MASK_KEY"

func newMaskCmd() *cobra.Command {
	var rulesPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "mask [--rules FILE] [--json]",
		Short: "Mask sensitive values in text from stdin, or list them with --json",
		Long: `Reads text on stdin and writes it to stdout with sensitive values masked
under the rules (default: every detector redacts). With --json it prints one
finding per line instead: {"detector":"email","offset":120,"length":17}.
Input is streamed; it is never held whole. Tokens use the key in $` + maskKeyEnv + `;
without it they are random per run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rules := mask.DefaultRules()
			if rulesPath != "" {
				data, err := os.ReadFile(rulesPath)
				if err != nil {
					return withCode(exitBadInput, err)
				}
				if rules, err = mask.ParseRules(data); err != nil {
					return withCode(exitBadInput, fmt.Errorf("%s: %w", rulesPath, err))
				}
			}
			m, err := newCLIMasker(rules, cmd)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			if asJSON {
				enc := json.NewEncoder(out)
				err = m.FindReader(cmd.InOrStdin(), func(f mask.Finding) error {
					return enc.Encode(jsonFinding{m.DetectorName(f.Detector), f.Start, f.Len()})
				})
			} else {
				w := m.NewWriter(out)
				if _, err = w.ReadFrom(cmd.InOrStdin()); err == nil {
					err = w.Close()
				}
			}
			if err != nil {
				return fmt.Errorf("mask: %w", err)
			}
			return out.Flush()
		},
	}
	cmd.Flags().StringVar(&rulesPath, "rules", "", "masking rules file (YAML); default: redact every detector")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print findings (detector, offset, length) as JSON lines instead of masked text")
	return cmd
}

type jsonFinding struct {
	Detector string `json:"detector"`
	Offset   int    `json:"offset"`
	Length   int    `json:"length"`
}

// newCLIMasker builds the masker with the key from the environment, or a
// random one (and a note on stderr) when the rules need one and none is set.
func newCLIMasker(rules *mask.Rules, cmd *cobra.Command) (*mask.Masker, error) {
	key := []byte(os.Getenv(maskKeyEnv))
	m, err := mask.New(rules, key)
	if !errors.Is(err, mask.ErrKeyRequired) || len(key) > 0 {
		return m, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "gatehouse mask: $%s is not set; tokens are random for this run\n", maskKeyEnv)
	return mask.New(rules, key)
}
