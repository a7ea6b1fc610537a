package localcluster

import (
	"context"
	"fmt"
)

// SetNodeLink sets node i's link to the host bridge down or up again, as a
// pulled cable or a dead switch port would: the host end of its veth. The
// node's processes keep running, cut off from the control plane and the
// other nodes, and find them again when the link is back. Down removes the
// link either way.
func SetNodeLink(ctx context.Context, cfg Config, i int, up bool) error {
	cfg = cfg.WithDefaults()
	if i < 1 || i > cfg.Nodes {
		return fmt.Errorf("node link: no node %d of %d", i, cfg.Nodes)
	}
	veth := cfg.HostVeth(i)
	if !linkExists(veth) {
		return fmt.Errorf("node link %s of %s: no such link", veth, cfg.NodeName(i))
	}
	state := "down"
	if up {
		state = "up"
	}
	if err := run(ctx, cfg.Logger, "ip", "link", "set", veth, state); err != nil {
		return fmt.Errorf("set %s's link %s: %w", cfg.NodeName(i), state, err)
	}
	cfg.Logger.Info("node link", "node", cfg.NodeName(i), "link", veth, "state", state)
	return nil
}
