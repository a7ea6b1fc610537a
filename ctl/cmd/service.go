package cmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func newCreateServiceCmd(streams IOStreams, f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:     "service",
		Aliases: []string{"svc"},
		Short:   "Create a service using a specified subcommand",
		Example: `  # Create a new ClusterIP service named my-cs
  ctl create service clusterip my-cs --tcp=5678:8080

  # Create a new NodePort service named my-ns
  ctl create service nodeport my-ns --tcp=5678:8080`,
		RunE: func(c *cobra.Command, args []string) error {
			return subcommandRequired(c, args)
		},
	}
	for _, typ := range []string{"ClusterIP", "NodePort"} {
		c.AddCommand(newCreateServiceTypeCmd(streams, f, typ))
	}
	return c
}

func newCreateServiceTypeCmd(streams IOStreams, f *Factory, typ string) *cobra.Command {
	var tcp []string
	var nodePort int32
	o := &generatedOptions{}
	lower := strings.ToLower(typ)
	c := &cobra.Command{
		Use:   lower + " NAME [--tcp=<port>:<targetPort>] [--dry-run=client]",
		Short: "Create a " + typ + " service",
		Example: fmt.Sprintf(`  # Create a new %s service named my-svc
  ctl create service %s my-svc --tcp=5678:8080`, typ, lower),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf(c, "exactly one NAME is required, got %d", len(args))
			}
			ns, _ := f.DefaultNamespace()
			svc := &api.Service{
				Metadata: &api.ObjectMeta{Name: args[0], Namespace: ns, Labels: map[string]string{"app": args[0]}},
				Spec:     &api.ServiceSpec{Type: typ, Selector: map[string]string{"app": args[0]}},
			}
			for _, spec := range tcp {
				port, target, err := parsePortPair(spec)
				if err != nil {
					return err
				}
				svc.Spec.Ports = append(svc.Spec.Ports, &api.ServicePort{
					Name: strings.ReplaceAll(spec, ":", "-"), Protocol: "TCP", Port: port,
					TargetPort: target, NodePort: nodePort,
				})
			}
			kinds.SetTypeMeta(svc)
			return o.send(c.Context(), streams, f, svc, "created")
		},
	}
	c.Flags().StringSliceVar(&tcp, "tcp", nil, "Port pairs can be specified as '<port>:<targetPort>'.")
	if typ == "NodePort" {
		c.Flags().Int32Var(&nodePort, "node-port", 0, "Port used to expose the service on each node in a cluster.")
	}
	o.addFlags(c)
	return c
}

// parsePortPair reads "80" or "80:8080" (or "80:http").
func parsePortPair(s string) (int32, *structpb.Value, error) {
	p, t, hasTarget := strings.Cut(s, ":")
	port, err := strconv.ParseInt(p, 10, 32)
	if err != nil || port < 1 || port > 65535 {
		return 0, nil, fmt.Errorf("invalid port %q in %q: must be a number from 1 to 65535", p, s)
	}
	if !hasTarget {
		t = p
	}
	return int32(port), intOrString(t), nil
}

// intOrString is a port number or a port name, as an IntOrString field
// holds it.
func intOrString(s string) *structpb.Value {
	if n, err := strconv.Atoi(s); err == nil {
		return structpb.NewNumberValue(float64(n))
	}
	return structpb.NewStringValue(s)
}

func newExposeCmd(streams IOStreams, f *Factory) *cobra.Command {
	var port, targetPort, typ, name, protocol string
	var selector string
	o := &generatedOptions{}
	c := &cobra.Command{
		Use:   "expose (-f FILENAME | TYPE NAME) [--port=port] [--protocol=TCP] [--target-port=n] [--name=name] [--type=type]",
		Short: "Take a deployment, replica set, service or pod and expose it as a new service",
		Long: `Expose a resource as a new service.

Looks up a deployment, replica set, service or pod by name and uses its selector
(for a pod, its labels) as the selector of a new service on the given port.`,
		Example: `  # Create a service for a deployment, which serves on port 80 and connects to the containers on port 8000
  ctl expose deployment nginx --port=80 --target-port=8000

  # Expose it on every node's port 30000-32767
  ctl expose deployment nginx --port=80 --type=NodePort

  # Create a second service for the same deployment under another name
  ctl expose deployment nginx --port=443 --target-port=8443 --name=nginx-https`,
		RunE: func(c *cobra.Command, args []string) error {
			reqs, err := parseResourceArgs(args)
			if err != nil {
				return usageErrorf(c, "%v", err)
			}
			if len(reqs) != 1 || len(reqs[0].names) != 1 {
				return usageErrorf(c, "exactly one TYPE NAME is required")
			}
			info, srcName := reqs[0].info, reqs[0].names[0]
			ns, _ := f.DefaultNamespace()
			cl, err := f.Client(c.Context())
			if err != nil {
				return err
			}
			src, err := client.ForKind(cl, info).Get(c.Context(), namespaceFor(info, ns), srcName)
			if err != nil {
				return withObject(err, info, srcName)
			}
			sel, ports, err := exposeSource(src)
			if err != nil {
				return err
			}
			if selector != "" {
				sel = parseLabelMap(selector)
			}
			if port != "" {
				ports = []string{port}
			}
			if len(ports) == 0 {
				return fmt.Errorf("couldn't find port via --port flag or introspection")
			}
			if name == "" {
				name = srcName
			}
			svc := &api.Service{
				Metadata: &api.ObjectMeta{Name: name, Namespace: ns, Labels: src.GetMetadata().GetLabels()},
				Spec:     &api.ServiceSpec{Type: typ, Selector: sel},
			}
			for i, p := range ports {
				n, err := strconv.ParseInt(p, 10, 32)
				if err != nil {
					return fmt.Errorf("invalid port %q: %w", p, err)
				}
				sp := &api.ServicePort{Protocol: protocol, Port: int32(n), TargetPort: intOrString(p)}
				if targetPort != "" {
					sp.TargetPort = intOrString(targetPort)
				}
				if len(ports) > 1 {
					sp.Name = fmt.Sprintf("port-%d", i+1)
				}
				svc.Spec.Ports = append(svc.Spec.Ports, sp)
			}
			kinds.SetTypeMeta(svc)
			return o.send(c.Context(), streams, f, svc, "exposed")
		},
	}
	c.Flags().StringVar(&port, "port", "", "The port that the service should serve on. Copied from the resource being exposed, if unspecified")
	c.Flags().StringVar(&targetPort, "target-port", "", "Name or number for the port on the container that the service should direct traffic to. Optional.")
	c.Flags().StringVar(&typ, "type", "ClusterIP", "Type for this service: ClusterIP or NodePort.")
	c.Flags().StringVar(&name, "name", "", "The name for the newly created object.")
	c.Flags().StringVar(&protocol, "protocol", "TCP", "The network protocol for the service to be created.")
	c.Flags().StringVar(&selector, "selector", "", "A label selector to use for this service (key=value,...). Copied from the resource being exposed, if unspecified.")
	o.addFlags(c)
	return c
}

// exposeSource returns the selector and ports a new service for obj uses.
func exposeSource(obj kinds.Object) (map[string]string, []string, error) {
	var sel map[string]string
	var spec *api.PodSpec
	switch o := obj.(type) {
	case *api.Deployment:
		sel, spec = o.GetSpec().GetSelector().GetMatchLabels(), o.GetSpec().GetTemplate().GetSpec()
		if len(o.GetSpec().GetSelector().GetMatchExpressions()) > 0 {
			return nil, nil, fmt.Errorf("couldn't retrieve selectors via --selector flag or introspection: the deployment uses matchExpressions")
		}
	case *api.ReplicaSet:
		sel, spec = o.GetSpec().GetSelector().GetMatchLabels(), o.GetSpec().GetTemplate().GetSpec()
	case *api.Pod:
		sel, spec = o.GetMetadata().GetLabels(), o.GetSpec()
	case *api.Service:
		sel = o.GetSpec().GetSelector()
		var ports []string
		for _, p := range o.GetSpec().GetPorts() {
			ports = append(ports, strconv.Itoa(int(p.GetPort())))
		}
		return sel, ports, nil
	default:
		info, _ := kinds.For(obj)
		return nil, nil, fmt.Errorf("cannot expose a %s", info.Kind)
	}
	var ports []string
	for _, c := range spec.GetContainers() {
		for _, p := range c.GetPorts() {
			ports = append(ports, strconv.Itoa(int(p.GetContainerPort())))
		}
	}
	return sel, ports, nil
}

func parseLabelMap(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if k = strings.TrimSpace(k); k != "" {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}
