package controllerutil

import (
	"sync"
	"time"
)

// DefaultExpectationsTimeout is how long a controller trusts its own
// record of writes the watch has not shown yet, as in Kubernetes.
const DefaultExpectationsTimeout = 5 * time.Minute

// Expectations remember, per controller key, the creations and deletions a
// controller has asked for and not yet seen through its informer. While
// any are pending the controller must not act on the cache again: a slow
// watch would otherwise make it create (or delete) twice. A record older
// than the timeout is trusted no longer, so a lost event cannot wedge the
// controller.
type Expectations struct {
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	records map[string]*expectation
}

type expectation struct {
	adds      int
	deletes   map[string]bool // pod uids whose deletion is not yet observed
	timestamp time.Time
	// uncertain: a write failed in a way that leaves its outcome unknown,
	// so no event may ever lower the record. barrier is a resourceVersion
	// read after that failure: a cache that has reached it holds whatever
	// the write did.
	uncertain bool
	barrier   int64
}

// NewExpectations makes an empty set; timeout <= 0 means the default.
func NewExpectations(timeout time.Duration) *Expectations {
	if timeout <= 0 {
		timeout = DefaultExpectationsTimeout
	}
	return &Expectations{timeout: timeout, now: time.Now, records: map[string]*expectation{}}
}

// Satisfied reports whether key may act: nothing is pending, or the record
// expired.
func (e *Expectations) Satisfied(key string) bool {
	ok, _ := e.SatisfiedOrExpiresIn(key)
	return ok
}

// SatisfiedOrExpiresIn is Satisfied, and when not, how long until the
// record expires: no event may come to wake the controller then (a write
// whose outcome was unknown never happened), so it must look again itself.
func (e *Expectations) SatisfiedOrExpiresIn(key string) (bool, time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.records[key]
	if !ok || r.adds <= 0 && len(r.deletes) == 0 {
		return true, 0
	}
	left := e.timeout - e.now().Sub(r.timestamp)
	if left < 0 {
		return true, 0
	}
	return false, left
}

// ExpectCreations records that key is about to create n objects, replacing
// whatever was recorded before (it is only called once Satisfied).
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.records[key] = &expectation{adds: n, deletes: map[string]bool{}, timestamp: e.now()}
}

// ExpectDeletions records that key is about to delete the objects with
// these uids.
func (e *Expectations) ExpectDeletions(key string, uids []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &expectation{deletes: make(map[string]bool, len(uids)), timestamp: e.now()}
	for _, u := range uids {
		r.deletes[u] = true
	}
	e.records[key] = r
}

// CreationObserved lowers key's pending creations by one: the informer saw
// one, or a create failed for sure.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok && r.adds > 0 {
		r.adds--
	}
}

// DeletionObserved marks the deletion of uid as seen (or failed for sure).
func (e *Expectations) DeletionObserved(key, uid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		delete(r.deletes, uid)
	}
}

// MarkUncertain records that one of key's writes may or may not have
// happened (the connection broke).
func (e *Expectations) MarkUncertain(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		r.uncertain = true
	}
}

// Barrier returns the resourceVersion an uncertain record waits for the
// cache to reach: 0 and false when the record is not uncertain, 0 and true
// when no barrier was set yet.
func (e *Expectations) Barrier(key string) (rv int64, uncertain bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.records[key]
	if !ok || !r.uncertain {
		return 0, false
	}
	return r.barrier, true
}

// SetBarrier sets the resourceVersion of an uncertain record's barrier.
func (e *Expectations) SetBarrier(key string, rv int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok && r.uncertain {
		r.barrier = rv
	}
}

// Delete forgets key (its object is gone).
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.records, key)
}

// Pending returns key's outstanding creations and deletions, for logs and tests.
func (e *Expectations) Pending(key string) (adds, deletes int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		return r.adds, len(r.deletes)
	}
	return 0, 0
}
