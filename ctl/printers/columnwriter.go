package printers

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Column layout as kubectl's tab writer: every column but the last is
// padded to its widest cell plus three spaces (at least six wide), and the
// widths are remembered across writes so rows printed later by a watch stay
// aligned with the header (text/tabwriter forgets widths at each flush).
const (
	columnPadding  = 3
	columnMinWidth = 6
)

// ColumnWriter writes rows of cells aligned in columns.
type ColumnWriter struct {
	out    io.Writer
	widths []int
}

// NewColumnWriter returns a ColumnWriter writing to out.
func NewColumnWriter(out io.Writer) *ColumnWriter { return &ColumnWriter{out: out} }

// Write lays out rows together: widths grow to fit every row given now and
// every row written before.
func (w *ColumnWriter) Write(rows ...[]string) error {
	for _, row := range rows {
		for i, cell := range row {
			if i == len(row)-1 {
				break // the last cell is not padded, so it sets no width
			}
			width := max(utf8.RuneCountInString(cell)+columnPadding, columnMinWidth)
			if i >= len(w.widths) {
				w.widths = append(w.widths, width)
			} else if width > w.widths[i] {
				w.widths[i] = width
			}
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row {
			b.WriteString(cell)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", w.widths[i]-utf8.RuneCountInString(cell)))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w.out, b.String())
	return err
}
