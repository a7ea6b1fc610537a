package mounts

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnmountAllClearsStackedAndNestedMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root (CI runs as root)")
		}
		t.Skip("needs root")
	}
	root := t.TempDir()
	t.Cleanup(func() { _ = UnmountAll(root) })
	mount := func(dir string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
	}
	outer, inner := filepath.Join(root, "a"), filepath.Join(root, "a", "b", "c")
	mount(outer)
	mount(outer) // stacked on the same point
	mount(inner)
	// A file beside the mounts, which only unmounting may uncover.
	if err := os.WriteFile(filepath.Join(root, "kept"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := Under(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{inner, outer, outer}; !slices.Equal(got, want) {
		t.Fatalf("Under = %v, want %v (deepest first)", got, want)
	}
	// Through a symlink to it, as a caller may name the directory.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(link); err != nil {
		t.Fatal(err)
	}
	if got, _ := Under(root); len(got) != 0 {
		t.Errorf("still mounted: %v", got)
	}
	if _, err := os.Stat(filepath.Join(root, "kept")); err != nil {
		t.Errorf("a file beside the mounts is gone: %v", err)
	}
	if err := UnmountAll(filepath.Join(root, "missing")); err != nil {
		t.Errorf("a missing directory: %v", err)
	}
}
