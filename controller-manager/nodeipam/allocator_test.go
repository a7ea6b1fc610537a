package nodeipam

import (
	"errors"
	"testing"
)

func TestAllocatorHandsOutEachSubnetOnce(t *testing.T) {
	a, err := NewAllocator("10.244.0.0/22", 24)
	if err != nil {
		t.Fatal(err)
	}
	a.Occupy("10.244.1.0/24")  // a node already has it
	a.Occupy("192.168.0.0/24") // not ours: ignored
	var got []string
	for range 3 {
		c, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	want := []string{"10.244.0.0/24", "10.244.2.0/24", "10.244.3.0/24"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
		t.Fatalf("full allocator gave err %v", err)
	}
	a.Release("10.244.2.0/24")
	if c, err := a.Allocate(); err != nil || c != "10.244.2.0/24" {
		t.Fatalf("after release: %s, %v", c, err)
	}
}

func TestNewAllocatorRejectsBadConfig(t *testing.T) {
	tests := []struct {
		cidr string
		mask int
	}{
		{"not-a-cidr", 24},
		{"fd00::/64", 80},
		{"10.244.0.0/16", 8},
		{"10.244.0.0/16", 31},
		{"10.0.0.0/4", 30},
	}
	for _, tt := range tests {
		if _, err := NewAllocator(tt.cidr, tt.mask); err == nil {
			t.Errorf("NewAllocator(%s, %d) accepted", tt.cidr, tt.mask)
		}
	}
}
