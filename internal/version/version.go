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
