package nodestatus

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// MemTotal reads the node's memory from /proc/meminfo, in bytes.
func MemTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseMemTotal(bufio.NewScanner(f))
}

func parseMemTotal(sc *bufio.Scanner) (int64, error) {
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("meminfo: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("meminfo: no MemTotal")
}

// DefaultRouteIP is the first IPv4 address of the interface holding the
// default route: the node's InternalIP when --node-ip is not given.
func DefaultRouteIP() (string, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range routes {
		if rt.Dst != nil && !(rt.Dst.IP.IsUnspecified() && isZeroMask(rt.Dst.Mask)) {
			continue
		}
		link, err := netlink.LinkByIndex(rt.LinkIndex)
		if err != nil {
			continue
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil || len(addrs) == 0 {
			continue
		}
		return addrs[0].IP.String(), nil
	}
	return "", fmt.Errorf("no default route: set --node-ip")
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}
