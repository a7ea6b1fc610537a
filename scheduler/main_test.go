package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSettingsFromFlagsConfigFileAndSchedulerConfig(t *testing.T) {
	profile := write(t, "profile.yaml", "parallelism: 6\npercentageOfNodesToScore: 30\nscoreWeights: {PodTopologySpread: 7}\n")
	flagsFile := write(t, "flags.yaml", "leader-elect: false\nscheduler-config: "+profile+"\nhttp-addr: 127.0.0.1:0\n")
	tests := []struct {
		name            string
		args            []string
		wantParallelism int
		wantLeaderElect bool
	}{
		{"defaults", nil, 2, true},
		{"the config file sets flags", []string{"--config", flagsFile}, 6, false},
		{"--parallelism overrides the scheduler config", []string{"--config", flagsFile, "--parallelism", "3"}, 3, false},
		{"the command line wins over the config file", []string{"--config", flagsFile, "--leader-elect=true"}, 6, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, s := command()
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := s.flags.ApplyConfigFile(cmd.Flags()); err != nil {
				t.Fatal(err)
			}
			if err := s.complete(cmd.Flags()); err != nil {
				t.Fatal(err)
			}
			if s.opts.Config.Parallelism != tt.wantParallelism || s.opts.LeaderElect != tt.wantLeaderElect {
				t.Errorf("parallelism %d, leader-elect %v; want %d, %v", s.opts.Config.Parallelism, s.opts.LeaderElect, tt.wantParallelism, tt.wantLeaderElect)
			}
		})
	}
}

func TestBadSettingsAreRefused(t *testing.T) {
	bad := write(t, "profile.yaml", "scoreWeights: {Nope: 1}\n")
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--parallelism", "0"}, "--parallelism: parallelism: must be >= 1"},
		{[]string{"--scheduler-config", bad}, `unknown score plugin "Nope"`},
		{[]string{"--scheduler-config", "/nonexistent.yaml"}, "read scheduler config"},
	}
	for _, tt := range tests {
		cmd, s := command()
		if err := cmd.ParseFlags(tt.args); err != nil {
			t.Fatal(err)
		}
		if err := s.complete(cmd.Flags()); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v: error %v, want one containing %q", tt.args, err, tt.wantErr)
		}
	}
}
