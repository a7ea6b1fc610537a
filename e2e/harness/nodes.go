package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/skiff-dev/skiff/internal/localcluster"
)

// Node is what the suite reads of a Node object.
type Node struct {
	Name   string
	Ready  bool
	Taints []string // "key:effect"
}

// Schedulable says the scheduler may place pods on the node: Ready and
// without NoSchedule or NoExecute taints.
func (n Node) Schedulable() bool {
	if !n.Ready {
		return false
	}
	for _, t := range n.Taints {
		if strings.HasSuffix(t, ":NoSchedule") || strings.HasSuffix(t, ":NoExecute") {
			return false
		}
	}
	return true
}

// Nodes reads every node through `ctl get nodes -o json`.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	out, err := c.CtlOK(ctx, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Taints []struct {
					Key    string `json:"key"`
					Effect string `json:"effect"`
				} `json:"taints"`
			} `json:"spec"`
			Status struct {
				Conditions []struct {
					Type   string `json:"type"`
					Status string `json:"status"`
				} `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("get nodes -o json: %w: %s", err, out)
	}
	var nodes []Node
	for _, it := range doc.Items {
		n := Node{Name: it.Metadata.Name}
		for _, cond := range it.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" {
				n.Ready = true
			}
		}
		for _, t := range it.Spec.Taints {
			n.Taints = append(n.Taints, t.Key+":"+t.Effect)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// Unschedulable lists the nodes the scheduler cannot use yet, with why;
// an error when fewer than the cluster's nodes are registered.
func (c *Cluster) Unschedulable(ctx context.Context) ([]string, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	if len(nodes) < c.Config.Nodes {
		return nil, fmt.Errorf("%d of %d nodes registered", len(nodes), c.Config.Nodes)
	}
	var out []string
	for _, n := range nodes {
		if !n.Schedulable() {
			out = append(out, fmt.Sprintf("%s (ready=%v, taints %v)", n.Name, n.Ready, n.Taints))
		}
	}
	return out, nil
}

// SetNodeLink cuts node i off the network (up false) or reconnects it,
// by its link to the host bridge; its processes keep running.
func (c *Cluster) SetNodeLink(ctx context.Context, i int, up bool) error {
	return localcluster.SetNodeLink(ctx, c.Config, i, up)
}
