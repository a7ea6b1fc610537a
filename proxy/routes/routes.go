// Package routes keeps host-gateway routes to the other nodes' pod
// subnets: for every other Node with spec.podCIDR and an InternalIP, a
// route "podCIDR via InternalIP". Nodes share an L2 segment, so the
// InternalIP is a direct next hop.
//
// Its routes carry their own protocol number (RouteProtocol) in the main
// table, so it must never change or delete a route without that marker: the
// routes of the host, of CNI and of people are not its business.
package routes

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/skiff-dev/skiff/proto/api"
)

// RouteProtocol marks Skiff's routes (`ip route show proto 74`); it is
// unassigned in /etc/iproute2/rt_protos.
const RouteProtocol netlink.RouteProtocol = 74

// Route is one wanted route.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
	// Node is the node the pod subnet belongs to, for logs.
	Node string
}

// Desired lists the routes to the pod subnets of every node except self.
// Nodes without a podCIDR or an InternalIP are skipped (not yet allocated or
// registered); so are IPv6 subnets and subnets whose next hop is of the
// other family.
func Desired(nodes []*api.Node, self string) []Route {
	var out []Route
	for _, n := range nodes {
		if n.GetMetadata().GetName() == self {
			continue
		}
		cidr, err := netip.ParsePrefix(n.GetSpec().GetPodCidr())
		if err != nil || !cidr.Addr().Is4() {
			continue
		}
		var via netip.Addr
		for _, a := range n.GetStatus().GetAddresses() {
			if a.GetType() != "InternalIP" {
				continue
			}
			if ip, err := netip.ParseAddr(a.GetAddress()); err == nil && ip.Is4() {
				via = ip
				break
			}
		}
		if !via.IsValid() {
			continue
		}
		out = append(out, Route{Dst: cidr.Masked(), Via: via, Node: n.GetMetadata().GetName()})
	}
	slices.SortFunc(out, func(a, b Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	return out
}

// Manager applies routes in the current network namespace.
type Manager struct {
	log *slog.Logger
}

// NewManager makes a manager.
func NewManager(log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{log: log}
}

// Sync makes Skiff's routes exactly want: it adds or replaces what is
// missing or different and deletes its own routes that are no longer
// wanted.
func (m *Manager) Sync(want []Route) error {
	have, err := m.List()
	if err != nil {
		return err
	}
	wanted := map[netip.Prefix]Route{}
	for _, r := range want {
		wanted[r.Dst] = r
	}
	var errs []error
	for _, r := range have {
		if w, ok := wanted[r.Dst]; ok && w.Via == r.Via {
			delete(wanted, r.Dst)
			continue
		}
		if _, ok := wanted[r.Dst]; ok {
			continue // replaced below
		}
		if err := netlink.RouteDel(m.route(r)); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", r.Dst, r.Via, err))
			continue
		}
		m.log.Info("deleted route to pod subnet", "podCIDR", r.Dst, "via", r.Via)
	}
	for _, r := range want {
		if _, ok := wanted[r.Dst]; !ok {
			continue
		}
		if err := netlink.RouteReplace(m.route(r)); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s (node %s): %w", r.Dst, r.Via, r.Node, err))
			continue
		}
		m.log.Info("routed pod subnet", "node", r.Node, "podCIDR", r.Dst, "via", r.Via)
	}
	return errors.Join(errs...)
}

// List returns the routes Skiff made (those with RouteProtocol).
func (m *Manager) List() ([]Route, error) {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: syscall.RT_TABLE_MAIN}
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, r := range rs {
		if r.Dst == nil || r.Gw == nil {
			continue
		}
		dst, ok1 := netip.AddrFromSlice(r.Dst.IP)
		via, ok2 := netip.AddrFromSlice(r.Gw)
		if !ok1 || !ok2 {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		out = append(out, Route{Dst: netip.PrefixFrom(dst.Unmap(), ones), Via: via.Unmap()})
	}
	return out, nil
}

// Cleanup deletes every route Skiff made.
func (m *Manager) Cleanup() error {
	return m.Sync(nil)
}

func (m *Manager) route(r Route) *netlink.Route {
	bits := r.Dst.Addr().BitLen()
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), bits)},
		Gw:       r.Via.AsSlice(),
		Protocol: RouteProtocol,
		Table:    syscall.RT_TABLE_MAIN,
	}
}
