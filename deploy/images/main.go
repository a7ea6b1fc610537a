// Command images builds the demo images (busybox and nginx) from the host's
// Debian packages as docker-archive tarballs, so a cluster with no registry
// can run them: the kubelet imports every tarball of its
// --image-preload-dir at start.
//
//	go run ./deploy/images --out DIR
//
// Needs busybox-static and nginx-light installed on the build host.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/internal/imagebuild"
)

// builder returns the builder of an image; the tarball is <name>.tar and
// its tag <name>:latest.
func builder(name string) (func(io.Writer, string) error, bool) {
	switch name {
	case "busybox":
		return imagebuild.Busybox, true
	case "nginx":
		return imagebuild.Nginx, true
	}
	return nil, false
}

func main() {
	out := flag.String("out", "bin/images", "directory to write <image>.tar into")
	only := flag.String("images", "busybox,nginx", "comma-separated images to build")
	flag.Parse()
	if err := run(*out, strings.Split(*only, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(out string, names []string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	for _, name := range names {
		build, ok := builder(name)
		if !ok {
			return fmt.Errorf("unknown image %q (known: busybox, nginx)", name)
		}
		path := filepath.Join(out, name+".tar")
		ref := name + ":latest"
		if err := imagebuild.WriteFile(path, ref, build); err != nil {
			return fmt.Errorf("build %s: %w", ref, err)
		}
		slog.Info("built image", "image", ref, "path", path)
	}
	return nil
}
