package harness

import (
	"context"
	"fmt"
	"strings"
)

// Table is a table ctl printed: the header's column names and one map per
// row, keyed by column name.
type Table struct {
	Columns []string
	Rows    []map[string]string
}

// ParseTable reads a kubectl-style table: columns start where the header
// has a name after two or more spaces (a name may hold one space, as
// "NOMINATED NODE"), and every row's cells are aligned under them.
func ParseTable(out string) (Table, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return Table{}, nil
	}
	header := lines[0]
	var starts []int
	for i := 0; i < len(header); i++ {
		if header[i] != ' ' && (i == 0 || (i >= 2 && header[i-1] == ' ' && header[i-2] == ' ')) {
			starts = append(starts, i)
		}
	}
	t := Table{}
	for k, s := range starts {
		t.Columns = append(t.Columns, strings.TrimSpace(cell(header, s, next(starts, k))))
	}
	for _, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		row := map[string]string{}
		for k, s := range starts {
			// A cell may be wider than the header, never narrower: the last
			// column takes the rest of the line.
			row[t.Columns[k]] = strings.TrimSpace(cell(line, s, next(starts, k)))
		}
		t.Rows = append(t.Rows, row)
	}
	for _, col := range t.Columns {
		if col == "" {
			return Table{}, fmt.Errorf("table header %q: empty column name", header)
		}
	}
	return t, nil
}

func next(starts []int, k int) int {
	if k+1 < len(starts) {
		return starts[k+1]
	}
	return -1
}

func cell(line string, from, to int) string {
	if from >= len(line) {
		return ""
	}
	if to < 0 || to > len(line) {
		return line[from:]
	}
	return line[from:to]
}

// Row returns the row whose column col is value.
func (t Table) Row(col, value string) (map[string]string, bool) {
	for _, r := range t.Rows {
		if r[col] == value {
			return r, true
		}
	}
	return nil, false
}

// Get runs `ctl get ARGS` and parses its table (empty when ctl found
// nothing: it says so on standard error, as kubectl does).
func (c *Cluster) Get(ctx context.Context, args ...string) (Table, error) {
	out, err := c.CtlOK(ctx, append([]string{"get"}, args...)...)
	if err != nil {
		return Table{}, err
	}
	return ParseTable(out)
}
