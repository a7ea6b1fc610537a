package printers

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// TestTablesMatchGoldenFiles protects every kind's columns in every table
// variant (plain, wide, --show-labels, -A, --no-headers).
func TestTablesMatchGoldenFiles(t *testing.T) {
	fx := fixtures()
	for _, info := range kinds.All() {
		objs, ok := fx[info.Kind]
		if !ok {
			t.Errorf("no fixtures for kind %s: every kind needs a golden table", info.Kind)
			continue
		}
		t.Run(info.Kind, func(t *testing.T) {
			var out bytes.Buffer
			variants := []struct {
				name string
				opts Options
			}{
				{"default", Options{}},
				{"wide", Options{Wide: true}},
				{"show-labels", Options{ShowLabels: true}},
				{"all-namespaces", Options{WithNamespace: true}},
				{"no-headers", Options{NoHeaders: true}},
			}
			for _, v := range variants {
				v.opts.Now = now
				fmt.Fprintf(&out, "## %s\n", v.name)
				if err := NewTablePrinter(&out, info, v.opts).Print(objs...); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, "table-"+strings.ToLower(info.Kind)+".golden", out.Bytes())
		})
	}
}

// TestWatchRowsKeepColumnWidths protects the alignment of rows printed one
// by one after the header, as get -w does.
func TestWatchRowsKeepColumnWidths(t *testing.T) {
	info, _ := kinds.Lookup("pods")
	pods := podFixtures()
	var out bytes.Buffer
	p := NewTablePrinter(&out, info, Options{Now: now})
	if err := p.Print(pods[0]); err != nil {
		t.Fatal(err)
	}
	if err := p.Print(pods[1]); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header and two rows, got %q", out.String())
	}
	col := strings.Index(lines[0], "READY")
	for _, l := range lines[1:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q is not aligned with the header's READY column at %d", l, col)
		}
	}
}

func TestPodStatus(t *testing.T) {
	byName := map[string]*api.Pod{}
	for _, o := range podFixtures() {
		byName[o.GetMetadata().GetName()] = o.(*api.Pod)
	}
	for name, want := range map[string]string{
		"web-75f95db655-x2x7k": "Running",
		"pending":              "Pending",
		"creating":             "ContainerCreating",
		"crashing":             "CrashLoopBackOff",
		"done":                 "Completed",
		"killed":               "Signal:9",
		"terminating":          "Terminating",
		"init-waiting":         "Init:1/2",
		"init-failed":          "Init:ExitCode:3",
		"evicted":              "Evicted",
	} {
		if got := PodStatus(byName[name]); got != want {
			t.Errorf("PodStatus(%s) = %q, want %q", name, got, want)
		}
	}
}
