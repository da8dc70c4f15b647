package mcp

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxCell bounds one cell of a text table; the structured rows carry the
// whole value.
const maxCell = 200

// resultText renders a query result as a psql-style text table, for
// clients and models that read the text content rather than the
// structured content.
func resultText(out *QueryOutput) string {
	var b strings.Builder
	if len(out.Columns) == 0 {
		b.WriteString(out.CommandTag)
		b.WriteByte('\n')
		return b.String()
	}
	cells := make([][]string, 0, len(out.Rows)+1)
	head := make([]string, len(out.Columns))
	for i, c := range out.Columns {
		head[i] = c.Name
	}
	cells = append(cells, head)
	for _, r := range out.Rows {
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = cellText(v)
		}
		cells = append(cells, row)
	}
	writeTable(&b, cells)
	fmt.Fprintf(&b, "(%d row%s)\n", len(out.Rows), plural(len(out.Rows)))
	if out.Message != "" {
		b.WriteString(out.Message)
		b.WriteByte('\n')
	}
	return b.String()
}

func describeText(out DescribeOutput) string {
	var b strings.Builder
	if len(out.Tables) == 0 {
		b.WriteString("No tables visible.\n")
	}
	for _, t := range out.Tables {
		fmt.Fprintf(&b, "%s %s.%s\n", t.Kind, t.Schema, t.Name)
		cells := [][]string{{"column", "type", "nullable", "masked"}}
		for _, c := range t.Columns {
			null := "no"
			if c.Nullable {
				null = "yes"
			}
			cells = append(cells, []string{c.Name, c.Type, null, c.Masked})
		}
		writeTable(&b, cells)
		b.WriteByte('\n')
	}
	if out.Truncated {
		b.WriteString("(more columns than one answer holds: narrow with schema or table)\n")
	}
	return b.String()
}

// writeTable writes rows (the first is the header) in aligned columns.
func writeTable(b *strings.Builder, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	line := func(r []string) {
		for i, c := range r {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			}
		}
		b.WriteByte('\n')
	}
	line(rows[0])
	for i, w := range widths {
		if i > 0 {
			b.WriteString("-+-")
		}
		b.WriteString(strings.Repeat("-", w))
	}
	b.WriteByte('\n')
	for _, r := range rows[1:] {
		line(r)
	}
}

func cellText(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		s = v
	case json.RawMessage:
		s = string(v)
	default:
		s = fmt.Sprint(v)
	}
	s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
	if utf8.RuneCountInString(s) > maxCell {
		r := []rune(s)
		s = string(r[:maxCell]) + "…"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
