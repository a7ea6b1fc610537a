package localcluster

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// ProcessStatus is one recorded process and whether it runs.
type ProcessStatus struct {
	Process
	Running bool
}

// Status reads the recorded state of cfg's cluster; nil when none.
func Status(cfg Config) ([]ProcessStatus, error) {
	cfg = cfg.WithDefaults()
	st, err := loadState(cfg.stateFile())
	if err != nil || st == nil {
		return nil, err
	}
	out := make([]ProcessStatus, 0, len(st.Processes))
	for _, p := range st.Processes {
		out = append(out, ProcessStatus{Process: p, Running: p.Alive()})
	}
	return out, nil
}

// PrintStatus writes a table of processes.
func PrintStatus(w io.Writer, procs []ProcessStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATUS\tLOG")
	for _, p := range procs {
		status := "Running"
		if !p.Running {
			status = "Exited"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Name, p.Pid, status, p.Log)
	}
	return tw.Flush()
}

// NextSteps is what Up prints when the cluster is ready.
func NextSteps(cfg Config) string {
	cfg = cfg.WithDefaults()
	return fmt.Sprintf(`Skiff local cluster is up: apiserver %s, %d nodes.
Client config: %s (copy in %s); logs in %s.

Try:
  bin/ctl get nodes -o wide
  bin/ctl create deployment k8s-nginx --image nginx -r 3
  bin/ctl get pods -o wide
  bin/ctl exec -it <pod> -- sh
  bin/ctl expose deployment k8s-nginx --port 80
  bin/ctl delete deployment k8s-nginx

Tear it down with: make down
`, cfg.APIServer(), cfg.Nodes, must(cfg.adminConfigPath()), cfg.AdminConfigCopy(), cfg.logDir())
}

func must(s string, err error) string {
	if err != nil || s == "" {
		return "(not installed)"
	}
	return s
}
