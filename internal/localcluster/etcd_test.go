package localcluster

import (
	"slices"
	"testing"
)

// TestAPIServerStorageFlags: the apiserver stores in its embedded etcd in
// the state dir unless the cluster names an external etcd cluster, and
// then never gets a data dir it would ignore.
func TestAPIServerStorageFlags(t *testing.T) {
	tests := []struct {
		name        string
		etcd        []string
		want, never []string
	}{
		{name: "embedded", want: []string{"--data-dir", "/var/lib/x/apiserver"}, never: []string{"--etcd-servers"}},
		{name: "external", etcd: []string{"http://127.0.0.1:2379", "http://127.0.0.1:2479"},
			want: []string{"--etcd-servers", "http://127.0.0.1:2379,http://127.0.0.1:2479"}, never: []string{"--data-dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{StateDir: "/var/lib/x", EtcdServers: tt.etcd}.WithDefaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			args := c.APIServerArgs(true, true)
			i := slices.Index(args, tt.want[0])
			if i < 0 || i+1 >= len(args) || args[i+1] != tt.want[1] {
				t.Errorf("args %v: want %s %s", args, tt.want[0], tt.want[1])
			}
			for _, f := range tt.never {
				if slices.Contains(args, f) {
					t.Errorf("args %v hold %s", args, f)
				}
			}
		})
	}
}

func TestValidateRejectsBadEtcdServers(t *testing.T) {
	for _, s := range []string{"127.0.0.1:2379", "https://127.0.0.1:2379", "http://127.0.0.1", "http://"} {
		c := Config{StateDir: "/var/lib/x", EtcdServers: []string{s}}.WithDefaults()
		if err := c.Validate(); err == nil {
			t.Errorf("etcd server %q validated", s)
		}
	}
}
