package queue

import "container/heap"

// keyedHeap is a heap of pods addressable by key, so a pod can be updated
// or removed wherever it sits.
type keyedHeap struct {
	items []*QueuedPodInfo
	index map[string]int
	less  func(a, b *QueuedPodInfo) bool
}

func newKeyedHeap(less func(a, b *QueuedPodInfo) bool) *keyedHeap {
	return &keyedHeap{index: map[string]int{}, less: less}
}

// heap.Interface, on the unexported inner type so callers use the methods
// below.
type heapImpl keyedHeap

func (h *heapImpl) Len() int           { return len(h.items) }
func (h *heapImpl) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *heapImpl) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.index[h.items[i].Key] = i
	h.index[h.items[j].Key] = j
}
func (h *heapImpl) Push(x any) {
	p := x.(*QueuedPodInfo)
	h.index[p.Key] = len(h.items)
	h.items = append(h.items, p)
}
func (h *heapImpl) Pop() any {
	n := len(h.items)
	p := h.items[n-1]
	h.items[n-1] = nil
	h.items = h.items[:n-1]
	delete(h.index, p.Key)
	return p
}

func (h *keyedHeap) impl() *heapImpl { return (*heapImpl)(h) }

func (h *keyedHeap) Len() int { return len(h.items) }

// AddOrUpdate inserts p, or replaces the pod with p's key and re-sorts.
func (h *keyedHeap) AddOrUpdate(p *QueuedPodInfo) {
	if i, ok := h.index[p.Key]; ok {
		h.items[i] = p
		heap.Fix(h.impl(), i)
		return
	}
	heap.Push(h.impl(), p)
}

// Get returns the pod with key.
func (h *keyedHeap) Get(key string) (*QueuedPodInfo, bool) {
	i, ok := h.index[key]
	if !ok {
		return nil, false
	}
	return h.items[i], true
}

// Delete removes the pod with key, if present.
func (h *keyedHeap) Delete(key string) (*QueuedPodInfo, bool) {
	i, ok := h.index[key]
	if !ok {
		return nil, false
	}
	return heap.Remove(h.impl(), i).(*QueuedPodInfo), true
}

// Peek returns the first pod without removing it.
func (h *keyedHeap) Peek() *QueuedPodInfo {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

// Pop removes and returns the first pod.
func (h *keyedHeap) Pop() *QueuedPodInfo {
	if len(h.items) == 0 {
		return nil
	}
	return heap.Pop(h.impl()).(*QueuedPodInfo)
}
