package splittest

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// Case is a kept input of the property tests: a text found interesting
// (it failed once, or it shows why a refusal is needed).
type Case struct {
	Line int
	Text string
	// Differs names the settings under which the server is known to split
	// Text otherwise than the analysis, as the direct test names them
	// ("UTF8/off", "SJIS/on", "SJIS/off/bq=on"): the test checks that it
	// still does, so the evidence for a refusal stays in the suite.
	Differs []string
	// PgQueryRejects marks a text pg_query rejects and PostgreSQL runs: the
	// gateway decides it as sql:unparsed, never on a statement split.
	PgQueryRejects bool
	// ServerRejects marks a text pg_query reads as statements and an older
	// PostgreSQL (the suite's 15) refuses whole, before running any of them.
	ServerRejects bool
}

//go:embed testdata/cases.txt
var casesFile string

// Cases parses testdata/cases.txt: one case a line, a Go-quoted string,
// then optionally "differs=" and a comma-separated list of settings,
// "pgquery-rejects" or "server-rejects"; blank lines and lines starting
// with # are skipped.
func Cases() ([]Case, error) {
	var out []Case
	for i, line := range strings.Split(casesFile, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		quoted, err := strconv.QuotedPrefix(line)
		if err != nil {
			return nil, fmt.Errorf("splittest: cases.txt:%d: %w", i+1, err)
		}
		text, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("splittest: cases.txt:%d: %w", i+1, err)
		}
		c := Case{Line: i + 1, Text: text}
		for _, f := range strings.Fields(line[len(quoted):]) {
			switch list, ok := strings.CutPrefix(f, "differs="); {
			case ok:
				c.Differs = strings.Split(list, ",")
			case f == "pgquery-rejects":
				c.PgQueryRejects = true
			case f == "server-rejects":
				c.ServerRejects = true
			default:
				return nil, fmt.Errorf("splittest: cases.txt:%d: unknown field %q", i+1, f)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
