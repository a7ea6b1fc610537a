package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RemoveChildren sweeps the named children of a cgroup in every v1
// hierarchy, or in the one v2 tree, leaving busy ones and other names.
func TestRemoveChildren(t *testing.T) {
	tests := []struct {
		name    string
		v2      bool
		dirs    []string
		procs   map[string]string
		left    []string
		gone    []string
		wantErr string
	}{
		{
			name: "v1: every hierarchy, nested empty children",
			dirs: []string{"memory/skiff/poda/ctr/x", "cpu/skiff/poda", "pids/skiff/podb", "memory/skiff/other"},
			left: []string{"memory/skiff/other", "pids/skiff", "cpu/skiff"},
			gone: []string{"memory/skiff/poda", "cpu/skiff/poda", "pids/skiff/podb"},
		},
		{
			name: "v2: one tree",
			v2:   true,
			dirs: []string{"skiff/poda/ctr", "skiff/podb", "system.slice"},
			left: []string{"skiff", "system.slice"},
			gone: []string{"skiff/poda", "skiff/podb"},
		},
		{
			name:    "a busy pod cgroup stays and is named; the others go",
			dirs:    []string{"memory/skiff/poda/ctr", "memory/skiff/podb"},
			procs:   map[string]string{"memory/skiff/poda/ctr/cgroup.procs": "77\n"},
			left:    []string{"memory/skiff/poda/ctr"},
			gone:    []string{"memory/skiff/podb"},
			wantErr: "memory/skiff/poda/ctr still holds processes [77]",
		},
		{
			name: "no parent anywhere",
			dirs: []string{"memory", "cpu"},
			left: []string{"memory", "cpu"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.v2 {
				if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for f, content := range tt.procs {
				if err := os.WriteFile(filepath.Join(root, f), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := RemoveChildren(root, "/skiff", "pod")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("RemoveChildren: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, syscall.EBUSY)):
				t.Fatalf("RemoveChildren err = %v, want EBUSY naming %q", err, tt.wantErr)
			}
			for _, d := range tt.left {
				if _, err := os.Stat(filepath.Join(root, d)); err != nil {
					t.Errorf("%s should still exist: %v", d, err)
				}
			}
			for _, d := range tt.gone {
				if _, err := os.Stat(filepath.Join(root, d)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s should be gone (stat: %v)", d, err)
				}
			}
		})
	}
}
