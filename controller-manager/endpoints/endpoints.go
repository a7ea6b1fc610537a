// Package endpoints is the Endpoints controller: for every Service with a
// selector it keeps an Endpoints object of the same name listing the
// selected pods' IPs (ready ones in addresses, the others in
// notReadyAddresses) with the Service's ports resolved against each pod.
//
// It must never touch Endpoints of Services without a selector: those are
// managed by hand.
package endpoints

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Name is the controller's name in logs, metrics and flags.
const Name = "endpoints"

// Config tunes the controller.
type Config struct {
	Workers int
}

// Controller is the Endpoints controller.
type Controller struct {
	client    *client.Client
	services  *informer.Informer[*api.Service]
	pods      *informer.Informer[*api.Pod]
	endpoints *informer.Informer[*api.Endpoints]
	queue     controllerutil.Queue
	logger    *slog.Logger
	metrics   *controllerutil.Metrics
	cfg       Config
}

// New wires the controller to the shared informers; call before they run.
func New(c *client.Client, services *informer.Informer[*api.Service], pods *informer.Informer[*api.Pod],
	endpoints *informer.Informer[*api.Endpoints], logger *slog.Logger, m *controllerutil.Metrics, cfg Config) *Controller {
	ec := &Controller{
		client: c, services: services, pods: pods, endpoints: endpoints, metrics: m, cfg: cfg,
		logger: logger.With("controller", Name),
		queue:  controllerutil.NewQueue(Name, m),
	}
	enqueue := func(s *api.Service) { ec.queue.Add(kinds.Key(s)) }
	services.AddEventHandler(informer.Handler[*api.Service]{
		OnAdd:    enqueue,
		OnUpdate: func(_, s *api.Service) { enqueue(s) },
		OnDelete: enqueue,
	})
	pods.AddEventHandler(informer.Handler[*api.Pod]{
		OnAdd: ec.podChanged,
		OnUpdate: func(old, cur *api.Pod) {
			if old.GetMetadata().GetResourceVersion() == cur.GetMetadata().GetResourceVersion() {
				return
			}
			ec.podChanged(old)
			if !labels.Equals(old.GetMetadata().GetLabels(), cur.GetMetadata().GetLabels()) {
				ec.podChanged(cur)
			}
		},
		OnDelete: ec.podChanged,
	})
	endpoints.AddEventHandler(informer.Handler[*api.Endpoints]{
		// Someone deleted or changed our Endpoints: put them right.
		OnUpdate: func(old, cur *api.Endpoints) {
			if old.GetMetadata().GetResourceVersion() != cur.GetMetadata().GetResourceVersion() {
				ec.queue.Add(kinds.Key(cur))
			}
		},
		OnDelete: func(e *api.Endpoints) { ec.queue.Add(kinds.Key(e)) },
	})
	return ec
}

// Run processes the queue until ctx ends. The informers must be running.
func (ec *Controller) Run(ctx context.Context) {
	w := &controllerutil.Worker{Name: Name, Queue: ec.queue, Sync: ec.sync, Logger: ec.logger, Metrics: ec.metrics}
	w.Run(ctx, ec.cfg.Workers)
}

// podChanged enqueues every Service selecting the pod.
func (ec *Controller) podChanged(pod *api.Pod) {
	set := labels.Set(pod.GetMetadata().GetLabels())
	for _, s := range ec.services.Lister().ByIndex(informer.IndexNamespace, pod.GetMetadata().GetNamespace()) {
		sel := s.GetSpec().GetSelector()
		if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(set) {
			ec.queue.Add(kinds.Key(s))
		}
	}
}

func (ec *Controller) sync(ctx context.Context, key string) error {
	ns, name := kinds.SplitKey(key)
	svc, ok := ec.services.Lister().Get(ns, name)
	if !ok {
		if _, exists := ec.endpoints.Lister().Get(ns, name); !exists {
			return nil
		}
		_, err := ec.client.Endpoints().Delete(ctx, ns, name, client.DeleteOptions{})
		if err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		return nil
	}
	if len(svc.GetSpec().GetSelector()) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(svc.GetSpec().GetSelector())
	var pods []*api.Pod
	for _, p := range ec.pods.Lister().ByIndex(informer.IndexNamespace, ns) {
		if sel.Matches(labels.Set(p.GetMetadata().GetLabels())) {
			pods = append(pods, p)
		}
	}
	subsets := BuildSubsets(svc, pods)

	cur, exists := ec.endpoints.Lister().Get(ns, name)
	want := &api.Endpoints{
		Metadata: &api.ObjectMeta{Name: name, Namespace: ns, Labels: svc.GetMetadata().GetLabels()},
		Subsets:  subsets,
	}
	if exists {
		if subsetsEqual(cur.GetSubsets(), subsets) && labels.Equals(cur.GetMetadata().GetLabels(), svc.GetMetadata().GetLabels()) {
			return nil
		}
		upd := proto.Clone(cur).(*api.Endpoints)
		upd.Metadata.Labels = svc.GetMetadata().GetLabels()
		upd.Subsets = subsets
		if _, err := ec.client.Endpoints().Update(ctx, upd); err != nil {
			return fmt.Errorf("update endpoints %s: %w", key, err)
		}
		return nil
	}
	if _, err := ec.client.Endpoints().Create(ctx, want); err != nil {
		// AlreadyExists: the cache lags; the informer brings the object
		// and the next sync updates it.
		return fmt.Errorf("create endpoints %s: %w", key, err)
	}
	return nil
}

func subsetsEqual(a, b []*api.EndpointSubset) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

type podEndpoint struct {
	addr  *api.EndpointAddress
	ready bool
	ports []*api.EndpointPort
}

// BuildSubsets computes a Service's subsets from the pods its selector
// matches: pods with an IP that are not terminating or finished, grouped
// by the ports they resolve, sorted so equal inputs give equal output.
func BuildSubsets(svc *api.Service, pods []*api.Pod) []*api.EndpointSubset {
	groups := map[string]*api.EndpointSubset{}
	for _, p := range pods {
		ip := p.GetStatus().GetPodIp()
		if ip == "" || p.GetMetadata().GetDeletionTimestamp() != nil {
			continue
		}
		if ph := p.GetStatus().GetPhase(); ph == controllerutil.PodSucceeded || ph == controllerutil.PodFailed {
			continue
		}
		ports := resolvePorts(svc, p)
		if len(ports) == 0 && len(svc.GetSpec().GetPorts()) > 0 {
			continue
		}
		addr := &api.EndpointAddress{
			Ip:       ip,
			NodeName: p.GetSpec().GetNodeName(),
			TargetRef: &api.ObjectReference{Kind: "Pod", Namespace: p.GetMetadata().GetNamespace(),
				Name: p.GetMetadata().GetName(), Uid: p.GetMetadata().GetUid()},
		}
		if h := p.GetSpec().GetHostname(); h != "" && p.GetSpec().GetSubdomain() == svc.GetMetadata().GetName() {
			addr.Hostname = h
		}
		sig := portsKey(ports)
		ss, ok := groups[sig]
		if !ok {
			ss = &api.EndpointSubset{Ports: ports}
			groups[sig] = ss
		}
		if controllerutil.IsPodReady(p) {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*api.EndpointSubset, 0, len(keys))
	byIP := func(a, b *api.EndpointAddress) int {
		return cmp.Or(cmp.Compare(a.GetIp(), b.GetIp()), cmp.Compare(a.GetTargetRef().GetUid(), b.GetTargetRef().GetUid()))
	}
	for _, k := range keys {
		ss := groups[k]
		slices.SortFunc(ss.Addresses, byIP)
		slices.SortFunc(ss.NotReadyAddresses, byIP)
		out = append(out, ss)
	}
	return out
}

// resolvePorts maps the Service's ports onto the pod: a numeric targetPort
// as is, a named one through the pod's container ports; ports the pod does
// not have are left out.
func resolvePorts(svc *api.Service, p *api.Pod) []*api.EndpointPort {
	byName := intstr.ContainerPorts(p.GetSpec().GetContainers()...)
	var out []*api.EndpointPort
	for _, sp := range svc.GetSpec().GetPorts() {
		target := sp.GetTargetPort()
		var port int32
		if target == nil {
			port = sp.GetPort()
		} else {
			n, err := intstr.ResolvePort(target, byName)
			if err != nil {
				continue
			}
			port = n
		}
		protocol := sp.GetProtocol()
		if protocol == "" {
			protocol = "TCP"
		}
		out = append(out, &api.EndpointPort{Name: sp.GetName(), Port: port, Protocol: protocol})
	}
	return out
}

func portsKey(ports []*api.EndpointPort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprintf("%s/%d/%s", p.GetName(), p.GetPort(), p.GetProtocol())
	}
	return strings.Join(parts, ",")
}
