// Package probe runs a container's exec, HTTP GET and TCP probes, from the
// node into the pod's IP (exec through the runtime), and turns their
// results into a verdict with Kubernetes' thresholds.
//
// It must never act on a verdict: the pod worker restarts containers and
// sets readiness.
package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

// ExecFunc runs a command in a container and returns its exit code.
type ExecFunc func(ctx context.Context, containerID string, command []string, output io.Writer) (int, error)

// Prober runs single probes.
type Prober struct {
	Exec ExecFunc
	HTTP *http.Client
}

// Target is the container a probe checks.
type Target struct {
	Container   *api.Container
	ContainerID string
	PodIP       string
	// StartedAt is when the run started; initialDelaySeconds counts from
	// it (zero: from the loop's start).
	StartedAt time.Time
}

// Probe runs pr once; it reports success and, on failure, why.
func (p *Prober) Probe(ctx context.Context, pr *api.Probe, t Target) (bool, string) {
	timeout := time.Duration(max(pr.GetTimeoutSeconds(), 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case pr.GetExec() != nil:
		var out strings.Builder
		code, err := p.Exec(ctx, t.ContainerID, pr.GetExec().GetCommand(), &limitWriter{w: &out, n: 1024})
		if err != nil {
			return false, fmt.Sprintf("exec probe: %v", err)
		}
		if code != 0 {
			return false, fmt.Sprintf("exec probe: command exited with %d: %s", code, strings.TrimSpace(out.String()))
		}
		return true, ""
	case pr.GetHttpGet() != nil:
		return p.httpGet(ctx, pr.GetHttpGet(), t)
	case pr.GetTcpSocket() != nil:
		port, err := resolvePort(pr.GetTcpSocket().GetPort(), t.Container)
		if err != nil {
			return false, fmt.Sprintf("tcp probe: %v", err)
		}
		host := pr.GetTcpSocket().GetHost()
		if host == "" {
			host = t.PodIP
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return false, fmt.Sprintf("tcp probe: %v", err)
		}
		conn.Close()
		return true, ""
	}
	return false, "probe has no exec, httpGet or tcpSocket action"
}

func (p *Prober) httpGet(ctx context.Context, g *api.HTTPGetAction, t Target) (bool, string) {
	port, err := resolvePort(g.GetPort(), t.Container)
	if err != nil {
		return false, fmt.Sprintf("http probe: %v", err)
	}
	host := g.GetHost()
	if host == "" {
		host = t.PodIP
	}
	scheme := strings.ToLower(g.GetScheme())
	if scheme == "" {
		scheme = "http"
	}
	path := g.GetPath()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(port))) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Sprintf("http probe: %v", err)
	}
	req.Header.Set("User-Agent", "skiff-probe/1.0")
	client := p.HTTP
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Sprintf("http probe: %v", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, fmt.Sprintf("http probe failed with statuscode: %d", resp.StatusCode)
	}
	return true, ""
}

// resolvePort turns a probe's port (a number or the name of one of the
// container's ports) into a number.
func resolvePort(v *structpb.Value, c *api.Container) (int32, error) {
	return intstr.ResolvePort(v, intstr.ContainerPorts(c))
}

type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	if _, err := l.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
