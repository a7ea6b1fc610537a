package localcluster

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// etcdArgs are the apiserver's storage flags: the external etcd cluster of
// Config.EtcdServers when set, else its embedded etcd in the state dir.
func (c Config) etcdArgs() []string {
	if len(c.EtcdServers) > 0 {
		return []string{"--etcd-servers", strings.Join(c.EtcdServers, ",")}
	}
	return []string{"--data-dir", filepath.Join(c.StateDir, "apiserver")}
}

// validateEtcdServers checks that every external etcd endpoint is a
// plain-HTTP client URL (the local cluster passes no etcd TLS flags).
func validateEtcdServers(servers []string) error {
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.Port() == "" {
			return fmt.Errorf("etcd server %q: want http://host:port", s)
		}
	}
	return nil
}
