package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// portForwardOptions are port-forward's flags.
type portForwardOptions struct {
	addresses         []string
	podRunningTimeout time.Duration
}

func newPortForwardCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &portForwardOptions{}
	c := &cobra.Command{
		Use:                   "port-forward TYPE/NAME [options] [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]",
		DisableFlagsInUseLine: true,
		Short:                 "Forward one or more local ports to a pod",
		Long: `Forward one or more local ports to a pod.

Use resource type/name such as deployment/mydeployment to select a pod.
Resource type defaults to 'pod' if omitted.

If there are multiple pods matching the criteria, a pod will be selected
automatically: a running, ready one, the oldest first. The forwarding session
ends when ctl is interrupted, or with "lost connection to pod" when the pod is
deleted, replaced or stops running; a rerun of the command then reaches a new
pod.`,
		Example: `  # Listen on ports 5000 and 6000 locally, forwarding data to/from ports 5000 and 6000 in the pod
  ctl port-forward pod/mypod 5000 6000

  # Listen on ports 5000 and 6000 locally, forwarding data to/from ports 5000 and 6000 in a pod selected by the deployment
  ctl port-forward deployment/mydeployment 5000 6000

  # Listen on port 8443 locally, forwarding to the targetPort of the service's port named "https" in a pod selected by the service
  ctl port-forward service/myservice 8443:https

  # Listen on port 8888 locally, forwarding to 5000 in the pod
  ctl port-forward pod/mypod 8888:5000

  # Listen on port 8888 on all addresses, forwarding to 5000 in the pod
  ctl port-forward --address 0.0.0.0 pod/mypod 8888:5000

  # Listen on port 8888 on localhost and selected IP, forwarding to 5000 in the pod
  ctl port-forward --address localhost,10.19.21.23 pod/mypod 8888:5000

  # Listen on a random port locally, forwarding to 5000 in the pod
  ctl port-forward pod/mypod :5000`,
		ValidArgsFunction: completePods(f),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf(c, "TYPE/NAME and list of ports are required for port-forward")
			}
			return runPortForward(c.Context(), streams, f, o, args[0], args[1:])
		},
	}
	c.Flags().StringSliceVar(&o.addresses, "address", []string{"localhost"}, "Addresses to listen on (comma separated). Only accepts IP addresses or localhost as a value. When localhost is supplied, ctl will try to bind on both 127.0.0.1 and ::1 and will fail if neither of these addresses are available to bind.")
	c.Flags().DurationVar(&o.podRunningTimeout, "pod-running-timeout", time.Minute, "The length of time (like 5s, 2m, or 3h, higher than zero) to wait until the pod is running")
	return c
}

// runPortForward checks every argument before it touches the cluster or the
// network, then listens and serves until ctx ends (Ctrl-C).
func runPortForward(ctx context.Context, streams IOStreams, f *Factory, o *portForwardOptions, target string, args []string) error {
	if o.podRunningTimeout <= 0 {
		return errors.New("--pod-running-timeout must be higher than zero")
	}
	specs, err := parsePortSpecs(args)
	if err != nil {
		return err
	}
	addrs, err := parseListenAddresses(o.addresses)
	if err != nil {
		return err
	}
	cl, ns, err := f.clientInNamespace(ctx)
	if err != nil {
		return err
	}
	pod, ports, err := forwardTarget(ctx, streams, cl, ns, target, specs, o.podRunningTimeout)
	if err != nil {
		return err
	}
	fw := &portForwarder{api: cl.API, pod: pod, out: &lineWriter{w: streams.Out}, errOut: &lineWriter{w: streams.ErrOut}, now: f.now}
	listeners, err := fw.listen(addrs, ports)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if watchPodLost(ctx, cl, pod) {
			cancel(errLostPod)
		}
	}()
	fw.serve(ctx, listeners)
	cancel(nil)
	<-watched
	if errors.Is(context.Cause(ctx), errLostPod) {
		return errLostPod
	}
	return nil
}

// errLostPod ends a port-forward whose pod went away, as kubectl's does.
var errLostPod = errors.New("lost connection to pod")

// watchPodLost follows the forwarded pod until it is deleted, replaced by
// another of its name or stops running (true), or ctx ends (false). A
// watch that fails (the apiserver briefly gone) leaves the forward alone.
func watchPodLost(ctx context.Context, cl *client.Client, pod *api.Pod) bool {
	uid := pod.GetMetadata().GetUid()
	o := followRef(cl, objectRef{info: podInfo(), namespace: pod.GetMetadata().GetNamespace(), name: pod.GetMetadata().GetName()})
	lost := false
	_ = o.follow(ctx, func(obj kinds.Object) (bool, error) {
		p, _ := obj.(*api.Pod)
		lost = p == nil || p.GetMetadata().GetUid() != uid || p.GetStatus().GetPhase() != "Running"
		return lost, nil
	})
	return lost && ctx.Err() == nil
}

// forwardTarget finds the pod target names, waits for it to run and maps
// the port specs onto it.
func forwardTarget(ctx context.Context, streams IOStreams, cl *client.Client, ns, target string, specs []portSpec, timeout time.Duration) (*api.Pod, []forwardedPort, error) {
	obj, info, err := getTarget(ctx, cl, ns, target)
	if err != nil {
		return nil, nil, err
	}
	// As kubectl: the first pod by sortPods (running, then ready, then the
	// oldest), not necessarily a running one; it is waited for below.
	pod, err := podForObject(ctx, streams, cl, ns, obj, info)
	if err != nil {
		return nil, nil, err
	}
	pod, err = waitPodRunning(ctx, cl, pod, timeout)
	if err != nil {
		return nil, nil, err
	}
	svc, _ := obj.(*api.Service)
	ports, err := resolvePorts(specs, svc, pod)
	if err != nil {
		return nil, nil, err
	}
	return pod, ports, nil
}

// waitPodRunning polls the pod until it is Running, for at most timeout
// (--pod-running-timeout).
func waitPodRunning(ctx context.Context, cl *client.Client, pod *api.Pod, timeout time.Duration) (*api.Pod, error) {
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		switch pod.GetStatus().GetPhase() {
		case "Running":
			return pod, nil
		case "Succeeded", "Failed":
			return nil, podNotRunning(pod) // it never will
		}
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, podNotRunning(pod)
		case <-t.C:
		}
		next, err := cl.Pods().Get(wait, pod.GetMetadata().GetNamespace(), pod.GetMetadata().GetName())
		switch {
		case err != nil && wait.Err() == nil:
			return nil, withObject(err, podInfo(), pod.GetMetadata().GetName())
		case err == nil:
			pod = next
		}
	}
}

func podNotRunning(pod *api.Pod) error {
	phase := pod.GetStatus().GetPhase()
	if phase == "" {
		phase = "Pending" // no kubelet has reported on it yet
	}
	return fmt.Errorf("unable to forward port because pod is not running. Current status=%s", phase)
}

// portSpec is one [LOCAL_PORT:]REMOTE_PORT argument, checked but not yet
// mapped onto a pod.
type portSpec struct {
	local int // 0 picks a free port
	// localSet is false for "80" or "http": the local port is the remote
	// one (a service's port, not its targetPort).
	localSet bool
	// Exactly one of remote and remoteName is set: a number, or the name
	// of a container port (of a service port for service/NAME).
	remote     int32
	remoteName string
}

// forwardedPort is a local port and the pod's port it forwards to.
type forwardedPort struct {
	local  int
	remote int32
}

func parsePortSpecs(args []string) ([]portSpec, error) {
	specs := make([]portSpec, 0, len(args))
	for _, a := range args {
		s, err := parsePortSpec(a)
		if err != nil {
			return nil, fmt.Errorf("invalid port spec %q: %w", a, err)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// parsePortSpec reads "8080:80", "80", ":80" (any free local port) or a
// remote port name in place of 80.
func parsePortSpec(arg string) (portSpec, error) {
	parts := strings.Split(arg, ":")
	if len(parts) > 2 {
		return portSpec{}, errors.New("want [LOCAL_PORT:]REMOTE_PORT")
	}
	var s portSpec
	if len(parts) == 2 {
		local, err := parseLocalPort(parts[0])
		if err != nil {
			return portSpec{}, err
		}
		s.local, s.localSet = local, true
	}
	remote := parts[len(parts)-1]
	if remote == "" {
		return portSpec{}, errors.New("remote port is required")
	}
	n, err := strconv.Atoi(remote)
	switch {
	case err == nil && (n < 1 || n > 65535):
		return portSpec{}, fmt.Errorf("remote port %d must be between 1 and 65535, inclusive", n)
	case err == nil:
		s.remote = int32(n)
	case isPortName(remote):
		s.remoteName = remote
	default:
		return portSpec{}, fmt.Errorf("remote port %q is neither a number nor a port name", remote)
	}
	return s, nil
}

// parseLocalPort reads the part before the colon; empty means 0: a free
// port the system picks.
func parseLocalPort(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("local port %q is not a number", s)
	}
	if n < 0 || n > 65535 {
		return 0, fmt.Errorf("local port %d must be between 0 and 65535, inclusive", n)
	}
	return n, nil
}

// isPortName reports a valid port name (IANA_SVC_NAME, as Kubernetes
// validates container port names): at most 15 lowercase letters, digits
// and inner single dashes, with at least one letter.
func isPortName(s string) bool {
	if len(s) == 0 || len(s) > 15 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	letter := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			letter = true
		case r >= '0' && r <= '9', r == '-':
		default:
			return false
		}
	}
	return letter
}

// resolvePorts maps specs onto pod as kubectl does: a remote port name
// through the pod's container ports; for a service (svc not nil), the
// remote port is the service's port, by number or name, forwarded to its
// targetPort.
func resolvePorts(specs []portSpec, svc *api.Service, pod *api.Pod) ([]forwardedPort, error) {
	out := make([]forwardedPort, 0, len(specs))
	for _, s := range specs {
		local, remote, err := resolvePort(s, svc, pod)
		if err != nil {
			return nil, err
		}
		if !s.localSet {
			s.local = int(local)
		}
		out = append(out, forwardedPort{local: s.local, remote: remote})
	}
	return out, nil
}

// resolvePort returns the port s names (the local port when none is
// given) and the pod's port it reaches.
func resolvePort(s portSpec, svc *api.Service, pod *api.Pod) (named, remote int32, err error) {
	switch {
	case svc != nil:
		var sp *api.ServicePort
		if sp, err = servicePort(svc, s); err == nil {
			named = sp.GetPort()
			remote, err = targetPort(sp, pod)
		}
	case s.remoteName != "":
		remote, err = containerPortByName(pod, s.remoteName)
		named = remote
	default:
		named, remote = s.remote, s.remote
	}
	return named, remote, err
}

func servicePort(svc *api.Service, s portSpec) (*api.ServicePort, error) {
	for _, sp := range svc.GetSpec().GetPorts() {
		if (s.remoteName != "" && sp.GetName() == s.remoteName) || (s.remoteName == "" && sp.GetPort() == s.remote) {
			return sp, nil
		}
	}
	if s.remoteName != "" {
		return nil, fmt.Errorf("Service '%s' does not have a named port '%s'", svc.GetMetadata().GetName(), s.remoteName)
	}
	return nil, fmt.Errorf("Service %s does not have a service port %d", svc.GetMetadata().GetName(), s.remote)
}

// targetPort is the pod's port a service port sends to: its targetPort,
// a number or a container port's name, or the port itself when unset.
func targetPort(sp *api.ServicePort, pod *api.Pod) (int32, error) {
	if sp.GetTargetPort() == nil {
		return sp.GetPort(), nil
	}
	n, name, err := intstr.PortValue(sp.GetTargetPort())
	if err != nil {
		return 0, fmt.Errorf("service port %d: targetPort: %w", sp.GetPort(), err)
	}
	if name == "" {
		return n, nil
	}
	return containerPortByName(pod, name)
}

func containerPortByName(pod *api.Pod, name string) (int32, error) {
	if n, ok := intstr.ContainerPorts(pod.GetSpec().GetContainers()...)(name); ok {
		return n, nil
	}
	return 0, fmt.Errorf("Pod '%s' does not have a named port '%s'", pod.GetMetadata().GetName(), name)
}

// listenAddress is one local address port-forward listens on.
type listenAddress struct {
	network, host string
	// loopback marks the two addresses "localhost" stands for: listening
	// on one of them is enough (::1 is often disabled). Any other address
	// must listen.
	loopback bool
}

// parseListenAddresses reads --address: IPs, or "localhost" for 127.0.0.1
// and ::1; duplicates are dropped and the order is the addresses' sorted
// text, as in kubectl.
func parseListenAddresses(list []string) ([]listenAddress, error) {
	seen := map[string]listenAddress{}
	for _, a := range list {
		a = strings.TrimSpace(a)
		if a == "localhost" {
			for _, l := range []listenAddress{{"tcp4", "127.0.0.1", true}, {"tcp6", "::1", true}} {
				if _, ok := seen[l.host]; !ok {
					seen[l.host] = l
				}
			}
			continue
		}
		ip := net.ParseIP(a)
		switch {
		case ip == nil:
			return nil, fmt.Errorf("%s is not a valid IP", a)
		case ip.To4() != nil:
			seen[ip.String()] = listenAddress{network: "tcp4", host: ip.String()}
		default:
			seen[ip.String()] = listenAddress{network: "tcp6", host: ip.String()}
		}
	}
	out := make([]listenAddress, 0, len(seen))
	for _, l := range seen {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].host < out[j].host })
	return out, nil
}

// portListener is one listening socket and the port it forwards.
type portListener struct {
	net.Listener
	port forwardedPort
}

// portForwarder serves the listeners: every accepted connection is one
// PortForward stream to the pod.
type portForwarder struct {
	api         api.APIClient
	pod         *api.Pod
	out, errOut *lineWriter
	now         func() time.Time
}

// listen opens every port on every address and prints what it forwards.
// A port that cannot listen is reported and skipped; it fails only when
// no port could listen, as kubectl.
func (fw *portForwarder) listen(addrs []listenAddress, ports []forwardedPort) ([]portListener, error) {
	var all []portListener
	for _, p := range ports {
		ls, err := listenPort(addrs, &p)
		if err != nil {
			fw.errOut.line("", fmt.Appendf(nil, "Unable to listen on port %d: %v\n", p.local, err))
			continue
		}
		for _, l := range ls {
			fw.out.line("", fmt.Appendf(nil, "Forwarding from %s -> %d\n", l.Addr(), p.remote))
		}
		all = append(all, ls...)
	}
	if len(all) == 0 {
		var list []string
		for _, p := range ports {
			list = append(list, fmt.Sprintf("%d -> %d", p.local, p.remote))
		}
		return nil, fmt.Errorf("unable to listen on any of the requested ports: %s", strings.Join(list, ", "))
	}
	return all, nil
}

// listenPort listens on p.local on every address; when p.local is 0 the
// first listener picks a free port and sets it, so every address shares it.
// On failure it closes what it opened.
func listenPort(addrs []listenAddress, p *forwardedPort) ([]portListener, error) {
	var ls []portListener
	var errs []string
	loopbackOK, loopbackFailed, otherFailed := false, false, false
	for _, a := range addrs {
		l, err := net.Listen(a.network, net.JoinHostPort(a.host, strconv.Itoa(p.local)))
		if err != nil {
			errs = append(errs, err.Error())
			loopbackFailed = loopbackFailed || a.loopback
			otherFailed = otherFailed || !a.loopback
			continue
		}
		loopbackOK = loopbackOK || a.loopback
		if p.local == 0 {
			p.local = l.Addr().(*net.TCPAddr).Port
		}
		ls = append(ls, portListener{Listener: l, port: *p})
	}
	if otherFailed || (loopbackFailed && !loopbackOK) {
		for _, l := range ls {
			_ = l.Close()
		}
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return ls, nil
}

// serve accepts connections until ctx ends, then closes the listeners and
// waits for every connection's stream to end.
func (fw *portForwarder) serve(ctx context.Context, listeners []portListener) {
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() { fw.accept(ctx, l, &wg) })
	}
	<-ctx.Done()
	for _, l := range listeners {
		_ = l.Close()
	}
	wg.Wait()
}

// accept hands each connection to its own goroutine, counted in wg.
func (fw *portForwarder) accept(ctx context.Context, l portListener, wg *sync.WaitGroup) {
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil {
				fw.logError("error accepting connection on port %d: %v", l.port.local, err)
			}
			return
		}
		wg.Go(func() { fw.handle(ctx, conn, l.port) })
	}
}

// handle forwards one connection; a failure is reported and ends only this
// connection.
func (fw *portForwarder) handle(ctx context.Context, conn net.Conn, p forwardedPort) {
	defer conn.Close()
	fw.out.line("", fmt.Appendf(nil, "Handling connection for %d\n", p.local))
	if err := fw.forward(ctx, conn, p.remote); err != nil && ctx.Err() == nil {
		fw.logError("an error occurred forwarding %d -> %d: %v", p.local, p.remote, err)
	}
}

// logError prints a line the way kubectl's klog reports a failed
// connection: "E0102 15:04:05.000000   12345 portforward.go] message".
func (fw *portForwarder) logError(format string, args ...any) {
	header := fmt.Sprintf("E%s %7d portforward.go] ", fw.now().Format("0102 15:04:05.000000"), os.Getpid())
	fw.errOut.line(header, fmt.Appendf(nil, format+"\n", args...))
}

type portForwardStream = grpc.BidiStreamingClient[api.PortForwardInput, api.PortForwardOutput]

// forward carries one connection over one PortForward stream: what the
// local peer writes goes up until it closes its side (then CloseSend), what
// the pod writes comes back until the stream ends; then the local
// connection is closed.
func (fw *portForwarder) forward(ctx context.Context, conn net.Conn, remote int32) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Interrupted, the forward closes the local connection too: a write to
	// a client that stopped reading would otherwise never return.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	stream, err := fw.api.PortForward(ctx)
	if err != nil {
		return fw.remoteError(remote, err)
	}
	start := &api.PortForwardStart{Namespace: fw.pod.GetMetadata().GetNamespace(), Pod: fw.pod.GetMetadata().GetName(), Port: remote}
	if err := stream.Send(&api.PortForwardInput{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		return fw.remoteError(remote, err)
	}
	upErr := make(chan error, 1)
	go func() {
		err := upload(conn, stream)
		if err != nil {
			cancel() // the local side broke: abandon the stream
		}
		upErr <- err
	}()
	downErr := fw.download(stream, conn, remote)
	_ = conn.Close() // the pod is done: so is the local peer, and upload stops
	if err := <-upErr; err != nil {
		return err
	}
	return downErr
}

// upload sends what the local peer writes, and half-closes the stream when
// the peer has closed its write side.
func upload(conn net.Conn, stream portForwardStream) error {
	buf := make([]byte, 32*1024)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if stream.Send(&api.PortForwardInput{Data: bytes.Clone(buf[:n])}) != nil {
				return nil // the stream ended: download reports how
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return stream.CloseSend()
		case errors.Is(err, net.ErrClosed):
			return nil // download closed it: the pod is done
		case err != nil:
			return fmt.Errorf("read from the local connection: %w", err)
		}
	}
}

// download writes what the pod sends to the local connection until the
// stream ends.
func (fw *portForwarder) download(stream portForwardStream, conn net.Conn, remote int32) error {
	for {
		out, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fw.remoteError(remote, err)
		}
		if _, err := conn.Write(out.GetData()); err != nil {
			return fmt.Errorf("write to the local connection: %w", err)
		}
	}
}

// remoteError words a failed stream as kubectl does, with the server's
// message rather than gRPC's "rpc error: code = ..." text.
func (fw *portForwarder) remoteError(remote int32, err error) error {
	return fmt.Errorf("error forwarding port %d to pod %s: %s", remote, fw.pod.GetMetadata().GetName(), status.Convert(err).Message())
}
