package localcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// State is what Up made, written to <state dir>/state.json after every
// step so Down finds it after a crash.
type State struct {
	Config     StateConfig `json:"config"`
	Processes  []Process   `json:"processes"`
	Namespaces []string    `json:"namespaces,omitempty"`
	Links      []string    `json:"links,omitempty"`
	// Chains are host iptables chains, "table/chain".
	Chains []string `json:"chains,omitempty"`
	// AdminConfig is the admin client config written outside the state dir.
	AdminConfig string `json:"adminConfig,omitempty"`
	// TLS says the apiserver serves TLS and clients use certificates.
	TLS bool `json:"tls"`
	// KubeletTLS says kubelets serve exec/logs over TLS and the apiserver
	// calls them with its client certificate.
	KubeletTLS bool `json:"kubeletTLS"`
	// IPForward is the host's net.ipv4.ip_forward before Up changed it.
	IPForward string `json:"ipForward,omitempty"`
}

// StateConfig is the part of Config needed to tear the cluster down.
type StateConfig struct {
	Name  string `json:"name"`
	Nodes int    `json:"nodes"`
}

// Process is one started process.
type Process struct {
	Name string   `json:"name"` // "apiserver", "node-1/kubelet"
	Pid  int      `json:"pid"`
	Args []string `json:"args"`
	Log  string   `json:"log"`
	// StartTime is field 22 of /proc/<pid>/stat, so a recycled pid is never
	// mistaken for ours.
	StartTime uint64 `json:"startTime"`
	// Netns is the node namespace the process runs in, if any.
	Netns string `json:"netns,omitempty"`
}

func loadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	s := &State{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	return s, nil
}

func (s *State) save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
