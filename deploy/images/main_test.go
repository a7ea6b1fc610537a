package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiff-dev/skiff/internal/imagebuild"
)

func TestRunWritesDockerArchives(t *testing.T) {
	if _, err := os.Stat(imagebuild.BusyboxBinary); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("needs busybox-static")
		}
		t.Fatal("needs busybox-static (CI must install it)")
	}
	out := filepath.Join(t.TempDir(), "images")
	if err := run(out, []string{"busybox"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, "busybox.tar"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
	if !names["manifest.json"] {
		t.Fatalf("busybox.tar has no manifest.json: %v", names)
	}
}

func TestRunRefusesUnknownImages(t *testing.T) {
	if err := run(t.TempDir(), []string{"redis"}); err == nil {
		t.Fatal("an unknown image was accepted")
	}
}
