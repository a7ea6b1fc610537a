package framework

import (
	"math"
	"sync"
	"sync/atomic"
)

// parallelMinPieces is the work below which spreading over goroutines costs
// more than it saves.
const parallelMinPieces = 64

// parallelize calls fn(i) for i in [0, pieces) on up to workers goroutines,
// in chunks, and returns once every call has returned. Once stop reports
// true, chunks not yet started are skipped.
func parallelize(workers, pieces int, stop func() bool, fn func(i int)) {
	if workers <= 1 || pieces < parallelMinPieces {
		for i := 0; i < pieces; i++ {
			if stop != nil && stop() {
				return
			}
			fn(i)
		}
		return
	}
	chunk := max(1, int(math.Sqrt(float64(pieces))))
	chunks := (pieces + chunk - 1) / chunk
	workers = min(workers, chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				if stop != nil && stop() {
					return
				}
				end := min(pieces, (c+1)*chunk)
				for i := c * chunk; i < end; i++ {
					fn(i)
				}
			}
		}()
	}
	wg.Wait()
}
