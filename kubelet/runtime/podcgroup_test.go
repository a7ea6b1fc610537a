package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRemovePodCgroupRemovesEmptyChildrenDeepestFirst(t *testing.T) {
	const uid = "u1"
	tests := []struct {
		name string
		// dirs are made under the root; procs are cgroup.procs files
		// (relative path -> content) standing for processes in a cgroup.
		dirs    []string
		procs   map[string]string
		wantErr string
		// left are the dirs that must still exist afterwards.
		left []string
	}{
		{
			name: "v1: pod cgroup alone in each hierarchy",
			dirs: []string{"memory/skiff/podu1", "cpu/skiff/podu1", "pids/skiff/podu1"},
			left: []string{"memory/skiff", "cpu/skiff", "pids/skiff"},
		},
		{
			name: "v1: an empty container cgroup left under the pod cgroup",
			dirs: []string{"memory/skiff/podu1/ctr-a", "pids/skiff/podu1/ctr-a", "cpu/skiff/podu1"},
			left: []string{"memory/skiff", "pids/skiff", "cpu/skiff"},
		},
		{
			name: "nested empty children several levels deep",
			dirs: []string{"memory/skiff/podu1/ctr-a/x/y", "memory/skiff/podu1/ctr-b", "freezer/skiff/podu1/ctr-a/x"},
			left: []string{"memory/skiff", "freezer/skiff"},
		},
		{
			name: "other pods' cgroups stay",
			dirs: []string{"memory/skiff/podu1/ctr-a", "memory/skiff/podu2/ctr-c"},
			left: []string{"memory/skiff/podu2/ctr-c"},
		},
		{
			name: "missing everywhere is fine",
			dirs: []string{"memory/skiff", "cpu"},
			left: []string{"memory/skiff", "cpu"},
		},
		{
			name:    "a child with processes is an error naming it, its empty siblings still go",
			dirs:    []string{"memory/skiff/podu1/busy", "memory/skiff/podu1/empty", "pids/skiff/podu1/ctr"},
			procs:   map[string]string{"memory/skiff/podu1/busy/cgroup.procs": "4242\n4243\n"},
			wantErr: "memory/skiff/podu1/busy still holds processes [4242 4243]",
			left:    []string{"memory/skiff/podu1/busy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
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
			r := &Runtime{namespace: "skiff", cgroupRoot: root}
			err := r.RemovePodCgroup(uid)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("RemovePodCgroup: %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, syscall.EBUSY) {
					t.Fatalf("RemovePodCgroup err = %v, want EBUSY naming %q", err, tt.wantErr)
				}
			}
			for _, d := range tt.left {
				if _, err := os.Stat(filepath.Join(root, d)); err != nil {
					t.Errorf("%s should stay: %v", d, err)
				}
			}
			// Nothing else of the pod's is left, in any hierarchy.
			keep := map[string]bool{}
			for _, d := range tt.left {
				for p := d; p != "."; p = filepath.Dir(p) {
					keep[p] = true
				}
			}
			_ = filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
				rel, _ := filepath.Rel(root, p)
				if err == nil && de.IsDir() && strings.Contains(rel, "pod"+uid) && !keep[rel] {
					t.Errorf("left behind: %s", rel)
				}
				return nil
			})
		})
	}
}

func TestRemovePodCgroupUnified(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"skiff/podu1/ctr-a/sub", "skiff/podu1/ctr-b"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Runtime{namespace: "skiff", cgroupRoot: root}
	if err := r.RemovePodCgroup("u1"); err != nil {
		t.Fatalf("RemovePodCgroup: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "skiff/podu1")); !os.IsNotExist(err) {
		t.Errorf("pod cgroup left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "skiff")); err != nil {
		t.Errorf("the namespace cgroup must stay: %v", err)
	}
}
