package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/gatehouse-dev/gatehouse/internal/admin"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/spf13/cobra"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Validate and test Cedar policies"}
	var dir string
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Check every policy file against the schema (exit 2 naming file:line on error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				cfg, err := g.loadConfig()
				if err != nil {
					return withCode(exitBadInput, err)
				}
				dir = cfg.Policies
			}
			set, err := policy.Load(dir)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			fmt.Fprintf(g.stdout, "%s: %d policies in %d files are valid\n", dir, set.Len(), set.Files())
			return nil
		},
	}
	validate.Flags().StringVar(&dir, "dir", "", "policy directory (default: policies in the config)")

	var in policy.TestInput
	var entitiesFile string
	var asJSON bool
	test := &cobra.Command{
		Use:   "test",
		Short: "Decide one request: prints allow or deny and the determining policies; exit 0 allow, 3 deny, 2 bad input",
		Example: `  gatehouse policy test --principal 'Agent::"a"' --action 'Action::"sql:select"' --resource 'Table::"pg/public.users"'
  gatehouse policy test --principal 'Agent::"a"' --action sql:delete --resource 'Table::"pg/public.users"' \
      --context '{"flags":["no_where"]}' --entities entities.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Principal == "" || in.Action == "" || in.Resource == "" {
				return withCode(exitBadInput, errors.New("--principal, --action and --resource are required"))
			}
			if entitiesFile != "" {
				b, err := os.ReadFile(entitiesFile)
				if err != nil {
					return withCode(exitBadInput, fmt.Errorf("entities: %w", err))
				}
				in.Entities = b
			}
			d, err := testPolicy(cmd, g, in, dir)
			if err != nil {
				return classify(err)
			}
			v := admin.ViewDecision(d)
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.Encode(v)
			} else {
				fmt.Fprintln(g.stdout, v.Decision)
				for _, p := range v.Policies {
					fmt.Fprintf(g.stdout, "  %s %s (%s:%d)", p.Effect, p.ID, p.File, p.Line)
					if r := p.Annotations["reason"]; r != "" {
						fmt.Fprintf(g.stdout, ": %s", r)
					}
					fmt.Fprintln(g.stdout)
				}
				for _, e := range v.Errors {
					fmt.Fprintf(g.stdout, "  error: %s\n", e)
				}
			}
			if !d.Allow {
				return withCode(exitDenied, errors.New(""))
			}
			return nil
		},
	}
	f := test.Flags()
	f.StringVar(&in.Principal, "principal", "", `principal entity, e.g. 'Agent::"a"'`)
	f.StringVar(&in.Action, "action", "", `action, e.g. 'Action::"sql:select"' or sql:select`)
	f.StringVar(&in.Resource, "resource", "", `resource entity, e.g. 'Table::"pg/public.users"'`)
	f.StringVar(&in.Context, "context", "", "context as a JSON object")
	f.StringVar(&entitiesFile, "entities", "", "file of entities in Cedar's JSON format (e.g. the principal's scopes)")
	f.StringVar(&dir, "dir", "", "policy directory (default: policies in the config)")
	f.BoolVar(&asJSON, "json", false, "print the decision as JSON")
	cmd.AddCommand(validate, test)
	return cmd
}

// testPolicy decides against --dir when given, else the gateway's policies.
func testPolicy(cmd *cobra.Command, g *globals, in policy.TestInput, dir string) (policy.Decision, error) {
	if dir == "" && g.gateway == "" {
		cfg, err := g.loadConfig()
		if err != nil {
			return policy.Decision{}, withCode(exitBadInput, err)
		}
		dir = cfg.Policies
	}
	if dir != "" {
		set, err := policy.Load(dir)
		if err != nil {
			return policy.Decision{}, withCode(exitBadInput, err)
		}
		return set.Evaluate(in)
	}
	svc, ctx, done, err := g.adminService(cmd.Context())
	if err != nil {
		return policy.Decision{}, err
	}
	defer done()
	return svc.TestPolicy(ctx, in)
}
