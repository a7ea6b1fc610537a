package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// localLink holds the cluster DNS address. lo, not a dummy interface: every
// kernel has it (this one has no dummy driver), and an address on lo is
// local to the whole network namespace, so pods' packets routed to the node
// are delivered to the listener without any NAT rule.
const localLink = "lo"

// EnsureLocalAddress puts ip/32 on lo in the current network namespace so
// the server can listen on the cluster DNS address. It is a no-op when the
// address is already there.
func EnsureLocalAddress(ip netip.Addr) error {
	link, err := netlink.LinkByName(localLink)
	if err != nil {
		return fmt.Errorf("find %s: %w", localLink, err)
	}
	addr := &netlink.Addr{IPNet: prefixNet(ip)}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", ip, localLink, err)
	}
	return nil
}

// RemoveLocalAddress takes ip/32 off lo again (--cleanup).
func RemoveLocalAddress(ip netip.Addr) error {
	link, err := netlink.LinkByName(localLink)
	if err != nil {
		return fmt.Errorf("find %s: %w", localLink, err)
	}
	if err := netlink.AddrDel(link, &netlink.Addr{IPNet: prefixNet(ip)}); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", ip, localLink, err)
	}
	return nil
}

func prefixNet(ip netip.Addr) *net.IPNet {
	bits := ip.BitLen()
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, bits)}
}
