// Package version holds the build's version, stamped by the Makefile.
package version

import (
	"fmt"
	"runtime"
)

// GitVersion is set at link time with -ldflags -X.
var GitVersion = "dev"

// String is the one-line version every binary prints for --version.
func String() string {
	return fmt.Sprintf("%s (%s, %s/%s)", GitVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// GoVersion is the Go toolchain the binary was built with.
func GoVersion() string { return runtime.Version() }

// Platform is "os/arch".
func Platform() string { return runtime.GOOS + "/" + runtime.GOARCH }
