package server

import (
	"context"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// ServiceAllocator hands out ClusterIPs and NodePorts. Allocations are
// keys written in the same etcd transaction as the Service, so an address
// is never given twice and is freed with the Service.
type ServiceAllocator struct {
	CIDR          netip.Prefix
	NodePortFirst int
	NodePortLast  int
	// Reserved is how many addresses at the start of the range are left to
	// explicit requests (the cluster DNS address lives there).
	Reserved int
}

// DefaultServiceAllocator is 10.96.0.0/12 and ports 30000-32767.
func DefaultServiceAllocator() ServiceAllocator {
	return ServiceAllocator{CIDR: netip.MustParsePrefix("10.96.0.0/12"), NodePortFirst: 30000, NodePortLast: 32767, Reserved: 16}
}

func (s *Server) ipKey(ip string) string { return s.store.Key("serviceips", "", ip) }
func (s *Server) portKey(port int32) string {
	return s.store.Key("servicenodeports", "", strconv.Itoa(int(port)))
}

// allocate fills a Service's ClusterIP and NodePorts and returns the
// allocation keys to create with it. Explicit values are checked; empty
// ones are drawn at random among free ones.
func (s *Server) allocate(ctx context.Context, info *kinds.Info, obj kinds.Object) ([]storage.Side, error) {
	svc, ok := obj.(*api.Service)
	if !ok {
		return nil, nil
	}
	alloc := s.cfg.Services
	var sides []storage.Side
	spec := svc.GetSpec()
	switch ip := spec.GetClusterIp(); ip {
	case "None":
	case "":
		picked, err := s.pickIP(ctx, alloc)
		if err != nil {
			return nil, err
		}
		spec.ClusterIp = picked
		spec.ClusterIps = []string{picked}
		sides = append(sides, storage.Side{Key: s.ipKey(picked), Value: []byte(kinds.Key(svc))})
	default:
		addr, err := netip.ParseAddr(ip)
		if err != nil || !alloc.CIDR.Contains(addr) {
			return nil, invalidArg("spec.clusterIP: Invalid value: %q: provided IP is not in the valid range. The range of valid IPs is %s", ip, alloc.CIDR)
		}
		if taken, err := s.store.Exists(ctx, s.ipKey(ip)); err != nil {
			return nil, apiError(info, svc.GetMetadata().GetName(), err)
		} else if taken {
			return nil, invalidArg("spec.clusterIP: Invalid value: %q: provided IP is already allocated", ip)
		}
		spec.ClusterIps = []string{ip}
		sides = append(sides, storage.Side{Key: s.ipKey(ip), Value: []byte(kinds.Key(svc))})
	}
	if spec.GetType() == "NodePort" {
		used := map[int32]bool{}
		for i, p := range spec.GetPorts() {
			if p.GetNodePort() != 0 {
				if p.NodePort < int32(alloc.NodePortFirst) || p.NodePort > int32(alloc.NodePortLast) {
					return nil, invalidArg("spec.ports[%d].nodePort: Invalid value: %d: provided port is not in the valid range. The range of valid ports is %d-%d", i, p.NodePort, alloc.NodePortFirst, alloc.NodePortLast)
				}
				if taken, err := s.store.Exists(ctx, s.portKey(p.NodePort)); err != nil {
					return nil, apiError(info, svc.GetMetadata().GetName(), err)
				} else if taken || used[p.NodePort] {
					return nil, invalidArg("spec.ports[%d].nodePort: Invalid value: %d: provided port is already allocated", i, p.NodePort)
				}
			} else {
				port, err := s.pickPort(ctx, alloc, used)
				if err != nil {
					return nil, err
				}
				p.NodePort = port
			}
			used[p.NodePort] = true
			sides = append(sides, storage.Side{Key: s.portKey(p.NodePort), Value: []byte(kinds.Key(svc))})
		}
	}
	return sides, nil
}

func (s *Server) pickIP(ctx context.Context, alloc ServiceAllocator) (string, error) {
	size := new(big.Int).Lsh(big.NewInt(1), uint(alloc.CIDR.Addr().BitLen()-alloc.CIDR.Bits())).Int64()
	usable := size - int64(alloc.Reserved) - 1 // never the broadcast address
	if usable <= 0 {
		return "", status.Error(codes.ResourceExhausted, "spec.clusterIP: the service CIDR is too small")
	}
	base := alloc.CIDR.Masked().Addr().As4()
	baseN := int64(base[0])<<24 | int64(base[1])<<16 | int64(base[2])<<8 | int64(base[3])
	for try := 0; try < 64; try++ {
		n := baseN + int64(alloc.Reserved) + rand.Int64N(usable)
		ip := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
		taken, err := s.store.Exists(ctx, s.ipKey(ip))
		if err != nil {
			return "", status.Errorf(codes.Unavailable, "allocate clusterIP: %v", err)
		}
		if !taken {
			return ip, nil
		}
	}
	return "", status.Errorf(codes.ResourceExhausted, "spec.clusterIP: no free address found in %s", alloc.CIDR)
}

func (s *Server) pickPort(ctx context.Context, alloc ServiceAllocator, used map[int32]bool) (int32, error) {
	span := alloc.NodePortLast - alloc.NodePortFirst + 1
	for try := 0; try < 64; try++ {
		port := int32(alloc.NodePortFirst + rand.IntN(span))
		if used[port] {
			continue
		}
		taken, err := s.store.Exists(ctx, s.portKey(port))
		if err != nil {
			return 0, status.Errorf(codes.Unavailable, "allocate nodePort: %v", err)
		}
		if !taken {
			return port, nil
		}
	}
	return 0, status.Errorf(codes.ResourceExhausted, "spec.ports.nodePort: no free port in %d-%d", alloc.NodePortFirst, alloc.NodePortLast)
}

// sideKeys are the allocation keys deleted with an object.
func (s *Server) sideKeys(obj kinds.Object) []string {
	svc, ok := obj.(*api.Service)
	if !ok {
		return nil
	}
	var keys []string
	if ip := svc.GetSpec().GetClusterIp(); ip != "" && ip != "None" {
		keys = append(keys, s.ipKey(ip))
	}
	for _, p := range svc.GetSpec().GetPorts() {
		if p.GetNodePort() != 0 {
			keys = append(keys, s.portKey(p.GetNodePort()))
		}
	}
	return keys
}
