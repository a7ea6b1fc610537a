package nodeipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// ErrFull means every node CIDR of the cluster CIDR is taken.
var ErrFull = errors.New("cluster CIDR is full: no free node CIDR")

// Allocator hands out the node-sized subnets of an IPv4 cluster CIDR.
type Allocator struct {
	cluster  netip.Prefix
	maskSize int

	mu   sync.Mutex
	used []bool
	next int
}

// NewAllocator splits cluster into /maskSize subnets.
func NewAllocator(clusterCIDR string, maskSize int) (*Allocator, error) {
	p, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR: %w", err)
	}
	if !p.Addr().Is4() {
		return nil, fmt.Errorf("cluster CIDR %s: only IPv4 is supported", clusterCIDR)
	}
	if maskSize < p.Bits() || maskSize > 30 {
		return nil, fmt.Errorf("node CIDR mask size %d must be between the cluster CIDR's %d and 30", maskSize, p.Bits())
	}
	if maskSize-p.Bits() > 24 {
		return nil, fmt.Errorf("node CIDR mask size %d splits %s into too many subnets", maskSize, clusterCIDR)
	}
	return &Allocator{cluster: p.Masked(), maskSize: maskSize, used: make([]bool, 1<<(maskSize-p.Bits()))}, nil
}

func (a *Allocator) subnet(i int) netip.Prefix {
	base := binary.BigEndian.Uint32(a.cluster.Addr().AsSlice())
	addr := base + uint32(i)<<(32-a.maskSize)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], addr)
	return netip.PrefixFrom(netip.AddrFrom4(b), a.maskSize)
}

// index returns which subnet cidr is; ok is false when it is not one of ours.
func (a *Allocator) index(cidr string) (int, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p.Bits() != a.maskSize || !a.cluster.Contains(p.Addr()) {
		return 0, false
	}
	base := binary.BigEndian.Uint32(a.cluster.Addr().AsSlice())
	off := binary.BigEndian.Uint32(p.Masked().Addr().AsSlice()) - base
	return int(off >> (32 - a.maskSize)), true
}

// Allocate takes the next free subnet.
func (a *Allocator) Allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.used {
		j := (a.next + i) % len(a.used)
		if !a.used[j] {
			a.used[j] = true
			a.next = j + 1
			return a.subnet(j).String(), nil
		}
	}
	return "", ErrFull
}

// Occupy marks cidr as taken (a node already has it); cidrs outside the
// cluster CIDR are ignored.
func (a *Allocator) Occupy(cidr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.index(cidr); ok {
		a.used[i] = true
	}
}

// Release frees cidr.
func (a *Allocator) Release(cidr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.index(cidr); ok {
		a.used[i] = false
	}
}
