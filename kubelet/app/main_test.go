package app

import (
	"os"
	"testing"

	"github.com/sasha-s/go-deadlock"
)

func TestMain(m *testing.M) {
	// go-cni swaps its RWMutex for go-deadlock's under -race, and
	// go-deadlock cannot tell goroutines apart on this Go version (it sees
	// every goroutine as 0), so two pods set up at once look like a
	// recursive lock and it exits the process. The lock itself is fine.
	deadlock.Opts.Disable = true
	os.Exit(m.Run())
}
