package cmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

type logsOptions struct {
	container      string
	follow         bool
	tail           int64
	previous       bool
	timestamps     bool
	selector       string
	allContainers  bool
	prefix         bool
	maxLogRequests int
}

func newLogsCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &logsOptions{}
	c := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | TYPE/NAME | -l SELECTOR) [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Long: `Print the logs for a container in a pod. If the pod has only one container,
the container name is optional. TYPE/NAME picks a pod of a deployment, replica
set or service; -l prints the logs of every pod the selector matches.`,
		Example: `  # Return snapshot logs from pod nginx with only one container
  ctl logs nginx

  # Begin streaming the logs of the ruby container in pod web-1
  ctl logs -f -c ruby web-1

  # Display only the most recent 20 lines of output in pod nginx
  ctl logs --tail=20 nginx

  # Return the logs of the previous, terminated instance of the container
  ctl logs -p nginx

  # Return snapshot logs from the first pod of a deployment
  ctl logs deployment/nginx

  # Follow the logs of every container of every pod labeled app=nginx, each line prefixed by its source
  ctl logs -f -l app=nginx --all-containers --prefix`,
		ValidArgsFunction: completePods(f),
		RunE: func(c *cobra.Command, args []string) error {
			switch {
			case o.selector != "" && len(args) > 0:
				return usageErrorf(c, "only one of a selector (-l) or a POD/TYPE/NAME may be given")
			case o.selector == "" && len(args) != 1:
				return usageErrorf(c, "expected exactly one POD or TYPE/NAME, got %d arguments", len(args))
			}
			return runLogs(c.Context(), streams, f, o, args)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.container, "container", "c", "", "Print the logs of this container")
	fl.BoolVarP(&o.follow, "follow", "f", false, "Specify if the logs should be streamed.")
	fl.Int64Var(&o.tail, "tail", -1, "Lines of recent log file to display. Defaults to -1, showing all log lines (10 per pod with a selector).")
	fl.BoolVarP(&o.previous, "previous", "p", false, "If true, print the logs for the previous instance of the container in a pod if it exists.")
	fl.BoolVar(&o.timestamps, "timestamps", false, "Include timestamps on each line in the log output")
	fl.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter pods on")
	fl.BoolVar(&o.allContainers, "all-containers", false, "Get all containers' logs in the pod(s).")
	fl.BoolVar(&o.prefix, "prefix", false, "Prefix each log line with the log source (pod name and container name)")
	fl.IntVar(&o.maxLogRequests, "max-log-requests", 5, "Specify maximum number of concurrent logs to follow when using by a selector.")
	return c
}

// logSource is one container whose logs are printed.
type logSource struct {
	pod       *api.Pod
	container string
}

func runLogs(ctx context.Context, streams IOStreams, f *Factory, o *logsOptions, args []string) error {
	cl, ns, err := f.clientInNamespace(ctx)
	if err != nil {
		return err
	}
	var pods []*api.Pod
	if o.selector != "" {
		pods, _, err = cl.Pods().List(ctx, ns, client.ListOptions{LabelSelector: o.selector})
		if err != nil {
			return err
		}
		if len(pods) == 0 {
			fmt.Fprintf(streams.ErrOut, "No resources found in %s namespace.\n", ns)
			return nil
		}
		sortPods(pods)
		if o.tail < 0 {
			o.tail = 10 // kubectl's default with a selector
		}
	} else {
		pod, err := resolvePod(ctx, streams, cl, ns, args[0])
		if err != nil {
			return err
		}
		pods = []*api.Pod{pod}
	}
	var sources []logSource
	for _, p := range pods {
		switch {
		case o.allContainers:
			for _, c := range append(append([]*api.Container{}, p.GetSpec().GetInitContainers()...), p.GetSpec().GetContainers()...) {
				sources = append(sources, logSource{pod: p, container: c.GetName()})
			}
		default:
			name, err := pickContainer(streams, p, o.container)
			if err != nil {
				return err
			}
			sources = append(sources, logSource{pod: p, container: name})
		}
	}
	if o.follow && len(sources) > o.maxLogRequests {
		return fmt.Errorf("you are attempting to follow %d log streams, but maximum allowed concurrency is %d, use --max-log-requests to increase the limit", len(sources), o.maxLogRequests)
	}
	out := &lineWriter{w: streams.Out}
	if !o.follow {
		for _, s := range sources {
			if err := streamLogs(ctx, cl, o, s, out); err != nil {
				return err
			}
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range sources {
		g.Go(func() error { return streamLogs(gctx, cl, o, s, out) })
	}
	err = g.Wait()
	if ctx.Err() != nil {
		return nil // interrupted while following
	}
	return err
}

// streamLogs copies one container's log to out, a line at a time when
// several streams share out.
func streamLogs(ctx context.Context, cl *client.Client, o *logsOptions, s logSource, out *lineWriter) error {
	req := &api.LogsRequest{Namespace: s.pod.GetMetadata().GetNamespace(), Pod: s.pod.GetMetadata().GetName(),
		Container: s.container, Follow: o.follow, Previous: o.previous, Timestamps: o.timestamps}
	if o.tail >= 0 {
		tail := o.tail
		req.TailLines = &tail
	}
	prefix := ""
	if o.prefix {
		prefix = fmt.Sprintf("[pod/%s/%s] ", s.pod.GetMetadata().GetName(), s.container)
	}
	stream, err := cl.API.Logs(ctx, req)
	if err != nil {
		return withObject(err, podInfo(), s.pod.GetMetadata().GetName())
	}
	var partial []byte
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if len(partial) > 0 {
				return out.line(prefix, append(partial, '\n'))
			}
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return withObject(err, podInfo(), s.pod.GetMetadata().GetName())
		}
		sc := bufio.NewScanner(bytes.NewReader(append(partial, chunk.GetData()...)))
		sc.Split(scanLinesKeepingPartial)
		partial = nil
		for sc.Scan() {
			line := sc.Bytes()
			if line[len(line)-1] != '\n' {
				partial = append([]byte(nil), line...)
				break
			}
			if err := out.line(prefix, line); err != nil {
				return err
			}
		}
	}
}

// scanLinesKeepingPartial splits after each newline and returns a trailing
// partial line as its own token (without a newline) so it can wait for the
// rest.
func scanLinesKeepingPartial(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// lineWriter writes whole lines, so concurrent streams never interleave
// within a line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(prefix string, line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.WriteString(l.w, prefix); err != nil {
		return err
	}
	_, err := l.w.Write(line)
	return err
}
