// Package printers turns API objects into what ctl shows: kubectl's tables
// (columns, AGE, pod STATUS), YAML, JSON, names, JSONPath and describe text.
//
// It must never talk to the API server or read the wall clock: callers fetch
// objects and pass the time to print ages against, so output is testable.
package printers

import (
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// Options shape a table.
type Options struct {
	Wide          bool
	ShowLabels    bool
	WithNamespace bool // -A: a NAMESPACE column first
	WithKind      bool // several kinds in one get: names become "kind.group/name"
	NoHeaders     bool
	// Now is the time ages are computed against.
	Now time.Time
}

// Column is one table column; Wide columns show only with -o wide.
type Column struct {
	Name string
	Wide bool
}

// kindTable is how one kind prints.
type kindTable struct {
	columns []Column
	// row returns every cell, wide ones included, in column order.
	row func(obj kinds.Object, now time.Time) []string
}

// TablePrinter prints objects of one kind as kubectl's table. The header is
// written once, before the first row, so repeated calls (watch) add rows.
type TablePrinter struct {
	w       *ColumnWriter
	info    *kinds.Info
	opts    Options
	table   kindTable
	printed bool
}

// NewTablePrinter prints objects of kind info to out.
func NewTablePrinter(out io.Writer, info *kinds.Info, opts Options) *TablePrinter {
	return &TablePrinter{w: NewColumnWriter(out), info: info, opts: opts, table: tableFor(info)}
}

// Headers returns the column names the table shows under opts.
func Headers(info *kinds.Info, opts Options) []string {
	var out []string
	if opts.WithNamespace && info.Namespaced {
		out = append(out, "NAMESPACE")
	}
	for _, c := range tableFor(info).columns {
		if c.Wide && !opts.Wide {
			continue
		}
		out = append(out, c.Name)
	}
	if opts.ShowLabels {
		out = append(out, "LABELS")
	}
	return out
}

// Cells returns one object's row under opts.
func Cells(info *kinds.Info, obj kinds.Object, opts Options) []string {
	t := tableFor(info)
	all := t.row(obj, opts.Now)
	var out []string
	if opts.WithNamespace && info.Namespaced {
		out = append(out, obj.GetMetadata().GetNamespace())
	}
	for i, c := range t.columns {
		if c.Wide && !opts.Wide {
			continue
		}
		cell := all[i]
		if c.Name == "NAME" && opts.WithKind {
			cell = QualifiedKind(info) + "/" + cell
		}
		out = append(out, cell)
	}
	if opts.ShowLabels {
		out = append(out, labels.FormatLabels(obj.GetMetadata().GetLabels()))
	}
	return out
}

// Print writes the header (first call only) and a row per object.
func (p *TablePrinter) Print(objs ...kinds.Object) error {
	var rows [][]string
	if !p.printed && !p.opts.NoHeaders {
		rows = append(rows, Headers(p.info, p.opts))
	}
	p.printed = true
	for _, obj := range objs {
		rows = append(rows, Cells(p.info, obj, p.opts))
	}
	return p.w.Write(rows...)
}

// SetNow moves the clock ages are printed against (watch prints later rows
// at later times).
func (p *TablePrinter) SetNow(now time.Time) { p.opts.Now = now }

// QualifiedKind is kubectl's "deployment.apps" (or "pod") form used in -o
// name and in messages like `deployment.apps/web created`.
func QualifiedKind(info *kinds.Info) string {
	k := strings.ToLower(info.Kind)
	if info.Group == "" {
		return k
	}
	return k + "." + info.Group
}

// Age is kubectl's AGE column: a human duration since ts, "<unknown>" when
// ts is unset.
func Age(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(ts.AsTime()))
}

func tableFor(info *kinds.Info) kindTable {
	if t, ok := kindTables()[info.Kind]; ok {
		return t
	}
	return kindTable{
		columns: []Column{{Name: "NAME"}, {Name: "AGE"}},
		row: func(obj kinds.Object, now time.Time) []string {
			m := obj.GetMetadata()
			return []string{m.GetName(), Age(m.GetCreationTimestamp(), now)}
		},
	}
}
