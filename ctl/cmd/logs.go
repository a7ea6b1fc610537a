package cmd

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/proto/api"
)

type logsOptions struct {
	container  string
	follow     bool
	tail       int64
	previous   bool
	timestamps bool
}

func newLogsCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &logsOptions{}
	c := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Long: `Print the logs for a container in a pod. If the pod has only one container,
the container name is optional. TYPE/NAME picks a pod of a deployment, replica
set or service.`,
		Example: `  # Return snapshot logs from pod nginx with only one container
  ctl logs nginx

  # Begin streaming the logs of the ruby container in pod web-1
  ctl logs -f -c ruby web-1

  # Display only the most recent 20 lines of output in pod nginx
  ctl logs --tail=20 nginx

  # Return the logs of the previous, terminated instance of the container
  ctl logs -p nginx

  # Return snapshot logs from the first pod of a deployment
  ctl logs deployment/nginx`,
		ValidArgsFunction: completePods(f),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf(c, "expected exactly one POD or TYPE/NAME, got %d arguments", len(args))
			}
			return runLogs(c.Context(), streams, f, o, args[0])
		},
	}
	c.Flags().StringVarP(&o.container, "container", "c", "", "Print the logs of this container")
	c.Flags().BoolVarP(&o.follow, "follow", "f", false, "Specify if the logs should be streamed.")
	c.Flags().Int64Var(&o.tail, "tail", -1, "Lines of recent log file to display. Defaults to -1, showing all log lines.")
	c.Flags().BoolVarP(&o.previous, "previous", "p", false, "If true, print the logs for the previous instance of the container in a pod if it exists.")
	c.Flags().BoolVar(&o.timestamps, "timestamps", false, "Include timestamps on each line in the log output")
	return c
}

func runLogs(ctx context.Context, streams IOStreams, f *Factory, o *logsOptions, target string) error {
	cl, err := f.Client(ctx)
	if err != nil {
		return err
	}
	ns, _ := f.DefaultNamespace()
	pod, err := resolvePod(ctx, streams, cl, ns, target)
	if err != nil {
		return err
	}
	container, err := pickContainer(streams, pod, o.container)
	if err != nil {
		return err
	}
	req := &api.LogsRequest{Namespace: pod.GetMetadata().GetNamespace(), Pod: pod.GetMetadata().GetName(),
		Container: container, Follow: o.follow, Previous: o.previous, Timestamps: o.timestamps}
	if o.tail >= 0 {
		req.TailLines = &o.tail
	}
	stream, err := cl.API.Logs(ctx, req)
	if err != nil {
		return withObject(err, podInfo(), pod.GetMetadata().GetName())
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted while following
			}
			return withObject(err, podInfo(), pod.GetMetadata().GetName())
		}
		if _, err := streams.Out.Write(chunk.GetData()); err != nil {
			return err
		}
	}
}
